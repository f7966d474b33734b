"""SIGTERM is handled like SIGINT by every command that writes, with real signals sent to
a running ``ssimref`` process once its computation is under way: a resumable job
(``distance``, ``kernel``) keeps its completed tiles, prints the command that resumes it
and exits with 128 + the signal number, and the printed command completes it to the
uninterrupted result; a job that is not resumable (``mmd --json``, ``demo``) removes what
it started and leaves the folder as it found it. (Training: tests/test_generative_cli.py.)"""

from __future__ import annotations

import shlex
import signal

import numpy as np
import pytest

import ssimref
from ssimref import cli

from .interrupt import signal_once_computing

# SIGINT on distance: tests/test_cli.py; here SIGTERM everywhere, and SIGINT (slow) beside
# it where nothing else sends it
SIGNALS = [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)]


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def work(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    X = np.random.default_rng(1).integers(0, 256, (120, 12, 12), dtype=np.uint8)
    np.save(folder / "X.npy", X)
    return folder, X


def _resume(err, folder, monkeypatch):
    line = err.strip().splitlines()[-1].strip()
    argv = shlex.split(line)
    assert argv[0] == "ssimref" and argv[-1] == "--resume"
    monkeypatch.chdir(folder)
    assert cli.main(argv[1:]) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM], ids=lambda s: signal.Signals(s).name)
def test_distance_keeps_its_tiles_and_resumes(sig, work, monkeypatch):
    folder, X = work
    code, err = signal_once_computing(
        ["distance", "X.npy", "-o", "D.npy", "--window", "uniform", "--size", "3",
         "--working-memory", "0.1"], folder, sig)
    name = signal.Signals(sig).name
    assert code == 128 + sig, err
    assert f"interrupted ({name}); kept" in err and "tiles" in err
    assert _listing(folder) == [".D.npy.partial", "X.npy"]  # no result under its name
    _resume(err, folder, monkeypatch)
    expected = ssimref.distance_matrix(X, window="uniform", size=3, data_range=255)
    np.testing.assert_array_equal(np.load(folder / "D.npy"), expected)
    assert _listing(folder) == ["D.json", "D.npy", "X.npy"]


def test_kernel_keeps_its_tiles_and_resumes(work, monkeypatch):
    folder, X = work
    code, err = signal_once_computing(
        ["kernel", "X.npy", "-o", "K.npy", "--window", "uniform", "--size", "3",
         "--working-memory", "0.1"], folder, signal.SIGTERM)
    assert code == 143, err
    assert "interrupted (SIGTERM); kept" in err
    assert _listing(folder) == [".K.npy.partial", "X.npy"]
    _resume(err, folder, monkeypatch)
    D = ssimref.distance_matrix(X, window="uniform", size=3, data_range=255)
    H = np.eye(len(X)) - 1.0 / len(X)  # the SSIM kernel -1/2 H D H, by its definition
    np.testing.assert_allclose(np.load(folder / "K.npy"), -0.5 * H @ D @ H, atol=1e-12)


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_mmd_removes_what_it_started(sig, work):
    folder, _ = work
    code, err = signal_once_computing(
        ["mmd", "X.npy", "X.npy", "--json", "r.json", "--working-memory", "0.1"], folder,
        sig)
    assert code == 128 + sig, err
    # the small tiles that make the job interruptible also draw the small-tile warning
    lines = [line for line in err.strip().splitlines()
             if not line.startswith("ssimref: warning: a working memory of 0.1 MiB")]
    assert lines == [f"ssimref: interrupted ({signal.Signals(sig).name}); files are "
                     "replaced atomically, so each output is complete or absent"]
    assert _listing(folder) == ["X.npy"]


def test_demo_removes_the_folder_it_created(work):
    folder, _ = work
    code, err = signal_once_computing(["demo", "-o", "out", "--limit", "60", "--no-plots"],
                                      folder, signal.SIGTERM)
    assert code == 143, err
    assert "interrupted (SIGTERM)" in err
    assert _listing(folder) == ["X.npy"]


@pytest.mark.slow
def test_evaluate_writes_nothing_when_stopped(work):
    """``ssimref evaluate`` writes evaluation.json and figure.png only at its end: stopped
    while it computes, the run folder is left as it was."""
    folder, _ = work
    run_dir = folder / "run"
    assert cli.main(["train", "vae", "--steps", "2", "--batch", "16", "--hidden", "16",
                     "--eval-samples", "20", "--sample-every", "2", "--no-progress",
                     "-o", str(run_dir)]) == 0
    before = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*"))
    code, err = signal_once_computing(["evaluate", "run", "-n", "40", "--permutations", "5"],
                                      folder, signal.SIGTERM)
    assert code == 143, err
    assert "interrupted (SIGTERM)" in err
    assert sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")) == before
