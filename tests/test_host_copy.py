"""The executor's host copies (ssimref.executor.host_copy, store, fill_tile): a tile's
block and its mirror written into a NumPy output in squares on one thread per CPU are what
NumPy's own assignment writes, for every shape (edges that are not whole squares),
transposed views, both float dtypes and memmaps; small blocks take the direct assignment;
a forked child gets copy threads of its own; a tile task that fills the output's view in
place is copied nowhere but to its mirror."""

from __future__ import annotations

import multiprocessing
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssimref import executor
from ssimref.executor import COPY_SQUARE, PARALLEL_COPY_FROM, host_copy, store


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 3 * COPY_SQUARE + 7), cols=st.integers(1, 3 * COPY_SQUARE + 7),
       transposed=st.booleans(), dtype=st.sampled_from([np.float64, np.float32]),
       seed=st.integers(0, 2**32 - 1))
def test_host_copy_writes_what_numpy_assignment_writes(rows, cols, transposed, dtype, seed):
    rng = np.random.default_rng(seed)
    src = rng.random((cols, rows) if transposed else (rows, cols)).astype(dtype)
    src = src.T if transposed else src
    out = np.full((rows + 5, cols + 3), -1.0, dtype=dtype)
    want = out.copy()
    want[2:2 + rows, 1:1 + cols] = src
    host_copy(out[2:2 + rows, 1:1 + cols], src)
    np.testing.assert_array_equal(out, want, strict=True)


def test_store_writes_a_tile_and_its_mirror_into_a_memmap(tmp_path):
    """A symmetric plan's off-diagonal tile (large enough for the threads) and its
    transpose, written by ``store`` into a memmap, read back as NumPy's assignment."""
    n = 2 * 700
    rng = np.random.default_rng(3)
    block = rng.random((700, 700))
    assert block.size >= PARALLEL_COPY_FROM
    out = np.lib.format.open_memmap(tmp_path / "D.npy", mode="w+", dtype=np.float64,
                                    shape=(n, n))
    store(out, (slice(0, 700), slice(700, n)), block)
    store(out, (slice(700, n), slice(0, 700)), block.T)
    out.flush()
    back = np.load(tmp_path / "D.npy")
    np.testing.assert_array_equal(back[:700, 700:], block)
    np.testing.assert_array_equal(back[700:, :700], block.T)


def test_small_blocks_are_assigned_directly(monkeypatch):
    """Below PARALLEL_COPY_FROM no thread is involved (the pool is never asked for)."""
    def no_pool():
        raise AssertionError("a small block asked for the copy threads")

    monkeypatch.setattr(executor, "_copy_pool", no_pool)
    src = np.arange(12.0).reshape(3, 4)
    out = np.zeros((4, 3))
    host_copy(out, src.T)
    np.testing.assert_array_equal(out, src.T)


def _copy_in_child(queue):
    src = np.arange(600 * 600, dtype=np.float64).reshape(600, 600)
    out = np.empty_like(src)
    host_copy(out, src.T)
    queue.put(bool(np.array_equal(out, src.T)))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_a_forked_child_copies_with_threads_of_its_own():
    """The parent's copy threads do not exist in a forked child; the child makes its own
    instead of waiting forever on the parent's."""
    src = np.ones((600, 600))
    host_copy(np.empty_like(src), src)  # the parent's pool exists
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_copy_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child's copy did not finish")
    assert child.exitcode == 0
    assert queue.get(timeout=5) is True


def _block_of(tile, *, value, out=None):
    block = np.full(tile.shape, value) + np.arange(tile.shape[1])
    if out is None:
        return block
    out[...] = block
    return out


def _ignores_out(tile, *, value, out=None):
    return _block_of(tile, value=value)


@pytest.mark.parametrize("function", [_block_of, _ignores_out])
def test_a_filling_task_writes_into_the_output_and_only_the_mirror_is_copied(
        function, monkeypatch):
    """``fill`` hands a ``fills`` task the tile's view of a NumPy output; a block written
    there is not stored again (only its mirror is), a task that returns a block of its
    own instead is stored as any other. Either way the matrix is the one assembled by
    hand from the blocks."""
    from ssimref.executor import TileTask, serial
    from ssimref.tiling import plan_pairs

    copies = []
    original = executor.host_copy

    def counted(dst, src):
        copies.append(src.shape)
        original(dst, src)

    monkeypatch.setattr(executor, "host_copy", counted)
    plan = plan_pairs(10, None, bytes_per_pair=8, bytes_per_image=0, max_pairs=16,
                      working_memory=1)
    out = np.full((10, 10), np.nan)
    serial.fill(plan, TileTask(function, (), dict(value=5.0), fills=True), out)
    want = np.full((10, 10), np.nan)
    tiles = list(plan.tiles())
    for tile in tiles:
        block = _block_of(tile, value=5.0)
        want[tile.rows, tile.cols] = block
        if not tile.diagonal:
            want[tile.cols, tile.rows] = block.T
    np.testing.assert_array_equal(out, want)
    mirrors = sum(not tile.diagonal for tile in tiles)
    assert len(copies) == (mirrors if function is _block_of else len(tiles) + mirrors)
