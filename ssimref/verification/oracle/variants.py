"""SSIM under another implementation's conventions, window by window.

:func:`variant_ssim_map` evaluates SSIM under a
:class:`~ssimref.verification.conventions.Convention`: 'same' maps of padded images
(reflect, symmetric, zero, replicate), ``ssim.m``/piq downsampling, a fixed or
data-dependent data range, and the luminance-term defect. Each step is a loop over
pixels or windows (:mod:`.borders` for padding and downsampling).
"""

from __future__ import annotations

import math

import numpy as np

from ..conventions import downsample_factor
from .borders import downsample_image, pad_image
from .maps import image_lists
from .windows import covariance_factor, number, window_weights

__all__ = ["variant_ssim_map", "variant_ssim"]


def _variant_range(xi, yi, convention, data_range, num):
    L = convention.data_range
    if L is None:
        if data_range is None:
            raise ValueError("pass data_range (the convention takes the caller's range)")
        return num(data_range)
    if L == "dynamic":
        def ptp(img):
            values = [v for row in img for pixel in row for v in pixel]
            return max(values) - min(values)
        return max(ptp(xi), ptp(yi))
    return num(L)


def variant_ssim_map(x, y, convention, data_range=None, exact=False):
    """SSIM map under a :class:`~ssimref.verification.conventions.Convention`.

    Steps, each a loop: read the images (``(H, W)`` or ``(H, W, C)``), take the data
    range (the convention's, else ``data_range``), downsample, pad for 'same' borders,
    then evaluate every window as :func:`~ssimref.verification.oracle.ssim_map` does, with
    ``mu_y := mu_x`` in the luminance term when ``convention.luminance == "first"``.

    Returns
    -------
    ndarray (Ho, Wo) or (Ho, Wo, C), float64 (object array of Fractions when ``exact``)
    """
    if np.shape(x) != np.shape(y):
        raise ValueError("x and y must have the same shape")
    num = number(exact)
    xi, two_d = image_lists(x, num)
    yi, _ = image_lists(y, num)
    L = _variant_range(xi, yi, convention, data_range, num)
    c1, c2 = (num(convention.k1) * L) ** 2, (num(convention.k2) * L) ** 2
    f = downsample_factor(len(xi), len(xi[0]), convention.downsample)
    xi = downsample_image(xi, convention.downsample, f)
    yi = downsample_image(yi, convention.downsample, f)
    if convention.border != "valid":
        mode, pad = convention.border[len("same-"):], convention.size // 2
        xi = pad_image(xi, pad, mode, num(0))
        yi = pad_image(yi, pad, mode, num(0))
    w = window_weights(convention, exact)
    fac = covariance_factor(convention, w)
    size = convention.size
    height, width, channels = len(xi), len(xi[0]), len(xi[0][0])
    if size > height or size > width:
        raise ValueError(f"window {size}x{size} does not fit the {height}x{width} image")
    out = np.empty((height - size + 1, width - size + 1, channels), dtype=object)
    for r in range(height - size + 1):
        for c in range(width - size + 1):
            for ch in range(channels):
                wx = [(w[i][j], xi[r + i][c + j][ch]) for i in range(size)
                      for j in range(size)]
                ys = [yi[r + i][c + j][ch] for i in range(size) for j in range(size)]
                mu_x = sum(wk * xk for wk, xk in wx)
                mu_y = sum(wk * yk for (wk, _), yk in zip(wx, ys))
                var_x = fac * sum(wk * (xk - mu_x) ** 2 for wk, xk in wx)
                var_y = fac * sum(wk * (yk - mu_y) ** 2 for (wk, _), yk in zip(wx, ys))
                cov = fac * sum(wk * (xk - mu_x) * (yk - mu_y)
                                for (wk, xk), yk in zip(wx, ys))
                mu_l = mu_x if convention.luminance == "first" else mu_y
                s1 = (2 * mu_x * mu_l + c1) / (mu_x ** 2 + mu_l ** 2 + c1)
                s2 = (2 * cov + c2) / (var_x + var_y + c2)
                out[r, c, ch] = s1 * s2
    out = out[:, :, 0] if two_d else out
    return out if exact else out.astype(np.float64)


def variant_ssim(x, y, convention, data_range=None, exact=False):
    """Mean of :func:`variant_ssim_map` over window positions and channels."""
    values = variant_ssim_map(x, y, convention, data_range, exact).ravel().tolist()
    return sum(values) / len(values) if exact else math.fsum(values) / len(values)
