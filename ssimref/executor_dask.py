"""The Dask executor: the tiles of a plan as tasks on a ``dask.distributed`` cluster.

One more implementation of the executor interface (:mod:`ssimref.executor`):

- every tile of the plan is one task; the task runs the tile function on a worker, so
  the engine is chosen there by the arrays it computes on (numba for NumPy arrays on CPU
  workers, cupy on GPU workers when the caller asks for ``backend="cupy"``);
- the tile function is a :class:`~ssimref.executor.TileTask`: its ``data`` (the images,
  a stored matrix) is scattered once to every worker (``client.scatter(...,
  broadcast=True)``), its function and options travel with each task;
- :meth:`DaskExecutor.fill` has the workers write each block straight into ``out``, a
  zarr array whose chunks are the tiles (a tile and its mirror are whole chunks, so no
  two tasks write one chunk), and record it in the ledger after the write: a task returns
  only a :class:`~ssimref.executor.TileReport` (tile index, seconds, worker address), so
  no block passes through the client. Without ``out`` the blocks stay in the workers'
  memory and come back as a persisted :class:`dask.array.Array` whose chunks are the
  tiles;
- :meth:`DaskExecutor.reduce` brings each tile's contribution (row sums, gradient rows)
  to the client and accumulates them in the plan's order, so sums are the same bits as
  the serial executor's.

A worker lost while it computes a tile has written no record for it (its chunks may or
may not be written, each atomically); Dask runs the task again elsewhere (up to
``distributed.scheduler.allowed-failures`` times), and a job that fails anyway resumes
from its records (:mod:`ssimref.stores`). On SIGINT or SIGTERM
(:mod:`ssimref.interrupt`) the client stops at the next tile that completes, cancels
the tasks not started, and raises; tiles already running finish and record themselves.

:func:`start_client` turns the command line's ``--dask`` value into a client: ``local``
or ``local:N`` starts a :class:`distributed.LocalCluster` of N worker processes (the
CPU count when N is omitted) with one thread each (and Numba limited to that thread);
anything else is the address of a running scheduler. Only this module imports Dask.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import interrupt
from .backend import Array, is_numpy_array
from .executor import Ledger, TileReport, TileTask, fill_tile, progress_bar
from .tiling import PairPlan, Tile, chunk_plan

__all__ = ["DaskExecutor", "start_client", "parse_dask_spec"]


def _worker_address() -> str:
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:  # pragma: no cover - run outside a worker
        return f"pid {os.getpid()}"


def _fill_task(function: Callable[..., Any], tile: Tile, index: tuple[int, int], out: Any,
               symmetric: bool, ledger: Ledger | None, options: dict,
               *data: Any) -> TileReport:
    """Run on a worker: compute, write, record one tile; return its small report."""
    return fill_tile(TileTask(function, data, options), tile, out, symmetric, index, ledger,
                     worker=_worker_address())


def _block_task(function: Callable[..., Any], tile: Tile, options: dict, *data: Any) -> Any:
    """Run on a worker: one tile's block, kept in the worker's memory."""
    return function(tile, *data, **options)


def _mirror_task(block: Array) -> Array:
    return np.ascontiguousarray(block.T) if is_numpy_array(block) else block.T.copy()


def _reduce_task(function: Callable[..., Any], tile: Tile, options: dict,
                 *data: Any) -> tuple[Any, float, str]:
    start = time.perf_counter()
    result = function(tile, *data, **options)
    return result, time.perf_counter() - start, _worker_address()


def _describe_dtype(block: Array) -> str:
    return str(block.dtype)


class DaskExecutor:
    """Runs a plan's tiles as tasks on a Dask cluster (see the module docstring).

    Parameters
    ----------
    client : distributed.Client
        The cluster's client (``distributed.Client(address)``, or one on a
        ``LocalCluster``, ``dask_jobqueue.SLURMCluster``, ``dask_cuda.LocalCUDACluster``).

    Attributes
    ----------
    last_run : list of TileReport
        One report per tile computed by the last call: index, seconds on the worker,
        worker address.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.last_run: list[TileReport] = []

    @classmethod
    def default(cls) -> DaskExecutor:
        """On the current default client (``distributed.default_client()``).

        Returns
        -------
        DaskExecutor

        Raises
        ------
        ValueError
            When no client is running.
        """
        from distributed import default_client

        try:
            return cls(default_client())
        except ValueError:
            raise ValueError("executor='dask' needs a running Dask client: create one "
                             "first (distributed.Client(address), or "
                             "distributed.Client(distributed.LocalCluster())) or pass the "
                             "client itself as executor=") from None

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client!r})"

    # ------------------------------------------------------------------ shipping
    def _ship(self, tile_fn: Any) -> tuple[Callable[..., Any], list, dict]:
        """``(function, data futures, options)``: a TileTask's data scattered once to
        every worker; any other callable is itself the data (sent once)."""
        if isinstance(tile_fn, TileTask):
            function, data, options = tile_fn.function, list(tile_fn.data), tile_fn.options
        else:
            function, data, options = _call, [tile_fn], {}
        futures = (self.client.scatter(data, broadcast=True, hash=False) if data else [])
        return function, futures, options

    def _run(self, futures: dict, progress_tiles: dict, progress: bool | None, desc: str,
             on_result: Callable[[Any, Any], None], release: bool = True) -> None:
        """Wait for ``futures`` (name -> future, emptied as they complete) calling
        ``on_result(name, result)``; stop at a tile boundary on SIGINT/SIGTERM; cancel
        what is left on any exit."""
        from distributed import as_completed

        names = {future.key: name for name, future in futures.items()}
        stream = as_completed(list(futures.values()))
        try:
            with progress_bar(sum(progress_tiles.values()), progress, desc) as bar, \
                    interrupt.deferred():
                for future in stream:
                    name = names[future.key]
                    on_result(name, future.result())
                    # forget a finished task, so that Dask never recomputes it when the
                    # worker holding its (tiny) result is lost
                    del futures[name]
                    if release:
                        future.release()
                    bar.update(progress_tiles[name])
                    interrupt.boundary()
        finally:
            stream.clear()
            if futures:
                self.client.cancel(list(futures.values()))
                futures.clear()

    # --------------------------------------------------------------------- fill
    def fill(self, plan: PairPlan, tile_fn: Callable[[Tile], Any], out: Any, *,
             ledger: Ledger | None = None, progress: bool | None = False,
             desc: str = "SSIM distances") -> Any:
        """Have the workers write every tile not complete in ``ledger`` into ``out``.

        Parameters
        ----------
        plan : PairPlan
        tile_fn : TileTask or picklable callable
        out : zarr.Array or None
            Chunks equal to the plan's tiles. None: return the blocks as a persisted
            :class:`dask.array.Array` (chunks = tiles) held by the workers.
        ledger : Ledger, optional
            Records of completed tiles (:mod:`ssimref.stores`), written by the workers.
        progress : bool or None, default False
            A progress bar over pairs, advanced as tiles complete.
        desc : str, default "SSIM distances"

        Returns
        -------
        zarr.Array or dask.array.Array
            ``out``, or the dask array.

        Raises
        ------
        ValueError
            For an ``out`` in this process's memory (a NumPy array or memmap: the workers
            cannot write into it) or whose chunks are not the plan's tiles.
        ssimref.interrupt.Interrupted
            On SIGINT/SIGTERM, at the next tile that completes (the tasks not started
            are cancelled); a task's error (e.g. ``KilledWorker``) propagates too.
        """
        if out is None:
            return self._blocks(plan, tile_fn, progress, desc)
        if is_numpy_array(out) or not hasattr(out, "chunks"):
            raise ValueError("with a Dask executor, out must be a zarr array the workers "
                             "can open (e.g. zarr.create_array('D.zarr', shape=..., "
                             "chunks=...)), not an array in this process's memory; or "
                             "leave out=None for a dask array")
        chunks = chunk_plan(out, plan.symmetric)
        if chunks is None or (chunks.tile_rows, chunks.tile_cols) != (plan.tile_rows,
                                                                      plan.tile_cols):
            raise ValueError(f"out's chunks {getattr(out, 'chunks', None)} must be the "
                             f"tiles {(plan.tile_rows, plan.tile_cols)}: each task writes "
                             "whole chunks")
        done = ledger.completed() if ledger is not None else set()
        function, data, options = self._ship(tile_fn)
        token = uuid.uuid4().hex[:10]
        futures, pairs = {}, {}
        for tile in plan.tiles():
            index = plan.index(tile)
            if index in done:
                continue
            name = f"ssimref-tile-{token}-{index[0]}-{index[1]}"
            futures[name] = self.client.submit(
                _fill_task, function, tile, index, out, plan.symmetric, ledger, options,
                *data, key=name, pure=False)
            pairs[name] = tile.pairs
        reports: list[TileReport] = []
        try:
            self._run(futures, pairs, progress, desc,
                      lambda name, report: reports.append(report))
        finally:
            self.last_run = reports
            if ledger is not None:
                ledger.close()
        return out

    def _blocks(self, plan: PairPlan, tile_fn: Any, progress: bool | None, desc: str) -> Any:
        import dask.array as da

        function, data, options = self._ship(tile_fn)
        token = uuid.uuid4().hex[:10]
        futures, pairs, by_index = {}, {}, {}
        for tile in plan.tiles():
            index = plan.index(tile)
            name = f"ssimref-block-{token}-{index[0]}-{index[1]}"
            futures[name] = by_index[index] = self.client.submit(
                _block_task, function, tile, options, *data, key=name, pure=False)
            pairs[name] = tile.pairs
        self._run(futures, pairs, progress, desc, lambda name, block: None, release=False)
        self.last_run = []
        dtype = np.dtype(self.client.submit(_describe_dtype,
                                            next(iter(by_index.values()))).result())
        rows = []
        for bi in range(plan.grid[0]):
            row = []
            for bj in range(plan.grid[1]):
                r0, c0 = bi * plan.tile_rows, bj * plan.tile_cols
                shape = (min(plan.tile_rows, plan.n - r0), min(plan.tile_cols, plan.m - c0))
                future = by_index.get((bi, bj))
                if future is None:  # below the diagonal of a symmetric plan: a mirror
                    future = self.client.submit(_mirror_task, by_index[(bj, bi)],
                                                key=f"ssimref-mirror-{token}-{bi}-{bj}")
                row.append(da.from_delayed(future, shape, dtype=dtype))
            rows.append(row)
        return self.client.persist(da.block(rows))

    # ------------------------------------------------------------------- reduce
    def reduce(self, plan: PairPlan, tile_fn: Callable[[Tile], Any],
               accumulate: Callable[[Tile, Any], None], *, progress: bool | None = False,
               desc: str = "SSIM pairs") -> None:
        """``accumulate(tile, result)`` for every tile's result computed on the workers,
        in the plan's order (results that arrive early wait), so sums are the same bits
        as :class:`~ssimref.executor.SerialExecutor`'s.

        Parameters
        ----------
        plan : PairPlan
        tile_fn : TileTask or picklable callable
        accumulate : callable
            ``accumulate(tile, result)``, here in this process.
        progress : bool or None, default False
        desc : str, default "SSIM pairs"

        Raises
        ------
        ssimref.interrupt.Interrupted
            On SIGINT/SIGTERM, at the next tile that completes.
        """
        function, data, options = self._ship(tile_fn)
        token = uuid.uuid4().hex[:10]
        tiles = list(plan.tiles())
        futures, pairs = {}, {}
        for position, tile in enumerate(tiles):
            futures[position] = self.client.submit(
                _reduce_task, function, tile, options, *data,
                key=f"ssimref-reduce-{token}-{position}", pure=False)
            pairs[position] = tile.pairs
        waiting, state = {}, {"next": 0}
        reports: list[TileReport] = []

        def on_result(position, result):
            value, seconds, worker = result
            reports.append(TileReport(plan.index(tiles[position]), seconds, worker))
            waiting[position] = value
            while state["next"] in waiting:
                accumulate(tiles[state["next"]], waiting.pop(state["next"]))
                state["next"] += 1

        try:
            self._run(futures, pairs, progress, desc, on_result)
        finally:
            self.last_run = reports


