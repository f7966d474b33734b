"""Resumable jobs (ssimref.jobs, ssimref.stores): a job interrupted after k of N tiles
keeps exactly its recorded tiles, resumes computing only the N - k others, and ends with
the uninterrupted matrix bit for bit; foreign, damaged and reconfigured stores are refused
on resume with a message that names the problem; nothing is overwritten without force;
incomplete stores are never read as results. The command line is interrupted the way a
user does it: SIGKILL, SIGINT or SIGTERM sent to a running process."""

from __future__ import annotations

import json
import shlex
import signal
from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

import ssimref  # noqa: E402
from ssimref import interrupt  # noqa: E402
from ssimref.cli import main as cli_main  # noqa: E402
from ssimref.engines import get_engine  # noqa: E402
from ssimref.io import load_images  # noqa: E402
from ssimref.jobs import distance_job, kernel_job  # noqa: E402
from ssimref.kernels import ssim_kernel  # noqa: E402
from ssimref.stores import NpyStore, StoreError, open_matrix  # noqa: E402

from .dask_helpers import (block_method, count_file_records, count_zarr_records,  # noqa: E402
                           run_cli, signal_after, start_cli, zarr_records)

CFG = ssimref.SSIMConfig(window="uniform", size=3, data_range=255)
MEMORY = 0.02  # 4 x 4 tiles of 9 x 9 images: 15 x 15 tiles, 120 of them on and above
TOTAL = 120


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(11).integers(0, 256, (60, 9, 9), dtype=np.uint8)


@pytest.fixture(scope="module")
def expected(X):
    return {"float64": ssimref.distance_matrix(X, config=CFG),
            "float32": ssimref.distance_matrix(X, config=CFG, dtype="float32")}


@pytest.fixture
def interrupt_after(monkeypatch):
    """Make the numba engine raise KeyboardInterrupt (Ctrl-C inside a tile) on its
    (k+1)-th tile."""
    def arm(k):
        engine = get_engine("numba")
        method = block_method(engine)
        original = getattr(engine, method)
        calls = [0]

        def interrupted(*args, **kwargs):
            calls[0] += 1
            if calls[0] > k:
                raise KeyboardInterrupt
            return original(*args, **kwargs)

        monkeypatch.setattr(engine, method, interrupted)
        return lambda: monkeypatch.setattr(engine, method, original)
    return arm


def _records(path):
    """``{tile index: (run, pid, time ns)}`` of a zarr store's recorded tiles."""
    records = zarr_records(path)
    done = records[..., 0] != 0
    return {tuple(int(v) for v in i): tuple(int(v) for v in r)
            for i, r in zip(np.argwhere(done), records[done])}


@pytest.mark.parametrize("suffix, dtype", [(".npy", "float64"), (".zarr", "float32")])
def test_interrupted_job_resumes_only_the_missing_tiles(X, expected, tmp_path,
                                                        interrupt_after, suffix, dtype):
    path = tmp_path / f"D{suffix}"
    restore = interrupt_after(37)
    with pytest.raises(interrupt.Interrupted) as info:
        distance_job(X, path, config=CFG, dtype=dtype, working_memory=MEMORY)
    assert str(path if suffix == ".zarr" else NpyStore.partial_folder(path)) in \
        info.value.kept and "37" in info.value.kept
    assert not (suffix == ".npy" and path.exists())  # no partial result under the name
    if suffix == ".zarr":
        first = _records(path)
        assert len(first) == 37
        with pytest.raises(StoreError, match="incomplete"):
            open_matrix(path)
        partial = zarr.open_group(str(path), mode="r")["matrix"][...]
        assert np.isnan(partial).any()  # a value never computed reads NaN, not 0
    else:
        assert count_file_records(path) == 37
    restore()
    result = distance_job(X, path, config=CFG, dtype=dtype, working_memory=5.0, resume=True)
    assert result.resumed and result.tiles["matrix"] == (TOTAL - 37, 37, TOTAL)
    if suffix == ".zarr":
        after = _records(path)
        assert all(after[i] == first[i] for i in first)  # the first run's records stay
    D = open_matrix(path)[...]
    assert D.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(D, expected[dtype])
    assert not NpyStore.partial_folder(path).exists()


