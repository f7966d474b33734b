"""Executors: run the tiles of a plan (:mod:`ssimref.tiling`) and put their results where
they belong.

A tile flows like this: the plan names its rows and columns; the caller's tile function
(e.g. :func:`ssimref.distance_matrix`'s) slices the images, converts them to float64 and
hands them to an engine (:mod:`ssimref.engines`), which returns the tile's block; the
executor writes the block into the output (copying it to the host when the output lives
there, e.g. a memmap or a zarr array, and the block lives on a device), mirrors it below
the diagonal for symmetric plans, records the tile as complete when a ledger is given,
and advances the progress bar. Reductions (MMD's weighted sums, gradients, the kernel's
row means) run the same tiles into sums instead: the tile function returns a tile's
contribution and an accumulator adds it where it belongs, in the plan's order.

The interface (every executor provides it):

``fill(plan, tile_fn, out, *, ledger=None, progress=False, desc=...) -> out``
    Write every tile not yet complete in ``ledger``.
``reduce(plan, tile_fn, accumulate, *, progress=False, desc=...) -> None``
    ``accumulate(tile, tile_fn(tile))`` for every tile, in the plan's order.
``last_run``
    The :class:`TileReport` of each tile the last ``fill`` or ``reduce`` computed.

Tile functions are plain callables ``tile_fn(tile)``. One that must travel to other
processes is a :class:`TileTask`, a ``(function, data, options)`` description: the
serial executor simply calls it; a distributed executor
(:class:`ssimref.executor_dask.DaskExecutor`) sends ``data`` (the images) once to every
worker and ships ``function`` and ``options`` with each tile.

A ledger records completed tiles, so that an interrupted job can resume
(:mod:`ssimref.stores`): ``completed()`` gives the indices (:meth:`PairPlan.index`) of
the tiles already recorded, ``mark(index, report)`` records one after its block is
written (wherever the tile was computed), ``close()`` writes what is pending.

Interruption (:mod:`ssimref.interrupt`): SIGINT and SIGTERM stop at a tile boundary (a
tile being computed is finished, written and recorded first); the progress bar is closed,
pending records are written and :class:`ssimref.interrupt.Interrupted` propagates; callers
that own files keep or remove their partial output.

:class:`SerialExecutor` runs the tiles one after another in this process (each engine
uses its own threads inside a tile); :func:`get_executor` turns an ``executor=``
argument (None, "serial", "dask", a Dask client or an executor) into an executor.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, cast

from array_api_compat import is_array_api_obj
from tqdm.auto import tqdm

from . import interrupt
from .backend import Array, is_numpy_array, to_numpy
from .tiling import PairPlan, Tile

__all__ = ["SerialExecutor", "serial", "store", "host_copy", "PARALLEL_COPY_FROM",
           "COPY_SQUARE", "TileTask", "TileReport", "fill_tile",
           "get_executor", "EXECUTORS", "progress_bar", "PROGRESS_DELAY", "Ledger",
           "Executor", "Stager", "HostWriter"]

#: Seconds a job runs before an automatic progress bar (``progress=None``) appears.
PROGRESS_DELAY = 1.0

#: Names accepted by ``executor=`` arguments (besides executor objects and Dask clients).
EXECUTORS = ("serial", "dask")


@dataclass(frozen=True, eq=False)
class TileTask:
    """A tile function that can travel: ``task(tile) = function(tile, *data, **options)``.

    Parameters
    ----------
    function : callable
        A module-level function (importable wherever the tile runs).
    data : tuple
        Large arguments (image stacks, a stored matrix): a distributed executor sends
        them once to every worker.
    options : dict
        Small picklable arguments (kind, config, dtype names), sent with each tile.
    fills : bool, default False
        ``function`` also takes ``out=``, a NumPy view of the tile's place in a NumPy
        output (its shape and dtype), and may write the block there and return that view
        instead of a new block: :func:`fill_tile` then copies nothing.
    """

    function: Callable[..., Any]
    data: tuple = ()
    options: dict = field(default_factory=dict)
    fills: bool = False

    def __call__(self, tile: Tile, out: Any = None) -> Any:
        if out is None:
            return self.function(tile, *self.data, **self.options)
        return self.function(tile, *self.data, out=out, **self.options)


class TileReport(NamedTuple):
    """What an executor learns of one computed tile (a few bytes, never the block):
    ``tile``, its index in the plan's grid; ``seconds`` it took where it ran; ``worker``,
    where (a Dask worker's address, or ``pid N``)."""

    tile: tuple[int, int]
    seconds: float
    worker: str


class Ledger(Protocol):
    """Records of completed tiles (:mod:`ssimref.stores`): what an executor reads before
    a run and writes after each tile's block is written."""

    def completed(self) -> set[tuple[int, int]]:
        """The indices of the tiles recorded as complete.

        Returns
        -------
        set of (int, int)
        """

    def mark(self, index: tuple[int, int], report: TileReport | None = None) -> None:
        """Record tile ``index`` as complete (after its block is written).

        Parameters
        ----------
        index : (int, int)
        report : TileReport, optional
        """

    def close(self) -> None:
        """Write what is pending."""


class Executor(Protocol):
    """The executor interface (module docstring)."""

    last_run: list[TileReport]

    def fill(self, plan: PairPlan, tile_fn: Callable[[Tile], Any], out: Any, *,
             ledger: Ledger | None = None, progress: bool | None = False,
             desc: str = "SSIM distances") -> Any:
        """Write every tile not complete in ``ledger`` into ``out``.

        Parameters
        ----------
        plan, tile_fn, out, ledger, progress, desc
            As for :meth:`SerialExecutor.fill`.

        Returns
        -------
        ``out`` (or the executor's own result when ``out`` is None)
        """

    def reduce(self, plan: PairPlan, tile_fn: Callable[[Tile], Any],
               accumulate: Callable[[Tile, Any], None], *, progress: bool | None = False,
               desc: str = "SSIM pairs") -> None:
        """``accumulate(tile, tile_fn(tile))`` for every tile, in the plan's order.

        Parameters
        ----------
        plan, tile_fn, accumulate, progress, desc
            As for :meth:`SerialExecutor.reduce`.
        """


def _host_output(out: Any) -> bool:
    """Whether ``out`` lives in host memory: a NumPy array, or an array-like store that is
    no array library's array (zarr)."""
    return is_numpy_array(out) or not is_array_api_obj(out)


#: Blocks of fewer entries are copied into a NumPy output by the calling thread alone.
PARALLEL_COPY_FROM = 1 << 18

#: Side of the squares in which :func:`host_copy` moves a block: a square of float64 and
#: its transpose (512 KiB each) stay in a core's L2 cache, so a transposed copy (the
#: mirror of a tile) reads and writes whole cache lines.
COPY_SQUARE = 256

_POOL: tuple[int, int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _copy_pool() -> tuple[int, ThreadPoolExecutor]:
    """This process's copy threads, one per CPU it may run on, and their number (made
    again in a forked child, whose parent's threads do not exist there)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                else (os.cpu_count() or 1)
            _POOL = (os.getpid(), cpus, ThreadPoolExecutor(max_workers=cpus,
                                                           thread_name_prefix="ssimref-copy"))
        return _POOL[1], _POOL[2]


def host_copy(dst: Any, src: Any) -> None:
    """``dst[...] = src`` for two NumPy arrays of one 2-D shape (``src`` may be a
    transposed view), in squares of :data:`COPY_SQUARE` spread over one thread per CPU
    (NumPy releases the GIL while it copies): the writes into a tile's place in a large
    output, its first touch of those pages included, and the mirror of a tile of a
    symmetric plan, which a plain assignment walks across the cache. Blocks under
    :data:`PARALLEL_COPY_FROM` entries are assigned directly.

    Parameters
    ----------
    dst : numpy.ndarray, shape (r, c)
        Written in place (a view of the output, a memmap's included).
    src : numpy.ndarray, shape (r, c)
    """
    rows, cols = src.shape
    threads, pool = _copy_pool() if src.size >= PARALLEL_COPY_FROM else (1, None)
    if pool is None or threads == 1:
        dst[...] = src
        return

    def band(top: int) -> None:
        below = slice(top, top + COPY_SQUARE)
        for left in range(0, cols, COPY_SQUARE):
            right = slice(left, left + COPY_SQUARE)
            dst[below, right] = src[below, right]

    for _ in pool.map(band, range(0, rows, COPY_SQUARE)):
        pass


def store(out: Array, index: Any, block: Array) -> None:
    """``out[index] = block``, copying ``block`` to the host first when ``out`` lives on
    the host (a NumPy array, a memmap, a zarr array) and ``block`` does not; a NumPy
    block into a NumPy output goes through :func:`host_copy` (on every CPU).

    Parameters
    ----------
    out : Array or zarr.Array
        The output, modified in place.
    index : Any
        An index of ``out`` (e.g. a pair of slices).
    block : Array
        Values of any array library.
    """
    if is_numpy_array(out) and is_numpy_array(block) and block.ndim == 2:
        host_copy(out[index], block)
        return
    out[index] = to_numpy(block) if _host_output(out) and not is_numpy_array(block) \
        else block


class Stager(Protocol):
    """Asynchronous copies of device blocks into host staging buffers (an engine's part of
    a :class:`HostWriter`; :func:`ssimref.engines.cupy_engine.host_stager` gives CuPy's).

    Attributes
    ----------
    depth : int
        Staging buffers: at most this many blocks are in flight.
    """

    depth: int

    def stage(self, block: Array, slot: int) -> tuple[Any, Callable[[], None]]:
        """Start copying ``block`` into buffer ``slot`` (free: its last copy was written).

        Parameters
        ----------
        block : Array
            A tile's block on the device (its final dtype).
        slot : int
            The staging buffer, ``0 <= slot < depth``.

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
                    store(self.out, index, host)
                    if mirror:
                        store(self.out, (index[1], index[0]), host.T)
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

        Parameters
        ----------
        index : (slice, slice)
            The tile's rows and columns in ``out``.
        block : Array
            The tile's block on the device.
        mirror : bool
            Also write ``block.T`` at the mirrored index.

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


def fill_tile(tile_fn: Callable[[Tile], Any], tile: Tile, out: Any, symmetric: bool,
              index: tuple[int, int], ledger: Ledger | None = None,
              worker: str | None = None) -> TileReport:
    """Compute one tile, write it (and its mirror off the diagonal of a symmetric plan)
    into ``out``, then record it in ``ledger``: the one sequence every executor runs for a
    tile, wherever it runs.

    Parameters
    ----------
    tile_fn : callable or TileTask
        ``tile_fn(tile) -> block`` of shape ``tile.shape``; a TileTask that ``fills``
        is handed the tile's view of a NumPy ``out`` to write the block into.
    tile : Tile
    out : Array or zarr.Array
        Written in place.
    symmetric : bool
        The plan is symmetric: off the diagonal, ``block.T`` goes to the mirror too.
    index : (int, int)
        The tile's index (:meth:`ssimref.tiling.PairPlan.index`).
    ledger : Ledger, optional
        Where the tile is recorded, after its writes.
    worker : str, optional
        Where it runs (default ``pid N``).

    Returns
    -------
    TileReport
    """
    start = time.perf_counter()
    view = out[tile.rows, tile.cols] if getattr(tile_fn, "fills", False) \
        and is_numpy_array(out) else None
    block = tile_fn(tile) if view is None else cast(TileTask, tile_fn)(tile, out=view)
    if block is not view:
        store(out, (tile.rows, tile.cols), block)
    if symmetric and not tile.diagonal:
        store(out, (tile.cols, tile.rows), block.T)
    report = TileReport((index[0], index[1]), time.perf_counter() - start,
                        worker or f"pid {os.getpid()}")
    if ledger is not None:
        ledger.mark(report.tile, report)
    return report


class SerialExecutor:
    """Runs a plan's tiles in order, in this process.

    Attributes
    ----------
    last_run : list of TileReport
        One report per tile computed by the last call.

    See Also
    --------
    ssimref.tiling.plan_pairs : the plans it runs.
    ssimref.executor_dask.DaskExecutor : the same interface on a Dask cluster.
    """

    def __init__(self) -> None:
        self.last_run: list[TileReport] = []

    def fill(self, plan: PairPlan, tile_fn: Callable[[Tile], Any], out: Any, *,
             ledger: Ledger | None = None, progress: bool | None = False,
             desc: str = "SSIM distances", writer: HostWriter | None = None) -> Any:
        """Write ``tile_fn(tile)`` into ``out[tile.rows, tile.cols]`` for every tile (and
        its transpose into ``out[tile.cols, tile.rows]`` off the diagonal of a symmetric
        plan; diagonal blocks come back whole from ``tile_fn``), skipping the tiles
        ``ledger`` holds as complete and recording each one written.

        Parameters
        ----------
        plan : PairPlan
        tile_fn : callable or TileTask
            ``tile_fn(tile) -> block`` of shape ``tile.shape``.
        out : Array or zarr.Array, shape (plan.n, plan.m)
            Written in place.
        ledger : Ledger, optional
            Records of completed tiles (:mod:`ssimref.stores`): recorded tiles are
            skipped, each tile written is recorded; pending records are written on any
            exit.
        progress : bool or None, default False
            A tqdm progress bar over pairs; None: one when stderr is a terminal and the
            job runs longer than :data:`PROGRESS_DELAY` seconds (:func:`progress_bar`).
        desc : str, default "SSIM distances"
            The bar's label.
        writer : HostWriter, optional
            Writes the blocks into ``out`` (a host array) while the device computes the
            next tiles; closed here (on an exception: stopped after the tiles handed
            over). Not with a ``ledger`` (a record must follow its tile's write).

        Returns
        -------
        Array
            ``out``.

        Raises
        ------
        ValueError
            For a ``writer`` with a ``ledger``.
        ssimref.interrupt.Interrupted
            On SIGINT/SIGTERM (with :func:`ssimref.interrupt.install`), at the next tile
            boundary; a KeyboardInterrupt or any exception of ``tile_fn`` propagates too
            (the bar is closed and pending records are written first).
        """
        if writer is not None and ledger is not None:
            writer.abort()
            raise ValueError("a host writer cannot be used with a ledger (a tile's record "
                             "must follow its write); pass one or the other")
        done = ledger.completed() if ledger is not None else set()
        reports: list[TileReport] = []
        try:
            with progress_bar(plan.total_pairs, progress, desc) as bar, \
                    interrupt.deferred():
                for tile in plan.tiles():
                    index = plan.index(tile)
                    if index not in done and writer is not None:
                        start = time.perf_counter()
                        writer.put((tile.rows, tile.cols), tile_fn(tile),
                                   plan.symmetric and not tile.diagonal)
                        reports.append(TileReport(index, time.perf_counter() - start,
                                                  f"pid {os.getpid()}"))
                    elif index not in done:
                        reports.append(fill_tile(tile_fn, tile, out, plan.symmetric, index,
                                                 ledger))
                    bar.update(tile.pairs)
                    interrupt.boundary()
            if writer is not None:
                closing, writer = writer, None
                closing.close()
        finally:
            if writer is not None:
                writer.abort()
            self.last_run = reports
            if ledger is not None:
                ledger.close()
        return out

    def reduce(self, plan: PairPlan, tile_fn: Callable[[Tile], Any],
               accumulate: Callable[[Tile, Any], None], *, progress: bool | None = False,
               desc: str = "SSIM pairs") -> None:
        """Call ``accumulate(tile, tile_fn(tile))`` for every tile, in the plan's order
        (so floating-point sums come out the same on every run).

        Parameters
        ----------
        plan : PairPlan
        tile_fn : callable or TileTask
            ``tile_fn(tile) -> result``, the tile's contribution.
        accumulate : callable
            ``accumulate(tile, result)`` adds it where it belongs.
        progress : bool or None, default False
        desc : str, default "SSIM pairs"

        Raises
        ------
        ssimref.interrupt.Interrupted
            At a tile boundary, as for :meth:`fill`.
        """
        reports: list[TileReport] = []
        try:
            with progress_bar(plan.total_pairs, progress, desc) as bar, \
                    interrupt.deferred():
                for tile in plan.tiles():
                    start = time.perf_counter()
                    accumulate(tile, tile_fn(tile))
                    reports.append(TileReport(plan.index(tile), time.perf_counter() - start,
                                              f"pid {os.getpid()}"))
                    bar.update(tile.pairs)
                    interrupt.boundary()
        finally:
            self.last_run = reports


#: The default executor.
serial = SerialExecutor()


def get_executor(executor: Any = None) -> Any:
    """The executor an ``executor=`` argument names.

    Parameters
    ----------
    executor : None, "serial", "dask", dask.distributed.Client or executor
        None and "serial": :data:`serial`, this process. "dask": a
        :class:`~ssimref.executor_dask.DaskExecutor` on the current default Dask client
        (``distributed.default_client()``). A Dask client: a DaskExecutor on it. Any
        object with ``fill`` and ``reduce`` methods is returned as it is.

    Returns
    -------
    SerialExecutor, DaskExecutor or the executor given

    Raises
    ------
    ValueError
        For an unknown name, or "dask" without a running client.
    TypeError
        For anything else.
    """
    if executor is None or (isinstance(executor, str) and executor == "serial"):
        return serial
    if isinstance(executor, str):
        if executor == "dask":
            from .executor_dask import DaskExecutor
            return DaskExecutor.default()
        raise ValueError(f"executor must be one of {EXECUTORS}, a dask.distributed Client "
                         f"or an executor object, got {executor!r}")
    if callable(getattr(executor, "fill", None)) and callable(getattr(executor, "reduce",
                                                                      None)):
        return executor
    if type(executor).__module__.split(".")[0] == "distributed":
        from .executor_dask import DaskExecutor
        return DaskExecutor(executor)
    raise TypeError(f"executor must be None, 'serial', 'dask', a dask.distributed Client or "
                    f"an object with fill() and reduce() methods, got "
                    f"{type(executor).__name__}")


def progress_bar(total: int, enabled: bool | None, desc: str, *, unit: str = "pair",
                 initial: int = 0) -> tqdm:
    """The progress bar of ssimref's long computations (tqdm, on stderr).

    Parameters
    ----------
    total : int
        Units of work (pairs, steps).
    enabled : bool or None
        True: shown (in logs too); False: not shown; None ("auto", the command line's
        default): shown only when stderr is a terminal, and only once the job has run
        :data:`PROGRESS_DELAY` seconds, so that short jobs print nothing.
    desc : str
        Its label.
    unit : str, default "pair"
        The unit of ``total``.
    initial : int, default 0
        Units already done (a resumed job).

    Returns
    -------
    tqdm.tqdm
    """
    if enabled is None:
        return tqdm(total=total, initial=initial, unit=unit, unit_scale=True, disable=None,
                    delay=PROGRESS_DELAY, desc=desc)
    return tqdm(total=total, initial=initial, unit=unit, unit_scale=True,
                disable=not enabled, desc=desc)
