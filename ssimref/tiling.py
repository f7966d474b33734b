"""Memory-bounded tiling: the one place that turns a memory budget into tiles.

Every computation over pairs of images (distance matrices, their gradients, kernel
matrices, MMD's weighted sums) cuts the ``n x m`` pairs into rectangular tiles, and every
computation over rows (matched pairs, permutation batches, centring a matrix, density
evaluations) cuts them into batches of rows. Both are sized here, from a budget in MiB:
scikit-learn's ``working_memory`` setting unless a caller gives one.

Pair tiles. A tile of ``r x c`` pairs costs ``r c b_pair + (r + c) b_image`` bytes, where
``b_pair`` is what one pair holds while the tile is computed and ``b_image`` what one
image's per-image terms hold (both stated by the engine that computes the tile,
:mod:`ssimref.engines`). A square tile has the largest side ``s`` with
``s^2 b_pair + 2 s b_image <= budget``, capped by ``sqrt(max_pairs)`` (an engine's
bound that keeps progress and Ctrl-C responsive or tiles in cache) and ``max_side``; a
rectangular plan keeps that many rows and takes as many columns as the budget allows.
A symmetric plan (``Y = X``) visits each unordered pair of tiles once: the tiles on or
above the diagonal, in row-major order; a diagonal tile computes only its upper triangle
(:func:`upper_mask`) and the executor mirrors the others (:mod:`ssimref.executor`).

Tiles too small to be worth their fixed cost. Each tile has a fixed cost besides its pairs
(slicing, the engine's per-image terms, starting its threads), which grows with the load of
the machine: ``python benchmarks/tile_overhead.py`` (BENCHMARKS.md, "Tile overhead")
measured about 60 ms per tile with the Numba engine on a shared 2-core machine at load
average 11, against 3 to 10 microseconds per pair of 8x8 or 28x28 images, so that a tile
of 6,600 to 17,000 pairs spends as long on its fixed cost as on its pairs (300 digits:
19 s with 0.05 MiB tiles of 12 x 12, 0.1 s in one tile). Below :data:`SMALL_TILE_PAIRS`
pairs a tile spends more on that cost than on its pairs, so :func:`plan_pairs` warns
(:class:`SmallTileWarning`) when the memory budget, not an engine's cap or the size of the
job, cuts a job of more than :data:`SMALL_TILE_MIN_TILES` tiles into such tiles, and
names the budget that avoids it.

Row batches follow scikit-learn's rule (that of ``pairwise_distances_chunked``, cut by
:func:`sklearn.utils.gen_batches`): ``floor(budget / row_bytes)`` rows, at least one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .backend import Array, Namespace
from .validation import check_positive

__all__ = ["MIB", "default_working_memory", "resolve_working_memory", "Tile", "PairPlan",
           "plan_pairs", "rows_per_batch", "row_batches", "upper_mask", "chunk_plan",
           "SmallTileWarning", "SMALL_TILE_PAIRS", "SMALL_TILE_MIN_TILES"]

#: Bytes in a MiB, the unit of ``working_memory``.
MIB = 2**20

#: Tiles of fewer pairs spend more time on their fixed cost than on their pairs (see the
#: module docstring): the budget that gives them draws a :class:`SmallTileWarning`.
SMALL_TILE_PAIRS = 10_000

#: Jobs of at most this many tiles are not warned about (their fixed cost, tens of
#: milliseconds a tile, stays within seconds).
SMALL_TILE_MIN_TILES = 100


class SmallTileWarning(UserWarning):
    """The memory budget (``working_memory``, ``--working-memory``) makes tiles so small
    that their fixed cost dominates: the job runs many times slower than with a larger
    budget (see :mod:`ssimref.tiling`)."""


def default_working_memory() -> float:
    """scikit-learn's ``working_memory`` setting in MiB.

    Returns
    -------
    float
        1024 unless changed with ``sklearn.set_config`` or ``sklearn.config_context``.

    See Also
    --------
    resolve_working_memory
    """
    from sklearn import get_config

    return float(get_config()["working_memory"])


def resolve_working_memory(working_memory: float | None,
                           name: str = "working_memory") -> float:
    """The memory budget in MiB: ``working_memory`` itself, or scikit-learn's setting when
    it is None.

    Parameters
    ----------
    working_memory : float or None
        MiB.
    name : str, default "working_memory"
        The argument's name, for the message.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Unless ``working_memory`` is None or a finite number > 0 (booleans are refused).
    """
    if working_memory is None:
        return default_working_memory()
    try:
        return check_positive(working_memory, name)
    except ValueError:
        raise ValueError(f"{name} must be a number of MiB > 0 (leave it out for "
                         f"scikit-learn's setting, now {default_working_memory():g} MiB), "
                         f"got {working_memory!r}") from None


@dataclass(frozen=True)
class Tile:
    """A rectangle of pairs: rows ``rows`` of X against columns ``cols`` of Y.

    Attributes
    ----------
    rows, cols : slice
        Half-open index ranges with ``start`` and ``stop`` set, step None.
    diagonal : bool, default False
        A tile on the diagonal of a symmetric plan (``rows == cols``), where only the
        pairs ``i < j`` are computed.
    """

    rows: slice
    cols: slice
    diagonal: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the tile."""
        return self.rows.stop - self.rows.start, self.cols.stop - self.cols.start

    @property
    def pairs(self) -> int:
        """Pairs the tile computes: ``r (r - 1) / 2`` on the diagonal, else ``r c``."""
        r, c = self.shape
        return r * (r - 1) // 2 if self.diagonal else r * c