def test_interrupted_kernel_job_resumes_in_each_step(X, tmp_path, interrupt_after,
                                                     monkeypatch):
    """The kernel job interrupted in its distance step, then in its centring step,
    resumes each time and ends with ssim_kernel's matrices (training and test)."""
    import ssimref.kernels.centering as centering

    train, test = X[:40], X[40:]
    want, centerer = ssim_kernel(train, config=CFG, return_centerer=True)
    want_test = ssim_kernel(test, train, config=CFG, centerer=centerer)
    for suffix in (".zarr", ".npy"):
        path, test_path = tmp_path / f"K{suffix}", tmp_path / f"Kt{suffix}"
        options = dict(config=CFG, working_memory=MEMORY, test_images=test,
                       test_output=test_path)
        restore = interrupt_after(20)
        with pytest.raises(interrupt.Interrupted) as info:
            kernel_job(train, path, **options)
        assert "squared_distances" in info.value.kept
        restore()
        original = centering.negative_half_power
        calls = [0]

        def interrupted(*args, **kwargs):
            calls[0] += 1
            if calls[0] > 40:  # the row-mean blocks, then some centred tiles
                raise KeyboardInterrupt
            return original(*args, **kwargs)

        monkeypatch.setattr(centering, "negative_half_power", interrupted)
        with pytest.raises(interrupt.Interrupted) as info:
            kernel_job(train, path, resume=True, **options)
        assert "of matrix complete" in info.value.kept
        monkeypatch.setattr(centering, "negative_half_power", original)
        result, _ = kernel_job(train, path, resume=True, **options)
        computed, before, total = result.tiles["matrix"]
        assert before > 0 and computed + before == total
        np.testing.assert_array_equal(open_matrix(path)[...], want)
        np.testing.assert_array_equal(open_matrix(test_path)[...], want_test)


def test_resume_refuses_foreign_damaged_and_reconfigured_stores(X, tmp_path,
                                                                interrupt_after):
    path = tmp_path / "D.zarr"
    restore = interrupt_after(5)
    with pytest.raises(interrupt.Interrupted):
        distance_job(X, path, config=CFG, working_memory=MEMORY)
    restore()
    changes = [
        (dict(kind="eq1"), "kind: stored 'eq2', now 'eq1'"),
        (dict(dtype="float32"), "dtype: stored 'float64', now 'float32'"),
        (dict(squared=True), "squared: stored False, now True"),
        (dict(config=ssimref.SSIMConfig(window="uniform", size=5, data_range=255)),
         "config.size: stored 3, now 5"),
        (dict(backend="reference"), "engine: stored 'numba', now 'reference'"),
    ]
    for change, message in changes:
        options = {**dict(config=CFG, working_memory=MEMORY, resume=True), **change}
        with pytest.raises(StoreError, match="another configuration.*" + message):
            distance_job(X, path, **options)
    other = X.copy()
    other[3, 4, 4] ^= 1  # one pixel
    with pytest.raises(StoreError, match="images.sha256"):
        distance_job(other, path, config=CFG, working_memory=MEMORY, resume=True)
    assert count_zarr_records(path) == 5  # nothing was touched
    # a damaged record chunk, then damaged metadata
    chunk = next((path / "records" / "matrix" / "c").rglob("*"))
    while chunk.is_dir():
        chunk = next(chunk.iterdir())
    chunk.write_bytes(b"\x00garbage")
    with pytest.raises(StoreError, match="records cannot be read"):
        distance_job(X, path, config=CFG, working_memory=MEMORY, resume=True)
    (path / "zarr.json").write_text("{not json")
    with pytest.raises(StoreError, match="not a readable zarr group"):
        distance_job(X, path, config=CFG, working_memory=MEMORY, resume=True)
    # --force replaces it
    distance_job(X, path, config=CFG, working_memory=MEMORY, resume=True, force=True)
    # a foreign zarr store is refused, then replaced only with force
    foreign = tmp_path / "foreign.zarr"
    zarr.open_group(str(foreign), mode="w").create_array("data", shape=(2,), dtype="i4")
    with pytest.raises(StoreError, match="did not write"):
        distance_job(X, foreign, config=CFG, resume=True)
    with pytest.raises(FileExistsError, match="not an ssimref store.*--force"):
        distance_job(X, foreign, config=CFG)
    # a folder that is not a zarr store is never deleted, even with force
    folder = tmp_path / "mine.zarr"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="does not delete it even with --force"):
        distance_job(X, folder, config=CFG, force=True)
    assert (folder / "notes.txt").read_text() == "keep"


