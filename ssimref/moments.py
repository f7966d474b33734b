"""Local weighted moments over the valid window positions of images.

Arrays here are channels-last ``(..., H, W, C)``; window sums run over axes -3 and -2.
Every function is array-API code: slicing, multiplication and addition only.

Numerics. Local variances are ``E_w[a^2] - E_w[a]^2`` of data first shifted by its own
global mean (per image and channel), which removes the cancellation that a large common
offset causes in float arithmetic; the result is clipped at 0 (variances are
non-negative; round-off can make the difference slightly negative). For a pair of images
the mean and variance of the *difference* image ``d = x - y`` give ``mu_x - mu_y`` and
``sigma_{x-y}^2 = sigma_x^2 + sigma_y^2 - 2 sigma_xy`` without subtracting nearly equal
numbers: they are exactly zero in every window where the two images agree
(:func:`difference_moments`) and accurate where they are close, which is where SSIM
distances are small and most sensitive.
"""

from __future__ import annotations

from collections.abc import Sequence

from .backend import Array, Namespace
from .config import SSIMConfig

__all__ = ["window_sums", "window_sums_transpose", "shifted_moments", "difference_moments",
           "image_moments", "in_range_units", "reference_rtol", "TWO_PASS_BELOW"]


def in_range_units(a: Array, config: SSIMConfig, xp: Namespace) -> Array:
    """Images in units of the data range: ``a / L`` in float64.

    Every computation divides its images by ``L`` once, before any moment, and then works
    with :meth:`ssimref.SSIMConfig.in_range_units` (``c1 = k1^2``, ``c2 = k2^2``): SSIM
    and its distances are invariant when images and ``L`` are scaled together, and in
    these units every intermediate is of order 1 for data within its range. Gradients
    with respect to the original pixels are the gradients in these units divided by
    ``L`` (the chain rule of ``u = a / L``).

    Parameters
    ----------
    a : Array
        Images of any real dtype (booleans included).
    config : SSIMConfig
        With its data range set.
    xp : Namespace

    Returns
    -------
    Array, float64
        A new array.
    """
    L = config.data_range
    assert L is not None  # set at the public edge
    a = xp.astype(a, xp.float64, copy=True)  # ours: divided in place, one pass fewer
    if L != 1.0:
        a /= L
    return a


def window_sums(a: Array, taps: Sequence[float], stride: int) -> Array:
    """``sum_ij g_i g_j a[.., p*stride + i, r*stride + j, :]`` at every valid position.

    Parameters
    ----------
    a : Array, shape (..., H, W, C)
    taps : sequence of float
        1-D window weights ``g`` (the 2-D window is their outer product).
    stride : int
        Step between window positions, >= 1.

    Returns
    -------
    Array, shape (..., Ho, Wo, C)
        ``Ho = (H - len(taps)) // stride + 1`` (likewise ``Wo``); ``a``'s dtype.

    See Also
    --------
    window_sums_transpose : its adjoint.
    """
    size = len(taps)
    ho = (a.shape[-3] - size) // stride + 1
    wo = (a.shape[-2] - size) // stride + 1
    span_h = stride * (ho - 1) + 1
    span_w = stride * (wo - 1) + 1
    uniform = all(t == taps[0] for t in taps)

    def weighted(k: int, rows: bool) -> Array:
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


def window_sums_transpose(g: Array, taps: Sequence[float], stride: int, height: int,
                          width: int, xp: Namespace) -> Array:
    """The adjoint of :func:`window_sums`: spread each window's value back onto its pixels.

    ``out[.., i, j, :] = sum over positions (p, r) covering (i, j) of
    g_{i - p*stride} g_{j - r*stride} g[.., p, r, :]``, so that
    ``sum(window_sums(a) * g) == sum(a * window_sums_transpose(g))`` for every ``a``.

    Parameters
    ----------
    g : Array, shape (..., Ho, Wo, C)
    taps : sequence of float
        The 1-D window weights.
    stride : int
    height, width : int
        Image size ``H, W`` the windows were taken from.
    xp : Namespace
        The namespace of ``g`` (its arrays must support slice assignment).

    Returns
    -------
    Array, shape (..., H, W, C)

    See Also
    --------
    window_sums
    """
    size = len(taps)
    ho, wo = g.shape[-3], g.shape[-2]
    span_h = stride * (ho - 1) + 1
    span_w = stride * (wo - 1) + 1
    lead = tuple(g.shape[:-3])
    cols = xp.zeros(lead + (ho, width, g.shape[-1]), dtype=g.dtype)
    for k in range(size):
        cols[..., :, k:k + span_w:stride, :] += taps[k] * g
    out = xp.zeros(lead + (height, width, g.shape[-1]), dtype=g.dtype)
    for k in range(size):
        out[..., k:k + span_h:stride, :, :] += taps[k] * cols
    return out


