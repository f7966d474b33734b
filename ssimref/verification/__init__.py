"""Verification: slow, obviously-correct oracles and tools to check SSIM implementations.

- :mod:`~ssimref.verification.oracle`: loop-based SSIM, distances, kernels, MMD^2, CMMD^2
  (windows, maps, borders, variants, kernels).
- :mod:`~ssimref.verification.cases`: named image pairs that break implementations, built
  on first use.
- :mod:`~ssimref.verification.conventions`: every convention SSIM implementations differ in.
- :mod:`~ssimref.verification.peers`: adapters for other libraries' SSIM functions.
- :func:`check` (:mod:`~ssimref.verification.conformance`): run another implementation over
  the cases, compare with the oracle, name the convention it differs in (calling,
  evaluator, fitting, report, runner).
- :func:`gradcheck`: finite-difference check of SSIM-loss gradients.
- ``golden.json`` (:mod:`~ssimref.verification.make_golden`): golden values for other projects.
"""

from .conformance import check
from .conventions import Convention
from .gradcheck import gradcheck

__all__ = ["check", "gradcheck", "Convention"]
