"""SSIM and its two factors, s1 (luminance) and s2 (contrast-structure).

For windows ``x``, ``y`` of one position (REFERENCE.md section 1)::

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

from .backend import namespace
from .config import resolve_config
from .moments import difference_moments, image_moments
from .validation import check_images

__all__ = ["ssim_components", "ssim_map", "ssim"]


def defects(mu_x, var_x, mu_y, var_y, mean_d, var_d, c1, c2):
    """``(t1, t2) = (1 - s1, 1 - s2)`` from local moments of the images and of their
    difference (see the module docstring). Broadcasts like its arguments."""
    t1 = (mean_d * mean_d) / (mu_x * mu_x + mu_y * mu_y + c1)
    t2 = var_d / (var_x + var_y + c2)
    return t1, t2


def pair_defects(x, y, config, xp):
    """``(t1, t2)`` maps ``(..., Ho, Wo, C)`` for images ``(..., H, W, C)`` (trusted)."""
    mu_x, var_x = image_moments(x, config, xp)
    mu_y, var_y = image_moments(y, config, xp)
    _, m0, var_d, shift, _ = difference_moments(x - y, config, xp)
    mean_d = m0 + shift
    c1, c2 = config.constants()
    return defects(mu_x, var_x, mu_y, var_y, mean_d, var_d, c1, c2)


def _squeeze(a, squeeze):
    return a[..., 0] if squeeze else a


def ssim_components(x, y, config=None, *, dtype=None, **conventions):
    """The luminance and contrast-structure maps ``s1`` and ``s2`` of two images.

    Parameters
    ----------
    x, y : array_like, shape (H, W) or (H, W, C)
        Two images of the same shape, channels last; any array-API array (NumPy, CuPy,
        ...) or array-like. Integer images are converted to floating point before any
        arithmetic, so uint8 products cannot overflow.
    config : SSIMConfig, optional
        Conventions (window, size, sigma, stride, data_range, k1, k2, covariance);
        the defaults of :class:`SSIMConfig` when omitted.
    dtype : {None, "float64", "float32"}
        Working and output precision; float64 when None.
    **conventions
        Any field of :class:`SSIMConfig` overriding ``config`` (e.g. ``data_range=255``).

    Returns
    -------
    s1, s2 : arrays, shape (Ho, Wo) or (Ho, Wo, C)
        One value per valid window position, ``Ho = (H - size) // stride + 1``. Both lie
        in ``[-1, 1]``; they are 1 for identical windows.

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
    xp, x, y, config, squeeze = check_images(x, y, config, dtype)
    t1, t2 = pair_defects(x, y, config, xp)
    return _squeeze(1.0 - t1, squeeze), _squeeze(1.0 - t2, squeeze)


def ssim_map(x, y, config=None, *, dtype=None, **conventions):
    """The SSIM map ``s1 * s2``, one value per valid window position (and channel).

    Parameters and conventions as for :func:`ssim_components`; returns an array of shape
    (Ho, Wo) or (Ho, Wo, C).
    """
    config = resolve_config(config, **conventions)
    xp, x, y, config, squeeze = check_images(x, y, config, dtype)
    t1, t2 = pair_defects(x, y, config, xp)
    return _squeeze((1.0 - t1) * (1.0 - t2), squeeze)


def ssim(x, y, config=None, *, dtype=None, **conventions) -> float:
    """Mean SSIM of two images: the mean of :func:`ssim_map` over window positions and
    channels (scikit-image's convention for multichannel images).

    Returns
    -------
    float
    """
    s = ssim_map(x, y, config, dtype=dtype, **conventions)
    return float(namespace(s).mean(s))