@dataclass(frozen=True)
class PairPlan:
    """Tiles of ``n x m`` pairs, ``tile_rows x tile_cols`` each (smaller at the edges).

    Attributes
    ----------
    n, m : int
        Row and column images.
    tile_rows, tile_cols : int
        Tile size, >= 1.
    symmetric : bool, default False
        ``Y = X`` (``m = n``, square tiles): only the tiles on and above the diagonal.

    See Also
    --------
    plan_pairs : the plan for a memory budget.
    ssimref.executor.SerialExecutor : runs a plan.
    """

    n: int
    m: int
    tile_rows: int
    tile_cols: int
    symmetric: bool = False

    def tiles(self) -> Iterator[Tile]:
        """The tiles in row-major order.

        Yields
        ------
        Tile
        """
        for i in range(0, self.n, self.tile_rows):
            rows = slice(i, min(i + self.tile_rows, self.n))
            for j in range(i if self.symmetric else 0, self.m, self.tile_cols):
                yield Tile(rows, slice(j, min(j + self.tile_cols, self.m)),
                           self.symmetric and i == j)

    @property
    def grid(self) -> tuple[int, int]:
        """Tiles per column and per row of the full ``n x m`` grid (a symmetric plan
        visits only those on and above the diagonal)."""
        return -(-self.n // self.tile_rows), -(-self.m // self.tile_cols)

    def index(self, tile: Tile) -> tuple[int, int]:
        """The tile's place in :attr:`grid`: its name in records of completed tiles
        (:mod:`ssimref.stores`).

        Parameters
        ----------
        tile : Tile
            One of :meth:`tiles`.

        Returns
        -------
        (int, int)
            Its row and column in the grid.
        """
        return tile.rows.start // self.tile_rows, tile.cols.start // self.tile_cols

    def __len__(self) -> int:
        rows = -(-self.n // self.tile_rows)
        if self.symmetric:
            return rows * (rows + 1) // 2
        return rows * -(-self.m // self.tile_cols)

    @property
    def total_pairs(self) -> int:
        """Pairs computed over all tiles: ``n (n - 1) / 2`` when symmetric, else ``n m``."""
        return self.n * (self.n - 1) // 2 if self.symmetric else self.n * self.m


def _largest_side(budget: int, per_pair: int, per_image: int) -> int:
    """The largest ``s >= 1`` with ``s^2 per_pair + 2 s per_image <= budget`` (1 when even
    that does not fit), in exact integer arithmetic."""
    side = int((math.sqrt(per_image * per_image + per_pair * budget) - per_image) / per_pair)
    side = max(1, side)

    def fits(s: int) -> bool:
        return s * s * per_pair + 2 * s * per_image <= budget

    while fits(side + 1):
        side += 1
    while side > 1 and not fits(side):
        side -= 1
    return side


def plan_pairs(n: int, m: int | None = None, *, bytes_per_pair: int, working_memory: float,
               bytes_per_image: int = 0, max_pairs: int | None = None,
               max_side: int | None = None, square: bool = False) -> PairPlan:
    """Tiles of the pairs of ``n`` row images and ``m`` column images within a budget.

    Parameters
    ----------
    n : int
        Row images.
    m : int, optional
        Column images; None for a symmetric plan of the ``n`` images against themselves.
    bytes_per_pair, bytes_per_image : int
        Working bytes of one pair and of one image's terms while a tile is computed.
    working_memory : float
        Budget in MiB (resolved: see :func:`resolve_working_memory`).
    max_pairs : int, optional
        At most this many pairs per tile (caps the side at ``isqrt(max_pairs)``).
    max_side : int, optional
        At most this many rows and columns per tile.
    square : bool, default False
        Square tiles for a rectangular plan too (MMD's blocks).

    Returns
    -------
    PairPlan

    See Also
    --------
    row_batches : the budget for computations over rows.
    """
    symmetric = m is None
    if m is None:
        m = n
    budget = int(working_memory * MIB)
    side = _largest_side(budget, bytes_per_pair, bytes_per_image)
    if max_pairs is not None:
        side = max(1, min(side, math.isqrt(max_pairs)))
    if max_side is not None:
        side = min(side, max_side)
    rows = min(n, side)
    if symmetric or square:
        plan = PairPlan(n, m, rows, min(m, side) if square else rows, symmetric)
    else:
        cols = (budget - rows * bytes_per_image) // (rows * bytes_per_pair + bytes_per_image)
        if max_pairs is not None:
            cols = min(cols, max_pairs // rows)
        plan = PairPlan(n, m, rows, max(1, min(m, cols)), False)
    _warn_small_tiles(plan, working_memory, bytes_per_pair, bytes_per_image, max_pairs,
                      max_side)
    return plan


def _warn_small_tiles(plan: PairPlan, working_memory: float, bytes_per_pair: int,
                      bytes_per_image: int, max_pairs: int | None,
                      max_side: int | None) -> None:
    """A :class:`SmallTileWarning` when the budget alone cuts a long job into tiles of
    fewer than :data:`SMALL_TILE_PAIRS` pairs."""
    pairs = plan.tile_rows * plan.tile_cols
    if pairs >= SMALL_TILE_PAIRS or len(plan) <= SMALL_TILE_MIN_TILES:
        return
    side = math.isqrt(SMALL_TILE_PAIRS)
    if (max_pairs is not None and max_pairs < SMALL_TILE_PAIRS) or \
            (max_side is not None and max_side < side):
        return  # an engine's cap, not the budget, sets the tile size
    needed = (side * side * bytes_per_pair + 2 * side * bytes_per_image) / MIB
    warnings.warn(f"a working memory of {working_memory:g} MiB cuts this job into "
                  f"{len(plan):,} tiles of at most {plan.tile_rows} x {plan.tile_cols} "
                  f"pairs, each with a fixed cost of up to tens of milliseconds: it may run "
                  f"many times slower than with tiles of {SMALL_TILE_PAIRS:,} pairs or "
                  f"more, which need {math.ceil(needed * 100) / 100:g} MiB",
                  SmallTileWarning,
                  stacklevel=3)


def rows_per_batch(row_bytes: int, working_memory: float, max_rows: int | None = None) -> int:
    """Rows of ``row_bytes`` bytes each that fit ``working_memory`` MiB: the rule of
    scikit-learn's ``pairwise_distances_chunked``.

    Parameters
    ----------
    row_bytes : int
        Bytes one row holds.
    working_memory : float
        MiB (resolved).
    max_rows : int, optional
        Upper bound.

    Returns
    -------
    int
        ``floor(working_memory MiB / row_bytes)``, at least 1 and at most ``max_rows``.
    """
    rows = int(working_memory * MIB) // max(1, int(row_bytes))
    if max_rows is not None:
        rows = min(rows, max_rows)
    return max(1, rows)


def row_batches(n: int, row_bytes: int, working_memory: float,
                max_rows: int | None = None) -> list[slice]:
    """Consecutive batches of rows within ``working_memory`` MiB.

    Parameters
    ----------
    n : int
        Rows.
    row_bytes, working_memory, max_rows
        As for :func:`rows_per_batch`.

    Returns
    -------
    list of slice
        :func:`rows_per_batch` rows each, the last one shorter, cut by scikit-learn's
        :func:`~sklearn.utils.gen_batches`.
    """
    from sklearn.utils import gen_batches

    return list(gen_batches(n, rows_per_batch(row_bytes, working_memory, max_rows)))


def upper_mask(block: Array, xp: Namespace) -> Array:
    """``block`` with its diagonal and lower triangle set to 0: on a diagonal tile only
    the pairs ``i < j`` count (each unordered pair once).

    Parameters
    ----------
    block : Array, shape (r, c)
    xp : Namespace

    Returns
    -------
    Array, shape (r, c)
        A new array.
    """
    rows = xp.arange(block.shape[0])[:, None]
    cols = xp.arange(block.shape[1])[None, :]
    return xp.where(rows < cols, block, xp.zeros_like(block))


def chunk_plan(array: Any, symmetric: bool) -> PairPlan | None:
    """The plan whose tiles are the chunks of a chunked 2-D ``array``.

    Parameters
    ----------
    array : Any
        A zarr array (``chunks`` a pair of ints), or an array without chunks.
    symmetric : bool
        A symmetric plan (tiles on and above the diagonal).

    Returns
    -------
    PairPlan or None
        None for an array without chunks (NumPy, a memmap).

    Raises
    ------
    ValueError
        For a symmetric plan on chunks that are not square (a tile and its mirror must
        each be one chunk).
    """
    chunks = getattr(array, "chunks", None)
    if not (isinstance(chunks, tuple) and len(chunks) == 2
            and all(isinstance(c, int) for c in chunks)):
        return None
    n, m = (int(v) for v in array.shape)
    rows, cols = chunks
    if symmetric and rows != cols:
        raise ValueError(f"out has chunks {chunks}: a symmetric matrix needs square chunks "
                         "(each tile and its mirror are one chunk)")
    return PairPlan(n, m, min(rows, n), min(cols, m), symmetric)
