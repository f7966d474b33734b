"""One policy for interrupted work (ssimref.interrupt), with real signals: SIGINT and
SIGTERM alike; inside a run over tiles the first signal waits for the tile boundary, a
second one stops at once; outside, a signal stops at once; what the command line prints;
a job that is not resumable leaves nothing behind."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from ssimref import interrupt
from ssimref.executor import serial
from ssimref.io import save_npy, write_npy
from ssimref.tiling import PairPlan


@pytest.fixture
def handlers():
    assert interrupt.install()
    yield
    interrupt.uninstall()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_waits_for_the_tile_boundary(handlers, sig):
    plan = PairPlan(4, 4, 1, 4, False)  # 4 tiles of one row each
    out = np.zeros((4, 4))
    done = []

    def tile(t):
        if t.rows.start == 1:
            os.kill(os.getpid(), sig)  # arrives while tile 1 is computed
        done.append(t.rows.start)
        return np.full((1, 4), 1.0 + t.rows.start)

    with pytest.raises(interrupt.Interrupted) as info:
        serial.fill(plan, tile, out)
    assert info.value.signal_name == signal.Signals(sig).name
    assert done == [0, 1]  # tile 1 was finished and written, tile 2 never started
    np.testing.assert_array_equal(out[:2], [[1.0] * 4, [2.0] * 4])
    assert not out[2:].any()
    assert interrupt.exit_status(info.value) == 128 + sig


def test_second_signal_stops_at_once(handlers):
    plan = PairPlan(3, 3, 1, 3, False)
    reached = []

    def tile(t):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)  # the second one raises here, mid-tile
        reached.append(t)
        return np.zeros((1, 3))

    with pytest.raises(interrupt.Interrupted) as info:
        serial.fill(plan, tile, np.zeros((3, 3)))
    assert reached == [] and info.value.signal_name == "SIGINT"


def test_outside_a_run_a_signal_stops_at_once_and_temporary_files_go(handlers, tmp_path):
    """A job that is not resumable removes what it started: SIGTERM inside write_npy's
    fill leaves neither the output nor its temporary file."""
    def fill(out):
        out[0] = 1.0
        os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(interrupt.Interrupted, match="SIGTERM"):
        write_npy(tmp_path / "A.npy", (3, 3), np.float64, fill)
    assert list(tmp_path.iterdir()) == []
    save_npy(tmp_path / "B.npy", np.ones(2))  # handlers leave normal work alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["B.npy"]


def test_uninstall_restores_the_previous_handlers():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    interrupt.install()
    assert signal.getsignal(signal.SIGTERM) is not before[0]
    interrupt.uninstall()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_messages_name_what_was_kept_and_the_command():
    plain = interrupt.message(KeyboardInterrupt(), ["mmd", "a.npy", "b.npy"])
    assert plain == ("ssimref: interrupted (SIGINT); files are replaced atomically, so "
                     "each output is complete or absent")
    kept = interrupt.keep(interrupt.Interrupted("SIGTERM"), "D.zarr (3 of 10 tiles)")
    text = interrupt.message(kept, ["distance", "my images", "-o", "D.zarr"])
    assert text == ("ssimref: interrupted (SIGTERM); kept D.zarr (3 of 10 tiles); resume "
                    "with:\n  ssimref distance 'my images' -o D.zarr --resume")
    assert interrupt.resume_command(["distance", "X", "--resume"]).count("--resume") == 1
