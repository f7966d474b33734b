"""Helpers for the Dask and resume tests: slowing the engine down in a process (so that a
job can be interrupted after some but not all of its tiles, on any machine), counting
records, and running the command line in a subprocess."""

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
SLOW_CLI = Path(__file__).with_name("slow_cli.py")


def block_method(engine) -> str:
    """The name of the engine function every block of a distance tile goes through:
    ``distance_block`` where the engine has one (the Numba engine's ``squared_block``
    calls it too), else ``squared_block``."""
    return "distance_block" if hasattr(engine, "distance_block") else "squared_block"


def slow_engines(delay: float) -> int:
    """Make every engine's blocks (:func:`block_method`) sleep ``delay`` seconds first, in
    this process (for ``client.run`` on Dask workers). Returns the process id."""
    from ssimref.engines import get_engine

    for name in ("numba", "reference"):
        engine = get_engine(name)
        method = block_method(engine)
        original = getattr(engine, f"_unslowed_{method}", getattr(engine, method))

        def slowed(*args, _original=original, **kwargs):
            time.sleep(delay)
            return _original(*args, **kwargs)

        setattr(engine, f"_unslowed_{method}", original)
        setattr(engine, method, slowed)
    return os.getpid()


def zarr_records(path, name="matrix") -> np.ndarray:
    """The record array of a zarr store's array ``name`` (zeros where no record), read
    straight from the store (the job may still be running)."""
    import zarr

    group = zarr.open_group(str(path), mode="r")
    key = f"records/{name}"
    if key not in group:
        return np.zeros((0, 0, 3), dtype=np.int64)
    return np.asarray(group[key][...])


def count_zarr_records(path, name="matrix") -> int:
    try:
        return int(np.count_nonzero(zarr_records(path, name)[..., 0]))
    except Exception:  # the store is being created
        return 0


def count_file_records(npy_path, name="matrix") -> int:
    folder = Path(npy_path).with_name(f".{Path(npy_path).name}.partial") / "tiles" / name
    if not folder.exists():
        return 0
    return sum(1 for p in folder.iterdir() if not p.name.endswith(".tmp"))


def start_cli(args, cwd, *, delay=0.0, env=None):
    """``ssimref *args`` in a subprocess (through tests/slow_cli.py, which slows every
    engine by ``delay`` seconds per tile in the command's process and in the worker
    processes it starts)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "SSIMREF_TEST_TILE_DELAY":
                   str(delay), "NUMBA_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen([sys.executable, str(SLOW_CLI), *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment, preexec_fn=_default_signals)


def _default_signals():
    # A child inherits an ignored SIGINT from a background parent; Python turns SIGINT
    # into KeyboardInterrupt only when it starts with the default disposition.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(args, cwd, *, delay=0.0, timeout=600):
    proc = start_cli(args, cwd, delay=delay)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def signal_after(proc, count, k, sig, *, timeout=300):
    """Send ``sig`` to ``proc`` once ``count()`` >= ``k``; return ``count()`` at that
    moment. Fails if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the command ended (status {proc.returncode}) before "
                                 f"{k} tiles were recorded:\n{out}\n{err}")
        seen = count()
        if seen >= k:
            proc.send_signal(sig)
            return seen
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"fewer than {k} tiles recorded within {timeout} s")
