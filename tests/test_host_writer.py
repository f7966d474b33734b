"""The host writer of device tiles (ssimref.executor.HostWriter): tiles copied
asynchronously into staging buffers and written (with their mirror images) by a writer
thread give the same output as the synchronous stores, in any timing; errors of the
copies reach the caller; an interrupted fill stops cleanly. The CuPy engine's stager
(pinned buffers, a copy stream, events) runs here against a host stand-in of CuPy whose
copies land late, on a thread of their own."""

from __future__ import annotations

import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ssimref.executor import HostWriter, serial
from ssimref.tiling import plan_pairs


class LateCopies:
    """A stager whose copies land after a random delay on a worker thread; ``fail_at``
    makes the copy of that block raise."""

    def __init__(self, depth=2, fail_at=None, seed=0):
        self.depth = depth
        self.pool = ThreadPoolExecutor(2)
        self.rng = np.random.default_rng(seed)
        self.buffers = [None] * depth
        self.count = 0
        self.fail_at = fail_at
        self.in_flight = set()

    def stage(self, block, slot):
        assert slot not in self.in_flight, "a buffer was reused before its copy landed"
        self.in_flight.add(slot)
        buf = self.buffers[slot]
        if buf is None or buf.size < block.size:
            buf = self.buffers[slot] = np.empty(block.size, block.dtype)
        host = buf[:block.size].reshape(block.shape)
        delay = float(self.rng.uniform(0, 0.01))
        fail = self.count == self.fail_at
        self.count += 1
        source = block.copy()

        def copy():
            time.sleep(delay)
            if fail:
                raise OSError("copy failed")
            host[...] = source

        future = self.pool.submit(copy)

        def wait():
            try:
                future.result()
            finally:
                self.in_flight.discard(slot)

        return host, wait


def _blocks(n, m=None):
    rng = np.random.default_rng(3)
    full = rng.random((n, n if m is None else m)).astype(np.float32)
    if m is None:
        full = np.triu(full, 1)
        full = full + full.T
    return full


@pytest.mark.parametrize("m", [None, 37])
@pytest.mark.parametrize("depth", [1, 3])
def test_streamed_output_equals_the_synchronous_one(m, depth):
    full = _blocks(53, m)
    plan = plan_pairs(53, m, bytes_per_pair=8, working_memory=8 * 17 * 17 / 2**20)
    assert len(list(plan.tiles())) > 4
    want = serial.fill(plan, lambda t: full[t.rows, t.cols], np.full(full.shape, -1.0,
                                                                     np.float32))
    out = np.full(full.shape, -1.0, np.float32)
    got = serial.fill(plan, lambda t: full[t.rows, t.cols], out,
                      writer=HostWriter(out, LateCopies(depth)))
    assert got is out
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(out, full)


def test_a_failed_copy_is_raised_and_the_thread_stops():
    full = _blocks(40)
    plan = plan_pairs(40, None, bytes_per_pair=8, working_memory=8 * 10 * 10 / 2**20)
    out = np.zeros(full.shape, np.float32)
    with pytest.raises(OSError, match="copy failed"):
        serial.fill(plan, lambda t: full[t.rows, t.cols], out,
                    writer=HostWriter(out, LateCopies(2, fail_at=2)))
    assert not [t for t in threading.enumerate() if t.name == "ssimref-host-writer"]


def test_an_interrupted_fill_writes_what_was_handed_over_and_stops():
    full = _blocks(40)
    plan = plan_pairs(40, None, bytes_per_pair=8, working_memory=8 * 10 * 10 / 2**20)
    tiles = list(plan.tiles())
    out = np.zeros(full.shape, np.float32)
    calls = []

    def tile_fn(t):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(t)
        return full[t.rows, t.cols]

    with pytest.raises(KeyboardInterrupt):
        serial.fill(plan, tile_fn, out, writer=HostWriter(out, LateCopies(2)))
    assert not [t for t in threading.enumerate() if t.name == "ssimref-host-writer"]
    for t in tiles[:3]:
        np.testing.assert_array_equal(out[t.rows, t.cols], full[t.rows, t.cols])
    assert not out[tiles[3].rows, tiles[3].cols].any()  # never handed over


# ------------------------------------------------------- the CuPy stager on the host
class _DeviceArray(np.ndarray):
    """A host array standing in for a cupy.ndarray: ``get`` copies into ``out`` later, on
    the stream's thread, as an asynchronous copy into pinned memory would."""

    def get(self, stream=None, out=None, blocking=True):
        assert stream is not None and out is not None and not blocking
        source = np.asarray(self).copy()
        stream.submit(lambda: np.copyto(out, source))
        return out


def _fake_cupy():
    """Streams are single worker threads (in order), events mark a point of a stream,
    pinned memory is host memory."""
    class Stream:
        def __init__(self, non_blocking=False):
            self.pool = ThreadPoolExecutor(1)
            self.last = None

        def submit(self, fn):
            def late():
                time.sleep(0.002)
                fn()
            self.last = self.pool.submit(late)

        def wait_event(self, event):
            event_future = event.future
            self.submit(lambda: event_future and event_future.result())

    class Event:
        def __init__(self):
            self.future = None

        def record(self, stream=None):
            self.future = None if stream is None else stream.last

        def synchronize(self):
            if self.future is not None:
                self.future.result()

    cuda = types.SimpleNamespace(Stream=Stream, Event=Event,
                                 alloc_pinned_memory=lambda nbytes: bytearray(nbytes))
    return types.SimpleNamespace(
        cuda=cuda, ascontiguousarray=lambda a: np.ascontiguousarray(a).view(_DeviceArray))


@pytest.mark.parametrize("m", [None, 29])
def test_cupy_stager_on_a_host_stand_in(m):
    from ssimref.engines import cupy_engine

    full = _blocks(45, m)
    plan = plan_pairs(45, m, bytes_per_pair=8, working_memory=8 * 12 * 12 / 2**20)
    out = np.full(full.shape, -1.0, np.float32)
    stager = cupy_engine.host_stager(_fake_cupy())
    assert stager.depth == cupy_engine.STAGING_DEPTH
    serial.fill(plan, lambda t: full[t.rows, t.cols].view(_DeviceArray), out,
                writer=HostWriter(out, stager))
    np.testing.assert_array_equal(out, full)
    assert all(b is None or b.dtype == np.float32 for b in stager.buffers)
