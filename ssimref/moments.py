"""Local weighted moments over the valid window positions of images.

Arrays here are channels-last ``(..., H, W, C)``; window sums run over axes -3 and -2.
Every function is array-API code: slicing, multiplication and addition only.

Numerics. Local variances are ``E_w[a^2] - E_w[a]^2`` of data first shifted by its own
global mean (per image and channel), which removes the cancellation that a large common
offset causes in float arithmetic; the result is clipped at 0 (variances are
non-negative; round-off can make the difference slightly negative). For a pair of images
the mean and variance of the *difference* image ``d = x - y`` give ``mu_x - mu_y`` and
``sigma_{x-y}^2 = sigma_x^2 + sigma_y^2 - 2 sigma_xy`` without subtracting nearly equal
numbers: they are exactly zero where the images are identical and accurate where they are
close, which is where SSIM distances are small and most sensitive.
"""

from __future__ import annotations

from .config import SSIMConfig

__all__ = ["window_sums", "image_moments"]


def window_sums(a, taps, stride):
    """``sum_ij g_i g_j a[.., p*stride + i, r*stride + j, :]`` at every valid position.

    Parameters
    ----------
    a : array (..., H, W, C)
    taps : sequence of float
        1-D window weights ``g`` (the 2-D window is their outer product).
    stride : int

    Returns
    -------
    array (..., Ho, Wo, C) with ``Ho = (H - len(taps)) // stride + 1`` (likewise ``Wo``).
    """
    size = len(taps)
    ho = (a.shape[-3] - size) // stride + 1
    wo = (a.shape[-2] - size) // stride + 1
    span_h = stride * (ho - 1) + 1
    span_w = stride * (wo - 1) + 1
    uniform = all(t == taps[0] for t in taps)

    def weighted(k, rows):
        part = a[..., k:k + span_h:stride, :, :] if rows else b[..., :, k:k + span_w:stride, :]
        return part if uniform else taps[k] * part

    b = weighted(0, True)
    for k in range(1, size):
        b = b + weighted(k, True)
    out = weighted(0, False)
    for k in range(1, size):
        out = out + weighted(k, False)
    if uniform:
        out = out * (taps[0] * taps[0])
    return out


def _shifted(a, xp):
    shift = xp.mean(a, axis=(-3, -2), keepdims=True)
    return a - shift, shift


def image_moments(a, config: SSIMConfig, xp):
    """Local mean and (normalised) variance of each image.

    Parameters
    ----------
    a : array (..., H, W, C)

    Returns
    -------
    mu, var : arrays (..., Ho, Wo, C)
        ``mu = sum_k w_k a_k``; ``var = f * sum_k w_k (a_k - mu)^2`` with ``f`` the
        config's covariance factor. Applied to a difference image ``d = x - y`` this
        gives ``mu_x - mu_y`` and ``sigma_x^2 + sigma_y^2 - 2 sigma_xy``, both exactly 0
        when the two images are identical.
    """
    taps, stride = config.taps(), config.stride
    a0, shift = _shifted(a, xp)
    m = window_sums(a0, taps, stride)
    var = xp.clip(window_sums(a0 * a0, taps, stride) - m * m, min=0.0)
    return m + shift, var * config.covariance_factor()

