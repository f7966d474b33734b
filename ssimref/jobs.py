"""Resumable jobs: an all-pairs distance matrix or an SSIM kernel computed tile by tile
into a file (``.npy``) or a zarr store (``.zarr``), by this process or a Dask cluster,
continued after an interruption with ``resume=True``.

Each job is a fixed sequence of steps over one tile plan (:mod:`ssimref.tiling`), run by
an executor (:mod:`ssimref.executor`) into a store with one record per completed tile
(:mod:`ssimref.stores`):

- distance matrix: the tiles of ``D`` (or ``D^2``), each tile and its mirror;
- training kernel ``K = -1/2 H D^p H``: the tiles of ``D^2`` (a working array), the row
  means of ``-1/2 D^p`` (a reduction over blocks of full rows, stored once computed),
  then the centred tiles of ``K`` (:mod:`ssimref.kernels.centering`);
- test kernel (rows of new images against the training set): the tiles of ``D_test^2``,
  the test rows' means, then the tiles centred with the training statistics.

The store's fingerprint (images, kind, conventions, dtype, squared, engine, power) is
checked on resume; the tiles are the stored ones (a changed ``working_memory`` does not
change them), so the result equals an uninterrupted run bit for bit. An interrupted job
raises :class:`ssimref.interrupt.Interrupted` naming what it kept; a failed one (e.g. a
Dask worker lost too often) raises :class:`JobError`, also naming it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import interrupt
from .backend import Array, ArrayLike, arrays_for
from .config import SSIMConfig
from .executor import SerialExecutor, get_executor
from .tiling import PairPlan
from .io import save_json
from .kernels.centering import (centerer_from_statistics, centre_test_tiles, centre_tiles,
                                centring_statistics, out_of_sample_statistics)
from .pairwise import distance_tiles
from .stores import images_fingerprint, is_zarr_path, open_store, require_zarr
from .validation import check_stacks

__all__ = ["JobResult", "JobError", "Job", "distance_job", "kernel_job", "check_output",
           "prepare_distance_job", "prepare_kernel_job"]


class JobError(RuntimeError):
    """A resumable job that failed (not interrupted).

    Attributes
    ----------
    kept : str
        What it kept (its completed tiles).
    """

    def __init__(self, message: str, kept: str) -> None:
        super().__init__(message)
        self.kept = kept


@dataclass
class JobResult:
    """What a job did.

    Attributes
    ----------
    path : Path
        The output.
    tiles : dict
        Per array ("squared_distances", "matrix"): ``(computed now, complete before,
        total)``.
    engine : str
        The engine every tile ran on.
    seconds : float
    resumed : bool
        Whether an existing partial job was continued.
    reports : list
        The executor's :class:`~ssimref.executor.TileReport` of every tile computed now.
    meta : dict
        What the result is (stored in the zarr store's metadata, or the ``.json`` sidecar
        of a ``.npy``).
    """

    path: Path
    tiles: dict = field(default_factory=dict)
    engine: str = ""
    seconds: float = 0.0
    resumed: bool = False
    reports: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def computed(self) -> int:
        """Tiles computed by this run, over every step."""
        return sum(c for c, _, _ in self.tiles.values())


def check_output(path: str | Path, *, distributed: bool = False) -> Path:
    """Check an output path before any work: a ``.npy`` or ``.zarr`` in an existing
    folder; a ``.npy`` only for this process (the workers of a Dask cluster write zarr
    stores). Existing outputs are judged when the job opens them (resume or force).

    Parameters
    ----------
    path : str or Path
    distributed : bool, default False
        The tiles run on a Dask cluster.

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        For another suffix, or a ``.npy`` with ``distributed``.
    FileNotFoundError
        When the folder does not exist.
    ImportError
        For a zarr store without zarr 3.
    """
    path = Path(path)
    zarr_out = is_zarr_path(path)
    if not zarr_out and path.suffix != ".npy":
        raise ValueError(f"output {path} must end in .npy (NumPy format, no pickles) or "
                         ".zarr (a zarr store)")
    if not path.parent.exists():
        raise FileNotFoundError(f"folder {path.parent} of output {path} does not exist")
    if not zarr_out and distributed:
        raise ValueError(f"output {path}: with Dask the workers write the matrix, so it "
                         "must be a zarr store (-o NAME.zarr)")
    if zarr_out:
        require_zarr()
    return path


def _job(what: str, X: Array, config: SSIMConfig, kind: str, engine: str,
         **extra: Any) -> dict:
    return {"what": what, "kind": kind, "config": asdict(config), "engine": engine,
            "images": images_fingerprint(X), **extra}


def _tiles_of(store: Any, name: str, plan: PairPlan) -> PairPlan:
    """The plan of ``name``: the stored one when the job is resumed."""
    stored = store.tile_plan(name, plan.symmetric)
    if stored is None:
        if hasattr(store, "save_plan"):
            store.save_plan(name, plan)
        return plan
    if (stored.n, stored.m) != (plan.n, plan.m):  # the fingerprint makes this impossible
        raise ValueError(f"{store.path}: stored {name} is {stored.n} x {stored.m}, not "
                         f"{plan.n} x {plan.m}; pass --force to start again")
    return stored


def _fill(runner: Any, store: Any, name: str, plan: PairPlan, dtype: str,
          step: Callable[[Any, Any], Any], result: JobResult) -> Any:
    """One step over tiles into array ``name``, recorded; counts what it did."""
    array = store.matrix(name, plan, dtype)
    ledger = store.ledger(name, plan)
    before = len(ledger.completed())
    try:
        step(array, ledger)
    finally:
        reports = list(getattr(runner, "last_run", []))
        result.reports += reports
        result.tiles[name] = (len(reports), before, len(plan))
    return array


def _run(store: Any, result: JobResult, body: Callable[[], Any]) -> None:
    """Run ``body()``; an interruption or failure keeps the store and says so."""
    try:
        body()
    except KeyboardInterrupt as exc:
        raise interrupt.keep(exc, store.kept(_current(result))) from None
    except (ValueError, TypeError, OSError, ImportError):
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a Dask worker lost too often
        kept = store.kept(_current(result))
        raise JobError(f"the job failed ({type(exc).__name__}: {exc}); kept {kept}",
                       kept) from exc


def _current(result: JobResult) -> str:
    return "matrix" if "matrix" in result.tiles else "squared_distances" \
        if "squared_distances" in result.tiles else "matrix"


def _prepare_images(images: ArrayLike, config: SSIMConfig | None, backend: str,
                    distributed: bool, channel_axis: int | None = None,
                    name: str = "images") -> tuple[Array, Array, SSIMConfig]:
    _, X, _, config = check_stacks(images, None, SSIMConfig() if config is None else config,
                                   (name, "Y"), channel_axis=channel_axis)
    computed = X if distributed else arrays_for(backend, X)
    return X, computed, config


class Job:
    """A prepared job: its outputs opened and checked (fingerprint, resume or force),
    nothing computed yet; :meth:`run` computes what is missing and completes the outputs.
    Made by :func:`prepare_distance_job` and :func:`prepare_kernel_job`.

    Parameters
    ----------
    results : JobResult or tuple
        What :meth:`run` returns.
    body : callable or None
        ``body(executor)`` computes; None when nothing is left to do.
    finish : callable
        Completes the outputs.
    """

    def __init__(self, results: Any, body: Callable[[Any], None] | None,
                 finish: Callable[[], None]) -> None:
        self.results = results
        self._body = body
        self._finish = finish

    @property
    def complete(self) -> bool:
        """Nothing left to compute (every output was complete already)."""
        return self._body is None

    def run(self, executor: Any = None) -> Any:
        """Compute the missing tiles and complete the outputs.

        Parameters
        ----------
        executor : optional
            :func:`ssimref.executor.get_executor`'s argument.

        Returns
        -------
        JobResult, or (JobResult, JobResult or None) for a kernel job

        Raises
        ------
        ssimref.interrupt.Interrupted
            On SIGINT/SIGTERM (the completed tiles are kept).
        JobError
            When the computation fails (the completed tiles are kept).
        """
        runner = get_executor(executor)
        start = time.perf_counter()
        if self._body is not None:
            self._body(runner)
        for result in self._all():
            result.seconds = time.perf_counter() - start
            result.meta["seconds"] = round(result.seconds, 3)
        self._finish()
        return self.results

    def _all(self) -> list[JobResult]:
        if isinstance(self.results, tuple):
            return [r for r in self.results if r is not None]
        return [self.results]


def _complete(store: Any, result: JobResult, drop: tuple[str, ...] = ()) -> None:
    store.finish(result.meta, drop=drop)
    if not is_zarr_path(result.path):
        save_json(result.path.with_suffix(".json"), result.meta, force=True)


def prepare_distance_job(images: ArrayLike, output: str | Path, *, kind: str = "eq2",
                         config: SSIMConfig | None = None, dtype: str = "float64",
                         squared: bool = False, backend: str = "auto",
                         working_memory: float | None = None, distributed: bool = False,
                         resume: bool = False, force: bool = False, progress: bool | None = False,
                         describe: dict | None = None,
                         channel_axis: int | None = None) -> Job:
    """:func:`distance_job` in two steps: check and open the output now (before a cluster
    is started), compute with ``Job.run(executor)``.

    Parameters
    ----------
    images, output, kind, config, dtype, squared, backend, working_memory, resume, force,
    progress, describe, channel_axis
        As for :func:`distance_job`.
    distributed : bool, default False
        The tiles will run on a Dask cluster (see
        :func:`ssimref.pairwise.distance_tiles`).

    Returns
    -------
    Job

    Raises
    ------
    FileExistsError, ssimref.stores.StoreError, ValueError
        As for :func:`distance_job`, before anything is computed.
    """
    path = check_output(output, distributed=distributed)
    X, computed, config = _prepare_images(images, config, backend, distributed, channel_axis)
    dtype = str(np.dtype(dtype))
    plan, task = distance_tiles(computed, None, kind, config, squared=squared, dtype=dtype,
                                backend=backend, working_memory=working_memory,
                                distributed=distributed)
    engine = task.options["engine"]
    n = X.shape[0]
    job = _job("distance", X, config, kind, engine, squared=bool(squared), dtype=dtype,
               shape=[n, n])
    store, resumed = open_store(path, job, resume=resume, force=force)
    meta = {"what": f"SSIM distance matrix D(i, j) = ||D'_ij||_F"
                    f"{', squared' if squared else ''}, kind {kind}",
            "shape": [n, n], "dtype": dtype, "kind": kind, "config": asdict(config),
            "engine": engine, **(describe or {})}
    result = JobResult(path, engine=engine, resumed=bool(resumed), meta=meta)
    if resumed == "complete":
        return Job(result, None, lambda: None)
    plan = _tiles_of(store, "matrix", plan)

    def body(runner: Any) -> None:
        _run(store, result, lambda: _fill(
            runner, store, "matrix", plan, dtype,
            lambda out, ledger: runner.fill(plan, task, out, ledger=ledger,
                                            progress=progress),
            result))

    return Job(result, body, lambda: _complete(store, result))


def distance_job(images: ArrayLike, output: str | Path, *, kind: str = "eq2",
                 config: SSIMConfig | None = None, dtype: str = "float64",
                 squared: bool = False, backend: str = "auto",
                 working_memory: float | None = None, executor: Any = None,
                 resume: bool = False, force: bool = False, progress: bool | None = False,
                 describe: dict | None = None, channel_axis: int | None = None) -> JobResult:
    """The all-pairs distance matrix of ``images`` into ``output``, resumably.

    Parameters
    ----------
    images : array (n, H, W[, C])
        Host images (NumPy).
    output : str or Path
        ``.npy`` (this process; computed under ``.NAME.partial/`` and renamed when
        complete, with a ``.json`` sidecar) or ``.zarr`` (a store marked complete when
        done; the array ``matrix``).
    kind : str, default "eq2"
    config : SSIMConfig, optional
        With its data range (or one inferable from the images' dtype).
    dtype : {"float64", "float32"}
    squared : bool, default False
    backend : str, default "auto"
    working_memory : float, optional
        MiB per tile, for a new job (a resumed one keeps its tiles).
    progress : bool or None, default False
        As for :func:`ssimref.distance_matrix`.
    executor : optional
        :func:`ssimref.executor.get_executor`'s argument (a Dask executor needs a
        ``.zarr`` output).
    resume : bool
        Continue the incomplete job at ``output`` (same fingerprint), computing only the
        tiles without a record; a missing output starts afresh.
    force : bool
        Replace an existing output (or an incomplete job that cannot be resumed).
    describe : dict, optional
        Extra fields for the result's metadata (source, split, ...).
    channel_axis : int, optional
        The channel axis of 4-D stacks (1 for ``(n, C, H, W)``), as for
        :func:`ssimref.distance_matrix`; None: channels last, at most 4 of them.

    Returns
    -------
    JobResult

    Raises
    ------
    FileExistsError
        An existing output without ``force`` (or ``resume`` for an incomplete one).
    ssimref.stores.StoreError
        On resume: a foreign, damaged, or differently configured store.
    ssimref.interrupt.Interrupted
        On SIGINT/SIGTERM: the completed tiles are kept.
    JobError
        When the computation fails (the completed tiles are kept).
    """
    runner = get_executor(executor)
    return prepare_distance_job(
        images, output, kind=kind, config=config, dtype=dtype, squared=squared,
        backend=backend, working_memory=working_memory,
        distributed=not isinstance(runner, SerialExecutor), resume=resume, force=force,
        progress=progress, describe=describe, channel_axis=channel_axis).run(runner)


def prepare_kernel_job(images: ArrayLike, output: str | Path, *, kind: str = "eq2",
                       config: SSIMConfig | None = None, power: float = 1.0,
                       backend: str = "auto", working_memory: float | None = None,
                       distributed: bool = False, resume: bool = False,
                       force: bool = False, progress: bool | None = False,
                       describe: dict | None = None, test_images: ArrayLike | None = None,
                       test_output: str | Path | None = None,
                       test_describe: dict | None = None,
                       channel_axis: int | None = None) -> Job:
    """:func:`kernel_job` in two steps, as :func:`prepare_distance_job`.

    Parameters
    ----------
    images, output, kind, config, power, backend, working_memory, resume, force, progress,
    describe, test_images, test_output, test_describe, channel_axis
        As for :func:`kernel_job`.
    distributed : bool, default False
        The tiles will run on a Dask cluster.

    Returns
    -------
    Job

    Raises
    ------
    FileExistsError, ssimref.stores.StoreError, ValueError
        As for :func:`kernel_job`, before anything is computed.
    """
    path = check_output(output, distributed=distributed)
    test_path = None if test_output is None else check_output(test_output,
                                                               distributed=distributed)
    X, computed, config = _prepare_images(images, config, backend, distributed, channel_axis)
    plan, task = distance_tiles(computed, None, kind, config, squared=True, dtype="float64",
                                backend=backend, working_memory=working_memory,
                                distributed=distributed)
    engine = task.options["engine"]
    n = X.shape[0]
    job = _job("kernel", X, config, kind, engine, power=float(power), shape=[n, n])
    meta = {"what": f"SSIM kernel K = -1/2 H D^{power:g} H, D = SSIM distances of kind "
                    f"{kind}", "shape": [n, n], "dtype": "float64", "kind": kind,
            "power": float(power), "config": asdict(config), "engine": engine,
            **(describe or {})}
    store, resumed = open_store(path, job, resume=resume, force=force)
    result = JobResult(path, engine=engine, resumed=bool(resumed), meta=meta)
    test = None
    if test_images is not None:
        T, test_computed, _ = _prepare_images(test_images, config, backend, distributed,
                                              channel_axis, name="test_images")
        tplan, ttask = distance_tiles(test_computed, computed, kind, config, squared=True,
                                      dtype="float64", backend=backend,
                                      working_memory=working_memory,
                                      distributed=distributed)
        test_job = _job("test-kernel", T, config, kind, engine, power=float(power),
                        shape=[T.shape[0], n], train_images=job["images"])
        assert test_path is not None
        tstore, tresumed = open_store(test_path, test_job, resume=resume, force=force)
        test_meta = {"what": meta["what"] + ", test rows against the training set, centred "
                     "with the training statistics (Bengio et al. 2004)",
                     "shape": [T.shape[0], n], "dtype": "float64", "kind": kind,
                     "power": float(power), "config": asdict(config), "engine": engine,
                     "train_kernel": str(path), **(test_describe or {})}
        test = (tplan, ttask, tstore, tresumed,
                JobResult(test_path, engine=engine, resumed=bool(tresumed), meta=test_meta))
    options: dict[str, Any] = dict(squared=True, working_memory=working_memory,
                                   progress=progress)

    def train(runner: Any, stats: dict) -> None:
        if resumed == "complete":
            stats["m"] = store.load_vector("row_means")
            stats["g"] = float(store.load_vector("grand_mean")[0])
            return
        tiles = _tiles_of(store, "squared_distances", plan)
        D2 = _fill(runner, store, "squared_distances", tiles, "float64",
                   lambda out, ledger: runner.fill(tiles, task, out, ledger=ledger,
                                                   progress=progress), result)
        if not store.state.get("stats"):
            m, g = centring_statistics(D2, power, executor=runner, **options)
            store.save_vector("row_means", m)
            store.save_vector("grand_mean", np.array([g]))
            store.set_state(stats=True)
        stats["m"] = store.load_vector("row_means")
        stats["g"] = float(store.load_vector("grand_mean")[0])
        _fill(runner, store, "matrix", tiles, "float64",
              lambda out, ledger: centre_tiles(D2, stats["m"], stats["g"], power, out,
                                               plan=tiles, ledger=ledger, executor=runner,
                                               **options), result)

    def run_test(runner: Any, stats: dict) -> None:
        assert test is not None
        tplan, ttask, tstore, tresumed, tresult = test
        if tresumed == "complete":
            return
        centerer = centerer_from_statistics(stats["m"], stats["g"])
        tiles = _tiles_of(tstore, "squared_distances", tplan)
        D2t = _fill(runner, tstore, "squared_distances", tiles, "float64",
                    lambda out, ledger: runner.fill(tiles, ttask, out, ledger=ledger,
                                                    progress=progress), tresult)
        pred_cols = out_of_sample_statistics(D2t, power, executor=runner, **options)
        _fill(runner, tstore, "matrix", tiles, "float64",
              lambda out, ledger: centre_test_tiles(D2t, centerer, pred_cols, power, out,
                                                    plan=tiles, ledger=ledger,
                                                    executor=runner, **options), tresult)

    def body(runner: Any) -> None:
        stats: dict = {}
        _run(store, result, lambda: train(runner, stats))
        if test is not None:
            _run(test[2], test[4], lambda: run_test(runner, stats))

    def finish() -> None:
        if resumed != "complete":
            _complete(store, result, drop=("squared_distances",))
        if test is not None and test[3] != "complete":
            _complete(test[2], test[4], drop=("squared_distances",))

    nothing = resumed == "complete" and (test is None or test[3] == "complete")
    return Job((result, None if test is None else test[4]), None if nothing else body,
               finish)


def kernel_job(images: ArrayLike, output: str | Path, *, kind: str = "eq2",
               config: SSIMConfig | None = None, power: float = 1.0, backend: str = "auto",
               working_memory: float | None = None, executor: Any = None,
               resume: bool = False, force: bool = False, progress: bool | None = False,
               describe: dict | None = None, test_images: ArrayLike | None = None,
               test_output: str | Path | None = None, test_describe: dict | None = None,
               channel_axis: int | None = None) -> tuple[JobResult, JobResult | None]:
    """The SSIM kernel ``-1/2 H D^p H`` of ``images`` into ``output`` (and the kernel of
    ``test_images`` against them, centred with the training statistics, into
    ``test_output``), resumably; float64.

    The squared distances are a working array of the job (``n x n`` float64 more on disk
    while it runs), deleted when it completes; a zarr store keeps the training statistics
    (arrays ``row_means``, ``grand_mean``).

    Parameters
    ----------
    images : array (n, H, W[, C])
        Host images (NumPy).
    output : str or Path
        ``.npy`` or ``.zarr``, as for :func:`distance_job`.
    kind : str, default "eq2"
    config : SSIMConfig, optional
    power : float in (0, 2], default 1.0
        Validated by the caller (:func:`ssimref.kernels.centering.check_power`).
    backend, working_memory, executor, resume, force, progress, describe
        As for :func:`distance_job`.
    test_images : array (m, H, W[, C]), optional
        Their kernel against ``images`` goes to ``test_output``.
    test_output : str or Path, optional
    test_describe : dict, optional
        Extra metadata of the test kernel.
    channel_axis : int, optional
        As for :func:`distance_job` (for both image stacks).

    Returns
    -------
    (JobResult, JobResult or None)
        The training kernel's, and the test kernel's.

    Raises
    ------
    FileExistsError, ssimref.stores.StoreError, ssimref.interrupt.Interrupted, JobError
        As for :func:`distance_job`.
    """
    runner = get_executor(executor)
    return prepare_kernel_job(
        images, output, kind=kind, config=config, power=power, backend=backend,
        working_memory=working_memory, distributed=not isinstance(runner, SerialExecutor),
        resume=resume, force=force, progress=progress, describe=describe,
        test_images=test_images, test_output=test_output,
        test_describe=test_describe, channel_axis=channel_axis).run(runner)
