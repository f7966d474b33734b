"""Fitting the convention knobs to a target's answers.

:func:`candidate_changes` lists every convention one knob away from a given one;
:func:`fit` searches them greedily for the changes that explain the target's answers.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..cases import LARGE_CASES

__all__ = ["candidate_changes", "fit", "error"]

_GAUSSIAN_SIZES = (3, 5, 7, 9, 11)
_UNIFORM_SIZES = (3, 4, 5, 6, 7, 8, 9, 10, 11)
_SIGMAS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
_DATA_RANGES = (None, 1.0, 2.0, 255.0, 65535.0, "dynamic")
_BORDERS = ("valid", "same-reflect", "same-symmetric", "same-constant", "same-edge")


def error(value, expected):
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


def fit(stated, answered, evaluator, max_changes):
    """Greedy coordinate search over single knob changes, scored by (number of failing
    cases, largest error). Cases of LARGE_CASES are scored only for the most promising
    candidates (and always for downsampling), to keep the search fast."""
    small = [c for c in answered if c.name not in LARGE_CASES]

    def errors(convention, cases):
        return [error(c.value, evaluator.value(c.name, convention)) for c in cases]

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
