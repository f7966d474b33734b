"""The conformance runner: :func:`check` calls a target on the cases, compares with the
oracle under the stated convention, and fits the knobs when they disagree."""

from __future__ import annotations

import numpy as np

from ..cases import corpus
from .calling import as_peer, call, resolve_convention
from .evaluator import Evaluator
from .fitting import error, fit as fit_knobs
from .report import NUMERIC_TRAPS, CaseResult, ConformanceResult, Diagnosis

__all__ = ["check"]


def check(fn, convention=None, *, cases=None, tolerance=1e-6, fit=True, max_changes=3,
          hide_torchvision=False) -> ConformanceResult:
    """Run an SSIM implementation over the case corpus and compare it with the oracle.

    Parameters
    ----------
    fn : callable, Peer or str
        ``fn(x, y, data_range=L) -> float`` returning the mean SSIM of two images (called
        on float64 copies, per channel for colour images, then averaged), a
        :class:`~ssimref.verification.peers.Peer`, or a name: "skimage", "pytorch_msssim",
        "piq", "kornia", "torchmetrics" or "module:function".
    convention : None, str, Convention or SSIMConfig
        What ``fn`` is supposed to compute. None: the adapter's documented convention
        (Wang et al. 2004 for plain callables); a str names a preset of
        :data:`ssimref.verification.conventions.PRESETS`.
    cases : sequence of str, optional
        Names of the cases to run (default: the whole corpus).
    tolerance : float
        Absolute tolerance on mean SSIM (cases may carry a looser one, e.g. float32).
    fit : bool
        Fit the convention knobs when cases fail.
    max_changes : int
        The most knob changes a diagnosis may combine.
    hide_torchvision : bool
        See :mod:`ssimref.verification.peers`.

    Returns
    -------
    ConformanceResult
        ``.passed``, ``.cases`` (per-case table), ``.diagnosis``; ``str()`` is a report.
    """
    peer = as_peer(fn, hide_torchvision)
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance!r}")
    stated = resolve_convention(convention, peer)
    chosen = corpus(names=cases) if cases is not None else corpus()
    evaluator = Evaluator(chosen)
    results, answered = [], []
    for case in chosen:
        value, message = call(peer, case)
        expected = evaluator.value(case.name, stated)
        tol = max(tolerance, case.tolerance or 0.0)
        err = error(value, expected)
        results.append(CaseResult(case.name, case.description, case.shape, str(case.x.dtype),
                                  value, expected, err, tol, err <= tol, message))
        if value is not None:
            answered.append(results[-1])
    failing = sum(not r.passed for r in answered)
    if not answered:
        diagnosis = Diagnosis("no data", convention=stated)
    elif all(r.passed for r in results):
        diagnosis = Diagnosis("conforms", convention=stated, residual=max(
            (r.error for r in answered), default=0.0))
    elif not fit or failing == 0:
        diagnosis = Diagnosis("unexplained" if failing else "conforms", convention=stated,
                              residual=max(r.error for r in answered),
                              failing_before=failing, failing_after=failing)
    else:
        fitted, knobs, (fails, residual) = fit_knobs(stated, answered, evaluator, max_changes)
        changes = [(k, stated.describe(k), fitted.describe(k)) for k in knobs]
        unexplained = [(r.name, NUMERIC_TRAPS.get(r.name, "a defect outside the knobs"))
                       for r in answered
                       if error(r.value, evaluator.value(r.name, fitted)) > r.tolerance]
        verdict = ("convention" if knobs and not unexplained else
                   "partly" if knobs else "unexplained")
        typical = float(np.median([error(r.value, evaluator.value(r.name, fitted))
                                   for r in answered]))
        diagnosis = Diagnosis(verdict, changes, fitted, residual, failing, fails, unexplained,
                              typical)
    return ConformanceResult(peer.name, peer.version, stated, tolerance, results, diagnosis,
                             peer.note)
