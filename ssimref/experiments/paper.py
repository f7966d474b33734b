"""The experiment the paper deferred: SSIM against l2, bce and the RBF mixture in GMMN,
VAE, AAE, the image-conditional GAN and the least-squares GAN, on 28x28 digits.

Families (:func:`paper_design`), each a baseline arm (or two) against SSIM arms under the
same steps, batch, networks and learning-rate grid:

=============  ============================================  ==================  ==========
family         model                                         arms                primary
=============  ============================================  ==================  ==========
``gmmn-data``  GMMN on pixels                                rbf / ssim          ``fd``
``gmmn-code``  GMMN on autoencoder codes (GMMN+AE)           rbf / ssim          ``fd``
``gmmn-cond``  conditional GMMN (CMMD, one-hot labels)       rbf / ssim          ``fd``
``vae``        VAE, reconstruction term                      bce, l2 / ssim-eq1,  ``recon_fd``
                                                             ssim-eq2
``aae``        AAE (Gaussian prior), reconstruction term     bce, l2 / ssim-eq1,  ``recon_fd``
                                                             ssim-eq2
``pix2pix``    image-conditional GAN restoring half-masked   l1, l2 / ssim-eq2   ``fd``
               digits, paired fidelity term
``lsgan``      the same with the least-squares adversarial   l1, l2 / ssim-eq2   ``fd``
               loss (coding -1-1-0)
=============  ============================================  ==================  ==========

(``fd``: Frechet distance in the feature classifier's features between the samples, or
the restorations, and the held-out digits; ``recon_fd``: the same between the
reconstructions of the held-out digits and those digits. Neither arm trains on either.)

Protocol, per family and arm: one run with the tuning seed (the first seed) at every
learning rate of the family's grid; the learning rate whose run has the lowest primary
metric on the **validation** split is chosen; the other seeds are trained at that rate;
every chosen run is evaluated on the **test** split with
:func:`ssimref.generative.evaluate.evaluate_run` (every metric of that module, both MMD
kernels with permutation p-values). Arms are then compared in pairs (SSIM arm against
each baseline, seed against seed): mean paired difference and its standard error, and a
verdict on the primary metric (:func:`verdict`): ``"supported"`` when the SSIM arm is better
in every seed and the mean gain exceeds twice its standard error, ``"not supported"`` when
the baseline wins the same way, else ``"undecided"``; a family's verdict is that of all
its pairs when they agree, else ``"undecided"``.

Folder (``out``)::

    design.json                     the design; another design refuses without force
    FAMILY/ARM/lrLR-sSEED/          one training run (ssimref.generative's run folder)
        selection.json              the primary metric on the validation split (tuning seed)
        evaluation.json             every metric on the test split (chosen runs)
    calls.json                      per call of the command: start, wall time, runs trained
                                    and evaluated, load average (updated after every run)
    results.json                    settings, grids and choices, metrics per run, summaries,
                                    paired comparisons, verdicts, wall time and load, the
                                    sizing of the full design (:data:`SIZING`)
    tables.md                       one table per family and its paired comparisons
    samples-FAMILY.png, reconstructions-FAMILY.png, restorations-FAMILY.png, metrics.png

Families run cheapest first (:func:`execution_order`), so that an experiment stopped
early has finished as many families as it could. Resumable: a finished run is not
trained again, an unfinished one resumes from its checkpoint, an evaluation or a selection
score on file is reused (a selection score is tied to its checkpoint's SHA-256). SIGINT or
SIGTERM stop a training run at a step boundary (the trainer's policy) and anywhere else
follow :mod:`ssimref.interrupt` (an :class:`~ssimref.interrupt.Interrupted` naming what
was kept); every file is written atomically.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, interrupt
from ..generative.trainer import TrainingInterrupted
from ..io import atomic_path, save_json

__all__ = ["Arm", "Family", "Design", "paper_design", "run_paper", "plan_paper", "verdict",
           "collect_paper", "write_report", "report_markdown", "stored_design",
           "REPORT_MARKERS",
           "paired_comparison", "family_verdict", "format_tables", "SENSES", "KINDS",
           "VERDICT_RULE", "FAMILY_NAMES", "SIZING"]

#: How a metric ranks arms: "lower" or "higher" is better, or "one" (best at 1: the
#: distance |x - 1| is compared). Metrics not listed (p-values, nn_ssim) are reported only.
SENSES = {
    "fd": "lower", "recon_fd": "lower", "mmd2_rbf": "lower", "mmd2_ssim": "lower",
    "class_kl": "lower", "recon_l2": "lower", "recon_ssim": "lower", "restore_l2": "lower",
    "restore_ssim": "lower", "class_accuracy": "higher", "recon_class_accuracy": "higher",
    "recon_mean_ssim": "higher", "restore_mean_ssim": "higher",
    "sharpness_ratio": "one", "laplacian_ratio": "one",
}

#: What a family's runs produce: samples (GMMN), samples and reconstructions
#: (autoencoders), restorations of corrupted test digits (image-conditional GANs).
KINDS = ("samples", "autoencoder", "restoration")

#: The metrics shown in a family's tables, per kind (results.json holds them all).
TABLE_METRICS = {
    "samples": ("fd", "class_kl", "class_accuracy", "mmd2_rbf", "p_rbf", "mmd2_ssim",
                "p_ssim", "sharpness_ratio", "nn_ssim"),
    "autoencoder": ("recon_fd", "recon_class_accuracy", "recon_l2", "recon_ssim",
                    "recon_mean_ssim", "fd", "mmd2_rbf", "mmd2_ssim", "sharpness_ratio",
                    "nn_ssim"),
    "restoration": ("fd", "class_accuracy", "restore_l2", "restore_ssim",
                    "restore_mean_ssim", "mmd2_rbf", "mmd2_ssim", "sharpness_ratio"),
}

#: The metrics of the bar chart, per kind.
BAR_METRICS = {
    "samples": ("fd", "mmd2_rbf", "mmd2_ssim", "sharpness_ratio"),
    "autoencoder": ("recon_fd", "recon_l2", "recon_ssim", "fd"),
    "restoration": ("fd", "class_accuracy", "restore_l2", "restore_ssim"),
}

VERDICT_RULE = (
    "Per family, one primary metric, graded on the test split: fd for GMMN samples and "
    "for restorations, recon_fd for VAE/AAE reconstructions. For each SSIM arm and each "
    "baseline, gain_s = the baseline's value minus the SSIM arm's (lower is better) for "
    "seed s. 'supported': gain_s > 0 in every seed and mean gain > 2 x its standard error "
    "(sd / sqrt(seeds)); 'not supported': gain_s < 0 in every seed and -mean gain > 2 x "
    "its standard error; otherwise 'undecided' (also with fewer than 2 seeds). A family's "
    "verdict is that of all its pairs when they agree, otherwise 'undecided'. Every other "
    "metric is reported beside it with its paired difference and standard error.")


@dataclass(frozen=True)
class Arm:
    """One arm of a family: a name, the config fields that set it apart, and whether it
    is an SSIM arm (else a baseline)."""

    name: str
    options: tuple[tuple[str, Any], ...]
    ssim: bool


@dataclass(frozen=True)
class Family:
    """A model family: its registry model, the kind of output, the paper's claim, the
    primary metric, the arms, and what every arm shares (steps, batch, learning-rate
    grid, other config fields)."""

    name: str
    model: str
    kind: str
    title: str
    claim: str
    primary: str
    arms: tuple[Arm, ...]
    steps: int
    batch: int
    lrs: tuple[float, ...]
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def baselines(self) -> tuple[Arm, ...]:
        """The baseline arms (l2, bce, l1, the RBF mixture), in order."""
        return tuple(a for a in self.arms if not a.ssim)

    @property
    def ssim_arms(self) -> tuple[Arm, ...]:
        """The SSIM arms, in order."""
        return tuple(a for a in self.arms if a.ssim)

    def config(self, arm: Arm, *, seed: int, lr: float, dataset: str, device: str,
               **overrides: Any) -> Any:
        """The run config of ``arm`` with ``seed`` and learning rate ``lr``.

        Parameters
        ----------
        arm : Arm
            One of :attr:`arms`.
        seed : int
        lr : float
        dataset : str
            A name of :mod:`ssimref.generative.data` (``"mnist5k"``, ``"digits"``).
        device : {"cpu", "gpu"}
        **overrides
            Further config fields (they win over the family's and the arm's).

        Returns
        -------
        the model's config dataclass
            From :func:`ssimref.generative.runs.config_class`.
        """
        from ..generative.runs import config_class
        fields = dict(self.options)
        fields.update(arm.options)
        fields.update(overrides)
        fields.setdefault("steps", self.steps)
        fields.setdefault("batch", self.batch)
        return config_class(self.model)(dataset=dataset, seed=seed, lr=lr, device=device,
                                        **fields)


@dataclass(frozen=True)
class Design:
    """Everything an experiment folder's runs depend on (``design.json``)."""

    dataset: str
    seeds: tuple[int, ...]
    families: tuple[Family, ...]
    n_eval: int
    permutations: int
    device: str = "cpu"
    quick: bool = False
    verdict_rule: str = field(default=VERDICT_RULE)

    def to_dict(self) -> dict[str, Any]:
        """The design as JSON values (tuples as lists).

        Returns
        -------
        dict
        """
        out: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return out


