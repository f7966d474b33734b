"""Check another SSIM implementation against the oracle, and name the convention it differs in.

:func:`check` calls a third-party SSIM function on every case of
:mod:`ssimref.verification.cases`, compares its mean SSIM with the oracle's under a stated
:class:`~ssimref.verification.conventions.Convention`, and, when they disagree, fits the
convention's knobs (window type and size, sigma, covariance normalisation, data range,
border handling, downsampling, the luminance-term defect) to the function's answers. The
knob changes that explain the answers are the diagnosis; cases that no convention
explains are named with the numerical trap they were built for (cancellation, integer
overflow, float32 arithmetic, 0/0).

How the oracle is evaluated here
    Fitting evaluates a few hundred conventions on every case, which the per-window Python
    loops of :func:`ssimref.verification.oracle.variant_ssim_map` are too slow for (the
    384x384 case alone would take minutes). :func:`evaluate_map` computes the same formula
    with the loops turned inside out: a loop over the window's taps, each adding a shifted
    slice of the (downsampled, padded) image, and a second pass for the centred moments
    ``sum_k w_k (x_k - mu_x)(y_k - mu_y)`` (no ``E[x^2] - E[x]^2``). It shares no code with
    the fast core; the test suite checks it against the loop oracle on every small case for
    every knob value.

Example
-------
>>> from skimage.metrics import structural_similarity
>>> from ssimref.verification.conformance import check
>>> result = check(lambda x, y, data_range: structural_similarity(x, y, data_range=data_range),
...                "skimage", cases=["random_pair", "unit_range"])
>>> result.passed
True
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from . import oracle
from .cases import LARGE_CASES, corpus
from .conventions import Convention, downsample_factor, preset
from .peers import Peer, load_target

__all__ = ["check", "evaluate", "evaluate_map", "CaseResult", "Diagnosis",
           "ConformanceResult", "candidate_changes", "NUMERIC_TRAPS"]

NUMERIC_TRAPS = {
    "large_offset": "cancellation in E[x^2] - E[x]^2 at a large offset",
    "uint8_overflow": "integer input: uint8 products overflowing, or a float32 conversion",
    "float32_input": "float32 arithmetic",
    "zero_images": "0/0 or an eps added to a denominator on flat zero images",
    "identical": "round-off on identical images (SSIM must be exactly 1)",
    "negated": "rejecting or mishandling negative pixel values",
    "non_contiguous": "strided (non-contiguous) input",
    "fortran_order": "column-major input",
    "multichannel": "channel handling",
    "tiny": "images no larger than the window",
}
"""The trap each case sets, named in a diagnosis when no convention explains the case."""

_GAUSSIAN_SIZES = (3, 5, 7, 9, 11)
_UNIFORM_SIZES = (3, 4, 5, 6, 7, 8, 9, 10, 11)
_SIGMAS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
_DATA_RANGES = (None, 1.0, 2.0, 255.0, 65535.0, "dynamic")
_BORDERS = ("valid", "same-reflect", "same-symmetric", "same-constant", "same-edge")


# ------------------------------------------------------------------------------ evaluator
def _channels_last(a):
    a = np.asarray(a, dtype=np.float64)
    return a[:, :, None] if a.ndim == 2 else a


def _downsample(a, method, factor):
    if factor == 1:
        return a
    h, w = a.shape[:2]
    if method == "avgpool":
        hh, ww = h // factor, w // factor
        return a[:hh * factor, :ww * factor].reshape(hh, factor, ww, factor, -1).mean(axis=(1, 3))
    lead = (factor - 1) // 2
    padded = np.pad(a, ((lead, factor - 1 - lead), (lead, factor - 1 - lead), (0, 0)),
                    mode="symmetric")
    box = sum(padded[i:i + h, j:j + w] for i in range(factor) for j in range(factor))
    return (box / (factor * factor))[::factor, ::factor]


def _data_range(x, y, convention, data_range):
    L = convention.data_range
    if L is None:
        if data_range is None:
            raise ValueError("pass data_range (the convention takes the caller's range)")
        return float(data_range)
    if L == "dynamic":
        return float(max(np.ptp(x), np.ptp(y)))
    return float(L)


def _geometry(convention):
    return (convention.window, convention.size,
            convention.sigma if convention.window == "gaussian" else None,
            convention.border, convention.downsample)


def _moments(x, y, convention):
    """Local ``mu_x, mu_y`` and the centred weighted sums ``Sxx, Syy, Sxy`` (before the
    covariance factor) at every window position of the prepared images."""
    x, y = _channels_last(x), _channels_last(y)
    f = downsample_factor(x.shape[0], x.shape[1], convention.downsample)
    x, y = (_downsample(a, convention.downsample, f) for a in (x, y))
    if convention.border != "valid":
        p = convention.size // 2
        mode = convention.border[len("same-"):]
        x, y = (np.pad(a, ((p, p), (p, p), (0, 0)), mode=mode) for a in (x, y))
    w = oracle.window_weights(convention)
    size = convention.size
    ho, wo = x.shape[0] - size + 1, x.shape[1] - size + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"window {size}x{size} does not fit a {x.shape[0]}x{x.shape[1]} "
                         "image")
    taps = [(w[i][j], i, j) for i in range(size) for j in range(size)]
    mu_x = sum(wk * x[i:i + ho, j:j + wo] for wk, i, j in taps)
    mu_y = sum(wk * y[i:i + ho, j:j + wo] for wk, i, j in taps)
    sxx = syy = sxy = 0.0
    for wk, i, j in taps:
        dx = x[i:i + ho, j:j + wo] - mu_x
        dy = y[i:i + ho, j:j + wo] - mu_y
        sxx = sxx + wk * dx * dx
        syy = syy + wk * dy * dy
        sxy = sxy + wk * dx * dy
    return mu_x, mu_y, sxx, syy, sxy, w


def _ssim_from_moments(moments, convention, L):
    mu_x, mu_y, sxx, syy, sxy, w = moments
    fac = oracle.covariance_factor(convention, w)
    c1, c2 = (convention.k1 * L) ** 2, (convention.k2 * L) ** 2
    mu_l = mu_x if convention.luminance == "first" else mu_y
    with np.errstate(all="ignore"):  # c1 = c2 = 0 on flat images with a dynamic range
        s1 = (2 * mu_x * mu_l + c1) / (mu_x * mu_x + mu_l * mu_l + c1)
        s2 = (2 * fac * sxy + c2) / (fac * (sxx + syy) + c2)
        return s1 * s2


def evaluate_map(x, y, convention, data_range=None):
    """SSIM map ``(Ho, Wo, C)`` under ``convention`` (see the module docstring); equal to
    :func:`ssimref.verification.oracle.variant_ssim_map` up to round-off."""
    L = _data_range(_channels_last(x), _channels_last(y), convention, data_range)
    return _ssim_from_moments(_moments(x, y, convention), convention, L)


def evaluate(x, y, convention, data_range=None) -> float:
    """Mean of :func:`evaluate_map` over positions and channels (NaN where undefined)."""
    return float(np.mean(evaluate_map(x, y, convention, data_range)))


class _Evaluator:
    """Oracle values of the cases under many conventions, sharing the window moments of
    conventions that differ only in covariance, data range, constants or luminance."""

    def __init__(self, cases):
        self.cases = {c.name: c for c in cases}
        self._moments = {}
        self._values = {}

    def value(self, name, convention):
        convention = convention.canonical()
        key = (name, convention)
        if key not in self._values:
            case = self.cases[name]
            gkey = (name, _geometry(convention))
            try:
                if gkey not in self._moments:
                    self._moments[gkey] = _moments(case.x, case.y, convention)
                moments = self._moments[gkey]
                L = _data_range(_channels_last(case.x), _channels_last(case.y), convention,
                                case.data_range)
                value = float(np.mean(_ssim_from_moments(moments, convention, L)))
            except ValueError:  # the window does not fit this case
                value = math.nan
            self._values[key] = value
        return self._values[key]


# ------------------------------------------------------------------------------- results
@dataclass
class CaseResult:
    """One case: the implementation's value, the oracle's, and the verdict."""

    name: str
    description: str
    shape: tuple
    dtype: str
    value: float | None
    expected: float
    error: float
    tolerance: float
    passed: bool
    message: str = ""

    def row(self):
        value = "error" if self.value is None else f"{self.value:.12f}"
        error = "" if self.value is None else f"{self.error:.2e}"
        status = "pass" if self.passed else ("ERROR" if self.value is None else "FAIL")
        shape = "x".join(map(str, self.shape))
        return [self.name, f"{shape} {self.dtype}", value, f"{self.expected:.12f}", error,
                status]


@dataclass
class Diagnosis:
    """The knob changes that best explain an implementation's answers.

    Attributes
    ----------
    verdict : {"conforms", "convention", "partly", "unexplained", "no data"}
        "conforms": every case agrees under the stated convention. "convention": the
        ``changes`` explain every case. "partly": they explain some; ``unexplained`` lists
        the rest. "unexplained": no knob change helps.
    changes : list of (knob, stated, fitted)
        Human descriptions of each knob's stated and fitted value, most important first.
    convention : Convention
        The best-fitting convention.
    residual : float
        Largest absolute difference between the implementation and the oracle under the
        fitted convention, over the cases it answered.
    failing_before, failing_after : int
        Cases outside tolerance under the stated and the fitted convention.
    unexplained : list of (case, trap)
    typical_error : float
        Median absolute difference under the fitted convention. Well above float64
        round-off (1e-10 and more) it points at reduced precision somewhere (a float32
        window, constants or arithmetic) rather than at a convention.
    """

    verdict: str
    changes: list = field(default_factory=list)
    convention: Convention | None = None
    residual: float = math.nan
    failing_before: int = 0
    failing_after: int = 0
    unexplained: list = field(default_factory=list)
    typical_error: float = 0.0

    @property
    def knobs(self):
        """The names of the knobs that changed."""
        return [knob for knob, _, _ in self.changes]

    def __str__(self):
        if self.verdict == "conforms":
            return "conforms: every case agrees with the oracle under the stated convention"
        if self.verdict == "no data":
            return "no case returned a value: nothing to fit"
        lines = []
        if self.changes:
            lines.append("most likely cause: " + "; ".join(
                f"{knob}: stated {old}, behaves like {new}" for knob, old, new in self.changes))
            lines.append(f"under the fitted convention {self.failing_after} case(s) still "
                         f"differ (was {self.failing_before}); largest difference "
                         f"{self.residual:.2e}")
        elif self.unexplained and all(name in NUMERIC_TRAPS for name, _ in self.unexplained):
            lines.append("convention: as stated (no knob change improves agreement); the "
                         "differences are numerical, not conventions:")
        else:
            lines.append("no single convention change explains the differences")
        for name, trap in self.unexplained:
            lines.append(f"  {name}: not a convention; suspect {trap}")
        if self.typical_error > 1e-10:
            lines.append(f"  typical (median) difference {self.typical_error:.1e} on the "
                         "cases: beyond float64 round-off, so something is computed in "
                         "reduced precision (a float32 window, constant or arithmetic)")
        return "\n".join(lines)


@dataclass
class ConformanceResult:
    """Everything :func:`check` found; ``str()`` gives the report the CLI prints."""

    target: str
    version: str
    convention: Convention
    tolerance: float
    cases: list
    diagnosis: Diagnosis
    note: str = ""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases)

    def table(self) -> str:
        head = ["case", "input", "value", "oracle", "abs error", "result"]
        rows = [head] + [c.row() for c in self.cases]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(cell.ljust(wd) for cell, wd in zip(r, widths)).rstrip()
                 for r in rows]
        lines.insert(1, "  ".join("-" * wd for wd in widths))
        for c in self.cases:
            if c.message:
                lines.append(f"{c.name}: {c.message}")
        return "\n".join(lines)

    def __str__(self):
        passed = sum(c.passed for c in self.cases)
        head = [f"target: {self.target}" + (f" {self.version}" if self.version else ""),
                f"stated convention: {self.convention.describe()}",
                f"tolerance: {self.tolerance:g} (absolute, on mean SSIM)"]
        if self.note:
            head.append(f"called as: {self.note}")
        return "\n".join(head + ["", self.table(), "",
                                 f"{passed}/{len(self.cases)} cases pass",
                                 f"diagnosis: {self.diagnosis}"])


# ------------------------------------------------------------------------------ the runner
def _resolve_convention(convention, peer):
    if convention is None:
        return peer.convention
    if isinstance(convention, Convention):
        return convention
    if isinstance(convention, str):
        return preset(convention)
    from ..config import SSIMConfig
    if isinstance(convention, SSIMConfig):
        return Convention.from_config(convention)
    raise TypeError("convention must be None, a preset name, a Convention or an "
                    f"SSIMConfig, got {type(convention).__name__}")


def _call(peer, case):
    """``(value, message)``: the implementation's mean SSIM on a case, or None and why."""
    x, y = case.x, case.y
    if not peer.native:
        x, y = (a if a.dtype == np.float64 else a.astype(np.float64) for a in (x, y))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if x.ndim == 3 and not peer.channels:
                value = math.fsum(float(peer(x[:, :, c], y[:, :, c], case.data_range))
                                  for c in range(x.shape[2])) / x.shape[2]
            else:
                value = float(peer(x, y, case.data_range))
        except Exception as exc:  # a library that rejects the input: report, go on
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return None, f"raised {type(exc).__name__}: {text}"[:200]
    notes = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}"[:160]
                    for w in caught})
    return value, "; ".join(notes)


