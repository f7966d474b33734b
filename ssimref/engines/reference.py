"""The reference engine: tiles of pairs computed by the core's array-API code.

Runs on any array library (NumPy, CuPy, ``array_api_strict``, ...). A tile broadcasts its
row images against its column images, ``(ta, 1, H, W, C)`` against ``(1, tb, H, W, C)``,
and evaluates the per-window defects of :mod:`ssimref.similarity` for every pair at once,
so a tile holds a few arrays of ``ta tb H W C`` values (:func:`bytes_per_pair`). This is
the engine every fast path is checked against, and the one gradients run on: its
vector-Jacobian blocks are the exact, hand-derived backward pass of
:class:`ssimref.gradients.PairForward`.

It also serves the fused engines: :func:`refine_near_zero` recomputes the pairs they put
within their accuracy floor of 0.
"""

from __future__ import annotations

from ..backend import namespace, to_numpy
from ..gradients import PairForward
from ..kinds import get_kind
from ..similarity import pair_defects

__all__ = ["NAME", "squared_block", "bytes_per_pair", "bytes_per_image", "max_tile_pairs",
           "symmetrise_upper", "refine_near_zero", "value_and_vjp_block",
           "paired_value_and_vjp", "vjp_bytes_per_pair"]

NAME = "reference"

# Tiles larger than this are slower, not faster: a tile streams several arrays of its
# size, which then no longer stay in cache (measured on 28x28 patches and 8x8 digits:
# 32 MiB tiles 2-4x faster than 1024 MiB ones).
_FAST_TILE_BYTES = 32 * 2**20


def bytes_per_pair(image_shape, config) -> int:
    """Peak float64 bytes one pair of a tile holds: the difference image, its shifted copy
    and square, the row-filtered intermediates and the per-window moments and defects."""
    h, w, c = image_shape
    ho, wo = config.positions(h, w)
    return 8 * (4 * h * w * c + 3 * ho * w * c + 12 * ho * wo * c)


def bytes_per_image(image_shape, config) -> int:
    """Per-image terms are recomputed per pair here, so an image costs nothing apart from
    its pairs."""
    return 0


def max_tile_pairs(image_shape, config) -> int:
    """Pairs in a 32 MiB tile: larger tiles fall out of cache and run slower."""
    return max(1, _FAST_TILE_BYTES // bytes_per_pair(image_shape, config))


def vjp_bytes_per_pair(image_shape, config) -> int:
    """A value-and-VJP tile keeps the forward moments for the backward pass and builds
    pixel gradients: about three forward tiles."""
    return 3 * bytes_per_pair(image_shape, config)


def symmetrise_upper(block, xp):
    """The square ``block`` with its strict upper triangle mirrored below the diagonal and
    a zero diagonal: exactly symmetric, each unordered pair taken from one computation."""
    side = block.shape[0]
    rows = xp.arange(side)[:, None]
    cols = xp.arange(side)[None, :]
    block = xp.where(rows < cols, block, block.T)
    return xp.where(rows == cols, xp.zeros_like(block), block)


def squared_block(Xa, Yb, kind, config, *, upper=False):
    """``D^2`` of every pair of two float64 tiles ``(ta, H, W, C)``, ``(tb, H, W, C)``:
    an array (ta, tb); with ``upper`` (``Xa is Yb``) exactly symmetric with a zero
    diagonal."""
    xp = namespace(Xa)
    t1, t2 = pair_defects(Xa[:, None, ...], Yb[None, :, ...], config, xp)
    block = xp.sum(get_kind(kind).squared(t1, t2), axis=(-3, -2, -1))
    return symmetrise_upper(block, xp) if upper else block


def refine_near_zero(block, Xa, Yb, upper, floor, kind, config):
    """Recompute with this engine the pairs a fused engine put within its accuracy floor
    of 0 (docs/engines.md): there the fused engine's absolute error is largest relative
    to the value, and the reference is exactly 0 for images that agree on every window.
    Such pairs are rare (near-duplicates), so this costs nothing on ordinary data."""
    near = to_numpy((block > 0) & (block <= floor))
    if not near.any():
        return block
    for i, j in zip(*near.nonzero()):
        if upper and i > j:
            continue
        value = squared_block(Xa[i:i + 1, ...], Yb[j:j + 1, ...], kind, config)[0, 0]
        block[i, j] = value
        if upper:
            block[j, i] = value
    return block


def value_and_vjp_block(Xa, Yb, kind, config, cotangent, *, upper=False, wrt_y=True):
    """One forward pass over the pairs of a tile and the backward pass of a function of
    it.

    ``cotangent(S)`` receives the tile's ``S = D^2`` block (symmetrised with a zero
    diagonal when ``upper``) and returns ``(value, W)``: whatever the caller keeps, and the
    cotangent ``W`` (ta, tb) of ``S``. Returns ``(value, dXa, dYb)`` with
    ``dXa[i] = sum_j W_ij dS_ij/dx_i`` and ``dYb[j] = sum_i W_ij dS_ij/dy_j`` (None unless
    ``wrt_y`` or ``upper``; for a diagonal tile both are gradients with respect to the
    same stack, kept apart so that callers add them in a fixed order).
    """
    xp = namespace(Xa)
    forward = PairForward(Xa[:, None, ...], Yb[None, :, ...], kind, config, xp)
    S = symmetrise_upper(forward.S, xp) if upper else forward.S
    value, weight = cotangent(S)
    gx, gy = forward.vjp(weight, wrt_y=wrt_y or upper)
    return value, gx[:, 0, ...], (None if gy is None else gy[0, ...])


def paired_value_and_vjp(X, Y, kind, config, cotangent):
    """Matched pairs ``(X[i], Y[i])``: ``cotangent(S)`` gets their ``S = D^2`` (n,) and
    returns ``(value, w)``; returns ``(value, dX, dY)``, the gradients of
    ``sum_i w_i S_i`` (both None when ``w`` is None)."""
    forward = PairForward(X, Y, kind, config, namespace(X))
    value, weight = cotangent(forward.S)
    if weight is None:
        return value, None, None
    gx, gy = forward.vjp(weight)
    return value, gx, gy