FAMILY_NAMES = ("gmmn-data", "gmmn-code", "gmmn-cond", "vae", "aae", "pix2pix", "lsgan")

_RECON_ARMS = (Arm("bce", (("recon", "bce"),), False), Arm("l2", (("recon", "l2"),), False),
               Arm("ssim-eq1", (("recon", "ssim-eq1"),), True),
               Arm("ssim-eq2", (("recon", "ssim-eq2"),), True))
_FIDELITY_ARMS = (Arm("l1", (("fidelity", "l1"),), False),
                  Arm("l2", (("fidelity", "l2"),), False),
                  Arm("ssim-eq2", (("fidelity", "ssim-eq2"),), True))
_KERNEL_ARMS = (Arm("rbf", (("kernel", "rbf"),), False),
                Arm("ssim", (("kernel", "ssim"),), True))

#: The sizes of the full design (chosen from measured step times; docs/experiments.md
#: "Sizing") and of --quick.
FULL_SIZES: dict[str, Any] = {"gmmn": {"steps": 600, "batch": 32, "lrs": (1e-3, 3e-3), "ae_steps": 1500},
              "vae": {"steps": 2000, "batch": 64, "lrs": (1e-3, 3e-3)},
              "aae": {"steps": 2000, "batch": 64, "lrs": (3e-4, 1e-3)},
              "gan": {"steps": 2000, "batch": 64, "lrs": (2e-4, 5e-4)},
              "n_eval": 500, "permutations": 200, "dataset": "mnist5k"}
#: How the full design was sized: the step times measured by ``ssimref experiment paper
#: --plan`` (4 timed steps per arm after a warm-up step, mnist5k, one BLAS thread; the
#: machine shared, 1-minute load average 2.6 before and 4.0 after on 2 cores) and the
#: projection from them. Written into ``results.json`` of the full design.
SIZING: dict[str, Any] = {
    "command": "ssimref experiment paper --plan",
    "date": "2026-11-30 15:41 UTC",
    "machine": "2 CPU cores, shared (1-minute load average 2.6 before, 4.0 after)",
    "ms_per_step": {
        "gmmn-data/rbf": 7.2, "gmmn-data/ssim": 264.8, "gmmn-code/rbf": 2.8,
        "gmmn-code/ssim": 433.5, "gmmn-cond/rbf": 16.0, "gmmn-cond/ssim": 366.8,
        "vae/bce": 16.8, "vae/l2": 11.2, "vae/ssim-eq1": 35.0, "vae/ssim-eq2": 19.5,
        "aae/bce": 17.7, "aae/l2": 12.7, "aae/ssim-eq1": 30.8, "aae/ssim-eq2": 32.0,
        "pix2pix/l1": 20.2, "pix2pix/l2": 20.0, "pix2pix/ssim-eq2": 35.8,
        "lsgan/l1": 23.8, "lsgan/l2": 21.0, "lsgan/ssim-eq2": 33.0},
    "autoencoder_ms_per_step": {"gmmn-code/rbf": 12.0, "gmmn-code/ssim": 12.0},
    "evaluation_seconds": {"samples": 12.6, "autoencoder": 5.6, "restoration": 4.1},
    "selection_seconds": {"samples": 0.1, "autoencoder": 0.1, "restoration": 0.1},
    "runs_per_arm": "len(lr grid) + len(seeds) - 1 = 2 + 3 - 1 = 4",
    "projected_seconds": {"training": 5398, "evaluation": 438, "total": 5836},
    "statement": (
        "20 arms x 4 runs (80 training runs), 60 test evaluations and 40 validation "
        "scores, projected at 97 min on the shared machine from the measured step "
        "times, leaving room under the 2-hour budget for what the projection leaves out "
        "(validation grids every 250 steps, checkpoints, the reference metrics and the "
        "figures). The SSIM-kernel GMMN steps dominate (49% of the projected training: "
        "0.26-0.43 s per step, the MMD of 32 + 32 images under the 7x7 SSIM distance "
        "kernel with its gradient), hence GMMN batches of 32 and 600 steps; the "
        "autoencoders and GANs train 2,000 steps of batch 64."),
}

QUICK_SIZES: dict[str, Any] = {"gmmn": {"steps": 8, "batch": 8, "lrs": (1e-3, 3e-3), "ae_steps": 8},
               "vae": {"steps": 8, "batch": 16, "lrs": (1e-3, 3e-3)},
               "aae": {"steps": 8, "batch": 16, "lrs": (3e-4, 1e-3)},
               "gan": {"steps": 8, "batch": 16, "lrs": (2e-4, 5e-4)},
               "n_eval": 60, "permutations": 20, "dataset": "digits"}