def test_damaged_chunks_are_detected_when_read(X, tmp_path):
    path = tmp_path / "D.zarr"
    distance_job(X, path, config=CFG, working_memory=MEMORY)
    chunk = path / "matrix" / "c" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[5] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        open_matrix(path)[...]


def test_npy_partial_job_refusals(X, tmp_path, interrupt_after):
    path = tmp_path / "D.npy"
    restore = interrupt_after(5)
    with pytest.raises(interrupt.Interrupted):
        distance_job(X, path, config=CFG, working_memory=MEMORY)
    restore()
    with pytest.raises(FileExistsError, match="incomplete job.*--resume"):
        distance_job(X, path, config=CFG, working_memory=MEMORY)
    with pytest.raises(StoreError, match="kind: stored 'eq2', now 'eq1'"):
        distance_job(X, path, kind="eq1", config=CFG, working_memory=MEMORY, resume=True)
    (NpyStore.partial_folder(path) / "job.json").write_text("{")
    with pytest.raises(StoreError, match="job.json is missing or damaged"):
        distance_job(X, path, config=CFG, working_memory=MEMORY, resume=True)
    result = distance_job(X, path, config=CFG, working_memory=MEMORY, resume=True,
                          force=True)
    assert result.tiles["matrix"] == (TOTAL, 0, TOTAL)
    with pytest.raises(FileExistsError, match="exists; pass --force"):
        distance_job(X, path, config=CFG, working_memory=MEMORY)


def test_incomplete_stores_are_not_read_as_results_or_images(X, tmp_path,
                                                             interrupt_after):
    path = tmp_path / "D.zarr"
    restore = interrupt_after(3)
    with pytest.raises(interrupt.Interrupted):
        distance_job(X, path, config=CFG, working_memory=MEMORY)
    restore()
    with pytest.raises(StoreError, match="incomplete.*--resume"):
        open_matrix(path)
    with pytest.raises(ValueError, match="matrix store written by ssimref"):
        load_images(path)


def test_zarr_images_as_input(X, tmp_path, capsys):
    """IMAGES may be a zarr array of images, or a group holding one (with labels)."""
    zarr.save_array(str(tmp_path / "X.zarr"), X)
    group = zarr.open_group(str(tmp_path / "G.zarr"), mode="w")
    group.create_array("images", data=X)
    group.create_array("labels", data=np.arange(60) % 10)
    data = load_images(tmp_path / "G.zarr")
    np.testing.assert_array_equal(data.images, X)
    np.testing.assert_array_equal(data.labels, np.arange(60) % 10)
    assert cli_main(["distance", str(tmp_path / "X.zarr"), "-o", str(tmp_path / "D.zarr"),
                     "--window", "uniform", "--size", "3"]) == 0
    np.testing.assert_array_equal(open_matrix(tmp_path / "D.zarr")[...],
                                  ssimref.distance_matrix(X, config=CFG))
    meta = json.loads((tmp_path / "D.zarr" / "zarr.json").read_text())
    result = meta["attributes"]["ssimref"]["result"]
    assert result["source"] == str(tmp_path / "X.zarr") and result["engine"] == "numba"