def shifted_moments(a: Array, config: SSIMConfig,
                    xp: Namespace) -> tuple[Array, Array, Array, Array]:
    """Local moments of ``a``, computed on ``a`` shifted by its global mean (per image and
    channel), which removes the cancellation a large common offset causes in
    ``E[a^2] - E[a]^2``.

    Parameters
    ----------
    a : Array, shape (..., H, W, C), floating
    config : SSIMConfig
        Window, stride and covariance factor.
    xp : Namespace

    Returns
    -------
    a0 : array (..., H, W, C)
        ``a - shift``.
    m0 : array (..., Ho, Wo, C)
        Local weighted mean of ``a0`` (``mu = m0 + shift``).
    var : array (..., Ho, Wo, C)
        Normalised local variance, clipped at 0.
    shift : array (..., 1, 1, C)
    """
    taps, stride = config.taps(), config.stride
    shift = xp.mean(a, axis=(-3, -2), keepdims=True)
    a0 = a - shift
    m0 = window_sums(a0, taps, stride)
    var = xp.clip(window_sums(a0 * a0, taps, stride) - m0 * m0, min=0.0)
    return a0, m0, var * config.covariance_factor(), shift


#: A one-pass window variance ``E_w[a0^2] - E_w[a0]^2`` loses about
#: ``log2(E_w[a0^2] / var)`` of float64's 53 bits to cancellation. Where
#: ``var <= TWO_PASS_BELOW * E_w[a0^2]`` (more than 26 bits lost: windows where a difference
#: image is nearly constant but not 0) :func:`difference_moments` recomputes it two-pass,
#: ``sum_k w_k (a0_k - m0)^2`` over the window's own pixels.
TWO_PASS_BELOW = 2.0 ** -20


def reference_rtol(config: SSIMConfig) -> float:
    """The relative error bound of the reference's squared distances (data within range).

    Every window's difference variance is either one-pass with at least
    ``-log2(TWO_PASS_BELOW)`` bits left after cancellation, its rounding error at most
    ``(6 size + 3) u E_w[d0^2]`` (the two window sums of ``size`` terms each and the
    square of the mean), or two-pass from the window's own pixels (a few ``u`` relative);
    the image moments in the denominators lose at most ``u / k2^2`` relative. Hence
    ``(6 size + 3) u / TWO_PASS_BELOW`` relative on ``D^2``, whatever pixels lie outside a
    window: ``2.4e-9`` for 3x3 windows, ``5.2e-9`` for 7x7 (measured against exact
    rational arithmetic on near-agreeing pairs: below ``1e-10``).

    Parameters
    ----------
    config : SSIMConfig

    Returns
    -------
    float
    """
    return (6 * config.size + 3) * 2.0 ** -53 / TWO_PASS_BELOW


def _two_pass(a: Array, suspect: Array, taps: Sequence[float], stride: int,
              xp: Namespace) -> tuple[Array, Array, Array]:
    """The windows where ``suspect``, from their own pixels of the unshifted ``a`` (no
    far-off pixel enters): the flattened ``suspect``, then in its order the means
    ``m = sum_k w_k a_k`` and the variances ``sum_k w_k (a_k - m)^2`` (two passes,
    without the covariance factor)."""
    height, width, channels = a.shape[-3:]
    ho, wo = suspect.shape[-3], suspect.shape[-2]
    mask = xp.reshape(suspect, (-1,))
    index = xp.nonzero(mask)[0]
    c = index % channels
    rest = index // channels
    col = rest % wo
    rest = rest // wo
    row = rest % ho
    lead = rest // ho
    base = ((lead * height + row * stride) * width + col * stride) * channels + c
    pixels = xp.reshape(a, (-1,))
    offsets = [(gi * gj, (i * width + j) * channels)
               for i, gi in enumerate(taps) for j, gj in enumerate(taps)]
    mean = xp.zeros(index.shape, dtype=a.dtype)
    for w, at in offsets:
        mean = mean + w * xp.take(pixels, base + at)
    var = xp.zeros_like(mean)
    for w, at in offsets:
        dev = xp.take(pixels, base + at) - mean
        var = var + w * (dev * dev)
    return mask, mean, var