def paper_design(*, seeds: int | Sequence[int] | None = None, device: str = "cpu",
                 quick: bool = False, families: Sequence[str] | None = None) -> Design:
    """The design of ``ssimref experiment paper``.

    Parameters
    ----------
    seeds : int or sequence of int, optional
        ``n`` for seeds ``0 .. n-1``, or the seeds themselves; default 3 (2 with
        ``quick``). The first seed is the tuning seed.
    device : {"cpu", "gpu"}
    quick : bool
        The smoke-test design: the 8x8 digits, 8 steps per run, small batches and
        evaluations (every condition, every output, in under a minute).
    families : sequence of str, optional
        A subset of :data:`FAMILY_NAMES` (all by default).

    Returns
    -------
    Design

    Raises
    ------
    ValueError
        Unknown family names, no seeds, negative or repeated seeds, an unknown device.
    """
    from ..backend import DEVICES
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    seeds = (2 if quick else 3) if seeds is None else seeds
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list or min(seed_list) < 0 or len(set(seed_list)) != len(seed_list):
        raise ValueError(f"seeds must be a count >= 1 or distinct seeds >= 0, got {seeds!r}")
    names = FAMILY_NAMES if families is None else tuple(families)
    unknown = sorted(set(names) - set(FAMILY_NAMES))
    if unknown or not names:
        raise ValueError(f"families must be among {FAMILY_NAMES}, got {list(names)}")
    sizes = QUICK_SIZES if quick else FULL_SIZES
    g, v, a, gan = sizes["gmmn"], sizes["vae"], sizes["aae"], sizes["gan"]
    ssim_size = 5 if quick else 7  # 5x5 on 8x8 digits, 7x7 on 28x28 (the losses' default)
    small = {"eval_samples": 60, "sample_every": 4, "checkpoint_every": 4} if quick else {}
    gmmn_shared = (("ssim_size", ssim_size), ("ae_steps", g["ae_steps"]),
                   *small.items())
    others = (("ssim_size", ssim_size), *small.items())
    gan_shared = (("corruption", "mask"), ("fidelity_weight", 100.0), *others)
    all_families = {
        "gmmn-data": Family(
            "gmmn-data", "gmmn", "samples", "GMMN in data space",
            "the SSIM distance kernel in place of the RBF kernel gives a GMMN better samples",
            "fd", _KERNEL_ARMS, g["steps"], g["batch"], g["lrs"],
            (("space", "data"), *gmmn_shared)),
        "gmmn-code": Family(
            "gmmn-code", "gmmn", "samples", "GMMN on autoencoder codes (GMMN+AE)",
            "the SSIM distance kernel (on decoded codes) gives a GMMN+AE better samples",
            "fd", _KERNEL_ARMS, g["steps"], g["batch"], g["lrs"],
            (("space", "code"), *gmmn_shared)),
        "gmmn-cond": Family(
            "gmmn-cond", "gmmn", "samples", "conditional GMMN (CMMD on digit labels)",
            "the SSIM distance kernel gives a conditional GMMN better samples",
            "fd", _KERNEL_ARMS, g["steps"], g["batch"], g["lrs"],
            (("space", "data"), ("conditional", True), *gmmn_shared)),
        "vae": Family(
            "vae", "vae", "autoencoder", "VAE",
            "an SSIM reconstruction term (Eq. (1) or (2)) gives a VAE better (less blurry) "
            "reconstructions and samples than bce or l2",
            "recon_fd", _RECON_ARMS, v["steps"], v["batch"], v["lrs"], others),
        "aae": Family(
            "aae", "aae", "autoencoder", "AAE (Gaussian prior)",
            "an SSIM reconstruction term gives an AAE better reconstructions and samples",
            "recon_fd", _RECON_ARMS, a["steps"], a["batch"], a["lrs"], others),
        "pix2pix": Family(
            "pix2pix", "pix2pix", "restoration",
            "image-conditional GAN restoring half-masked digits",
            "an SSIM fidelity term in place of l1/l2 gives a conditional GAN better images",
            "fd", _FIDELITY_ARMS, gan["steps"], gan["batch"], gan["lrs"], gan_shared),
        "lsgan": Family(
            "lsgan", "pix2pix", "restoration",
            "least-squares GAN, image-conditional (restoring half-masked digits)",
            "SSIM in place of the squared errors of an LSGAN's image comparison gives "
            "better images",
            "fd", _FIDELITY_ARMS, gan["steps"], gan["batch"], gan["lrs"],
            (("adversarial", "ls"), ("ls_coding", "-1-1-0"), *gan_shared)),
    }
    return Design(dataset=str(sizes["dataset"]), seeds=tuple(seed_list),
                  families=tuple(all_families[n] for n in names),
                  n_eval=int(sizes["n_eval"]), permutations=int(sizes["permutations"]),
                  device=device, quick=quick)


# ------------------------------------------------------------------ statistics
def verdict(gains: Sequence[float] | np.ndarray) -> str:
    """The verdict rule on per-seed gains of the SSIM arm over a baseline (positive:
    SSIM better): ``"supported"`` when every gain is > 0 and their mean exceeds twice its
    standard error ``sd / sqrt(n)`` (``ddof=1``), ``"not supported"`` when every gain is
    < 0 and ``-mean`` exceeds twice the standard error, else ``"undecided"`` (always with
    fewer than 2 gains). Non-finite gains give ``"undecided"``.

    Parameters
    ----------
    gains : sequence of float or array (n,), one per seed

    Returns
    -------
    str
        ``"supported"``, ``"not supported"`` or ``"undecided"``.
    """
    g = np.asarray(gains, dtype=np.float64)
    if g.size < 2 or not np.all(np.isfinite(g)):
        return "undecided"
    mean, se = float(g.mean()), float(g.std(ddof=1) / math.sqrt(g.size))
    if np.all(g > 0) and mean > 2.0 * se:
        return "supported"
    if np.all(g < 0) and -mean > 2.0 * se:
        return "not supported"
    return "undecided"


def _gains(ssim: np.ndarray, base: np.ndarray, sense: str) -> np.ndarray:
    if sense == "lower":
        return base - ssim
    if sense == "higher":
        return ssim - base
    if sense == "one":
        return np.abs(base - 1.0) - np.abs(ssim - 1.0)
    raise ValueError(f"sense must be 'lower', 'higher' or 'one', got {sense!r}")


def _mean_se(x: np.ndarray) -> tuple[float, float | None]:
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else None
    return float(x.mean()), se


