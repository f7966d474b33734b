"""The conformance runner: :func:`check` calls a target on the cases, compares with the
oracle under the stated convention, and fits the knobs when they disagree."""

from __future__ import annotations

import math

import numpy as np

from ..cases import corpus
from .calling import as_peer, call, passed_as, resolve_convention
from .evaluator import Evaluator
from .fitting import classify, error, fit as fit_knobs
from .report import CaseResult, ConformanceResult, Diagnosis

__all__ = ["check"]


def check(fn, convention=None, *, cases=None, tolerance=1e-6, fit=True, max_changes=3,
          hide_torchvision=False) -> ConformanceResult:
    """Run an SSIM implementation over the case corpus and compare it with the oracle.

    Parameters
    ----------
    fn : callable, Peer or str
        ``fn(x, y, data_range=L) -> float`` returning the mean SSIM of two images (called
        with each case's arrays in their own dtype and memory layout, per channel for
        colour images, then averaged), a :class:`~ssimref.verification.peers.Peer`, or a
        name: "skimage", "pytorch_msssim", "piq", "kornia", "torchmetrics" or
        "module:function" (``module`` is also looked up in the current directory).
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
        The most knob changes the search walks through (see
        :mod:`ssimref.verification.conformance.fitting`).
    hide_torchvision : bool
        See :mod:`ssimref.verification.peers`.

    Returns
    -------
    ConformanceResult
        ``.passed``, ``.cases`` (per-case table), ``.diagnosis``; ``str()`` is a report.
        A NaN or Inf answer fails its case and is never fitted.

    Raises
    ------
    ValueError
        For a non-positive tolerance, an unknown case, preset or library.
    TypeError
        For a ``fn`` or ``convention`` of the wrong type.
    """
    peer = as_peer(fn, hide_torchvision)
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance!r}")
    stated = resolve_convention(convention, peer)
    chosen = corpus(names=cases) if cases is not None else corpus()
    evaluator = Evaluator(chosen)
    results = []
    for case in chosen:
        value, message = call(peer, case)
        expected = evaluator.value(case.name, stated)
        if not math.isfinite(expected):
            message = "; ".join(filter(None, [message, "the stated convention does not "
                                               "define SSIM on this case (oracle NaN)"]))
        tol = max(tolerance, case.tolerance or 0.0)
        err = error(value, expected)
        results.append(CaseResult(case.name, case.description, case.shape, str(case.x.dtype),
                                  value, expected, err, tol, err <= tol, message,
                                  passed_as(peer, case)))
    answered = [r for r in results if r.finite]
    diagnosis = Diagnosis(
        "no data", convention=stated, total=len(results),
        nonfinite=[(r.name, r.status) for r in results if r.status in ("NaN", "Inf")],
        raised=[r.name for r in results if r.value is None])
    if not answered:
        return ConformanceResult(peer.name, peer.version, stated, tolerance, results,
                                 diagnosis, peer.note)
    failing = sum(not r.passed for r in answered)
    diagnosis.failing_before = failing
    if failing == 0:
        diagnosis.verdict = "conforms"
        diagnosis.residual = max(r.error for r in answered)
        return ConformanceResult(peer.name, peer.version, stated, tolerance, results,
                                 diagnosis, peer.note)
    fitted, knobs = stated, []
    if fit:
        found = fit_knobs(stated, answered, evaluator, max_changes)
        fitted, knobs, diagnosis.tried = found.convention, found.knobs, found.tried
    errors = {r.name: error(r.value, evaluator.value(r.name, fitted)) for r in answered}
    still = [(r.name, errors[r.name]) for r in answered if errors[r.name] > r.tolerance]
    numerical, unexplained = classify(still, evaluator.cases, fitted)
    diagnosis.changes = [(k, stated.describe(k), fitted.describe(k)) for k in knobs]
    diagnosis.convention = fitted
    diagnosis.residual = max(errors.values())
    diagnosis.failing_after = len(still)
    diagnosis.numerical, diagnosis.unexplained = numerical, unexplained
    diagnosis.typical_error = float(np.median(list(errors.values())))
    if knobs:
        diagnosis.verdict = "partly" if unexplained else "convention"
    else:
        diagnosis.verdict = "unexplained" if unexplained else "numerical"
    return ConformanceResult(peer.name, peer.version, stated, tolerance, results, diagnosis,
                             peer.note)
