"""SSIM under another implementation's conventions, window by window.

:func:`variant_ssim_map` evaluates SSIM under a
:class:`~ssimref.verification.conventions.Convention`: 'same' maps of padded images
(reflect, symmetric, zero, replicate), cropped or not, ``ssim.m``/piq downsampling, a
fixed or data-dependent data range, an epsilon in the denominator, window weights that
do not sum to 1 (rounded, or held in float32), and the luminance-term defect. Each step
is a loop over pixels or windows (:mod:`.borders` for padding and downsampling)::

    mu_x      = sum_k w_k x_k
    sigma_x^2 = f (sum_k w_k (x_k - mu_x)^2 + (1 - S) mu_x^2),   S = sum_k w_k
    sigma_xy  = f (sum_k w_k (x_k - mu_x)(y_k - mu_y) + (1 - S) mu_x mu_y)
    s1 = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1)   (mu_y := mu_x for the defect)
    s2 = (2 sigma_xy + c2) / (sigma_x^2 + sigma_y^2 + c2)
    SSIM = s1 s2, or (2 mu_x mu_y + c1)(2 sigma_xy + c2) / (den1 den2 + eps) with eps > 0

The ``(1 - S)`` terms make the moments equal to the ``sum w x^2 - mu^2`` that
implementations compute when their weights do not sum to 1, without its cancellation;
they vanish for float64 weights (``S`` is taken as exactly 1).
"""

from __future__ import annotations

import math

import numpy as np

from ..conventions import downsample_factor
from .borders import downsample_image, pad_image
from .maps import image_lists
from .windows import covariance_factor, number, weight_sum, window_weights

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
    range (the convention's, else ``data_range``), downsample, pad by ``size // 2`` for
    'same' borders, evaluate every window (module docstring), then crop ``crop`` pixels
    from every side of the map.

    Parameters
    ----------
    x, y : array_like (H, W) or (H, W, C)
    convention : Convention
    data_range : float, optional
        ``L`` when the convention takes the caller's range.
    exact : bool
        Exact rational arithmetic (pixel values and constants read as exact decimals):
        uniform windows, or Gaussian windows with float32 or rounded weights.

    Returns
    -------
    ndarray (Ho, Wo) or (Ho, Wo, C), float64 (object array of Fractions when ``exact``)

    Raises
    ------
    ValueError
        When the window does not fit the (padded) image or the crop removes the whole map.
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
    rest = 1 - weight_sum(convention, w)
    eps = num(convention.eps)
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
                var_x = fac * (sum(wk * (xk - mu_x) ** 2 for wk, xk in wx)
                               + rest * mu_x * mu_x)
                var_y = fac * (sum(wk * (yk - mu_y) ** 2 for (wk, _), yk in zip(wx, ys))
                               + rest * mu_y * mu_y)
                cov = fac * (sum(wk * (xk - mu_x) * (yk - mu_y)
                                 for (wk, xk), yk in zip(wx, ys)) + rest * mu_x * mu_y)
                mu_l = mu_x if convention.luminance == "first" else mu_y
                num1, den1 = 2 * mu_x * mu_l + c1, mu_x ** 2 + mu_l ** 2 + c1
                num2, den2 = 2 * cov + c2, var_x + var_y + c2
                if eps:
                    out[r, c, ch] = num1 * num2 / (den1 * den2 + eps)
                else:
                    out[r, c, ch] = (num1 / den1) * (num2 / den2)
    k = convention.crop
    if k:
        if 2 * k >= out.shape[0] or 2 * k >= out.shape[1]:
            raise ValueError(f"cropping {k} pixels per side leaves nothing of the "
                             f"{out.shape[0]}x{out.shape[1]} map")
        out = out[k:out.shape[0] - k, k:out.shape[1] - k]
    out = out[:, :, 0] if two_d else out
    return out if exact else out.astype(np.float64)


def variant_ssim(x, y, convention, data_range=None, exact=False):
    """Mean of :func:`variant_ssim_map` over window positions and channels."""
    values = variant_ssim_map(x, y, convention, data_range, exact).ravel().tolist()
    return sum(values) / len(values) if exact else math.fsum(values) / len(values)