def paired_comparison(ssim: Sequence[float], baseline: Sequence[float],
                      sense: str) -> dict[str, Any]:
    """Seed-by-seed comparison of an SSIM arm with a baseline on one metric.

    Parameters
    ----------
    ssim, baseline : sequences of float
        The metric per seed, in the same seed order (paired).
    sense : {"lower", "higher", "one"}
        Lower or higher is better, or best at 1 (``|x - 1|`` compared).

    Returns
    -------
    dict
        ``n``; ``difference``: mean of ``ssim - baseline`` and its standard error
        (``sd / sqrt(n)``, None for one seed); ``gain``: the same for the gain (positive:
        SSIM better; for "one" the decrease of ``|x - 1|``); ``wins``: seeds where SSIM is
        better; ``verdict``: :func:`verdict` of the gains.

    Raises
    ------
    ValueError
        Sequences of different lengths or empty.
    """
    s, b = np.asarray(ssim, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if s.shape != b.shape or s.ndim != 1 or s.size == 0:
        raise ValueError(f"ssim and baseline must be paired 1-d sequences of one length, "
                         f"got shapes {s.shape} and {b.shape}")
    gains = _gains(s, b, sense)
    d_mean, d_se = _mean_se(s - b)
    g_mean, g_se = _mean_se(gains)
    return {"n": int(s.size), "difference": {"mean": d_mean, "se": d_se},
            "gain": {"mean": g_mean, "se": g_se}, "wins": int(np.sum(gains > 0)),
            "verdict": verdict(gains)}


def family_verdict(pair_verdicts: Sequence[str]) -> str:
    """A family's verdict: that of all its pairs when they agree, else "undecided".

    Parameters
    ----------
    pair_verdicts : sequence of str
        The :func:`verdict` of every (SSIM arm, baseline) pair of the family.

    Returns
    -------
    str
    """
    unique = set(pair_verdicts)
    return unique.pop() if len(unique) == 1 else "undecided"


# ------------------------------------------------------------------ the runs
def _lr_text(lr: float) -> str:
    return f"{lr:g}"


def run_folder(out: Path, family: Family, arm: Arm, lr: float, seed: int) -> Path:
    """The run folder of one arm, learning rate and seed.

    Parameters
    ----------
    out : Path
        The experiment folder.
    family : Family
    arm : Arm
    lr : float
    seed : int

    Returns
    -------
    Path
        ``out/FAMILY/ARM/lrLR-sSEED``.
    """
    return Path(out) / family.name / arm.name / f"lr{_lr_text(lr)}-s{seed}"


def _checkpoint_meta(run_dir: Path) -> dict[str, Any] | None:
    from ..generative.checkpoint import CHECKPOINT_JSON
    path = run_dir / CHECKPOINT_JSON
    if not path.exists():
        return None
    meta: dict[str, Any] = json.loads(path.read_text())
    return meta


def _finished(run_dir: Path, steps: int) -> bool:
    meta = _checkpoint_meta(run_dir)
    return bool(meta and meta.get("done") and meta.get("step") == steps)


class _Pending(Exception):
    """A run, score or evaluation not yet on file (read-only sessions)."""


class _Session:
    """The state of one call of :func:`run_paper` (``readonly``: of
    :func:`collect_paper`, which reads what is on file and computes nothing)."""

    def __init__(self, out: Path, design: Design, force: bool, progress: bool | None,
                 log: Callable[[str], Any], command: str,
                 callback: Callable[..., Any] | None = None, readonly: bool = False):
        self.out, self.design, self.force, self.progress = out, design, force, progress
        self.log, self.command, self.callback = log, command, callback
        self.readonly = readonly
        self.handled: set[Path] = set()
        self.trained = self.evaluated = self.selected = 0
        self.loads: list[float] = []
        self.train_seconds = self.evaluate_seconds = 0.0
        self.clock = time.perf_counter()
        path = out / "calls.json"
        self.calls: list[dict[str, Any]] = json.loads(path.read_text()) \
            if path.exists() else []
        if not readonly:
            self.calls.append({})

    def load(self) -> None:
        """Sample the load average and bring this call's line of ``calls.json`` up to
        date (so that an interrupted call keeps its wall time up to its last run)."""
        with contextlib.suppress(OSError):
            self.loads.append(os.getloadavg()[0])
        if self.readonly:
            return
        self.calls[-1] = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z",
                                     time.localtime(time.time() - self.wall())),
            "wall_seconds": round(self.wall(), 1), "runs_trained": self.trained,
            "runs_evaluated": self.evaluated, "load": _load_summary(self.loads)}
        save_json(self.out / "calls.json", self.calls, force=True)

    def wall(self) -> float:
        """Seconds since this call began."""
        return time.perf_counter() - self.clock

    def train(self, family: Family, arm: Arm, lr: float, seed: int) -> Path:
        from ..generative.runs import train
        run_dir = run_folder(self.out, family, arm, lr, seed)
        if run_dir in self.handled:
            return run_dir
        self.handled.add(run_dir)
        d = self.design
        config = family.config(arm, seed=seed, lr=lr, dataset=d.dataset, device=d.device)
        fresh = self.force or not (run_dir / "config.json").exists()
        if not fresh and _finished(run_dir, config.steps):
            return run_dir
        if self.readonly:
            raise _Pending(run_dir)
        t0 = time.perf_counter()
        try:
            if fresh:
                (run_dir / "selection.json").unlink(missing_ok=True)
                summary = train(family.model, run_dir, config, force=True,
                                progress=self.progress, callback=self.callback)
            else:
                summary = train(family.model, run_dir, config, resume=True,
                                progress=self.progress, callback=self.callback)
        except TrainingInterrupted as exc:
            raise TrainingInterrupted(exc.run_dir, exc.phase, exc.step, exc.signal_name,
                                      self.command) from None
        seconds = time.perf_counter() - t0
        self.trained += 1
        self.train_seconds += seconds
        self.load()
        self.log(f"{family.name}/{arm.name} lr {_lr_text(lr)} seed {seed}: trained to step "
                 f"{summary['steps']} in {seconds:.1f} s")
        return run_dir

    def selection(self, family: Family, run_dir: Path) -> float:
        path = run_dir / "selection.json"
        meta = _checkpoint_meta(run_dir)
        sha = meta["sha256"] if meta else None
        if path.exists():
            record = json.loads(path.read_text())
            if record.get("checkpoint_sha256") == sha and record.get("n") == self.design.n_eval:
                return float(record["value"])
        if self.readonly:
            raise _Pending(path)
        t0 = time.perf_counter()
        value = validation_score(run_dir, family.kind, n=self.design.n_eval,
                                 device=self.design.device)
        self.evaluate_seconds += time.perf_counter() - t0
        save_json(path, {"metric": family.primary, "split": "validation", "value": value,
                         "n": self.design.n_eval, "step": meta["step"] if meta else None,
                         "checkpoint_sha256": sha}, force=True)
        self.selected += 1
        return value

    def evaluate(self, family: Family, run_dir: Path) -> dict[str, Any]:
        from ..generative.evaluate import evaluate_run
        d = self.design
        path = run_dir / "evaluation.json"
        if path.exists():
            record: dict[str, Any] = json.loads(path.read_text())
            s = record.get("settings", {})
            n_ok = s.get("n") == d.n_eval or (family.kind == "restoration"
                                              and s.get("n", 0) <= d.n_eval)
            if (record.get("done") and record.get("step") == family.steps and n_ok
                    and s.get("permutations") == d.permutations and s.get("split") == "test"):
                return record
        if self.readonly:
            raise _Pending(path)
        t0 = time.perf_counter()
        record = evaluate_run(run_dir, n=d.n_eval, permutations=d.permutations,
                              device=d.device, write=True, force=True, figure=False)
        seconds = time.perf_counter() - t0
        self.evaluate_seconds += seconds
        self.evaluated += 1
        self.load()
        m = record["metrics"]
        self.log(f"  evaluated {run_dir.relative_to(self.out)} in {seconds:.1f} s: "
                 f"{family.primary} {m[family.primary]:.4g}")
        return record


def validation_score(run_dir: str | Path, kind: str, *, n: int = 500,
                     device: str | None = None) -> float:
    """The primary metric of a run on the validation split (for choosing learning
    rates): the Frechet distance in the feature classifier's features between the
    validation digits and ``n`` samples (``kind="samples"``; class-balanced labels for
    conditional models), the reconstructions of the validation digits
    (``"autoencoder"``) or the restorations of the first ``n`` corrupted validation
    digits (``"restoration"``). Non-finite outputs score ``inf``.

    Parameters
    ----------
    run_dir : str or Path
    kind : {"samples", "autoencoder", "restoration"}
    n : int
    device : {"cpu", "gpu"}, optional

    Returns
    -------
    float

    Raises
    ------
    ValueError
        An unknown ``kind``.
    """
    from threadpoolctl import threadpool_limits

    from ..backend import to_numpy
    from ..generative.classifier import load_classifier
    from ..generative.evaluate import feature_frechet_distance
    from ..generative.runs import load_run
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    run = load_run(run_dir, device=device)
    model, splits = run.model, run.splits
    held = np.asarray(splits.validation)
    rng = np.random.default_rng([run.config.seed, 3])
    with threadpool_limits(limits=1, user_api="blas"):
        if kind == "autoencoder":
            images = model.reconstruct(held)
        elif kind == "restoration":
            images = model.restore(model.corrupted("validation")[:n], rng)
        else:
            labels = np.arange(n) % splits.n_classes \
                if getattr(model, "conditional", False) else None
            images = model.sample(n, rng, labels)
        images = np.asarray(to_numpy(images), dtype=np.float64)
        if not np.all(np.isfinite(images)):
            return math.inf
        return feature_frechet_distance(images, held, load_classifier(splits))


def _check_design(out: Path, design: Design, force: bool) -> None:
    path = out / "design.json"
    wanted = design.to_dict()
    if path.exists():
        stored = json.loads(path.read_text())
        differs = sorted(k for k in set(wanted) | set(stored)
                         if k != "seeds" and wanted.get(k) != stored.get(k))
        if differs and not force:
            raise FileExistsError(
                f"{out} holds an experiment of another design (differing in {differs}); "
                "pass --force (force=True) to retrain it under this design, or choose "
                "another folder")
    elif out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} exists, is not empty and holds no design.json; "
                              "choose another folder or pass --force (force=True)")
    out.mkdir(parents=True, exist_ok=True)
    save_json(path, wanted, force=True)


def _command(out: Path, design: Design) -> str:
    parts = [f"ssimref experiment paper -o {out}"]
    if design.quick:
        parts.append("--quick")
    if design.seeds != tuple(range(2 if design.quick else 3)):
        parts.append(f"--seeds {len(design.seeds)}" if design.seeds ==
                     tuple(range(len(design.seeds))) else
                     "--seeds " + ",".join(map(str, design.seeds)))
    if design.device != "cpu":
        parts.append(f"--device {design.device}")
    return " ".join(parts)