def test_cli_overwrites_nothing_without_force(X, tmp_path, capsys):
    np.save(tmp_path / "X.npy", X)
    args = ["distance", str(tmp_path / "X.npy"), "--window", "uniform", "--size", "3"]
    assert cli_main(args + ["-o", str(tmp_path / "D.zarr")]) == 0
    listing = sorted(p.relative_to(tmp_path) for p in (tmp_path / "D.zarr").rglob("*"))
    stamp = (tmp_path / "D.zarr" / "zarr.json").read_bytes()
    capsys.readouterr()
    assert cli_main(args + ["-o", str(tmp_path / "D.zarr"), "--kind", "eq1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a complete result" in err and "--force" in err
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "D.zarr").rglob("*")) == \
        listing and (tmp_path / "D.zarr" / "zarr.json").read_bytes() == stamp
    assert cli_main(args + ["-o", str(tmp_path / "D.zarr"), "--kind", "eq1", "--force"]) == 0
    assert json.loads((tmp_path / "D.zarr" / "zarr.json").read_text())["attributes"][
        "ssimref"]["job"]["kind"] == "eq1"
    # a .npy: the matrix, its sidecar
    (tmp_path / "E.json").write_text("keep")
    assert cli_main(args + ["-o", str(tmp_path / "E.npy")]) == 2
    assert "E.json exists" in capsys.readouterr().err
    assert not (tmp_path / "E.npy").exists() and (tmp_path / "E.json").read_text() == "keep"
    # --dask needs a zarr output, and says so before anything starts
    assert cli_main(args + ["-o", str(tmp_path / "F.npy"), "--dask", "local:2"]) == 2
    assert "must be a zarr store" in capsys.readouterr().err
    # --resume on a finished .npy: nothing to resume, said so, the matrix untouched
    assert cli_main(args + ["-o", str(tmp_path / "G.npy")]) == 0
    stamp = (tmp_path / "G.npy").read_bytes()
    capsys.readouterr()
    assert cli_main(args + ["-o", str(tmp_path / "G.npy"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing to resume" in err and "--force" in err
    assert (tmp_path / "G.npy").read_bytes() == stamp


# ----------------------------------------------------------- the command line, killed
def _cli_args(tmp_path, output, *extra):
    return ["distance", "X.npy", "-o", output, "--window", "uniform", "--size", "3",
            "--working-memory", str(MEMORY), *extra]


def _resume_command(stderr):
    line = stderr.strip().splitlines()[-1].strip()
    argv = shlex.split(line)
    assert argv[0] == "ssimref" and argv[-1] == "--resume"
    return argv[1:]


def _tiles_line(stdout):
    """(computed, already complete) from the command's summary line."""
    import re

    match = re.search(r"(\d+) tiles? computed(?: \((\d+) already complete\))?", stdout)
    assert match, stdout
    return int(match.group(1)), int(match.group(2) or 0)


def test_cli_npy_killed_with_sigkill_resumes(X, expected, tmp_path):
    """SIGKILL after k records: the matrix is not under its name, its partial folder and
    records are kept; --resume computes the N - k tiles without a record and gives the
    uninterrupted matrix."""
    np.save(tmp_path / "X.npy", X)
    proc = start_cli(_cli_args(tmp_path, "D.npy"), tmp_path, delay=0.02)
    signal_after(proc, lambda: count_file_records(tmp_path / "D.npy"), 1, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "D.npy").exists() and not (tmp_path / "D.json").exists()
    kept = count_file_records(tmp_path / "D.npy")
    assert 0 < kept < TOTAL
    code, out, err = run_cli(_cli_args(tmp_path, "D.npy", "--resume"), tmp_path)
    assert code == 0, err
    assert _tiles_line(out) == (TOTAL - kept, kept)
    np.testing.assert_array_equal(np.load(tmp_path / "D.npy"), expected["float64"])
    assert json.loads((tmp_path / "D.json").read_text())["kind"] == "eq2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D.json", "D.npy", "X.npy"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGINT,
                                                              marks=pytest.mark.slow)])
