"""The oracle's formula evaluated fast enough to fit conventions: loops over window taps.

Fitting evaluates a few hundred conventions on every case, which the per-window Python
loops of :func:`ssimref.verification.oracle.variant_ssim_map` are too slow for (the
385x387 case alone would take minutes). :func:`evaluate_map` computes the same formula
with the loops turned inside out: a loop over the window's taps, each adding a shifted
slice of the (downsampled, padded) image, and a second pass for the centred moments
``sum_k w_k (x_k - mu_x)(y_k - mu_y)`` (no ``E[x^2] - E[x]^2``). It takes its window
weights and covariance factor from the oracle and shares no code with the fast core; the
test suite checks it against the loop oracle on every small case for every knob value.

:class:`Evaluator` caches the values of a set of cases under many conventions, sharing
the window moments of conventions that differ only in covariance, data range, constants
or luminance.
"""

from __future__ import annotations

import math

import numpy as np

from .. import oracle
from ..conventions import downsample_factor

__all__ = ["evaluate_map", "evaluate", "downsample", "Evaluator"]


def _channels_last(a):
    a = np.asarray(a, dtype=np.float64)
    return a[:, :, None] if a.ndim == 2 else a


def downsample(a, method, factor):
    """``(H, W, C)`` array downsampled by ``factor`` as ``method`` ("ssim.m", "avgpool")
    does: the array form of :func:`ssimref.verification.oracle.downsample_image`."""
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
    x, y = (downsample(a, convention.downsample, f) for a in (x, y))
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


class Evaluator:
    """Oracle values of the cases under many conventions, sharing the window moments of
    conventions that differ only in covariance, data range, constants or luminance."""

    def __init__(self, cases):
        self.cases = {c.name: c for c in cases}
        self._moments = {}
        self._values = {}

    def value(self, name, convention):
        """Mean SSIM of case ``name`` under ``convention`` (NaN where the window does not
        fit the case)."""
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