def run_paper(out_dir: str | Path, *, seeds: int | Sequence[int] | None = None,
              device: str = "cpu", quick: bool = False, force: bool = False,
              progress: bool | None = False, log: Callable[[str], Any] = print,
              design: Design | None = None, figures: bool = True,
              callback: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Run (or resume) the experiment into ``out_dir`` and write its results, tables and
    figures (see the module docstring).

    Parameters
    ----------
    out_dir : str or Path
        The experiment folder.
    seeds, device, quick
        As for :func:`paper_design` (ignored when ``design`` is given).
    force : bool
        Retrain and re-evaluate every run of the design, and accept a folder that holds
        another design or no design.
    progress : bool or None
        tqdm bars while training; None: on a terminal only
        (:func:`ssimref.executor.progress_bar`).
    log : callable(str)
        Receives one line per run trained or evaluated.
    design : Design, optional
        Another design (tests, pilots).
    figures : bool
        Write the PNG figures.
    callback : callable(phase, step, record), optional
        Passed to every training run (:func:`ssimref.generative.trainer.fit`).

    Returns
    -------
    dict
        What ``results.json`` holds.

    Raises
    ------
    FileExistsError
        ``out_dir`` holds another design, or files but no design, and not ``force``.
    ValueError
        ``device="gpu"`` where CuPy finds no CUDA device (before any file is written).
    ssimref.generative.TrainingInterrupted
        SIGINT or SIGTERM during training (a checkpoint is written; the message names
        the command that resumes the experiment).
    ssimref.interrupt.Interrupted
        SIGINT, or SIGTERM where :func:`ssimref.interrupt.install` handles it (the command
        line does), elsewhere: what is finished is kept (every file is written
        atomically), and the same call resumes.
    """
    from ..backend import device_namespace
    design = design or paper_design(seeds=seeds, device=device, quick=quick)
    device_namespace(design.device)  # "gpu" without CuPy or a device: refused before any file
    out = Path(out_dir)
    _check_design(out, design, force)
    started = time.perf_counter()
    session = _Session(out, design, force, progress, log, _command(out, design), callback)
    session.load()
    try:
        families = {f.name: _run_family(session, f) for f in execution_order(design)}
    except TrainingInterrupted:
        raise  # (its message names the run, the step and the command that resumes)
    except KeyboardInterrupt as exc:
        raise interrupt.keep(exc, f"{out} ({session.trained} runs trained in this call; "
                             "every finished run, score and evaluation)") from None
    finally:  # an interrupted call's line of calls.json too holds its wall time
        session.load()
    from ..generative.evaluate import reference_metrics
    reference = reference_metrics(design.dataset, n=design.n_eval,
                                  permutations=design.permutations, split="test")
    session.load()  # (also writes this call's line of calls.json)
    results = _assemble(design, families, reference, session,
                        time.perf_counter() - started)
    save_json(out / "results.json", results, force=True)
    with atomic_path(out / "tables.md", force=True) as tmp:
        tmp.write_text(format_tables(results))
    if figures:
        results["figures"] = _figures(out, design, results)
        save_json(out / "results.json", results, force=True)
    log(f"{out}: {session.trained} runs trained, {session.evaluated} evaluated in "
        f"{results['this_call']['wall_seconds']:.0f} s; results.json, tables.md"
        + (", figures" if figures else ""))
    return results


def stored_design(out_dir: str | Path) -> Design:
    """The design of the experiment folder ``out_dir`` (its ``design.json``).

    Parameters
    ----------
    out_dir : str or Path

    Returns
    -------
    Design

    Raises
    ------
    FileNotFoundError
        ``out_dir`` holds no ``design.json``.
    ValueError
        A design that :func:`paper_design` of this version does not produce (another
        version's design, or a custom one).
    """
    path = Path(out_dir) / "design.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run 'ssimref experiment paper -o "
                                f"{out_dir}' first")
    stored = json.loads(path.read_text())
    names = [f["name"] for f in stored.get("families", [])]
    try:
        design = paper_design(seeds=stored["seeds"], device=stored["device"],
                              quick=stored["quick"], families=names)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path} is not a design of ssimref experiment paper: {exc}") \
            from None
    if design.to_dict() != stored:
        raise ValueError(f"{path} holds a design that this version of ssimref does not "
                         "produce (another version or a custom design); report it with the "
                         "version that ran it")
    return design


def collect_paper(out_dir: str | Path, *, log: Callable[[str], Any] = print
                  ) -> dict[str, Any]:
    """What :func:`run_paper` would write into ``results.json``, from the runs,
    validation scores and evaluations on file only: trains, scores and evaluates nothing
    and writes nothing into ``out_dir`` (safe beside a running experiment). Arms not yet
    finished are marked ``complete: False`` and their families' verdicts ``"pending"``.

    Parameters
    ----------
    out_dir : str or Path
        An experiment folder of :func:`run_paper`.
    log : callable(str)
        Receives one line on what was found.

    Returns
    -------
    dict
        As :func:`run_paper` (``this_call`` is None; ``calls`` from ``calls.json``).

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`stored_design`.
    """
    out = Path(out_dir)
    design = stored_design(out)
    session = _Session(out, design, False, False, log, _command(out, design), readonly=True)
    families = {f.name: _run_family(session, f) for f in design.families}
    from ..generative.evaluate import reference_metrics
    reference = reference_metrics(design.dataset, n=design.n_eval,
                                  permutations=design.permutations, split="test")
    results = _assemble(design, families, reference, session, session.wall())
    results["this_call"] = None
    done = sum(len(a["runs"]) for f in families.values() for a in f.values())
    total = sum(len(f.arms) for f in design.families) * len(design.seeds)
    log(f"{out}: {done} of {total} chosen runs evaluated, {results['runs']} runs trained "
        "in all")
    return results


def report_markdown(results: dict[str, Any], figures: Sequence[str] = (),
                    figure_dir: str = "img") -> str:
    """The results section of ``docs/experiments.md``: how and when the run went, the
    verdicts per claim with the paired difference on the primary metric, the figures, and
    the tables of :func:`format_tables` (headings from level 3).

    Parameters
    ----------
    results : dict
        From :func:`run_paper` or :func:`collect_paper`.
    figures : sequence of str
        File names of the figures (in ``figure_dir``, relative to the document).
    figure_dir : str

    Returns
    -------
    str
    """
    design = results["design"]
    calls = results.get("calls") or []
    load = [c["load"] for c in calls if c.get("load")]
    wall = results["all_calls_wall_seconds"]
    n_total = sum(len(f["arms"]) * (len(f["lrs"]) + len(design["seeds"]) - 1)
                  for f in design["families"])
    lines = ["Generated by `ssimref experiment paper -o DIR --report docs/experiments.md` "
             "from the run's folder; every number below is read from it.", ""]
    status = "complete" if results["complete"] else \
        f"**not complete**: {results['runs']} of {n_total} training runs finished"
    started = calls[0]["started"] if calls else "?"
    lines += [f"Run {status}; started {started}; {len(calls)} call(s) of the command, "
              f"{wall:.0f} s ({wall / 60:.0f} min) of wall time in all, "
              f"{results['all_runs_train_seconds']:.0f} s of it training, on "
              f"{results['machine']['cpus']} CPUs shared with other jobs"
              + (f" (1-minute load average {min(x['min'] for x in load):.1f} to "
                 f"{max(x['max'] for x in load):.1f})" if load else "")
              + f"; {results['machine']['platform']}, NumPy {results['machine']['numpy']}, "
              f"ssimref {results['ssimref']}.", ""]
    lines += ["| family | claim | primary metric | SSIM arm − baseline (mean ± se, seeds "
              "won) | verdict |", "|---|---|---|---|---|"]
    for name, fam in results["families"].items():
        pairs = []
        for c in fam["comparisons"]:
            e = c["metrics"].get(fam["primary"])
            if e is None:
                pairs.append(f"{c['ssim']} vs {c['baseline']}: –")
                continue
            se = f" ± {_fmt(e['difference']['se'])}" if e["difference"]["se"] is not None \
                else ""
            pairs.append(f"{c['ssim']} vs {c['baseline']}: {_fmt(e['difference']['mean'])}"
                         f"{se} ({e['wins']}/{e['n']})")
        lines.append(f"| `{name}` | {fam['claim']} | `{fam['primary']}` | "
                     + "<br>".join(pairs) + f" | **{fam['verdict']}** |")
    lines.append("")
    for fig in figures:
        what = fig.rsplit(".", 1)[0].split("-", 1)[-1]
        lines += [f"![{what}]({figure_dir}/{fig})", ""]
    lines.append(format_tables(results, level=3, title=False))
    return "\n".join(lines).rstrip() + "\n"


#: The markers of the generated results section in a Markdown document.
REPORT_MARKERS = ("<!-- paper-results:begin -->", "<!-- paper-results:end -->")


def write_report(out_dir: str | Path, document: str | Path, *,
                 log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Render the results of the experiment folder ``out_dir`` (finished or not, see
    :func:`collect_paper`) into ``document``: the text between its
    :data:`REPORT_MARKERS` is replaced by :func:`report_markdown`, and the figures are
    written as ``img/paper-*.png`` beside it. Nothing else of the document changes;
    both are written atomically.

    Parameters
    ----------
    out_dir : str or Path
        The experiment folder.
    document : str or Path
        A Markdown file holding both markers, each on a line of its own.
    log : callable(str)

    Returns
    -------
    dict
        The results (:func:`collect_paper`).

    Raises
    ------
    FileNotFoundError
        No ``document``, or no ``design.json`` in ``out_dir``.
    ValueError
        ``document`` lacks a marker (or holds them out of order); a design this version
        does not produce.
    """
    doc = Path(document)
    if not doc.exists():
        raise FileNotFoundError(f"document {doc} does not exist")
    text = doc.read_text()
    begin, end = REPORT_MARKERS
    i, j = text.find(begin + "\n"), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"document {doc} must hold the lines {begin!r} and {end!r} (in "
                         "that order) around the section to generate")
    results = collect_paper(out_dir, log=log)
    img = doc.parent / "img"
    img.mkdir(exist_ok=True)
    figures = _figures(Path(out_dir), stored_design(out_dir), results, dest=img,
                       prefix="paper-")
    body = report_markdown(results, figures, "img")
    with atomic_path(doc, force=True) as tmp:
        tmp.write_text(text[:i + len(begin) + 1] + "\n" + body + "\n" + text[j:])
    log(f"wrote the results section of {doc} and {len(figures)} figures in {img}")
    return results


def execution_order(design: Design) -> list[Family]:
    """The families of ``design`` in the order :func:`run_paper` runs them: cheapest
    first by the projected training time of :data:`SIZING` (runs x steps x measured step
    time, autoencoder phase included), so that an experiment stopped early has finished
    as many families as it could; families without a measurement keep their order, first.
    (``results.json`` lists them in the design's order.)

    Parameters
    ----------
    design : Design

    Returns
    -------
    list of Family
    """
    ms, ae_ms = SIZING["ms_per_step"], SIZING["autoencoder_ms_per_step"]

    def cost(family: Family) -> float:
        runs = len(family.lrs) + len(design.seeds) - 1
        ae_steps = int(dict(family.options).get("ae_steps", 0)) \
            if dict(family.options).get("space") == "code" else 0
        return sum(runs * (family.steps * ms.get(f"{family.name}/{arm.name}", 0.0)
                           + ae_steps * ae_ms.get(f"{family.name}/{arm.name}", 0.0))
                   for arm in family.arms)

    return sorted(design.families, key=cost)


def _run_family(session: _Session, family: Family) -> dict[str, Any]:
    """Train, select and evaluate every arm of ``family`` (a read-only session gathers
    what is on file; an arm it cannot finish is marked ``complete: False``)."""
    seeds = session.design.seeds
    arms: dict[str, Any] = {}
    for arm in family.arms:
        scores: dict[float, float] = {}
        grid = {}
        for lr in family.lrs:
            with contextlib.suppress(_Pending):
                run_dir = session.train(family, arm, lr, seeds[0])
                scores[lr] = session.selection(family, run_dir)
            folder = run_folder(session.out, family, arm, lr, seeds[0])
            meta = _checkpoint_meta(folder) if lr in scores else None
            grid[_lr_text(lr)] = {"run": str(folder.relative_to(session.out)),
                                  "train_seconds": meta.get("seconds") if meta else None}
        chosen = min(family.lrs, key=lambda lr: (scores[lr], lr)) \
            if len(scores) == len(family.lrs) else None
        runs = []
        for seed in seeds:
            if chosen is None:
                break
            with contextlib.suppress(_Pending):
                run_dir = session.train(family, arm, chosen, seed)
                record = session.evaluate(family, run_dir)
                runs.append({"seed": seed, "lr": chosen,
                             "run": str(run_dir.relative_to(session.out)),
                             "train_seconds": record.get("train_seconds"),
                             "metrics": record["metrics"]})
        arms[arm.name] = {
            "ssim": arm.ssim, "options": dict(arm.options), "lr_grid": list(family.lrs),
            "selection_metric": f"{family.primary} on the validation split, seed {seeds[0]}",
            "selection": {_lr_text(lr): scores[lr] for lr in family.lrs if lr in scores},
            "chosen_lr": chosen, "grid_runs": grid, "runs": runs,
            "complete": len(runs) == len(seeds)}
    return arms


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keys = sorted({k for r in runs for k, v in r["metrics"].items()
                   if isinstance(v, (int, float)) and k != "n"})
    for key in keys:
        values = [float(r["metrics"][key]) for r in runs if key in r["metrics"]]
        arr = np.asarray(values)
        out[key] = {"mean": float(arr.mean()),
                    "sd": float(arr.std(ddof=1)) if arr.size > 1 else None,
                    "n": int(arr.size), "values": values}
    seconds = [r["train_seconds"] for r in runs if r.get("train_seconds") is not None]
    if seconds:
        out["train_seconds"] = {"mean": float(np.mean(seconds)),
                                "sd": float(np.std(seconds, ddof=1)) if len(seconds) > 1
                                else None, "n": len(seconds), "values": seconds}
    return out


def _comparisons(family: Family, arms: dict[str, Any],
                 complete: bool) -> list[dict[str, Any]]:
    """Every (SSIM arm, baseline) pair on the seeds both have; verdict "pending" while
    the family is not complete."""
    out = []
    for s_arm in family.ssim_arms:
        for b_arm in family.baselines:
            s_runs = {r["seed"]: r["metrics"] for r in arms[s_arm.name]["runs"]}
            b_runs = {r["seed"]: r["metrics"] for r in arms[b_arm.name]["runs"]}
            seeds = sorted(set(s_runs) & set(b_runs))
            metrics = {}
            for key, sense in SENSES.items():
                if all(key in s_runs[s] and key in b_runs[s] for s in seeds) and seeds:
                    metrics[key] = paired_comparison([s_runs[s][key] for s in seeds],
                                                     [b_runs[s][key] for s in seeds], sense)
                    metrics[key]["sense"] = sense
            primary = metrics.get(family.primary)
            out.append({"ssim": s_arm.name, "baseline": b_arm.name, "seeds": seeds,
                        "primary": family.primary,
                        "verdict": primary["verdict"] if primary and complete
                        else "pending",
                        "metrics": metrics})
    return out


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(),
                            "processor": platform.processor() or platform.machine(),
                            "cpus": os.cpu_count(), "python": platform.python_version(),
                            "numpy": np.__version__}
    with contextlib.suppress(ImportError):
        import numba
        info["numba"] = numba.__version__
    with contextlib.suppress(ImportError):
        import scipy
        info["scipy"] = scipy.__version__
    return info


