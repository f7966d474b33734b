"""Fitting the convention knobs to a target's answers, and what stays unexplained.

Search
    :func:`candidate_changes` lists every convention one knob away from a given one
    (a "filter" move changes several fields at once: a valid window of ``s`` taps becomes
    a longer Gaussian filter on a padded image whose map is cropped by ``(s - 1) // 2``).
    :func:`fit` walks greedily from the stated convention: at each step it takes the
    single change that brings the cases closest to the tolerance, measured in decades
    (the mean over cases of ``log10(max(error / tolerance, 1))``), then the one that leaves
    the fewest failing; up to ``max_changes`` steps, while the measure improves. A
    distance rather than a count of failures leads the search, so that the first of two
    changes needed together is found even when it alone fixes no case, and a case that
    agrees by coincidence (values near 0) does not lead it astray.

Acceptance
    A change is accepted only when it makes cases agree to the tolerance: the fitted
    convention must turn failing cases into passing ones and break none that passed under
    the stated convention (its passing set is a strict superset). Of the conventions on
    the path, the one that passes the most cases is taken, then each of its changes is
    dropped again if the others pass the same cases without it; what remains are the
    changes each needed for some case. When no convention on the path qualifies, nothing
    is fitted: lowering an error without reaching the tolerance explains nothing.

Non-finite answers
    A NaN or Inf answer never agrees with anything; such cases (and cases that raised)
    are left out of the search and reported apart.

Unexplained and numerical
    The cases still failing under the fitted convention are "unexplained", with their
    errors, unless the rule of :func:`classify` labels them numerical: every other case
    that returned a number agrees under the fitted convention, and each remaining
    difference is within the round-off that forming ``E[x^2] - E[x]^2`` can produce on
    that case (:func:`cancellation_bound`). Then, and only then, they are reported as
    cancellation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from ..cases import LARGE_CASES
from ..conventions import Convention

__all__ = ["candidate_changes", "fit", "Fit", "error", "cancellation_bound", "classify"]

_GAUSSIAN_SIZES = (3, 5, 7, 9, 11)
_UNIFORM_SIZES = (3, 4, 5, 6, 7, 8, 9, 10, 11)
_SIGMAS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
_DATA_RANGES = (None, 1.0, 2.0, 255.0, 65535.0, "dynamic")
_BORDERS = ("valid", "same-reflect", "same-symmetric", "same-constant", "same-edge")
_EPS = (0.0, 1e-16, 1e-14, 1e-12, 1e-10, 1e-8, 1e-6)
_WEIGHTS = ("float64", "float32", "round3", "round4", "round5", "round6")
_FIELDS = tuple(f.name for f in fields(Convention))


def error(value, expected):
    """``|value - expected|``, or ``inf`` when either is missing, NaN or infinite: a
    non-finite number never agrees with anything, not even another NaN."""
    if value is None or not math.isfinite(value) or not math.isfinite(expected):
        return math.inf
    return abs(value - expected)


def _filter_sizes(convention):
    """Gaussian filter lengths longer than a valid window: the odd sizes up to 11 and the
    lengths scipy.ndimage gives sigma at truncate 3.5 (scikit-image) and 4 (its default)."""
    s = convention.size
    ndimage = {2 * int(t * convention.sigma + 0.5) + 1 for t in (3.5, 4.0)}
    return sorted(t for t in set(_GAUSSIAN_SIZES) | ndimage if t > s)


def candidate_changes(convention):
    """Every convention one knob away from ``convention``, as ``(knob, Convention)``.

    Knobs: "window" (type and size), "sigma", "covariance", "data_range", "border"
    (padding mode; the crop is kept), "filter" (from valid windows of ``s`` taps: a
    longer Gaussian filter on a padded image, cropped by ``(s - 1) // 2``), "downsample",
    "luminance", "eps" and "weights".
    """
    out = []
    seen = {convention.canonical()}

    def add(knob, **change):
        try:
            new = replace(convention, **change)
        except ValueError:  # not a valid combination
            return
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
        add("border", border=border, crop=0 if border == "valid" else convention.crop)
    if convention.border == "valid" and convention.size % 2 == 1:
        for taps in _filter_sizes(convention):
            for border in _BORDERS[1:]:
                add("filter", window="gaussian", size=taps, border=border,
                    crop=(convention.size - 1) // 2)
    for method in ("none", "ssim.m", "avgpool"):
        add("downsample", downsample=method)
    for lum in ("own", "first"):
        add("luminance", luminance=lum)
    for eps in _EPS:
        add("eps", eps=eps)
    for weights in _WEIGHTS:
        add("weights", weights=weights)
    return out


@dataclass
class Fit:
    """What :func:`fit` accepted.

    Attributes
    ----------
    convention : Convention
        The stated convention with the accepted changes applied (the stated one when none).
    knobs : list of str
        The accepted changes, in the order the search found them.
    passing : frozenset of str
        Cases that agree under ``convention``.
    tried : list of str
        Every change the search walked through, accepted or not.
    """

    convention: Convention
    knobs: list
    passing: frozenset
    tried: list


def _delta(before, after):
    return {name: getattr(after, name) for name in _FIELDS
            if getattr(after, name) != getattr(before, name)}


def _apply(stated, moves):
    conv = stated
    for _, change in moves:
        try:
            conv = replace(conv, **change)
        except ValueError:
            return None
    return conv


def fit(stated, answered, evaluator, max_changes):
    """Search and accept knob changes (module docstring).

    Parameters
    ----------
    stated : Convention
    answered : list of CaseResult
        The cases that returned a finite value.
    evaluator : Evaluator
    max_changes : int

    Returns
    -------
    Fit
    """
    small = [c for c in answered if c.name not in LARGE_CASES]

    def errors(convention, cases):
        return [error(c.value, evaluator.value(c.name, convention)) for c in cases]

    def passing(convention):
        return frozenset(c.name for c, e in zip(answered, errors(convention, answered))
                         if e <= c.tolerance)

    def score(convention, cases):
        # how far the cases are from the tolerance, in decades (an agreeing case counts 0
        # however small its error), then the number failing
        errs = errors(convention, cases)
        fails = sum(e > c.tolerance for e, c in zip(errs, cases))
        decades = [math.log10(min(max(e / c.tolerance, 1.0), 1e300))
                   for e, c in zip(errs, cases)]
        return math.fsum(decades) / max(len(decades), 1), fails

    # the search: greedy single changes, scored on the small cases, then the best few
    # (and every downsampling change, which only the large case shows) on all of them
    path, current = [], stated
    best_score = score(stated, answered)
    for _ in range(max_changes):
        if best_score[1] == 0:
            break
        used = {knob for knob, _ in path}
        candidates = [(k, c) for k, c in candidate_changes(current) if k not in used]
        if not candidates:
            break
        ranked = sorted(candidates, key=lambda kc: score(kc[1], small))
        shortlist = ranked[:4] + [kc for kc in ranked[4:] if kc[0] == "downsample"]
        knob, conv = min(shortlist, key=lambda kc: score(kc[1], answered))
        new_score = score(conv, answered)
        if new_score >= best_score:
            break
        path.append((knob, _delta(current, conv)))
        current, best_score = conv, new_score

    # acceptance: more cases agree, none that agreed is lost; then drop unneeded changes
    base = passing(stated)
    chosen, chosen_pass = 0, base
    for i in range(1, len(path) + 1):
        conv = _apply(stated, path[:i])
        p = passing(conv) if conv is not None else frozenset()
        if p > base and len(p) > len(chosen_pass):
            chosen, chosen_pass = i, p
    moves = path[:chosen]
    pruned = True
    while pruned and len(moves) > 1:
        pruned = False
        for move in moves:
            rest = [m for m in moves if m is not move]
            conv = _apply(stated, rest)
            if conv is not None and passing(conv) >= chosen_pass:
                moves, pruned = rest, True
                break
    fitted = _apply(stated, moves) if moves else stated
    return Fit(fitted, [knob for knob, _ in moves], passing(fitted),
               [knob for knob, _ in path])


def _unit_roundoff(dtype):
    """Unit round-off of the arithmetic a target may use on input of ``dtype``: float32
    for float32 and integer images (libraries convert integer images to float32 or
    wider), float64 otherwise."""
    dtype = np.dtype(dtype)
    if dtype == np.float32 or dtype.kind in "iub":
        return 2.0 ** -24
    return 2.0 ** -53


def cancellation_bound(case, convention):
    """The largest SSIM difference round-off in ``E[x^2] - E[x]^2`` can cause on a case.

    A filter forms ``sum w x^2`` from at most ``n`` terms (``n`` = pixels per channel: a
    generous count for any summation order, running sums included), so its absolute
    error is below ``n u max(x^2)``, and so is the error of the variances and of the
    covariance; ``s2`` moves by at most ``4 e / c2`` when they move by ``e`` (``|s2| <= 1``),
    and ``|s1| <= 1``::

        bound = 4 n u max(x^2, y^2) / c2

    with ``u`` the unit round-off of the precision the target may compute in (float32
    for float32 and integer inputs, float64 otherwise) and ``c2`` of ``convention``. On
    ordinary float64 cases (pixels up to 255, a few hundred pixels) it is about 1e-10,
    far below any tolerance, so only a case with a large offset can qualify.
    """
    x = np.asarray(case.x, dtype=np.float64)
    y = np.asarray(case.y, dtype=np.float64)
    L = convention.data_range
    if L is None:
        L = case.data_range
    elif L == "dynamic":
        L = max(np.ptp(x), np.ptp(y))
    c2 = (convention.k2 * float(L)) ** 2
    if c2 == 0:
        return math.inf
    n = x.shape[0] * x.shape[1]
    peak = max(float(np.max(np.abs(x))), float(np.max(np.abs(y)))) ** 2
    return 4 * n * _unit_roundoff(case.x.dtype) * peak / c2


def classify(failing, cases, convention):
    """Split the cases still failing under the fitted convention (module docstring).

    Parameters
    ----------
    failing : list of (name, error)
        Finite answers outside tolerance under ``convention``; every other finite
        answer agrees.
    cases : dict name -> Case
    convention : Convention

    Returns
    -------
    (numerical, unexplained)
        ``numerical``: ``(name, error, bound)`` for each case, when every one is within
        its :func:`cancellation_bound`; else empty, and ``unexplained`` lists
        ``(name, error)`` for all of them.
    """
    bounds = [cancellation_bound(cases[name], convention) for name, _ in failing]
    if failing and all(err <= b for (_, err), b in zip(failing, bounds)):
        return [(name, err, b) for (name, err), b in zip(failing, bounds)], []
    return [], list(failing)
