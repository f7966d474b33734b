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

import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

from tqdm.auto import tqdm

from .backend import Array, is_numpy_array, to_numpy
from .tiling import PairPlan, Tile

__all__ = ["SerialExecutor", "serial", "store", "Stager", "HostWriter"]


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


class Stager(Protocol):
    """Asynchronous copies of device blocks into host staging buffers (an engine's part of
    a :class:`HostWriter`; :func:`ssimref.engines.cupy_engine.host_writer` has CuPy's).

    Attributes
    ----------
    depth : int
        Staging buffers: at most this many blocks are in flight.
    """

    depth: int

    def stage(self, block: Array, slot: int) -> tuple[Any, Callable[[], None]]:
        """Start copying ``block`` into buffer ``slot`` (free: its last copy was written).

        Returns
        -------
        host : numpy.ndarray
            The buffer's view that will hold ``block`` (same shape and dtype).
        wait : callable
            Blocks until the copy has landed in ``host`` (called by the writer thread;
            it also releases whatever the copy needed kept alive).
        """


class HostWriter:
    """Writes device blocks into a host array (e.g. a memmap) while the device computes the
    next tiles: each block is copied asynchronously into a staging buffer by the engine's
    :class:`Stager`, and a writer thread waits for the copy, stores the block (and its
    mirror image below the diagonal, from the same host copy) and frees the buffer.

    Parameters
    ----------
    out : numpy.ndarray
        The output (written by the writer thread only, each entry once).
    stager : Stager

    Notes
    -----
    The order of the writes is the order of :meth:`put`; an error in the writer thread is
    raised by the next :meth:`put` or by :meth:`close`. :meth:`abort` (after an exception,
    e.g. Ctrl-C) lets the thread finish the blocks already handed over, then stops it.
    """

    def __init__(self, out: Any, stager: Stager) -> None:
        self.out = out
        self.stager = stager
        self._free: queue.Queue[int] = queue.Queue()
        for slot in range(stager.depth):
            self._free.put(slot)
        self._todo: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ssimref-host-writer",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._todo.get()
            if item is None:
                return
            index, mirror, host, wait, slot = item
            try:
                wait()  # even after an error: the buffer is free only once its copy landed
                if self._error is None:
                    self.out[index] = host
                    if mirror:
                        self.out[index[1], index[0]] = host.T
            except BaseException as exc:  # raised in the caller's thread
                if self._error is None:
                    self._error = exc
            finally:
                self._free.put(slot)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, index: tuple[Any, Any], block: Array, mirror: bool) -> None:
        """Hand over ``block`` for ``out[index]`` (and its transpose for
        ``out[index[1], index[0]]`` with ``mirror``); blocks while every staging buffer
        is in flight.

        Raises
        ------
        BaseException
            The writer thread's error, if one occurred.
        """
        self._check()
        slot = self._free.get()
        self._check()
        host, wait = self.stager.stage(block, slot)
        self._todo.put((index, mirror, host, wait, slot))

    def close(self) -> None:
        """Wait until every block is written.

        Raises
        ------
        BaseException
            The writer thread's error, if one occurred.
        """
        self._todo.put(None)
        self._thread.join()
        self._check()

    def abort(self) -> None:
        """Stop after the blocks already handed over (their copies are in flight and
        must land before the buffers go); never raises."""
        self._todo.put(None)
        self._thread.join()


class SerialExecutor:
    """Runs a plan's tiles in order, in this process.

    See Also
    --------
    ssimref.tiling.plan_pairs : the plans it runs.
    """

    def fill(self, plan: PairPlan, tile_fn: Callable[[Tile], Array], out: Array, *,
             progress: bool = False, desc: str = "SSIM distances",
             writer: HostWriter | None = None) -> Array:
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
        writer : HostWriter, optional
            Writes the blocks into ``out`` (a host array) while the device computes the
            next tiles; closed (or aborted on an exception) here.

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
            if writer is not None:
                try:
                    for tile in plan.tiles():
                        writer.put((tile.rows, tile.cols), tile_fn(tile),
                                   plan.symmetric and not tile.diagonal)
                        bar.update(tile.pairs)
                except BaseException:
                    writer.abort()
                    raise
                writer.close()
                return out
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
