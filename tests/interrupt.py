"""Interrupting the command line the way a user does: SIGINT (Ctrl-C) sent to a running
``python -m ssimref`` process once part of its output has been written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import ssimref

ROOT = Path(ssimref.__file__).resolve().parents[1]


def _default_sigint() -> None:
    # A child inherits an ignored SIGINT from a background parent, and Python only turns
    # SIGINT into KeyboardInterrupt when it starts with the default disposition.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _written_fraction(path: Path) -> float | None:
    """Fraction of written entries of the .npy memmap at ``path``: those that are no
    longer NaN, the value a resumable job's memmap starts with (None while it cannot be
    read yet)."""
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return float(np.count_nonzero(~np.isnan(data))) / data.size


def interrupt_after_first_tiles(args: list[str], folder: Path, output: str, *,
                                timeout: float = 600.0) -> tuple[int, str, float]:
    """Run ``python -m ssimref *args`` in ``folder``; as soon as the partial memmap the
    command writes ``output`` into holds some written entries (the first tiles), send
    SIGINT, and wait for the process to end.

    Returns ``(exit status, stderr, fraction of entries written when interrupted)``.
    Fails when the command ends before it could be interrupted.
    """
    proc = subprocess.Popen([sys.executable, "-m", "ssimref", *args], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    tmp = folder / f".{output}.partial" / "matrix.npy"  # ssimref.stores.NpyStore's memmap
    deadline = time.monotonic() + timeout
    written = None
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                _, err = proc.communicate()
                raise AssertionError(f"the command ended (status {proc.returncode}) before "
                                     f"it wrote a tile to interrupt:\n{err}")
            if tmp.exists():
                written = _written_fraction(tmp)
                if written:
                    break
            time.sleep(0.02)
        else:
            raise AssertionError(f"no tile was written within {timeout} s")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err, written


SLOW_CLI = Path(__file__).with_name("slow_cli.py")


def signal_once_computing(args: list[str], folder: Path, sig: int, *, delay: float = 0.3,
                          timeout: float = 300.0) -> tuple[int, str]:
    """Run ``ssimref *args`` in ``folder`` through tests/slow_cli.py (every tile slowed by
    ``delay`` seconds); as soon as the first tile has started, send ``sig`` and wait for
    the process to end. Returns ``(exit status, stderr)``. Fails when the command ends
    before a tile started."""
    mark = folder.parent / f".{folder.name}.tile-started"
    mark.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, str(SLOW_CLI), *args], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint,
                            env={**os.environ, "PYTHONPATH": str(ROOT),
                                 "SSIMREF_TEST_TILE_DELAY": str(delay),
                                 "SSIMREF_TEST_TILE_MARK": str(mark)})
    deadline = time.monotonic() + timeout
    try:
        while not mark.exists():
            if proc.poll() is not None:
                _, err = proc.communicate()
                raise AssertionError(f"the command ended (status {proc.returncode}) before "
                                     f"a tile started:\n{err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no tile started within {timeout} s")
            time.sleep(0.02)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        mark.unlink(missing_ok=True)
    return proc.returncode, err