def _error(value, expected):
    if value is None:
        return math.inf
    if math.isnan(value) and math.isnan(expected):
        return 0.0
    if math.isnan(value) or math.isnan(expected):
        return math.inf
    return abs(value - expected)


def candidate_changes(convention):
    """Every convention one knob away from ``convention``, as ``(knob, Convention)``."""
    out = []
    seen = {convention.canonical()}

    def add(knob, **change):
        new = replace(convention, **change)
        if new.canonical() not in seen:
            seen.add(new.canonical())
            out.append((knob, new))

    for size in _GAUSSIAN_SIZES:
        add("window", window="gaussian", size=size)
    for size in _UNIFORM_SIZES:
        add("window", window="uniform", size=size)
    if convention.window == "gaussian":
        for sigma in _SIGMAS:
            add("sigma", sigma=sigma)
    for cov in ("sample", "population", "count"):
        add("covariance", covariance=cov)
    for L in _DATA_RANGES:
        add("data_range", data_range=L)
    for border in _BORDERS:
        add("border", border=border)
    for method in ("none", "ssim.m", "avgpool"):
        add("downsample", downsample=method)
    for lum in ("own", "first"):
        add("luminance", luminance=lum)
    return out


def _fit(stated, answered, evaluator, max_changes):
    """Greedy coordinate search over single knob changes, scored by (number of failing
    cases, largest error). Cases of LARGE_CASES are scored only for the most promising
    candidates (and always for downsampling), to keep the search fast."""
    small = [c for c in answered if c.name not in LARGE_CASES]

    def errors(convention, cases):
        return [_error(c.value, evaluator.value(c.name, convention)) for c in cases]

    def score(convention, cases):
        errs = errors(convention, cases)
        fails = sum(e > c.tolerance for e, c in zip(errs, cases))
        return fails, max(errs, default=0.0)

    current, changes = stated, []
    best_score = score(stated, answered)
    for _ in range(max_changes):
        if best_score[0] == 0:
            break
        candidates = [(k, c) for k, c in candidate_changes(current)
                      if k not in {knob for knob, _ in changes}]
        if not candidates:
            break
        ranked = sorted(candidates, key=lambda kc: score(kc[1], small))
        shortlist = ranked[:4] + [kc for kc in ranked[4:] if kc[0] == "downsample"]
        knob, conv = min(shortlist, key=lambda kc: score(kc[1], answered))
        new_score = score(conv, answered)
        if new_score >= best_score:
            break
        changes.append((knob, conv))
        current, best_score = conv, new_score
    return current, [k for k, _ in changes], best_score


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
    if isinstance(fn, str):
        peer = load_target(fn, hide_torchvision)
    elif isinstance(fn, Peer):
        peer = fn
    elif callable(fn):
        peer = Peer(getattr(fn, "__qualname__", repr(fn)), fn, preset("wang2004"))
    else:
        raise TypeError(f"fn must be callable or a target name, got {type(fn).__name__}")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance!r}")
    stated = _resolve_convention(convention, peer)
    chosen = corpus(names=cases) if cases is not None else corpus()
    evaluator = _Evaluator(chosen)
    results, answered = [], []
    for case in chosen:
        value, message = _call(peer, case)
        expected = evaluator.value(case.name, stated)
        tol = max(tolerance, case.tolerance or 0.0)
        error = _error(value, expected)
        results.append(CaseResult(case.name, case.description, case.shape, str(case.x.dtype),
                                  value, expected, error, tol, error <= tol, message))
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
        fitted, knobs, (fails, residual) = _fit(stated, answered, evaluator, max_changes)
        changes = [(k, stated.describe(k), fitted.describe(k)) for k in knobs]
        unexplained = [(r.name, NUMERIC_TRAPS.get(r.name, "a defect outside the knobs"))
                       for r in answered
                       if _error(r.value, evaluator.value(r.name, fitted)) > r.tolerance]
        verdict = ("convention" if knobs and not unexplained else
                   "partly" if knobs else "unexplained")
        typical = float(np.median([_error(r.value, evaluator.value(r.name, fitted))
                                   for r in answered]))
        diagnosis = Diagnosis(verdict, changes, fitted, residual, failing, fails, unexplained,
                              typical)
    return ConformanceResult(peer.name, peer.version, stated, tolerance, results, diagnosis,
                             peer.note)
