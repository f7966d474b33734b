"""The oracle's formula evaluated fast enough to fit conventions: loops over window taps.

Fitting evaluates a few hundred conventions on every case, which the per-window Python
loops of :func:`ssimref.verification.oracle.variant_ssim_map` are too slow for (the
385x387 case alone would take minutes). :func:`evaluate_map` computes the same formula
on arrays: every window of the (downsampled, padded) image as a view
(``sliding_window_view``), its weighted mean, and a second pass over the window for the
centred moments ``sum_k w_k (x_k - mu_x)(y_k - mu_y)`` (no ``E[x^2] - E[x]^2``), plus the oracle's
``(1 - S) mu_x mu_y`` terms for weights that do not sum to 1; then the eps of the
denominator and the crop of the map. It takes its window weights, their sum and the
covariance factor from the oracle and shares no code with the fast core; the test suite
checks it against the loop oracle on every small case for every knob value.

:class:`Evaluator` caches the values of a set of cases under many conventions, sharing
the window moments of conventions that differ only in covariance, data range, constants
or luminance.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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
            convention.border, convention.downsample, convention.weights)


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
    weights = np.array(w, dtype=np.float64)
    mu_x, mu_y = np.empty((2, ho, wo, x.shape[2]))
    sxx, syy, sxy = np.empty((3, ho, wo, x.shape[2]))
    # rows of window positions in blocks of about a million window pixels
    step = max(1, 2 ** 20 // (wo * x.shape[2] * size * size))
    for r0 in range(0, ho, step):
        r1 = min(ho, r0 + step)
        wx = sliding_window_view(x[r0:r1 + size - 1], (size, size), axis=(0, 1))
        wy = sliding_window_view(y[r0:r1 + size - 1], (size, size), axis=(0, 1))
        mx = np.einsum("...ij,ij->...", wx, weights)
        my = np.einsum("...ij,ij->...", wy, weights)
        dx, dy = wx - mx[..., None, None], wy - my[..., None, None]
        mu_x[r0:r1], mu_y[r0:r1] = mx, my
        sxx[r0:r1] = np.einsum("...ij,...ij,ij->...", dx, dx, weights)
        syy[r0:r1] = np.einsum("...ij,...ij,ij->...", dy, dy, weights)
        sxy[r0:r1] = np.einsum("...ij,...ij,ij->...", dx, dy, weights)
    rest = 1 - oracle.weight_sum(convention, w)
    if rest:
        sxx, syy, sxy = sxx + rest * mu_x * mu_x, syy + rest * mu_y * mu_y, \
            sxy + rest * mu_x * mu_y
    return mu_x, mu_y, sxx, syy, sxy, w


def _ssim_from_moments(moments, convention, L):
    mu_x, mu_y, sxx, syy, sxy, w = moments
    fac = oracle.covariance_factor(convention, w)
    c1, c2 = (convention.k1 * L) ** 2, (convention.k2 * L) ** 2
    mu_l = mu_x if convention.luminance == "first" else mu_y
    k = convention.crop
    if k and (2 * k >= mu_x.shape[0] or 2 * k >= mu_x.shape[1]):
        raise ValueError(f"cropping {k} pixels per side leaves nothing of the map")
    with np.errstate(all="ignore"):  # c1 = c2 = 0 on flat images with a dynamic range
        num1, den1 = 2 * mu_x * mu_l + c1, mu_x * mu_x + mu_l * mu_l + c1
        num2, den2 = 2 * fac * sxy + c2, fac * (sxx + syy) + c2
        if convention.eps:
            out = num1 * num2 / (den1 * den2 + convention.eps)
        else:
            out = (num1 / den1) * (num2 / den2)
    return out[k:out.shape[0] - k, k:out.shape[1] - k] if k else out


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
