"""Progress bars (on by default on a terminal for jobs longer than a second, --progress and
--no-progress), the one-time note when the reference engine runs for want of Numba, and
the warning when --working-memory makes tiles too small for their fixed cost."""

import math
import re
import warnings

import numpy as np
import pytest

import ssimref
import ssimref.engines as engines
from ssimref import cli
from ssimref.executor import PROGRESS_DELAY, progress_bar
from ssimref.tiling import (MIB, SMALL_TILE_MIN_TILES, SMALL_TILE_PAIRS, SmallTileWarning,
                            plan_pairs)


class Terminal:
    """A stand-in for stderr on a terminal (tqdm's disable=None asks isatty)."""

    def __init__(self, tty):
        self.tty, self.text = tty, []

    def isatty(self):
        return self.tty

    def write(self, s):
        self.text.append(s)

    def flush(self):
        pass


@pytest.mark.parametrize("tty", [True, False])
def test_the_automatic_bar_shows_only_on_a_terminal_and_only_for_long_jobs(tty,
                                                                          monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("tqdm.std.time", lambda: clock[0])
    monkeypatch.setattr("tqdm.std.tqdm._time", staticmethod(lambda: clock[0]),
                        raising=False)
    for seconds, shown in [(PROGRESS_DELAY / 2, False), (PROGRESS_DELAY * 2, tty)]:
        err = Terminal(tty)
        monkeypatch.setattr("sys.stderr", err)
        clock[0] = 0.0
        bar = progress_bar(10, None, "SSIM distances")
        clock[0] = seconds
        bar.update(10)
        bar.close()
        assert ("100%" in "".join(err.text)) == shown, (seconds, tty)


@pytest.mark.parametrize("enabled, shown", [(True, True), (False, False)])
def test_explicit_progress_is_shown_or_not_at_once(enabled, shown, monkeypatch):
    err = Terminal(False)  # a log file: --progress shows the bar there too
    monkeypatch.setattr("sys.stderr", err)
    bar = progress_bar(10, enabled, "SSIM distances")
    bar.update(10)
    bar.close()
    assert ("100%" in "".join(err.text)) == shown


@pytest.mark.parametrize("flags, expected", [([], None), (["--progress"], True),
                                             (["--no-progress"], False)])
@pytest.mark.parametrize("command", [["distance", "X.npy", "-o", "D.npy"],
                                     ["kernel", "X.npy", "-o", "K.npy"], ["demo"],
                                     ["train", "vae", "-o", "run"], ["gmmn", "train", "-o",
                                                                     "run"],
                                     ["gmmn", "experiment"], ["experiment", "paper"]])
def test_every_command_with_bars_takes_progress_and_no_progress(command, flags, expected):
    args = cli.build_parser().parse_args(command + flags)
    assert args.progress is expected


def test_cli_progress_flag_reaches_the_bar(tmp_path, rng, capsys):
    np.save(tmp_path / "X.npy", rng.integers(0, 256, (12, 8, 8), dtype=np.uint8))
    assert cli.main(["distance", str(tmp_path / "X.npy"), "-o", str(tmp_path / "D.npy"),
                     "--size", "3", "--progress"]) == 0
    assert re.search(r"100%.*66(\.0)?/66", capsys.readouterr().err)  # 12 * 11 / 2 pairs
    assert cli.main(["distance", str(tmp_path / "X.npy"), "-o", str(tmp_path / "E.npy"),
                     "--size", "3", "--no-progress"]) == 0
    assert "100%" not in capsys.readouterr().err


def test_the_reference_engine_note_when_numba_is_missing_is_shown_once(monkeypatch, rng,
                                                                      tmp_path, capsys):
    monkeypatch.setattr(engines, "available_engines", lambda: ())
    monkeypatch.setattr(engines, "_SLOW_ENGINE_NOTED", False)
    X = rng.integers(0, 256, (4, 8, 8), dtype=np.uint8)
    with pytest.warns(engines.SlowEngineWarning, match=r"Numba is not installed.*"
                                                       r"ssimref\[fast\]"):
        D = ssimref.distance_matrix(X, size=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second call: no note
        np.testing.assert_array_equal(ssimref.distance_matrix(X, size=3), D)
    # the command line shows it as one line
    monkeypatch.setattr(engines, "_SLOW_ENGINE_NOTED", False)
    np.save(tmp_path / "X.npy", X)
    assert cli.main(["distance", str(tmp_path / "X.npy"), "-o", str(tmp_path / "D.npy"),
                     "--size", "3"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "Numba" in line]
    assert len(notes) == 1 and notes[0].startswith("ssimref: note: Numba is not installed")


def test_no_note_when_numba_runs_or_the_reference_engine_is_asked_for(monkeypatch, rng):
    monkeypatch.setattr(engines, "_SLOW_ENGINE_NOTED", False)
    X = rng.integers(0, 256, (4, 8, 8), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", engines.SlowEngineWarning)
        ssimref.distance_matrix(X, size=3, backend="reference")
        monkeypatch.setattr(engines, "available_engines", lambda: ("numba",))
        assert engines.choose_engine("auto", np) == "numba"


def plan(working_memory, n=2000, bytes_per_pair=32, bytes_per_image=1128, **caps):
    return plan_pairs(n, bytes_per_pair=bytes_per_pair, bytes_per_image=bytes_per_image,
                      working_memory=working_memory, **caps)


def test_a_budget_that_cuts_a_long_job_into_small_tiles_warns_and_names_enough_memory():
    """The Numba engine's figures for 8x8 images (32 bytes a pair, 1128 an image): 0.05
    MiB gives tiles of s = 18 (the largest s with 32 s^2 + 2 1128 s <= 52428), which is
    112 * 113 / 2 = 6,328 tiles for 2000 images; 10,000-pair tiles (s = 100) need
    32 * 100^2 + 2 * 100 * 1128 = 545,600 bytes, 0.53 MiB."""
    with pytest.warns(SmallTileWarning, match=r"working memory of 0\.05 MiB cuts this job "
                                              r"into 6,328 tiles of at most 18 x 18 pairs.*"
                                              r"need 0\.53 MiB") as record:
        tiles = plan(0.05)
    assert (tiles.tile_rows, len(tiles)) == (18, math.comb(112, 2) + 112)  # 1 + 2000 // 18
    needed = float(str(record[0].message).rsplit("need ", 1)[1].split()[0])
    assert needed * MIB >= 32 * 100 ** 2 + 2 * 100 * 1128  # rounded up, never short
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallTileWarning)
        assert plan(needed).tile_rows ** 2 >= SMALL_TILE_PAIRS


@pytest.mark.parametrize("case", ["default budget", "short job", "engine cap", "side cap"])
def test_no_small_tile_warning_when_the_budget_is_not_the_cause_or_the_job_is_short(case):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallTileWarning)
        if case == "default budget":
            plan(1024)
        elif case == "short job":  # at most SMALL_TILE_MIN_TILES tiles of 18 x 18
            side_tiles = int((math.sqrt(8 * SMALL_TILE_MIN_TILES + 1) - 1) / 2)
            assert len(plan(0.05, n=18 * side_tiles)) <= SMALL_TILE_MIN_TILES
        elif case == "engine cap":  # the reference engine keeps its tiles small itself
            plan(0.05, max_pairs=388)
        else:
            plan(0.05, max_side=64)


@pytest.mark.filterwarnings("always::ssimref.tiling.SmallTileWarning")
def test_the_command_line_shows_the_small_tile_warning_as_one_line(tmp_path, rng, capsys,
                                                                  monkeypatch):
    """The rendering, on a short job: the threshold on the count of tiles is lowered to 2
    (the thresholds themselves are tested above, on plans)."""
    monkeypatch.setattr("ssimref.tiling.SMALL_TILE_MIN_TILES", 2)
    X = rng.integers(0, 256, (12, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "X.npy", X)
    assert cli.main(["distance", str(tmp_path / "X.npy"), "-o", str(tmp_path / "D.npy"),
                     "--window", "uniform", "--size", "3", "--working-memory", "0.01",
                     "--backend", "numba", "--no-progress"]) == 0
    # the tile side by the planner's stated rule, found by search: the largest s with
    # s^2 b_pair + 2 s b_image <= 0.01 MiB, and the MiB that 100 x 100 tiles need
    numba = engines.get_engine("numba")
    config = ssimref.SSIMConfig(window="uniform", size=3, data_range=255)
    b_pair = numba.bytes_per_pair((8, 8, 1), config)
    b_image = numba.bytes_per_image((8, 8, 1), config)
    side = max(s for s in range(1, 13) if s * s * b_pair + 2 * s * b_image <= 0.01 * MIB)
    tiles = -(-12 // side) * (-(-12 // side) + 1) // 2
    need = math.ceil((100 ** 2 * b_pair + 200 * b_image) / MIB * 100) / 100
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert lines == [f"ssimref: warning: a working memory of 0.01 MiB cuts this job into "
                     f"{tiles} tiles of at most {side} x {side} pairs, each with a fixed cost "
                     "of up to tens of milliseconds: it may run many times slower than with "
                     f"tiles of 10,000 pairs or more, which need {need:g} MiB"]
