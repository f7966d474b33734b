"""The paper's SSIM distances between two images: per-window maps and their Frobenius norm.

Per window, with ``t1 = 1 - s1`` and ``t2 = 1 - s2`` (see :mod:`ssimref.similarity`), the
squared per-window distance of each kind is a row of the table in :mod:`ssimref.kinds`:
``"eq1"`` (the paper's Eq. (1), exact) ``sqrt(1 - s2)``, squared ``t2``;
``"eq1-uncentered"`` ``sqrt(1 - s1 s2)``, squared ``t1 + t2 - t1 t2``; ``"eq2"``
(Eq. (2)) ``sqrt(2 - s1 - s2)``, squared ``t1 + t2``.

"eq1" is the paper's Eq. (1) on centred windows: once every window has zero mean, s1 = 1
and ``1 - SSIM = 1 - s2 = ||x - y||^2 / (||x||^2 + ||y||^2 + c)`` with ``c = (q - 1) c2``
under sample covariance. "eq1-uncentered" is the approximation some papers use on raw
windows. The image distance is the Frobenius norm of the map,
``D = sqrt(sum over windows (and channels) of the squared per-window distance)``: one
square root of a sum of squares, never squares of per-window roots.
"""

from __future__ import annotations

from typing import Any

from .backend import Array, ArrayLike, Namespace
from .config import SSIMConfig, resolve_config
from .kinds import KindName, get_kind
from .similarity import pair_defects, pair_in_units
from .validation import channels_back, check_channel_axis, check_images, check_kind

__all__ = ["distance_map", "distance"]


def _squared_map(x: ArrayLike, y: ArrayLike, kind: str, config: SSIMConfig,
                 dtype: Any, channel_axis: Any) -> tuple[Namespace, Array]:
    check_kind(kind)
    xp, x, y, config, squeeze = check_images(x, y, config, dtype, channel_axis=channel_axis)
    x, y, config, offset = pair_in_units(x, y, config, xp, dtype)
    t1, t2 = pair_defects(x, y, config, xp, offset)
    sq = get_kind(kind).squared(t1, t2)
    if squeeze:
        return xp, sq[..., 0]
    axis = None if channel_axis is None else check_channel_axis(channel_axis, 3)
    return xp, channels_back(sq, axis, xp)


def distance_map(x: ArrayLike, y: ArrayLike, kind: KindName = "eq2",
                 config: SSIMConfig | None = None, *, dtype: Any = None,
                 channel_axis: int | None = None, **conventions: Any) -> Array:
    """The paper's distance map ``D'``: one SSIM distance per window position.

    Parameters
    ----------
    x, y : array_like, shape (H, W) or (H, W, C)
        Two images of the same shape, channels last unless ``channel_axis`` says
        otherwise.
    kind : {"eq2", "eq1", "eq1-uncentered"}, default "eq2"
        Which distance (module docstring).
    config : SSIMConfig, optional
        Conventions; keyword overrides as in :func:`ssimref.ssim_components`.
    dtype : {None, "float64", "float32"}
        Working and output precision; float64 when None.
    channel_axis : int, optional
        The channel axis of 3-D images, as for :func:`ssimref.ssim_components`.
    **conventions
        Fields of :class:`SSIMConfig` overriding ``config``.

    Returns
    -------
    Array, shape (Ho, Wo) or (Ho, Wo, C)
        Non-negative; exactly 0 for identical images. Same array library as ``x``; the
        channels where ``channel_axis`` put them.

    Raises
    ------
    ValueError
        For an unknown ``kind``; and the errors of :func:`ssimref.ssim_components`.
    TypeError
        As for :func:`ssimref.ssim_components`.

    See Also
    --------
    distance : its Frobenius norm.
    ssimref.ssim_components : the factors ``s1``, ``s2`` the distances are built from.

    References
    ----------
    Ghojogh, Karray, Crowley, ICIAR 2020, Eqs. (1) and (2); Brunet, Vrscay, Wang,
    IEEE TIP 21(4), 2012.
    """
    xp, sq = _squared_map(x, y, kind, resolve_config(config, **conventions), dtype,
                          channel_axis)
    return xp.sqrt(sq)


def distance(x: ArrayLike, y: ArrayLike, kind: KindName = "eq2",
             config: SSIMConfig | None = None, *, squared: bool = False, dtype: Any = None,
             channel_axis: int | None = None, **conventions: Any) -> float:
    """SSIM distance of two images: the Frobenius norm of :func:`distance_map`.

    ``D(x, y) = sqrt(sum_p d_p(x, y)^2)`` over window positions ``p`` (and channels), with
    ``d_p`` the per-window distance of ``kind``. Note that ``D`` sums over windows (it is
    not a mean), so it grows with the number of window positions.

    Parameters
    ----------
    x, y, kind, config, dtype, channel_axis, **conventions
        As for :func:`distance_map`.
    squared : bool, default False
        Return ``D^2`` (the sum of squared per-window distances) instead of ``D``.

    Returns
    -------
    float
        Non-negative; exactly 0 for identical images.

    Raises
    ------
    ValueError, TypeError
        As for :func:`distance_map`.

    See Also
    --------
    distance_map : the per-window distances.
    ssimref.distance_matrix : all pairs of two stacks.
    ssimref.paired_distance : matched pairs of two stacks.

    References
    ----------
    Ghojogh, Karray, Crowley, ICIAR 2020, Section 2 (``D(i, j) := ||D'_ij||_F``).
    """
    xp, sq = _squared_map(x, y, kind, resolve_config(config, **conventions), dtype,
                          channel_axis)
    total = float(xp.sum(sq))
    return total if squared else total ** 0.5