def difference_moments(d: Array, config: SSIMConfig,
                       xp: Namespace) -> tuple[Array, Array, Array, Array, Array, Array]:
    """Local moments of difference images ``d = x - y``, exactly 0 where they agree and
    accurate where they nearly agree.

    Like :func:`shifted_moments` (the shift by the mean of ``d`` keeps
    ``sigma_x^2 + sigma_y^2 - 2 sigma_xy`` accurate when the images differ by an offset),
    and in every window where ``d`` is identically 0 (the two images agree there) the mean
    and variance are set to exactly 0: after the shift round-off would leave about
    ``eps * shift^2`` there, and images that agree on every window must be at distance
    exactly 0.

    A global shift cannot serve every window: pixels far from a window move the mean of
    ``d``, and in a window where ``d`` is nearly constant (the images nearly agree, or
    differ by an offset) ``E_w[d0^2] - E_w[d0]^2`` then cancels all but a few bits,
    leaving an absolute error of a few ``eps E_w[d0^2]``, and ``m0 + shift`` an absolute
    error of a few ``eps |shift|``; the distance of such a pair would depend on pixels
    outside the window. In those windows (one-pass variance below
    :data:`TWO_PASS_BELOW` times ``E_w[d0^2]``) the variance is recomputed two-pass and
    the mean directly from the window's own pixels, so both are accurate to a few ``eps``
    relative whatever lies outside them (docs/conventions.md, "Numerics").

    Parameters
    ----------
    d : Array, shape (..., H, W, C), floating
    config : SSIMConfig
    xp : Namespace

    Returns
    -------
    d0, m0, var, shift
        As :func:`shifted_moments`, with ``m0 + shift == 0`` and ``var == 0`` exactly in
        agreeing windows (``d0`` and ``m0`` are the shifted pair the adjoint of the
        variance uses).
    agree : array of bool (..., Ho, Wo, C)
        The windows where ``d`` is identically 0.
    mean : array (..., Ho, Wo, C)
        The local mean of ``d``: ``m0 + shift``, computed directly from the window's
        pixels where the variance was recomputed, exactly 0 where the images agree.
    """
    taps, stride = config.taps(), config.stride
    shift = xp.mean(d, axis=(-3, -2), keepdims=True)
    d0 = d - shift
    m0 = window_sums(d0, taps, stride)
    second = window_sums(d0 * d0, taps, stride)
    var = xp.clip(second - m0 * m0, min=0.0)
    agree = window_sums(xp.abs(d), taps, stride) == 0
    mean = m0 + shift
    suspect = (var <= TWO_PASS_BELOW * second) & ~agree
    if bool(xp.any(suspect)):
        mask, direct, exact = _two_pass(d, suspect, taps, stride, xp)
        # scatter the gathered windows back: the k-th suspect window holds value k
        rank = xp.clip(xp.cumulative_sum(xp.astype(mask, xp.int64)) - 1, min=0)
        var = xp.reshape(xp.where(mask, xp.take(exact, rank), xp.reshape(var, (-1,))),
                         var.shape)
        mean = xp.reshape(xp.where(mask, xp.take(direct, rank), xp.reshape(mean, (-1,))),
                          mean.shape)
    var = var * config.covariance_factor()
    m0 = xp.where(agree, -shift, m0)
    var = xp.where(agree, xp.zeros_like(var), var)
    mean = xp.where(agree, xp.zeros_like(mean), mean)
    return d0, m0, var, shift, agree, mean


def image_moments(a: Array, config: SSIMConfig, xp: Namespace) -> tuple[Array, Array]:
    """Local mean and (normalised) variance of each image.

    Parameters
    ----------
    a : Array, shape (..., H, W, C), floating
    config : SSIMConfig
    xp : Namespace

    Returns
    -------
    mu, var : Array, shape (..., Ho, Wo, C)
        ``mu = sum_k w_k a_k``; ``var = f * sum_k w_k (a_k - mu)^2`` with ``f`` the
        config's covariance factor.
    """
    _, m0, var, shift = shifted_moments(a, config, xp)
    return m0 + shift, var