def _call(tile: Tile, function: Callable[[Tile], Any]) -> Any:
    return function(tile)


def parse_dask_spec(spec: str) -> tuple[str, int | None]:
    """Read the command line's ``--dask`` value.

    Parameters
    ----------
    spec : str
        "local", "local:N" or a scheduler address.

    Returns
    -------
    (str, int or None)
        ``("local", N or None)`` for "local" / "local:N", else ``("address", None)``.

    Raises
    ------
    ValueError
        For "local:N" with N not a positive integer, or an empty value.
    """
    spec = str(spec).strip()
    if not spec:
        raise ValueError("--dask needs 'local', 'local:N' or a scheduler address "
                         "(e.g. tcp://10.0.0.1:8786)")
    if spec == "local" or spec.startswith("local:"):
        _, _, count = spec.partition(":")
        if not count:
            return "local", None
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"--dask local:N needs a number of workers N >= 1, got "
                             f"{spec!r}")
        return "local", int(count)
    return "address", None


@contextlib.contextmanager
def start_client(spec: str, *, threads_per_worker: int = 1) -> Iterator[Any]:
    """A Dask client for the command line's ``--dask`` value; closed (and a local cluster
    shut down) on exit.

    ``local`` / ``local:N``: a :class:`distributed.LocalCluster` in this process with N
    worker processes (``os.cpu_count()`` when N is omitted), ``threads_per_worker``
    threads each, Numba limited to as many threads, no dashboard. Anything else: the
    address of a running scheduler (``tcp://host:8786``), which must already have workers.

    Parameters
    ----------
    spec : str
        "local", "local:N" or a scheduler address.
    threads_per_worker : int, default 1
        For a local cluster.

    Yields
    ------
    distributed.Client

    Raises
    ------
    ImportError
        Without the ``dask`` extra.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("--dask needs Dask: pip install 'ssimref[dask]' (dask[distributed] "
                          "and zarr 3, Python >= 3.11)") from None
    kind, count = parse_dask_spec(spec)
    if kind == "address":
        with Client(spec) as client:
            yield client
        return
    workers = count or os.cpu_count() or 1
    with LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                      processes=True, dashboard_address=None,
                      # no dashboard; the scheduler's HTTP routes on a free port, not on
                      # 8787 (taken by any other cluster running here: a warning)
                      scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"},
                      env={"NUMBA_NUM_THREADS": str(threads_per_worker)}) as cluster, \
            Client(cluster) as client:
        yield client
