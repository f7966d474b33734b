"""SSIM and its two factors, s1 (luminance) and s2 (contrast-structure).

For windows ``x``, ``y`` of one position (docs/conventions.md, "The quantities")::

    s1 = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1)
    s2 = (2 sigma_xy + c2) / (sigma_x^2 + sigma_y^2 + c2)
    SSIM = s1 s2                       (c3 = c2 / 2 merges contrast and structure)

Internally both factors are computed through their defects ``t = 1 - s``::

    t1 = (mu_x - mu_y)^2 / (mu_x^2 + mu_y^2 + c1)
    t2 = sigma_{x-y}^2 / (sigma_x^2 + sigma_y^2 + c2)

which are the squared SSIM distances themselves (Eq. (1) exact is ``sqrt(t2)``, Eq. (2)
``sqrt(t1 + t2)``), so distances, maps and SSIM all come from one formula.
"""

from __future__ import annotations

from typing import Any

from .backend import Array, ArrayLike, Namespace, float_dtype, namespace
from .config import SSIMConfig, resolve_config
from .moments import difference_moments, image_moments, in_range_units
from .validation import channels_back, check_channel_axis, check_images

__all__ = ["ssim_components", "ssim_map", "ssim", "pair_in_units"]


def pair_in_units(x: Array, y: Array, config: SSIMConfig, xp: Namespace,
                  dtype: Any = None) -> tuple[Array, Array, SSIMConfig, Array | None]:
    """Two validated images in units of the data range, in the working precision.

    In float32 the images are shifted in float64 by a common offset (the mean of both, per
    channel) before they are cast: the cast then rounds values of the order of the
    images' variation, not of their offset (at an offset of 1e8 on 8-bit data a cast
    before the shift would keep no bit of the variation). The difference ``x - y`` is
    unchanged by the shift; the offset comes back into the local means.

    Parameters
    ----------
    x, y : Array, shape (H, W, C)
        Any real dtype.
    config : SSIMConfig
        With its data range set.
    xp : Namespace
    dtype : {None, "float64", "float32"}
        Working precision (float64 when None).

    Returns
    -------
    x, y : Array
        ``x / L`` and ``y / L`` (:func:`ssimref.moments.in_range_units`), in ``dtype``;
        in float32 minus ``offset``.
    config : SSIMConfig
        :meth:`SSIMConfig.in_range_units`.
    offset : Array, shape (1, 1, C), in ``dtype``, or None
        What to add to the local means (float32), None in float64.
    """
    work = float_dtype(xp, dtype)
    u, v = in_range_units(x, config, xp), in_range_units(y, config, xp)
    offset = None
    if work != xp.float64:
        shift = (xp.mean(u, axis=(0, 1), keepdims=True)
                 + xp.mean(v, axis=(0, 1), keepdims=True)) / 2.0
        u, v = xp.astype(u - shift, work), xp.astype(v - shift, work)
        offset = xp.astype(shift, work)
    return u, v, config.in_range_units(), offset


def defects(mu_x: Array, var_x: Array, mu_y: Array, var_y: Array, mean_d: Array,
            var_d: Array, c1: float, c2: float) -> tuple[Array, Array]:
    """``(t1, t2) = (1 - s1, 1 - s2)`` from local moments of the images and of their
    difference (see the module docstring).

    Parameters
    ----------
    mu_x, var_x, mu_y, var_y : Array
        Local means and normalised variances of the two images.
    mean_d, var_d : Array
        Local mean and normalised variance of their difference ``x - y``.
    c1, c2 : float
        The stabilising constants.

    Returns
    -------
    t1, t2 : Array
        Broadcast like the arguments.
    """
    t1 = (mean_d * mean_d) / (mu_x * mu_x + mu_y * mu_y + c1)
    t2 = var_d / (var_x + var_y + c2)
    return t1, t2


def pair_defects(x: Array, y: Array, config: SSIMConfig, xp: Namespace,
                 offset: Array | None = None) -> tuple[Array, Array]:
    """The defect maps ``(t1, t2)`` of images (trusted input).

    Parameters
    ----------
    x, y : Array, shape (..., H, W, C), floating; leading axes broadcastable
    config : SSIMConfig
        With its data range set.
    xp : Namespace
    offset : Array, broadcastable to (..., 1, 1, C), optional
        A common offset already subtracted from both images (:func:`pair_in_units`),
        added back to their local means.

    Returns
    -------
    t1, t2 : Array, shape (..., Ho, Wo, C)
    """
    mu_x, var_x = image_moments(x, config, xp)
    mu_y, var_y = image_moments(y, config, xp)
    if offset is not None:
        mu_x, mu_y = mu_x + offset, mu_y + offset
    *_, var_d, _, _, mean_d = difference_moments(x - y, config, xp)
    c1, c2 = config.constants()
    return defects(mu_x, var_x, mu_y, var_y, mean_d, var_d, c1, c2)


def _squeeze(a: Array, squeeze: bool, channel_axis: Any = None,
             xp: Namespace | None = None) -> Array:
    """A channels-last map in the layout of the input images: without its channel axis
    for 2-D images, with the channels where ``channel_axis`` had them."""
    if squeeze:
        return a[..., 0]
    if channel_axis is None:
        return a
    return channels_back(a, check_channel_axis(channel_axis, 3), xp or namespace(a))


