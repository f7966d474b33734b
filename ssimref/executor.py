"""Executors: run the tiles of a plan (:mod:`ssimref.tiling`) and put their results where
they belong.

A tile flows like this: the plan names its rows and columns; the caller's tile function
(e.g. :func:`ssimref.distance_matrix`'s) slices the images, converts them to float64 and
hands them to an engine (:mod:`ssimref.engines`), which returns the tile's block; the
executor writes the block into the output (copying it to the host when the output is a
NumPy array, e.g. a memmap, and the block lives on a device), mirrors it below the
diagonal for symmetric plans, and advances the progress bar. Reductions (MMD's weighted
sums, gradients) run the same tiles into sums instead: the tile function returns a
tile's contribution and an accumulator adds it where it belongs.

Interruption (Ctrl-C, or SIGTERM turned into an exception by the caller) stops between
tiles' writes; the progress bar is closed and the exception propagates: callers that own
files remove or keep their partial output (the command line writes under a temporary name
and renames only when complete).

:class:`SerialExecutor` runs the tiles one after another in this process (each engine
uses its own threads inside a tile). Another executor (e.g. a distributed one) provides
the same two methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm

from .backend import Array, is_numpy_array, to_numpy
from .tiling import PairPlan, Tile

__all__ = ["SerialExecutor", "serial", "store"]


def store(out: Array, index: Any, block: Array) -> None:
    """``out[index] = block``, copying ``block`` to the host first when ``out`` is a NumPy
    array (e.g. a memmap) and ``block`` is not.

    Parameters
    ----------
    out : Array
        The output, modified in place.
    index : Any
        An index of ``out`` (e.g. a pair of slices).
    block : Array
        Values of any array library.
    """
    out[index] = to_numpy(block) if is_numpy_array(out) and not is_numpy_array(block) \
        else block


class SerialExecutor:
    """Runs a plan's tiles in order, in this process.

    See Also
    --------
    ssimref.tiling.plan_pairs : the plans it runs.
    """

    def fill(self, plan: PairPlan, tile_fn: Callable[[Tile], Array], out: Array, *,
             progress: bool = False, desc: str = "SSIM distances") -> Array:
        """Write ``tile_fn(tile)`` into ``out[tile.rows, tile.cols]`` for every tile (and
        its transpose into ``out[tile.cols, tile.rows]`` off the diagonal of a symmetric
        plan; diagonal blocks come back whole from ``tile_fn``).

        Parameters
        ----------
        plan : PairPlan
        tile_fn : callable
            ``tile_fn(tile) -> block`` of shape ``tile.shape``.
        out : Array, shape (plan.n, plan.m)
            Written in place.
        progress : bool, default False
            A tqdm progress bar over pairs.
        desc : str, default "SSIM distances"
            The bar's label.

        Returns
        -------
        Array
            ``out``.

        Raises
        ------
        KeyboardInterrupt
            Propagated between tiles (the bar is closed first); so is any exception of
            ``tile_fn``.
        """
        with _bar(plan.total_pairs, progress, desc) as bar:
            for tile in plan.tiles():
                block = tile_fn(tile)
                store(out, (tile.rows, tile.cols), block)
                if plan.symmetric and not tile.diagonal:
                    store(out, (tile.cols, tile.rows), block.T)
                bar.update(tile.pairs)
        return out

    def reduce(self, plan: PairPlan, tile_fn: Callable[[Tile], Any],
               accumulate: Callable[[Tile, Any], None], *, progress: bool = False,
               desc: str = "SSIM pairs") -> None:
        """Call ``accumulate(tile, tile_fn(tile))`` for every tile, in the plan's order
        (so floating-point sums come out the same on every run).

        Parameters
        ----------
        plan : PairPlan
        tile_fn : callable
            ``tile_fn(tile) -> result``, the tile's contribution.
        accumulate : callable
            ``accumulate(tile, result)`` adds it where it belongs.
        progress : bool, default False
        desc : str, default "SSIM pairs"

        Raises
        ------
        KeyboardInterrupt
            Propagated between tiles, as for :meth:`fill`.
        """
        with _bar(plan.total_pairs, progress, desc) as bar:
            for tile in plan.tiles():
                accumulate(tile, tile_fn(tile))
                bar.update(tile.pairs)


#: The default executor.
serial = SerialExecutor()


def _bar(total: int, enabled: bool, desc: str) -> tqdm:
    return tqdm(total=total, unit="pair", unit_scale=True, disable=not enabled, desc=desc)
