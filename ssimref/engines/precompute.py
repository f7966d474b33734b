"""Per-image quantities the fused all-pairs engines share.

The SSIM defects of a pair need the local moments of each image and of the difference
image ``d = x_i - y_j``. The engines shift ``d`` by its global mean, as every image's own
moments are shifted (:mod:`ssimref.moments`): that keeps ``E_w[d0^2] - E_w[d0]^2`` free of
the cancellation a large local mean difference causes. Since the mean is linear, the
shifted difference is ``d0 = x0_i - y0_j`` with ``x0 = x - mean(x)`` per image and
channel, and its local mean is ``m0_i - m0_j`` (``m0`` the local mean of ``x0``). So
everything except one window sum per pair, that of ``d0^2``, is a per-image quantity,
computed here once per tile of images with the core's functions::

    mean_d = (m0_i - m0_j) + (shift_i - shift_j)          local mean of d
    var_d  = f * max(E_w[d0^2] - (m0_i - m0_j)^2, 0)      local variance of d
    t1 = mean_d^2 / (mu_i^2 + mu_j^2 + c1) = mean_d^2 / (a_i + a_j)
    t2 = var_d / (var_i + var_j + c2)    = max(...) / (v_i + v_j)

with ``a = mu^2 + c1/2`` and ``v = (var + c2/2) / f`` stored per image and window.
"""

from __future__ import annotations

from typing import NamedTuple

from ..backend import Array, Namespace
from ..config import SSIMConfig
from ..moments import image_moments, window_sums

__all__ = ["ImageTerms", "image_terms"]

# The fused engines evaluate each kind's g = e1 t1 + t2 - e3 t1 t2 (ssimref/kinds.py)
# from n1 = mean_d^2, n2 = var_d / f, a = mu_i^2 + mu_j^2 + c1 and
# v = (var_i + var_j + c2) / f with one division: (n1 * (v * e1 - n2 * e3) + n2 * a) / (a * v).


class ImageTerms(NamedTuple):
    """Per-image arrays of a stack of ``t`` images, channel-major, float64.

    x0 : (t, C, H, W)      images minus their global mean per channel
    shift : (t, C)         that mean
    m0 : (t, C, Ho, Wo)    local means of x0
    a : (t, C, Ho, Wo)     mu^2 + c1/2 with mu = m0 + shift the local mean of the image
    v : (t, C, Ho, Wo)     (var + c2/2) / f with var the local variance
    """

    x0: Array
    shift: Array
    m0: Array
    a: Array
    v: Array


def image_terms(A: Array, config: SSIMConfig, xp: Namespace) -> ImageTerms:
    """The per-image terms of a stack (trusted input).

    Parameters
    ----------
    A : Array, shape (t, H, W, C), float64
    config : SSIMConfig
        With its data range set.
    xp : Namespace

    Returns
    -------
    ImageTerms
    """
    shift = xp.mean(A, axis=(-3, -2), keepdims=True)  # the shift image_moments applies
    x0 = A - shift
    m0 = window_sums(x0, config.taps(), config.stride)
    mu, var = image_moments(A, config, xp)
    c1, c2 = config.constants()
    f = config.covariance_factor()
    a = mu * mu + 0.5 * c1
    v = (var + 0.5 * c2) / f

    def channel_major(arr: Array) -> Array:
        return xp.permute_dims(arr, (0, 3, 1, 2))

    return ImageTerms(channel_major(x0), shift[:, 0, 0, :], channel_major(m0),
                      channel_major(a), channel_major(v))
