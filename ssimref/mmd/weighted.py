"""The weighted form every MMD estimator reduces to, evaluated tile by tile.

With the pooled sample ``Z = [X; Y]`` and a weight matrix ``W = [[Wxx, Wxy], [Wxy^T,
Wyy]]`` (``Wxx``, ``Wyy`` symmetric),

    L = sum_ij W_ij k(z_i, z_j),     dL/dx_i = 2 sum_j W_ij d1k(x_i, z_j).

The ``(X, X)``, ``(X, Y)`` and ``(Y, Y)`` blocks are cut into square tiles by a tile plan
(:mod:`ssimref.tiling`) and run through an executor's reduction
(:mod:`ssimref.executor`: this process by default, or a Dask cluster): each weight tile
is built on the fly and handed with its points to the kernel's ``value_and_vjp``, and
only the tile's sum of ``W o K`` and its gradient rows come back; symmetric blocks are
visited once per unordered pair of tiles. No ``n x n``, ``n x m`` or ``(n + m) x (n + m)`` matrix exists at any time.

Memory bound: with ``t`` the tile side, chosen so that ``t^2 (kernel.bytes_per_pair + 24)``
bytes fit in ``working_memory`` MiB (and ``t <= 1024``), the peak extra memory is at most
``working_memory`` MiB for the tiles plus ``8 (2n + m + 6t) d`` bytes for the float64
copies of ``X`` and ``Y``, the gradient and the per-tile shifted blocks (``d`` the
dimension of a point; for SSIM kernels ``d`` = pixels x channels, and the SSIM pairs use
the kernel's own ``working_memory`` on top). ``tests/test_mmd.py`` checks it with
tracemalloc at ``n = m = 20,000``, ``d = 64``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from ..backend import Array, Namespace, namespace
from ..executor import TileTask, get_executor
from ..tiling import PairPlan, Tile, plan_pairs

if TYPE_CHECKING:
    from ..kernels.protocol import BoundKernel

__all__ = ["weighted_form", "constant_weights", "matrix_weights", "tile_plan", "WeightTiles"]

#: A weight-tile maker: ``tile(i0, i1, j0, j1)`` is the block ``W[i0:i1, j0:j1]``.
WeightTiles: TypeAlias = Callable[[int, int, int, int], Array]

_WEIGHT_BYTES = 24  # per pair: the weight tile, its doubled copy and the product W o K
# Tiles wider than this gain nothing: measured on RBF at n = 4,000 (d = 784), 1,000-wide
# tiles ran 1.7x faster than 3,600-wide ones (cache reuse, and symmetric blocks skip more
# of their lower triangle).
_MAX_SIDE = 1024


def tile_plan(ops: BoundKernel, n: int, m: int | None, working_memory: float) -> PairPlan:
    """Square tiles of the ``n x m`` block (symmetric when ``m`` is None) for a kernel.

    Parameters
    ----------
    ops : BoundKernel
        The kernel (its ``bytes_per_pair``).
    n : int
    m : int or None
    working_memory : float
        MiB (resolved).

    Returns
    -------
    PairPlan
        Tiles of side ``t`` with ``t^2 (bytes_per_pair + 24) <= working_memory``,
        ``t <= 1024``.
    """
    return plan_pairs(n, m, bytes_per_pair=ops.bytes_per_pair + _WEIGHT_BYTES,
                      working_memory=working_memory, max_side=_MAX_SIDE, square=True)


class _ConstantWeights:
    """Weight tiles of a constant block, optionally with a zero diagonal (global indices).
    Picklable (the namespace travels by name), so that an executor can ship it."""

    def __init__(self, value: float, zero_diagonal: bool, xp: Namespace) -> None:
        self.value, self.zero_diagonal, self.xp = float(value), bool(zero_diagonal), xp

    def __reduce__(self) -> tuple[Any, tuple[float, bool, str]]:
        return (_constant_weights_by_name, (self.value, self.zero_diagonal,
                                            self.xp.__name__))

    def __call__(self, i0: int, i1: int, j0: int, j1: int) -> Array:
        xp = self.xp
        W = xp.full((i1 - i0, j1 - j0), self.value, dtype=xp.float64)
        if self.zero_diagonal and i0 < j1 and j0 < i1:
            rows = xp.arange(i0, i1)[:, None]
            cols = xp.arange(j0, j1)[None, :]
            W = xp.where(rows == cols, xp.zeros_like(W), W)
        return W


def _constant_weights_by_name(value: float, zero_diagonal: bool,
                              namespace_name: str) -> _ConstantWeights:
    import importlib

    return _ConstantWeights(value, zero_diagonal, importlib.import_module(namespace_name))


class _MatrixWeights:
    """Weight tiles cut from a matrix (times ``scale``)."""

    def __init__(self, M: Array, scale: float) -> None:
        self.M, self.scale = M, float(scale)

    def __call__(self, i0: int, i1: int, j0: int, j1: int) -> Array:
        block = self.M[i0:i1, j0:j1]
        return block if self.scale == 1.0 else self.scale * block


def constant_weights(value: float, zero_diagonal: bool, xp: Namespace) -> WeightTiles:
    """Weight tiles of a constant block, optionally with a zero diagonal.

    Parameters
    ----------
    value : float
    zero_diagonal : bool
        Entries with equal global row and column index are 0.
    xp : Namespace

    Returns
    -------
    callable
        ``tile(i0, i1, j0, j1)``, a float64 array (i1 - i0, j1 - j0); picklable, so that
        an executor can send it to other processes.
    """
    return _ConstantWeights(value, zero_diagonal, xp)


def matrix_weights(M: Array, scale: float = 1.0) -> WeightTiles:
    """Weight tiles cut from a matrix.

    Parameters
    ----------
    M : Array, shape (n, m)
    scale : float, default 1.0

    Returns
    -------
    callable
        ``tile(i0, i1, j0, j1) = scale * M[i0:i1, j0:j1]``; picklable (with ``M``).
    """
    return _MatrixWeights(M, scale)


def _weights(weights: WeightTiles, tile: Tile) -> Array:
    return weights(tile.rows.start, tile.rows.stop, tile.cols.start, tile.cols.stop)


# The tile functions (module level, so that an executor can ship them; see
# ssimref.executor.TileTask). Each returns its tile's sum of W o K, not the blocks.
def _symmetric_tile(tile: Tile, Z: Array, ops: BoundKernel, weights: WeightTiles, *,
                    with_grad: bool) -> tuple[Array, Array | None, Array | None]:
    """``(sum W o K, dZ rows, dZ cols)`` of one tile of a symmetric block; off the
    diagonal, tiles (i, j) and (j, i) at once."""
    W = _weights(weights, tile)
    Za = Z[tile.rows, ...]
    xp = namespace(Za)
    if tile.diagonal:
        if with_grad:
            K, gi, _ = ops.value_and_vjp(Za, None, W)
            return xp.sum(W * K), gi, None
        return xp.sum(W * ops.gram(Za, None)), None, None
    if with_grad:
        K, gi, gj = ops.value_and_vjp(Za, Z[tile.cols, ...], 2.0 * W, True)
        return xp.sum(W * K), gi, gj
    return xp.sum(W * ops.gram(Za, Z[tile.cols, ...])), None, None


def _cross_tile(tile: Tile, X: Array, Y: Array, ops: BoundKernel, weights: WeightTiles, *,
                grad: bool) -> tuple[Array, Array | None]:
    """``(sum W o K, dX rows)`` of one tile of the ``(X, Y)`` block; tiles (X_i, Y_j) and
    (Y_j, X_i) at once."""
    W = _weights(weights, tile)
    Xa, Yb = X[tile.rows, ...], Y[tile.cols, ...]
    xp = namespace(Xa)
    if grad:
        K, gi, _ = ops.value_and_vjp(Xa, Yb, 2.0 * W)
        return xp.sum(W * K), gi
    return xp.sum(W * ops.gram(Xa, Yb)), None


def weighted_form(X: Array, Y: Array, ops: BoundKernel, wxx: WeightTiles | None,
                  wxy: WeightTiles | None, wyy: WeightTiles | None, grad: bool,
                  working_memory: float, xp: Namespace,
                  executor: Any = None) -> tuple[Array, Array | None]:
    """``L = sum Wxx k(x, x') + 2 sum Wxy k(x, y) + sum Wyy k(y, y')`` and ``dL/dX``.

    Parameters
    ----------
    X, Y : Array
        Prepared points (:func:`ssimref.kernels.protocol.bind_kernel`).
    ops : BoundKernel
        Their bound kernel.
    wxx, wxy, wyy : callable or None
        Weight-tile makers (``(i0, i1, j0, j1)`` in global indices to a tile), or None
        for a block that does not contribute.
    grad : bool
        Also compute ``dL/dX``.
    working_memory : float
        MiB for the tiles (resolved).
    xp : Namespace
    executor : optional
        Who runs the tiles (:func:`ssimref.executor.get_executor`): with Dask each tile
        is a task on a worker, the points, the kernel and the weights are sent once to
        every worker, and the tiles' sums and gradient rows come back and are added in
        the plan's order, so the result is the serial one bit for bit.

    Returns
    -------
    L : Array, 0-d, float64
    dX : Array, shaped like X, or None unless ``grad``
    """
    runner = get_executor(executor)
    n, m = X.shape[0], Y.shape[0]
    value = xp.asarray(0.0, dtype=xp.float64)
    dX = xp.zeros(X.shape, dtype=xp.float64) if grad else None

    def symmetric_block(Z: Array, weights: WeightTiles, with_grad: bool) -> Array:
        total = [xp.asarray(0.0, dtype=xp.float64)]

        def accumulate(tile: Tile, result: tuple[Array, Array | None, Array | None]) -> None:
            s, gi, gj = result
            if gi is not None and dX is not None:
                dX[tile.rows, ...] += gi
            if gj is not None and dX is not None:
                dX[tile.cols, ...] += gj
            total[0] = total[0] + (s if tile.diagonal else 2.0 * s)

        runner.reduce(tile_plan(ops, Z.shape[0], None, working_memory),
                      TileTask(_symmetric_tile, (Z, ops, weights),
                               dict(with_grad=with_grad)), accumulate)
        return total[0]

    if wxx is not None:
        value = value + symmetric_block(X, wxx, grad)
    if wxy is not None:
        cross = [value]

        def add_cross(tile: Tile, result: tuple[Array, Array | None]) -> None:
            s, gi = result
            if gi is not None and dX is not None:
                dX[tile.rows, ...] += gi
            cross[0] = cross[0] + 2.0 * s

        runner.reduce(tile_plan(ops, n, m, working_memory),
                      TileTask(_cross_tile, (X, Y, ops, wxy), dict(grad=grad)), add_cross)
        value = cross[0]
    if wyy is not None:
        value = value + symmetric_block(Y, wyy, False)
    return value, dX