def ssim_components(x: ArrayLike, y: ArrayLike, config: SSIMConfig | None = None, *,
                    dtype: Any = None, channel_axis: int | None = None,
                    **conventions: Any) -> tuple[Array, Array]:
    """The luminance and contrast-structure maps ``s1`` and ``s2`` of two images.

    Parameters
    ----------
    x, y : array_like, shape (H, W) or (H, W, C)
        Two images of the same shape, channels last unless ``channel_axis`` says
        otherwise; any array-API array (NumPy, CuPy, ...) or array-like. Integer images
        are converted to floating point before any arithmetic, so uint8 products cannot
        overflow.
    config : SSIMConfig, optional
        Conventions (window, size, sigma, stride, data_range, k1, k2, covariance);
        the defaults of :class:`SSIMConfig` when omitted.
    dtype : {None, "float64", "float32"}
        Working and output precision; float64 when None.
    channel_axis : int, optional
        scikit-image's argument: the axis of 3-D images that holds the channels (e.g. 0
        for ``(C, H, W)``). None (default): channels last, and a last axis longer than 4
        is refused as the likely sign of channel-first data.
    **conventions
        Any field of :class:`SSIMConfig` overriding ``config`` (e.g. ``data_range=255``).

    Returns
    -------
    s1, s2 : arrays, shape (Ho, Wo) or (Ho, Wo, C)
        One value per valid window position, ``Ho = (H - size) // stride + 1``, the
        channels where ``channel_axis`` put them. Both lie in ``[-1, 1]``; they are 1 for
        identical windows. Same array library as ``x``.

    Raises
    ------
    TypeError
        For images of different array libraries, non-real dtypes, masked arrays, an
        unsupported ``dtype`` or ``channel_axis``, or an unknown convention keyword.
    ValueError
        For images of different shapes or other dimensions, more than 4 channels without
        ``channel_axis``, empty images, NaN or Inf, a window larger than the images, an
        invalid convention, or images other than uint8 and uint16 without ``data_range``.

    See Also
    --------
    ssim_map : their product.
    ssimref.distance_map : the paper's distances built from them.

    Notes
    -----
    ``s1 = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1)``,
    ``s2 = (2 sigma_xy + c2) / (sigma_x^2 + sigma_y^2 + c2)``, ``c1 = (k1 L)^2``,
    ``c2 = (k2 L)^2``; ``SSIM = s1 s2`` because ``c3 = c2 / 2``.

    References
    ----------
    Wang et al., IEEE TIP 13(4), 2004, Eqs. (6)-(13). Ghojogh, Karray, Crowley, ICIAR 2020,
    Section 2.
    """
    config = resolve_config(config, **conventions)
    xp, x, y, config, squeeze = check_images(x, y, config, dtype, channel_axis=channel_axis)
    x, y, config, offset = pair_in_units(x, y, config, xp, dtype)
    t1, t2 = pair_defects(x, y, config, xp, offset)
    return (_squeeze(1.0 - t1, squeeze, channel_axis, xp),
            _squeeze(1.0 - t2, squeeze, channel_axis, xp))


def ssim_map(x: ArrayLike, y: ArrayLike, config: SSIMConfig | None = None, *,
             dtype: Any = None, channel_axis: int | None = None,
             **conventions: Any) -> Array:
    """The SSIM map ``s1 * s2``, one value per valid window position (and channel).

    Parameters
    ----------
    x, y, config, dtype, channel_axis, **conventions
        As for :func:`ssim_components`.

    Returns
    -------
    Array, shape (Ho, Wo) or (Ho, Wo, C)
        Values in ``[-1, 1]``; 1 for identical windows. The channels where
        ``channel_axis`` put them.

    Raises
    ------
    TypeError, ValueError
        As for :func:`ssim_components`.

    See Also
    --------
    ssim : its mean.
    ssim_components : the two factors.

    References
    ----------
    Wang et al., IEEE TIP 13(4), 2004, Eq. (13) (with ``C3 = C2 / 2``).
    """
    config = resolve_config(config, **conventions)
    xp, x, y, config, squeeze = check_images(x, y, config, dtype, channel_axis=channel_axis)
    x, y, config, offset = pair_in_units(x, y, config, xp, dtype)
    t1, t2 = pair_defects(x, y, config, xp, offset)
    return _squeeze((1.0 - t1) * (1.0 - t2), squeeze, channel_axis, xp)


def ssim(x: ArrayLike, y: ArrayLike, config: SSIMConfig | None = None, *,
         dtype: Any = None, channel_axis: int | None = None, **conventions: Any) -> float:
    """Mean SSIM of two images: the mean of :func:`ssim_map` over window positions and
    channels (scikit-image's convention for multichannel images).

    Parameters
    ----------
    x, y, config, dtype, channel_axis, **conventions
        As for :func:`ssim_components`.

    Returns
    -------
    float
        In ``[-1, 1]``; 1 for identical images.

    Raises
    ------
    TypeError, ValueError
        As for :func:`ssim_components`.

    See Also
    --------
    ssim_map : the map it averages.
    ssimref.kernels.mean_ssim_kernel : mean SSIM of every pair of two stacks.

    References
    ----------
    Wang et al., IEEE TIP 13(4), 2004, Eq. (17) (the mean SSIM index).
    """
    s = ssim_map(x, y, config, dtype=dtype, channel_axis=channel_axis, **conventions)
    return float(namespace(s).mean(s))