def _load_summary(loads: list[float]) -> dict[str, Any] | None:
    if not loads:
        return None
    return {"min": float(np.min(loads)), "median": float(np.median(loads)),
            "max": float(np.max(loads)), "samples": len(loads),
            "what": "1-minute load average, sampled after every run trained or evaluated"}


def _assemble(design: Design, families: dict[str, Any], reference: dict[str, Any],
              session: _Session, wall: float) -> dict[str, Any]:
    out_families = {}
    for family in design.families:
        arms = families[family.name]
        for entry in arms.values():
            entry["summary"] = _summary(entry["runs"])
        complete = all(a["complete"] for a in arms.values())
        comparisons = _comparisons(family, arms, complete)
        out_families[family.name] = {
            "title": family.title, "model": family.model, "kind": family.kind,
            "claim": family.claim, "primary": family.primary, "steps": family.steps,
            "batch": family.batch, "lr_grid": list(family.lrs),
            "options": dict(family.options), "arms": arms, "comparisons": comparisons,
            "complete": complete,
            "verdict": family_verdict([c["verdict"] for c in comparisons]) if complete
            else "pending"}
    total_train = sum(r["train_seconds"] or 0.0 for f in families.values()
                      for a in f.values() for r in a["runs"])
    every_run: dict[str, float] = {}  # run folder -> training seconds, grid runs included
    for f in families.values():
        for a in f.values():
            for r in [*a["runs"], *a["grid_runs"].values()]:
                if r["train_seconds"] is not None:
                    every_run[r["run"]] = r["train_seconds"]
    calls = [c for c in session.calls if c]
    return {
        "design": design.to_dict(), "verdict_rule": design.verdict_rule,
        "complete": all(f["complete"] for f in out_families.values()),
        "execution_order": [f.name for f in execution_order(design)],
        "senses": SENSES, "families": out_families, "reference": reference,
        "this_call": {"wall_seconds": round(wall, 1), "runs_trained": session.trained,
                      "runs_evaluated": session.evaluated,
                      "selection_scores_computed": session.selected,
                      "train_seconds": round(session.train_seconds, 1),
                      "evaluate_seconds": round(session.evaluate_seconds, 1),
                      "load": _load_summary(session.loads),
                      "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")},
        "chosen_runs_train_seconds": round(total_train, 1),
        "all_runs_train_seconds": round(sum(every_run.values()), 1),
        "runs": len(every_run),
        "calls": calls,
        "all_calls_wall_seconds": round(sum(c["wall_seconds"] for c in calls), 1),
        "sizing": SIZING if design == paper_design(seeds=design.seeds, device=design.device)
        else None,
        "machine": _machine(), "ssimref": __version__}


