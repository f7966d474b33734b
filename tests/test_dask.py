"""The Dask executor: tiles as tasks on a LocalCluster of 2 worker processes give the
serial executor's results bit for bit (distance matrices of every kind and output dtype,
symmetric and rectangular; MMD and CMMD; the kernel's centring), both workers compute
tiles, no tile's block passes through the client, and a job whose worker is killed
resumes computing only the tiles without a record."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

import ssimref  # noqa: E402
from ssimref.executor import get_executor  # noqa: E402
from ssimref.executor_dask import DaskExecutor, parse_dask_spec  # noqa: E402
from ssimref.jobs import JobError, distance_job, kernel_job  # noqa: E402
from ssimref.kernels import RBFMixture, SSIMDistanceKernel, ssim_kernel  # noqa: E402
from ssimref.kernels.centering import centring_statistics  # noqa: E402
from ssimref.mmd import cmmd2, mmd2, mmd2_and_grad  # noqa: E402
from ssimref.stores import open_matrix  # noqa: E402

from .conftest import cupy_with_device  # noqa: E402
from .dask_helpers import ROOT, count_zarr_records, slow_engines, zarr_records  # noqa: E402

KINDS = ("eq1", "eq1-uncentered", "eq2")
CONV = dict(window="uniform", size=3)


def _cluster(**config):
    with dask.config.set(config):
        return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                        dashboard_address=None,
                                        scheduler_kwargs={"dashboard": False,
                                                          "dashboard_address": ":0"},
                                        env={"NUMBA_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, distributed.Client(cluster) as c:
        c.wait_for_workers(2)
        yield c


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (64, 10, 10), dtype=np.uint8), \
        rng.integers(0, 256, (40, 10, 10), dtype=np.uint8)


def _zarr_out(tmp_path, name, shape, chunks, dtype):
    return zarr.create_array(str(tmp_path / name), shape=shape, chunks=chunks, dtype=dtype)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("symmetric", [True, False], ids=["symmetric", "rectangular"])
def test_dask_fill_equals_serial_bit_for_bit(client, images, tmp_path, kind, dtype,
                                             symmetric):
    """Every tile a task on one of 2 worker processes, written by the workers into a zarr
    array: the serial executor's matrix, bit for bit; both workers ran tiles; what came
    back to the client per tile is a TileReport of a few bytes."""
    X, Y = images
    Yw = None if symmetric else Y
    shape = (X.shape[0], X.shape[0] if symmetric else Y.shape[0])
    serial = ssimref.distance_matrix(X, Yw, kind, dtype=dtype, **CONV)
    out = _zarr_out(tmp_path, "D.zarr", shape, (16, 16), dtype)
    executor = DaskExecutor(client)
    with distributed.get_task_stream(client) as stream:
        result = ssimref.distance_matrix(X, Yw, kind, out=out, executor=executor, **CONV)
    assert result is out
    distributed_values = zarr.open_array(str(tmp_path / "D.zarr"), mode="r")[...]
    assert distributed_values.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(distributed_values, serial)
    tiles = len(executor.last_run)
    assert tiles == (10 if symmetric else 4 * 3)  # 4 x 4 tiles (upper half) / 4 x 3
    workers = set(client.scheduler_info()["workers"])
    assert {r.worker for r in executor.last_run} == workers  # both workers ran tiles
    tasks = [t for t in stream.data if str(t["key"]).startswith("ssimref-tile-")]
    assert len(tasks) == tiles and {t["worker"] for t in tasks} == workers
    # no block passed through the client: each task's result is a small TileReport
    assert all(t["typename"].endswith("TileReport") for t in tasks)
    smallest_block = 16 * 8 * np.dtype(dtype).itemsize  # a 16 x 8 edge tile, 512 bytes
    assert max(t["nbytes"] for t in tasks) < 400 < smallest_block
    assert all(len(pickle.dumps(r)) < 200 for r in executor.last_run)


def test_dask_on_the_reference_engine_and_dask_arrays(client, images, tmp_path):
    """backend='reference' runs the reference engine on the workers; without out the
    result is a dask array of the tiles, held by the workers."""
    X, Y = images
    serial = ssimref.distance_matrix(X, Y, "eq2", backend="reference", **CONV)
    out = _zarr_out(tmp_path, "R.zarr", serial.shape, (16, 16), "float64")
    ssimref.distance_matrix(X, Y, "eq2", backend="reference", out=out, executor=client,
                            **CONV)
    np.testing.assert_array_equal(out[...], serial)
    lazy = ssimref.distance_matrix(X, kind="eq1", executor="dask", working_memory=0.02,
                                   dtype="float32", **CONV)
    assert isinstance(lazy, dask.array.Array) and lazy.dtype == np.float32
    assert lazy.chunks[0] == lazy.chunks[1] and len(lazy.chunks[0]) > 1
    np.testing.assert_array_equal(lazy.compute(),
                                  ssimref.distance_matrix(X, kind="eq1", dtype="float32",
                                                          **CONV))


def test_dask_refuses_outputs_the_workers_cannot_write(client, images, tmp_path):
    X, _ = images
    with pytest.raises(ValueError, match="out must be a zarr array"):
        ssimref.distance_matrix(X, out=np.empty((64, 64)), executor=client, **CONV)
    out = _zarr_out(tmp_path, "C.zarr", (64, 64), (8, 4), "float64")
    with pytest.raises(ValueError, match="square chunks"):
        ssimref.distance_matrix(X, out=out, executor=client, **CONV)


def test_executor_argument():
    assert get_executor(None) is get_executor("serial")
    with pytest.raises(ValueError, match="executor must be one of"):
        get_executor("threads")
    with pytest.raises(TypeError, match="fill\\(\\) and reduce\\(\\)"):
        get_executor(3)
    assert parse_dask_spec("local") == ("local", None)
    assert parse_dask_spec("local:3") == ("local", 3)
    assert parse_dask_spec("tcp://10.0.0.1:8786") == ("address", None)
    with pytest.raises(ValueError, match="local:N"):
        parse_dask_spec("local:0")


def test_executor_dask_without_a_client_names_the_fix():
    code = ("import pytest\nfrom ssimref.executor import get_executor\n"
            "with pytest.raises(ValueError, match='needs a running Dask client'):\n"
            "    get_executor('dask')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_mmd_reductions_through_dask_equal_serial(client, images, estimator):
    """MMD^2 and its gradient as tile reductions on the workers: the tiles' sums and
    gradient rows come back and are added in the plan's order, so the serial values
    come out bit for bit; both workers ran tiles."""
    X, Y = images
    kernel = SSIMDistanceKernel("eq2", data_range=255, **CONV)
    executor = DaskExecutor(client)
    value = mmd2(X, Y, kernel, estimator, working_memory=0.01)
    assert mmd2(X, Y, kernel, estimator, working_memory=0.01, executor=executor) == value
    # the reductions ran on the cluster's workers (which of the two takes a tile is the
    # scheduler's choice; test_dask_fill_equals_serial_bit_for_bit shows both)
    ran = {r.worker for r in executor.last_run}
    assert ran and ran <= set(client.scheduler_info()["workers"])
    v1, g1 = mmd2_and_grad(X, Y, kernel, estimator, working_memory=0.01)
    v2, g2 = mmd2_and_grad(X, Y, kernel, estimator, working_memory=0.01, executor=executor)
    assert v1 == v2
    np.testing.assert_array_equal(g1, g2)
    rbf = RBFMixture((64.0, 256.0))
    Xf, Yf = X.astype(np.float64) / 255, Y.astype(np.float64) / 255
    assert mmd2(Xf, Yf, rbf, estimator, working_memory=0.01, executor=client) == \
        mmd2(Xf, Yf, rbf, estimator, working_memory=0.01)
    labels = np.arange(40) % 3
    assert cmmd2(Xf[:40], Yf, labels, rbf, working_memory=0.01, executor=client) == \
        cmmd2(Xf[:40], Yf, labels, rbf, working_memory=0.01)


def test_kernel_centring_through_dask_equals_serial(client, images, tmp_path):
    """The SSIM kernel with Dask: distance tiles, the row means as a reduction over row
    blocks read by the workers from the zarr store, the centred tiles written by the
    workers in place: the serial kernel bit for bit, and the same centring statistics;
    test kernels centred with them too."""
    X, Y = images
    K, centerer = ssim_kernel(X, kind="eq2", return_centerer=True, **CONV)
    out = _zarr_out(tmp_path, "K.zarr", (64, 64), (8, 8), "float64")
    executor = DaskExecutor(client)
    Kd, centerer_d = ssim_kernel(X, kind="eq2", out=out, return_centerer=True,
                                 executor=executor, **CONV)
    assert Kd is out
    np.testing.assert_array_equal(out[...], K)
    np.testing.assert_array_equal(centerer_d.K_fit_rows_, centerer.K_fit_rows_)
    assert centerer_d.K_fit_all_ == centerer.K_fit_all_
    # the statistics against scikit-learn's KernelCenterer fitted on -1/2 D (the
    # reduction sums rows, scikit-learn columns: equal up to round-off)
    from sklearn.preprocessing import KernelCenterer
    fitted = KernelCenterer().fit(-0.5 * ssimref.distance_matrix(X, **CONV))
    np.testing.assert_allclose(centerer.K_fit_rows_, fitted.K_fit_rows_, rtol=1e-14,
                               atol=1e-15)
    D2 = _zarr_out(tmp_path, "D2.zarr", (64, 64), (8, 8), "float64")
    ssimref.distance_matrix(X, squared=True, out=D2, executor=executor, **CONV)
    m, g = centring_statistics(D2, 1.0, squared=True, working_memory=0.0005,
                               executor=executor)
    assert len(executor.last_run) > 1 and len({r.worker for r in executor.last_run}) == 2
    np.testing.assert_array_equal(m, centerer.K_fit_rows_)
    assert g == centerer.K_fit_all_
    Kt = ssim_kernel(Y, X, kind="eq2", centerer=centerer, **CONV)
    out_t = _zarr_out(tmp_path, "Kt.zarr", (40, 64), (8, 8), "float64")
    ssim_kernel(Y, X, kind="eq2", centerer=centerer, out=out_t, executor=executor, **CONV)
    np.testing.assert_array_equal(out_t[...], Kt)
    with pytest.raises(ValueError, match="needs out= a zarr array"):
        ssim_kernel(X, executor=executor, **CONV)


def test_distance_and_kernel_jobs_on_dask_equal_serial_jobs(client, images, tmp_path):
    X, Y = images
    cfg = ssimref.SSIMConfig(data_range=255, **CONV)
    a = distance_job(X, tmp_path / "a.zarr", config=cfg, working_memory=0.1)
    b = distance_job(X, tmp_path / "b.zarr", config=cfg, working_memory=0.1,
                     executor=client)
    assert a.tiles == b.tiles and b.computed == len(b.reports) > 1
    np.testing.assert_array_equal(open_matrix(tmp_path / "a.zarr")[...],
                                  open_matrix(tmp_path / "b.zarr")[...])
    kernel_job(X, tmp_path / "ka.zarr", config=cfg, working_memory=0.1, test_images=Y,
               test_output=tmp_path / "ta.zarr")
    kb, tb = kernel_job(X, tmp_path / "kb.zarr", config=cfg, working_memory=0.1,
                        executor=client, test_images=Y, test_output=tmp_path / "tb.zarr")
    assert tb is not None and len({r.worker for r in kb.reports + tb.reports}) == 2
    for left, right in (("ka", "kb"), ("ta", "tb")):
        np.testing.assert_array_equal(open_matrix(tmp_path / f"{left}.zarr")[...],
                                      open_matrix(tmp_path / f"{right}.zarr")[...])
    np.testing.assert_array_equal(open_matrix(tmp_path / "ka.zarr")[...],
                                  ssim_kernel(X, config=cfg))


def _run_in_thread(function):
    box = {}

    def target():
        try:
            box["result"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def test_a_killed_worker_stops_the_job_and_resume_computes_only_the_missing_tiles(
        images, tmp_path):
    """A worker process killed (SIGKILL) while it computes a tile, with Dask allowed no
    retries: the job fails after k of N tiles (0 < k < N), keeping its records; resumed,
    it computes exactly the N - k tiles without a record, leaves the first run's records
    as they were, and gives the uninterrupted matrix bit for bit."""
    rng = np.random.default_rng(3)
    X = rng.integers(0, 256, (60, 9, 9), dtype=np.uint8)
    cfg = ssimref.SSIMConfig(data_range=255, **CONV)
    path = tmp_path / "D.zarr"
    expected = ssimref.distance_matrix(X, config=cfg)
    memory = 0.03  # tiles of 6 x 6 pairs: 10 x 10 tiles, 55 on and above the diagonal
    with _cluster(**{"distributed.scheduler.allowed-failures": 0}) as cluster, \
            distributed.Client(cluster) as c:
        c.wait_for_workers(2)
        c.run(slow_engines, 0.1)  # about 0.1 s per tile on each worker
        thread, box = _run_in_thread(lambda: distance_job(
            X, path, config=cfg, working_memory=memory, executor=c))
        deadline = time.monotonic() + 120
        while count_zarr_records(path) < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        busy = [w for w, keys in c.processing().items() if keys]
        pids = c.run(os.getpid)
        os.kill(pids[busy[0]], signal.SIGKILL)
        thread.join(120)
        assert isinstance(box.get("error"), JobError), box
        assert "kept" in str(box["error"]) and str(path) in box["error"].kept
        # a tile the other worker was computing when the job failed still finishes and
        # records itself (every record is a complete tile): wait until none comes
        stable = time.monotonic()
        seen = count_zarr_records(path)
        while time.monotonic() - stable < 1.0:
            time.sleep(0.05)
            if count_zarr_records(path) != seen:
                seen, stable = count_zarr_records(path), time.monotonic()
        before = zarr_records(path)
        done = {tuple(i) for i in np.argwhere(before[..., 0] != 0)}
        c.wait_for_workers(2)
        executor = DaskExecutor(c)
        result = distance_job(X, path, config=cfg, working_memory=1.0, executor=executor,
                              resume=True)  # the stored tiles, whatever the memory now
    total = result.tiles["matrix"][2]
    assert total == 55 and 0 < len(done) < total
    assert result.tiles["matrix"] == (total - len(done), len(done), total)
    assert {r.tile for r in result.reports}.isdisjoint(done)
    assert len({r.tile for r in result.reports}) == total - len(done)
    after = zarr_records(path)
    for i, j in done:  # the first run's records are untouched
        np.testing.assert_array_equal(after[i, j], before[i, j])
    np.testing.assert_array_equal(open_matrix(path)[...], expected)


def test_nothing_imports_dask_or_zarr_unless_used(tmp_path):
    """The package, the command line and serial computations (into .npy outputs too)
    import neither Dask nor zarr."""
    code = ("import sys, numpy as np, ssimref, ssimref.cli, ssimref.jobs, ssimref.mmd\n"
            "X = np.arange(4 * 64, dtype=np.uint8).reshape(4, 8, 8)\n"
            "ssimref.distance_matrix(X, window='uniform', size=3)\n"
            "ssimref.jobs.distance_job(X, sys.argv[1], config=ssimref.SSIMConfig("
            "window='uniform', size=3, data_range=255))\n"
            "loaded = sorted(m for m in ('dask', 'distributed', 'zarr') if m in sys.modules)\n"
            "assert not loaded, loaded\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "D.npy")],
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.gpu
@pytest.mark.skipif(cupy_with_device() is None, reason="CuPy or a CUDA device missing")
def test_gpu_workers_compute_tiles_with_the_cupy_engine(client, images, tmp_path):
    """backend='cupy' with host images: each worker moves its tiles' images to the GPU and
    runs the CUDA engine; the matrix agrees with the reference engine to the engines'
    contract and equals the serial CuPy matrix bit for bit."""
    import cupy

    X, _ = images
    out = _zarr_out(tmp_path, "G.zarr", (64, 64), (16, 16), "float64")
    executor = DaskExecutor(client)
    ssimref.distance_matrix(X, out=out, executor=executor, backend="cupy", **CONV)
    assert len(executor.last_run) == 10
    serial_gpu = cupy.asnumpy(ssimref.distance_matrix(cupy.asarray(X), backend="cupy",
                                                      working_memory=0.05, **CONV))
    np.testing.assert_array_equal(out[...], serial_gpu)
    reference = ssimref.distance_matrix(X, backend="reference", **CONV)
    np.testing.assert_allclose(out[...], reference, rtol=1e-10, atol=1e-7)


def test_unreachable_scheduler_leaves_no_output(tmp_path):
    """--dask with an address nobody listens on exits 2 with one line and leaves no store
    behind (the store is made before the cluster is joined, and removed when it cannot
    be)."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).integers(0, 256, (6, 8, 8),
                                                                  dtype=np.uint8))
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1s")
    run = subprocess.run([sys.executable, "-m", "ssimref", "distance", "x.npy", "-o",
                          "D.zarr", "--dask", "tcp://127.0.0.1:1"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "127.0.0.1:1" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]
