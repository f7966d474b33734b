"""Experiments that put the paper's claims to the test, each one command.

- :mod:`ssimref.experiments.paper`: SSIM versus l2, bce and the RBF mixture in GMMN
  (data space, code space, conditional), VAE, AAE, the image-conditional GAN and the
  least-squares GAN on the 28x28 digits of ``mnist5k``, with a learning-rate grid per arm,
  several seeds, paired comparisons and a verdict rule fixed before the runs
  (``ssimref experiment paper``; see ``docs/experiments.md``).

The GMMN study on the 8x8 digits stays in :mod:`ssimref.gmmn.experiment`
(``ssimref gmmn experiment``).
"""

from __future__ import annotations

from .paper import (Arm, Design, Family, collect_paper, paired_comparison, paper_design,
                    plan_paper, run_paper, verdict, write_report)

__all__ = ["Arm", "Design", "Family", "paper_design", "run_paper", "plan_paper",
           "paired_comparison", "verdict", "collect_paper", "write_report"]