def test_cli_npy_stopped_by_a_signal_keeps_its_tiles_and_prints_the_resume_command(
        X, expected, tmp_path, sig):
    """SIGTERM and SIGINT alike: the job stops at a tile boundary, writes its pending
    records, keeps its partial folder, says how to resume (exit 128 + signal); the
    printed command finishes the job."""
    np.save(tmp_path / "X.npy", X)
    proc = start_cli(_cli_args(tmp_path, "D.npy", "--dtype", "float32"), tmp_path,
                     delay=0.02)
    signal_after(proc, lambda: count_file_records(tmp_path / "D.npy"), 1, sig)
    _, err = proc.communicate()
    assert proc.returncode == 128 + sig, err
    name = signal.Signals(sig).name
    assert f"interrupted ({name}); kept" in err and "resume with:" in err
    kept = count_file_records(tmp_path / "D.npy")
    assert 0 < kept < TOTAL and f"{kept} tiles of matrix complete" in err
    assert not (tmp_path / "D.npy").exists()
    code, out, err = run_cli(_resume_command(err), tmp_path)
    assert code == 0, err
    assert _tiles_line(out) == (TOTAL - kept, kept)
    np.testing.assert_array_equal(np.load(tmp_path / "D.npy"), expected["float32"])


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_cli_dask_client_killed_resumes(X, expected, tmp_path, sig):
    """The whole client process (scheduler and LocalCluster inside it) killed after k
    records, or stopped by SIGTERM: the store keeps its records; the resume command
    computes only the tiles without a record, leaves the first run's records as they
    were, and gives the uninterrupted matrix."""
    pytest.importorskip("distributed")
    np.save(tmp_path / "X.npy", X)
    args = _cli_args(tmp_path, "D.zarr", "--dask", "local:2")
    proc = start_cli(args, tmp_path, delay=0.1)
    signal_after(proc, lambda: count_zarr_records(tmp_path / "D.zarr"), 3, sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGKILL:
        assert proc.returncode == -sig
        command = args + ["--resume"]
    else:
        assert proc.returncode == 128 + sig and "interrupted (SIGTERM)" in err, err
        command = _resume_command(err)
    first = _records(tmp_path / "D.zarr")
    assert 0 < len(first) < TOTAL
    with pytest.raises(StoreError, match="incomplete"):
        open_matrix(tmp_path / "D.zarr")
    code, out, err = run_cli(command, tmp_path)
    assert code == 0, err
    computed, before = _tiles_line(out)
    assert before >= len(first) and computed + before == TOTAL
    after = _records(tmp_path / "D.zarr")
    assert all(after[i] == first[i] for i in first)
    np.testing.assert_array_equal(open_matrix(tmp_path / "D.zarr")[...],
                                  expected["float64"])


def test_sidecar_paths_are_refused_when_they_collide(tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((3, 8, 8), np.uint8))
    Path(tmp_path / "K.npy").write_bytes(b"x")
    assert cli_main(["kernel", str(tmp_path / "X.npy"), "-o", str(tmp_path / "K.npy")]) == 2
    assert Path(tmp_path / "K.npy").read_bytes() == b"x"


def test_cli_kernel_writes_zarr_stores_like_ssim_kernel(X, tmp_path, capsys):
    """`ssimref kernel -o K.zarr --test T -o-test Kt.zarr`: the training and test kernels
    of ssim_kernel, bit for bit, the squared distances dropped, the training statistics
    kept; --check-psd records the spectrum in the store's metadata."""
    np.save(tmp_path / "train.npy", X[:40])
    np.save(tmp_path / "test.npy", X[40:])
    args = ["kernel", str(tmp_path / "train.npy"), "-o", str(tmp_path / "K.zarr"), "--test",
            str(tmp_path / "test.npy"), "-o-test", str(tmp_path / "Kt.zarr"), "--window",
            "uniform", "--size", "3", "--working-memory", str(MEMORY), "--check-psd"]
    assert cli_main(args) == 0, capsys.readouterr().err
    K, centerer = ssim_kernel(X[:40], config=CFG, return_centerer=True)
    np.testing.assert_array_equal(open_matrix(tmp_path / "K.zarr")[...], K)
    np.testing.assert_array_equal(open_matrix(tmp_path / "Kt.zarr")[...],
                                  ssim_kernel(X[40:], X[:40], config=CFG, centerer=centerer))
    group = zarr.open_group(str(tmp_path / "K.zarr"), mode="r")
    assert "squared_distances" not in group and "row_means" in group
    assert group.attrs["ssimref"]["result"]["psd"]["verdict"].startswith("psd")
    assert cli_main(args + ["--resume"]) == 0
    assert "complete already" in capsys.readouterr().out
