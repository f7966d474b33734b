"""The reference engine: tiles of pairs computed by the core's array-API code.

Runs on any array library (NumPy, CuPy, ``array_api_strict``, ...). A tile broadcasts its
row images against its column images, ``(ta, 1, H, W, C)`` against ``(1, tb, H, W, C)``,
and evaluates the per-window defects of :mod:`ssimref.similarity` for every pair at once,
so a tile holds a few arrays of ``ta tb H W C`` values (:func:`bytes_per_pair`). This is
the engine every fast path is checked against, values and gradients: its
vector-Jacobian blocks are the exact, hand-derived backward pass of
:class:`ssimref.gradients.PairForward`, and it runs gradients on arrays no fused engine
takes (``array_api_strict``, ...).

It also serves the fused engines: :func:`refine_near_zero` and
:func:`refine_paired_near_zero` recompute the pairs they put within their accuracy floor
of 0.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.utils import gen_batches

from ..backend import Array, Namespace, namespace, to_numpy
from ..config import SSIMConfig
from ..gradients import PairForward
from ..kinds import get_kind
from ..similarity import pair_defects

__all__ = ["NAME", "squared_block", "bytes_per_pair", "bytes_per_image", "max_tile_pairs",
           "symmetrise_upper", "refine_near_zero", "refine_paired_near_zero",
           "value_and_vjp_block", "paired_value_and_vjp", "vjp_bytes_per_pair",
           "vjp_bytes_per_image", "vjp_max_tile_pairs"]

NAME = "reference"

# Tiles larger than this are slower, not faster: a tile streams several arrays of its
# size, which then no longer stay in cache (measured on 28x28 patches and 8x8 digits:
# 32 MiB tiles 2-4x faster than 1024 MiB ones).
_FAST_TILE_BYTES = 32 * 2**20


def bytes_per_pair(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """Peak float64 bytes one pair of a tile holds: the difference image, its shifted copy
    and square, the row-filtered intermediates and the per-window moments and defects.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W, C)``.
    config : SSIMConfig

    Returns
    -------
    int
    """
    h, w, c = image_shape
    ho, wo = config.positions(h, w)
    return 8 * (4 * h * w * c + 3 * ho * w * c + 12 * ho * wo * c)


def bytes_per_image(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """Per-image terms are recomputed per pair here, so an image costs nothing apart from
    its pairs.

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
        0.
    """
    return 0


def max_tile_pairs(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """Pairs in a 32 MiB tile: larger tiles fall out of cache and run slower.

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
        At least 1.
    """
    return max(1, _FAST_TILE_BYTES // bytes_per_pair(image_shape, config))


def vjp_bytes_per_pair(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """A value-and-VJP tile keeps the forward moments for the backward pass and builds
    pixel gradients: about three forward tiles.

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
        ``3 * bytes_per_pair(image_shape, config)``.
    """
    return 3 * bytes_per_pair(image_shape, config)


def vjp_bytes_per_image(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """Per-image terms are recomputed per pair here: an image costs nothing apart from
    its pairs.

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
        0.
    """
    return 0


def vjp_max_tile_pairs(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """No cap of its own: ``working_memory`` alone sizes value-and-VJP tiles.

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
        ``sys.maxsize``.
    """
    return sys.maxsize


def symmetrise_upper(block: Array, xp: Namespace) -> Array:
    """The square ``block`` with its strict upper triangle mirrored below the diagonal and
    a zero diagonal: exactly symmetric, each unordered pair taken from one computation.

    Parameters
    ----------
    block : Array, shape (t, t)
    xp : Namespace

    Returns
    -------
    Array, shape (t, t)
        A new array.
    """
    side = block.shape[0]
    rows = xp.arange(side)[:, None]
    cols = xp.arange(side)[None, :]
    block = xp.where(rows < cols, block, block.T)
    return xp.where(rows == cols, xp.zeros_like(block), block)


def squared_block(Xa: Array, Yb: Array, kind: str, config: SSIMConfig, *,
                  upper: bool = False) -> Array:
    """``D^2`` of every pair of two float64 tiles.

    Parameters
    ----------
    Xa : Array, shape (ta, H, W, C), float64
    Yb : Array, shape (tb, H, W, C), float64
        Same library as ``Xa``.
    kind : {"eq1", "eq1-uncentered", "eq2"}
    config : SSIMConfig
        With its data range set.
    upper : bool, default False
        ``Xa is Yb`` (a diagonal tile): the block is exactly symmetric with a zero
        diagonal.

    Returns
    -------
    Array, shape (ta, tb), float64

    See Also
    --------
    ssimref.engines.Engine : the protocol.
    """
    xp = namespace(Xa)
    t1, t2 = pair_defects(Xa[:, None, ...], Yb[None, :, ...], config, xp)
    block = xp.sum(get_kind(kind).squared(t1, t2), axis=(-3, -2, -1))
    return symmetrise_upper(block, xp) if upper else block


def refine_near_zero(block: Array, Xa: Array, Yb: Array, upper: bool, floor: float,
                     kind: str, config: SSIMConfig, *,
                     near: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None = None,
                     root: bool = False) -> Array:
    """Recompute with this engine the pairs a fused engine put within its accuracy floor
    of 0, exact zeros included (docs/engines.md): there the fused engine's absolute error
    is largest relative to the value (a fused 0 may hide a tiny distance whose window
    terms cancelled), the reference is exactly 0 for images that agree on every window
    and accurate where they nearly agree. Such pairs are rare (duplicates and
    near-duplicates), so this costs nothing on ordinary data; the diagonal of a diagonal
    tile (an image with itself) is exactly 0 and skipped.

    Parameters
    ----------
    block : Array, shape (ta, tb)
        The fused engine's ``D^2`` block (NumPy or CuPy: integer-array assignment),
        modified in place.
    Xa, Yb, kind, config, upper
        As for :func:`squared_block`.
    floor : float
        :func:`ssimref.engines.accuracy_floor`.
    near : (numpy.ndarray, numpy.ndarray) of intp, optional
        The rows and columns of the pairs whose fused ``D^2`` is within ``floor`` (above
        the diagonal only, with ``upper``), as the fused engine found them while storing
        the block; by default they are found here, from ``block``.
    root : bool, default False
        ``block`` holds ``D`` rounded to its dtype, not ``D^2``: the recomputed values are
        rooted, then rounded once to the block's dtype (``near`` is then needed: the
        floor bounds ``D^2`` in float64).

    Returns
    -------
    Array
        ``block``.

    Raises
    ------
    ValueError
        For ``root`` without ``near``.
    """
    if near is not None:
        rows, cols = near
    elif root:
        raise ValueError("refine_near_zero with root=True needs near=: the floor bounds "
                         "D^2 in float64, which a rounded D block no longer holds")
    else:
        mask = to_numpy(block <= floor)
        if not mask.any():
            return block
        if upper:  # the diagonal is exactly 0, the lower triangle a mirror
            mask = np.triu(mask, 1)
        rows, cols = mask.nonzero()
    if rows.size == 0:
        return block
    xp = namespace(block)
    values = _paired_squared(Xa, Yb, rows, cols, kind, config)
    values = xp.asarray(np.sqrt(values) if root else values)
    rows, cols = xp.asarray(rows), xp.asarray(cols)
    block[rows, cols] = values
    if upper:
        block[cols, rows] = values
    return block


#: Memory for the pairs that :func:`refine_near_zero` recomputes at once: batches that stay
#: in cache (510 pairs of 28x28 patches, 7x7 windows: 0.028 s in batches of 4 MiB, 0.041 s
#: in batches of 32 MiB, 0.037 s in batches of 1 MiB).
_REFINE_BYTES = 4 * 2**20


def _paired_squared(X: Array, Y: Array, rows: npt.NDArray[np.intp],
                    cols: npt.NDArray[np.intp], kind: str,
                    config: SSIMConfig) -> npt.NDArray[np.float64]:
    """``D^2`` of the pairs ``(X[rows[k]], Y[cols[k]])``, in batches of
    :data:`_REFINE_BYTES`: the defects of :func:`squared_block` on matched pairs instead of
    a broadcast grid (every pair's windows are computed, and summed, as there). A pair of
    identical images is exactly 0 without computing it: they agree on every window, where
    the reference is exactly 0 (the pairs near 0 of real data are mostly duplicates)."""
    xp = namespace(X)
    squared = get_kind(kind).squared
    out = np.zeros(rows.size)
    if rows.size == 0:
        return out
    batch = max(1, _REFINE_BYTES // bytes_per_pair(tuple(X.shape[1:]), config))
    for part in gen_batches(rows.size, batch):
        a = xp.take(X, xp.asarray(rows[part]), axis=0)
        b = xp.take(Y, xp.asarray(cols[part]), axis=0)
        differ = np.flatnonzero(to_numpy(xp.any(a != b, axis=tuple(range(1, a.ndim)))))
        if differ.size == 0:
            continue
        if differ.size < a.shape[0]:
            keep = xp.asarray(differ)
            a, b = xp.take(a, keep, axis=0), xp.take(b, keep, axis=0)
        t1, t2 = pair_defects(a, b, config, xp)
        out[differ + part.start] = to_numpy(xp.sum(squared(t1, t2), axis=(-3, -2, -1)))
    return out


def refine_paired_near_zero(values: Array, X: Array, Y: Array, floor: float, kind: str,
                            config: SSIMConfig) -> Array:
    """:func:`refine_near_zero` for matched pairs: recompute with this engine the pairs
    ``(X[i], Y[i])`` a fused engine put within its accuracy floor of 0.

    Parameters
    ----------
    values : Array, shape (n,)
        The fused engine's ``D^2`` of the pairs (NumPy or CuPy), modified in place.
    X, Y : Array, shape (n, H, W, C), float64
    floor : float
        :func:`ssimref.engines.accuracy_floor`.
    kind, config
        As for :func:`squared_block`.

    Returns
    -------
    Array
        ``values``.
    """
    index = to_numpy((values > 0) & (values <= floor)).nonzero()[0]
    if index.size:
        xp = namespace(values)
        values[xp.asarray(index)] = xp.asarray(_paired_squared(X, Y, index, index, kind,
                                                               config))
    return values


def value_and_vjp_block(Xa: Array, Yb: Array, kind: str, config: SSIMConfig,
                        cotangent: Callable[[Array], tuple[Any, Array]], *,
                        upper: bool = False,
                        wrt_y: bool = True) -> tuple[Any, Array, Array | None]:
    """One forward pass over the pairs of a tile and the backward pass of a function of
    it.

    Parameters
    ----------
    Xa, Yb, kind, config, upper
        As for :func:`squared_block`.
    cotangent : callable
        ``cotangent(S)`` receives the tile's ``S = D^2`` block (symmetrised with a zero
        diagonal when ``upper``) and returns ``(value, W)``: whatever the caller keeps,
        and the cotangent ``W`` (ta, tb) of ``S``.
    wrt_y : bool, default True
        Also return ``dYb``.

    Returns
    -------
    value : Any
        The first item of ``cotangent(S)``.
    dXa : Array, shaped like Xa
        ``dXa[i] = sum_j W_ij dS_ij/dx_i``; with ``upper``, the gradient of
        ``sum_{i<j} W_ij S_ij`` with respect to the one stack (both roles of each image).
    dYb : Array, shaped like Yb, or None
        ``dYb[j] = sum_i W_ij dS_ij/dy_j``; None with ``upper`` or without ``wrt_y``.

    See Also
    --------
    ssimref.engines.Engine.value_and_vjp_block : the protocol.
    """
    xp = namespace(Xa)
    forward = PairForward(Xa[:, None, ...], Yb[None, :, ...], kind, config, xp)
    S = symmetrise_upper(forward.S, xp) if upper else forward.S
    value, weight = cotangent(S)
    if upper:
        rows = xp.arange(weight.shape[0])[:, None]
        cols = xp.arange(weight.shape[1])[None, :]
        weight = xp.where(rows < cols, weight, xp.zeros_like(weight))
    gx, gy = forward.vjp(weight, wrt_y=wrt_y or upper)
    if upper:
        assert gy is not None  # asked for
        return value, gx[:, 0, ...] + gy[0, ...], None
    return value, gx[:, 0, ...], (None if gy is None else gy[0, ...])


def paired_value_and_vjp(
        X: Array, Y: Array, kind: str, config: SSIMConfig,
        cotangent: Callable[[Array], tuple[Any, Array | None]],
) -> tuple[Any, Array | None, Array | None]:
    """Values and gradients over matched pairs ``(X[i], Y[i])``.

    Parameters
    ----------
    X, Y : Array, shape (n, H, W, C), float64
    kind, config
        As for :func:`squared_block`.
    cotangent : callable
        ``cotangent(S)`` gets the pairs' ``S = D^2`` (n,) and returns ``(value, w)``.

    Returns
    -------
    value : Any
        The first item of ``cotangent(S)``.
    dX, dY : Array, shaped like X and Y, or None
        The gradients of ``sum_i w_i S_i`` (both None when ``w`` is None).
    """
    forward = PairForward(X, Y, kind, config, namespace(X))
    value, weight = cotangent(forward.S)
    if weight is None:
        return value, None, None
    gx, gy = forward.vjp(weight)
    return value, gx, gy