# ------------------------------------------------------------------ tables
def _fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "–" if x is None else str(x)
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 1e-3:
        return f"{x:.3g}"
    return f"{x:.2e}"


def _cell(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "–"
    text = _fmt(entry["mean"])
    if entry.get("sd") is not None:
        text += f" ± {_fmt(entry['sd'])}"
    return text


def format_tables(results: dict[str, Any], *, level: int = 1, title: bool = True) -> str:
    """Markdown: per family, the arms (mean ± sd over seeds of every table metric, the
    chosen learning rate and the validation scores of the grid), the real digits'
    values, the paired comparisons and the verdict.

    Parameters
    ----------
    results : dict
        What :func:`run_paper` or :func:`collect_paper` return (or ``results.json``
        holds).
    level : int
        Markdown level of the title (families one level below).
    title : bool
        Begin with the title and the settings paragraph.

    Returns
    -------
    str
    """
    from ..generative.evaluate import DIRECTIONS
    design = results["design"]
    h = "#" * level
    lines = [f"{h} SSIM against its baselines on {design['dataset']}: results", "",
             f"Seeds {design['seeds']}; {design['n_eval']} evaluation samples against the "
             f"test split; {design['permutations']} permutations per MMD test. "
             f"Mean ± sd over seeds. Verdict rule: {results['verdict_rule']}", ""] \
        if title else []
    ref = results["reference"]
    for name, fam in results["families"].items():
        metrics = [m for m in TABLE_METRICS[fam["kind"]]
                   if any(m in a["summary"] for a in fam["arms"].values())]
        pending = [f"{arm} ({len(a['runs'])} of {len(design['seeds'])} seeds)"
                   for arm, a in fam["arms"].items() if not a["complete"]]
        lines += [f"{h}# {name}: {fam['title']}", "",
                  f"Claim: {fam['claim']}. {fam['steps']} steps of batch {fam['batch']}; "
                  f"learning-rate grid {fam['lr_grid']}. Primary metric: "
                  f"`{fam['primary']}` ({DIRECTIONS.get(fam['primary'], '')}). "
                  f"**Verdict: {fam['verdict']}**."
                  + (f" Not yet finished: {', '.join(pending)}." if pending else ""), ""]
        if not metrics:
            lines += ["No run of this family has finished yet.", ""]
            continue
        lines.append("| arm | lr (validation " + fam["primary"] + " per lr) | " +
                     " | ".join(f"`{m}`" for m in metrics) + " |")
        lines.append("|---|---|" + "---|" * len(metrics))
        for arm, a in fam["arms"].items():
            sel = ", ".join(f"{lr}: {_fmt(v)}" for lr, v in a["selection"].items()) or "–"
            label = f"{arm} (SSIM)" if a["ssim"] else arm
            chosen = "–" if a["chosen_lr"] is None else _lr_text(a["chosen_lr"])
            lines.append(f"| {label} | {chosen} ({sel}) | " +
                         " | ".join(_cell(a["summary"].get(m)) for m in metrics) + " |")
        ref_cells = []
        for m in metrics:
            v = ref.get(m)
            ref_cells.append(_fmt(v) if isinstance(v, (int, float)) and m in ref else "")
        lines.append("| real digits | | " + " | ".join(ref_cells) + " |")
        lines += ["", "Paired differences, SSIM arm minus baseline (mean ± standard error "
                  "over seeds; k/n: seeds where the SSIM arm is better; for ratios best at "
                  "1, the change of |ratio - 1|):", ""]
        compared = [m for m in metrics if m in SENSES]
        lines.append("| SSIM arm vs baseline | verdict on `" + fam["primary"] + "` | " +
                     " | ".join(f"`{m}`" for m in compared) + " |")
        lines.append("|---|---|" + "---|" * len(compared))
        for c in fam["comparisons"]:
            cells = []
            for m in compared:
                e = c["metrics"].get(m)
                if e is None:
                    cells.append("–")
                    continue
                d = e["difference"] if e["sense"] != "one" else \
                    {"mean": -e["gain"]["mean"], "se": e["gain"]["se"]}
                se = f" ± {_fmt(d['se'])}" if d["se"] is not None else ""
                cells.append(f"{_fmt(d['mean'])}{se} ({e['wins']}/{e['n']})")
            lines.append(f"| {c['ssim']} vs {c['baseline']} | {c['verdict']} | " +
                         " | ".join(cells) + " |")
        lines.append("")
    call = results.get("this_call")
    if call is None:
        return "\n".join(lines)
    load = call.get("load") or {}
    lines += [f"This call: {call['wall_seconds']:.0f} s wall, {call['runs_trained']} runs "
              f"trained, {call['runs_evaluated']} evaluated; 1-minute load average "
              f"{_fmt(load.get('min'))}-{_fmt(load.get('max'))} (median "
              f"{_fmt(load.get('median'))}) on {results['machine']['cpus']} CPUs. "
              f"All calls: {results['all_calls_wall_seconds']:.0f} s wall over "
              f"{len(results['calls'])} call(s); training of all {results['runs']} runs "
              f"{results['all_runs_train_seconds']:.0f} s.", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ figures
def _figure_scale(shape: Sequence[int]) -> int:
    return 1 if min(shape) >= 20 else 4


def _figures(out: Path, design: Design, results: dict[str, Any], dest: Path | None = None,
             prefix: str = "") -> list[str]:
    """Write the figures of ``results`` into ``dest`` (default ``out``), file names
    prefixed by ``prefix``; arms without a finished run are left out."""
    from ..backend import to_numpy
    from ..generative.data import load_splits
    from ..generative.grid import grid_image, save_panels
    from ..generative.runs import load_run
    dest = out if dest is None else dest
    splits = load_splits(design.dataset)
    scale = _figure_scale(splits.image_shape)
    k = 40
    test = np.asarray(splits.test[:k])
    written = []

    def panel(title: str, images: Any) -> tuple[str, np.ndarray]:
        return title, grid_image(np.asarray(to_numpy(images))[:k], ncols=10, scale=scale)

    for family in design.families:
        fam = results["families"][family.name]
        seed = design.seeds[0]
        samples, recons, restored = [], [], []
        corrupted = None
        for arm in family.arms:
            entry = fam["arms"][arm.name]
            if not entry["runs"]:
                continue
            run = load_run(out / entry["runs"][0]["run"], device=design.device)
            model = run.model
            rng = np.random.default_rng([seed, 2])
            label = f"{arm.name} (lr {_lr_text(entry['chosen_lr'])})"
            if family.kind == "restoration":
                corrupted = model.corrupted("test")[:k]
                restored.append(panel(label, model.restore(corrupted, rng)))
                continue
            labels = np.arange(k) % splits.n_classes \
                if getattr(model, "conditional", False) else None
            samples.append(panel(label, model.sample(k, rng, labels)))
            if family.kind == "autoencoder":
                recons.append(panel(label, model.reconstruct(test)))
        real = panel("real test digits", test)
        if samples:
            path = dest / f"{prefix}samples-{family.name}.png"
            save_panels(path, [*samples, real], force=True)
            written.append(path.name)
        if recons:
            path = dest / f"{prefix}reconstructions-{family.name}.png"
            save_panels(path, [real, *recons], force=True)
            written.append(path.name)
        if restored:
            path = dest / f"{prefix}restorations-{family.name}.png"
            save_panels(path, [real, panel("corrupted inputs", corrupted), *restored],
                        force=True)
            written.append(path.name)
    chart = _bar_chart(dest / f"{prefix}metrics.png", results)
    if chart:
        written.append(chart)
    return written


def _bar_chart(path: Path, results: dict[str, Any]) -> str | None:
    from ..plotting import have_matplotlib
    if not have_matplotlib():
        return None
    from matplotlib.figure import Figure

    from ..generative.evaluate import DIRECTIONS
    families = results["families"]
    ncols = 4
    fig = Figure(figsize=(3.1 * ncols, 2.3 * len(families)), constrained_layout=True)
    axes = fig.subplots(len(families), ncols, squeeze=False)
    ref = results["reference"]
    for row, (name, fam) in enumerate(families.items()):
        for col, metric in enumerate(BAR_METRICS[fam["kind"]]):
            ax = axes[row][col]
            arms = [(arm, a) for arm, a in fam["arms"].items() if metric in a["summary"]]
            means = [a["summary"][metric]["mean"] for _, a in arms]
            sds = [a["summary"][metric]["sd"] or 0.0 for _, a in arms]
            colours = ["tab:blue" if a["ssim"] else "0.6" for _, a in arms]
            ax.bar(range(len(arms)), means, yerr=sds, color=colours, capsize=3)
            ax.set_xticks(range(len(arms)), [arm for arm, _ in arms], fontsize=7)
            ax.tick_params(axis="y", labelsize=7)
            if metric in ref and isinstance(ref[metric], (int, float)) and \
                    not metric.startswith("recon"):
                ax.axhline(float(ref[metric]), color="k", linestyle="--", linewidth=0.8)
            elif SENSES.get(metric) == "one":
                ax.axhline(1.0, color="k", linestyle="--", linewidth=0.8)
            direction = DIRECTIONS.get(metric, "").split(" (")[0]
            ax.set_title(f"{name}: {metric}\n({direction})", fontsize=8)
    fig.suptitle("mean ± sd over seeds (blue: SSIM arms; dashed: real digits)", fontsize=9)
    with atomic_path(path, force=True) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    return path.name


# ------------------------------------------------------------------ sizing
def plan_paper(design: Design | None = None, *, steps: int = 4,
               log: Callable[[str], Any] = print, evaluate: bool = True) -> dict[str, Any]:
    """Measure the step time of every arm and project the experiment's duration.

    Each arm trains ``steps + 2`` steps (and as many autoencoder steps in code space) in
    a temporary folder; the time per step is the training clock from the end of the first
    step to the end of step ``steps + 1``, over ``steps`` (the first step's warm-up and
    the last step's validation metrics and checkpoint excluded). Evaluation and selection are timed once per
    family kind on a measured run. Projection: per arm, ``len(lrs) + len(seeds) - 1``
    runs of ``family.steps`` steps (plus the autoencoder phase), one selection score per
    grid run and one evaluation per chosen run.

    Parameters
    ----------
    design : Design, optional
        Default :func:`paper_design` ``()``.
    steps : int
        Timed steps per arm.
    log : callable(str)
        Receives one line per arm and the projection.
    evaluate : bool
        Also time one evaluation and one selection score per kind of family.

    Returns
    -------
    dict
        ``arms`` (``family/arm`` -> milliseconds per step, runs, projected seconds),
        ``evaluate_seconds`` and ``selection_seconds`` per kind, ``train_seconds``,
        ``total_seconds``, ``load`` (1-minute load averages before and after).
    """
    from ..generative.evaluate import evaluate_run
    from ..generative.runs import train
    design = design or paper_design()
    loads = [os.getloadavg()[0]]
    arms: dict[str, Any] = {}
    eval_seconds: dict[str, float] = {}
    select_seconds: dict[str, float] = {}
    total_train = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for family in design.families:
            for arm in family.arms:
                times: dict[str, dict[int, float]] = {}

                def record(phase: str, step: int, rec: dict[str, Any],
                           times: dict[str, dict[int, float]] = times) -> None:
                    if "seconds" in rec:
                        times.setdefault(phase, {})[step] = rec["seconds"]

                extra: dict[str, Any] = {"steps": steps + 2, "log_every": 1,
                                         "sample_every": 10**6, "checkpoint_every": 10**6}
                if family.model == "gmmn" and dict(family.options).get("space") == "code":
                    extra["ae_steps"] = steps + 2
                config = family.config(arm, seed=0, lr=family.lrs[0], dataset=design.dataset,
                                       device=design.device, **extra)
                run_dir = Path(tmp) / family.name / arm.name
                train(family.model, run_dir, config, callback=record)
                per = {ph: (t[steps + 1] - t[1]) / steps for ph, t in times.items()
                       if 1 in t and steps + 1 in t}
                ae = per.pop("autoencoder", 0.0)
                step_s = sum(per.values())
                ae_steps = int(dict(family.options).get("ae_steps", 0)) if ae else 0
                runs = len(family.lrs) + len(design.seeds) - 1
                seconds = runs * (family.steps * step_s + ae_steps * ae)
                total_train += seconds
                arms[f"{family.name}/{arm.name}"] = {
                    "ms_per_step": round(1e3 * step_s, 2),
                    "autoencoder_ms_per_step": round(1e3 * ae, 2) if ae else None,
                    "runs": runs, "steps": family.steps, "train_seconds": round(seconds, 1)}
                log(f"{family.name}/{arm.name}: {1e3 * step_s:.1f} ms/step"
                    + (f" (+ autoencoder {1e3 * ae:.1f} ms/step)" if ae else "")
                    + f", {runs} runs x {family.steps} steps: {seconds:.0f} s")
                if evaluate and family.kind not in eval_seconds:
                    t0 = time.perf_counter()
                    evaluate_run(run_dir, n=design.n_eval, permutations=design.permutations,
                                 device=design.device, write=False, figure=False)
                    eval_seconds[family.kind] = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    validation_score(run_dir, family.kind, n=design.n_eval,
                                     device=design.device)
                    select_seconds[family.kind] = time.perf_counter() - t0
                    log(f"  evaluation of a {family.kind} run: "
                        f"{eval_seconds[family.kind]:.1f} s, selection score "
                        f"{select_seconds[family.kind]:.1f} s")
    n_eval_total = {k: 0 for k in KINDS}
    n_select_total = {k: 0 for k in KINDS}
    for family in design.families:
        n_eval_total[family.kind] += len(family.arms) * len(design.seeds)
        n_select_total[family.kind] += len(family.arms) * len(family.lrs)
    other = sum(n_eval_total[k] * eval_seconds.get(k, 0.0) +
                n_select_total[k] * select_seconds.get(k, 0.0) for k in KINDS)
    loads.append(os.getloadavg()[0])
    result = {"arms": arms, "evaluate_seconds": eval_seconds,
              "selection_seconds": select_seconds,
              "evaluations": n_eval_total, "selections": n_select_total,
              "train_seconds": round(total_train, 1),
              "evaluation_total_seconds": round(other, 1),
              "total_seconds": round(total_train + other, 1),
              "load": {"before": loads[0], "after": loads[1]}, "machine": _machine()}
    log(f"projected: training {total_train:.0f} s + evaluation {other:.0f} s = "
        f"{(total_train + other) / 60:.1f} min (1-minute load {loads[0]:.1f} before, "
        f"{loads[1]:.1f} after)")
    return result
