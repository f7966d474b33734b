"""The Dask executor against the serial one on one machine, and what that measures says
about clusters: n = 10,000 28x28 patches, W1 (uniform 7x7, stride 1), eq2, numba.

Variants, interleaved round by round (the machine is shared):

- ``serial, memory``: ``distance_matrix`` into a NumPy array, this process (Numba on all
  cores), the baseline;
- ``serial, zarr``: the same tiles written into a zarr store, this process;
- ``dask 2x1, zarr``: the same tiles as tasks on a ``LocalCluster`` of 2 worker processes
  with 1 thread each (Numba limited to 1 thread per worker), written by the workers.

Also measured: per-tile seconds on the workers, bytes moved (images scattered, task
results received by the client, matrix written), the scheduler's overhead per task (a
batch of empty tasks), the zarr write rate; from them, a projection (not a measurement)
of throughput and tile size for 16, 64 and 256 workers.

Run:  python benchmarks/dask_scale.py [--n 10000] [--tile 1000] [--rounds 2]
Writes benchmarks/dask_scale.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, patches, summary, versions  # noqa: E402

import ssimref  # noqa: E402
from ssimref import SSIMConfig  # noqa: E402
from ssimref.executor_dask import DaskExecutor  # noqa: E402

OUT = Path(__file__).resolve().with_name("dask_scale.md")
CONFIG = SSIMConfig(window="uniform", size=7, stride=1, data_range=255)


def _noop(i):
    return i


def _zarr(path, n, tile):
    import zarr
    from zarr.codecs import Crc32cCodec
    return zarr.create_array(str(path), shape=(n, n), chunks=(tile, tile), dtype="float64",
                             fill_value=np.nan, compressors=[Crc32cCodec()], overwrite=True)


def scheduler_overhead(client, tasks=2000, repeat=3):
    """Seconds per empty task, end to end (submit, schedule, run, report back), with the
    cluster's workers busy on nothing else: wall time x workers / tasks."""
    workers = len(client.scheduler_info()["workers"])
    per_task = []
    for r in range(repeat):
        start = time.perf_counter()
        futures = client.map(_noop, range(tasks), key=[f"noop-{r}-{i}" for i in range(tasks)])
        client.gather(futures)
        per_task.append((time.perf_counter() - start) / tasks)
        del futures
    return [p * workers for p in per_task], [p for p in per_task]


def write_rate(folder, tile, chunks=8):
    """MB/s writing float64 tile x tile chunks into a zarr store with CRC32C."""
    z = _zarr(folder / "w.zarr", tile * chunks, tile)
    block = np.random.default_rng(0).random((tile, tile))
    start = time.perf_counter()
    for i in range(chunks):
        z[i * tile:(i + 1) * tile, :tile] = block
    seconds = time.perf_counter() - start
    shutil.rmtree(folder / "w.zarr")
    return chunks * block.nbytes / seconds / 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--tile", type=int, default=1000, help="tile side (zarr chunk)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--render", action="store_true", help="rewrite the report from the "
                        "measurements kept at the end of benchmarks/dask_scale.md")
    args = parser.parse_args(argv)
    if args.render:
        kept = OUT.read_text().rsplit("<!-- measurements: ", 1)[1].split(" -->")[0]
        OUT.write_text(render(json.loads(kept)))
        print(OUT.read_text())
        return

    import distributed

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    where = machine()
    X = patches(args.n)
    n, t = args.n, args.tile
    pairs = n * (n - 1) / 2
    folder = Path(tempfile.mkdtemp(prefix="dask_scale_"))
    times = {"serial, memory": [], "serial, zarr": [], f"dask {args.workers}x1, zarr": []}
    tiles_seconds, received, workers_seen = [], [], set()
    plan_tiles = None
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                  processes=True, dashboard_address=None,
                                  env={"NUMBA_NUM_THREADS": "1"}) as cluster, \
            distributed.Client(cluster) as client:
        executor = DaskExecutor(client)
        small = X[:300]
        ssimref.distance_matrix(small, config=CONFIG)  # compile / load Numba here
        ssimref.distance_matrix(small, config=CONFIG, executor=executor,
                                out=_zarr(folder / "warm.zarr", 300, 100))  # and there
        overhead_busy, overhead_wall = scheduler_overhead(client)

        def serial_memory():  # the tiles the default working memory gives (2,048 wide)
            ssimref.distance_matrix(X, config=CONFIG)

        def serial_zarr():
            ssimref.distance_matrix(X, config=CONFIG, out=_zarr(folder / "s.zarr", n, t))

        def dask_zarr():
            with distributed.get_task_stream(client) as stream:
                ssimref.distance_matrix(X, config=CONFIG, executor=executor,
                                        out=_zarr(folder / "d.zarr", n, t))
            tiles_seconds.extend(r.seconds for r in executor.last_run)
            workers_seen.update(r.worker for r in executor.last_run)
            received.append(sum(e["nbytes"] for e in stream.data
                                if str(e["key"]).startswith("ssimref-tile-")))

        runs = list(zip(times, (serial_memory, serial_zarr, dask_zarr)))
        for r in range(args.rounds):
            for name, fn in runs[r % 3:] + runs[:r % 3]:  # rotate the order
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
                print(f"round {r + 1}: {name}: {times[name][-1]:.1f} s", flush=True)
                for store in ("s.zarr", "d.zarr"):
                    shutil.rmtree(folder / store, ignore_errors=True)
        plan_tiles = len(executor.last_run)
        rate = write_rate(folder, t)
    shutil.rmtree(folder, ignore_errors=True)

    results = {
        "started": started, "machine": where,
        "versions": versions("numpy", "numba", "dask", "distributed", "zarr"),
        "n": n, "tile": t, "rounds": args.rounds, "workers": args.workers,
        "tiles": plan_tiles, "times": times, "tile_seconds": list(summary(tiles_seconds)),
        "workers_seen": len(workers_seen), "received_bytes": statistics.median(received),
        "image_bytes": int(X.nbytes), "write_mb_s": rate,
        "overhead_busy_s": statistics.median(overhead_busy),
        "overhead_wall_s": statistics.median(overhead_wall)}
    text = render(results)
    print(text)
    if not args.no_write:
        OUT.write_text(text)
        print(f"wrote {OUT}")


def render(r):
    """The report of one run's measurements ``r`` (kept, as JSON, at its end)."""
    n, t, times = r["n"], r["tile"], r["times"]
    pairs = n * (n - 1) / 2
    dask_name = f"dask {r['workers']}x1, zarr"
    tile_min, tile_med, tile_max = r["tile_seconds"]
    per_worker_rate = t * t / tile_med  # pairs per second per worker, full tiles
    o_busy, o_wall = r["overhead_busy_s"], r["overhead_wall_s"]

    def overhead(stat):
        dask, serial = stat(times[dask_name]), stat(times["serial, memory"])
        serial_z = stat(times["serial, zarr"])
        return (f"{(dask / serial - 1) * 100:+.1f}% against the serial executor into "
                f"memory, {(dask / serial_z - 1) * 100:+.1f}% against the serial executor "
                "into the same zarr store")

    serial = statistics.median(times["serial, memory"])
    lines = [
        "## Dask executor on one machine, and a projection to clusters",
        "",
        f"`python benchmarks/dask_scale.py --n {n} --tile {t} --rounds {r['rounds']}` "
        f"({r['started']}; {r['machine']}; "
        + ", ".join(f"{k} {v}" for k, v in r["versions"].items()) + ").",
        "",
        f"Workload: n = {n:,} patches 28x28 (`ssimref.datasets.load('patches')`), W1 "
        f"(uniform 7x7, stride 1), eq2, numba engine, float64, {pairs:,.0f} pairs; "
        f"{r['tiles']} tiles of {t} x {t} (the zarr chunks). Rounds interleaved, order "
        "rotated; the machine is shared with other jobs, so absolute figures move with its "
        "load.",
        "",
        "| variant | min s | median s | max s | pairs/s (median) | vs serial, memory |",
        "|---|---|---|---|---|---|",
    ]
    for name, ts in times.items():
        lo, med, hi = summary(ts)
        lines.append(f"| {name} | {lo:.1f} | {med:.1f} | {hi:.1f} | {pairs / med:,.0f} | "
                     f"{(med / serial - 1) * 100:+.1f}% |")
    spread = max((max(ts) - min(ts)) / min(ts) for ts in times.values())
    lines += [
        "",
        f"Overhead of the Dask executor: {overhead(min)} on the fastest runs (the least "
        f"disturbed by other jobs); {overhead(statistics.median)} on the medians. Runs of "
        f"one variant differed by up to {spread * 100:.0f}% here, so only the first "
        "figure, within that noise, is a measurement of the executor.",
        "",
        "Per task (Dask run): "
        f"tile seconds on a worker (compute and write) min {tile_min:.2f} / median "
        f"{tile_med:.2f} / max {tile_max:.2f}; both workers ran tiles "
        f"({r['workers_seen']} addresses); {per_worker_rate:,.0f} pairs/s per worker "
        "(1 thread) on full tiles.",
        "",
        f"Bytes moved: images scattered once to each worker {r['image_bytes'] / 1e6:.1f} MB "
        f"x {r['workers']}; task results received by the client "
        f"{r['received_bytes'] / 1e3:.1f} kB for {r['tiles']} tiles "
        f"({r['received_bytes'] / r['tiles']:.0f} bytes each: a TileReport); "
        f"matrix written by the workers {8 * n * n / 1e6:,.0f} MB (each tile and its "
        f"mirror); zarr write rate here {r['write_mb_s']:,.0f} MB/s.",
        "",
        f"Scheduler overhead per task: {o_busy * 1e3:.2f} ms of a worker's time per empty "
        f"task ({o_wall * 1e3:.2f} ms of wall time per task with {r['workers']} workers; "
        f"2,000 tasks, median of 3); against a median tile of {tile_med:.2f} s that is "
        f"{o_busy / tile_med * 100:.2f}% per tile.",
        "",
    ]
    lines += projection(per_worker_rate, o_busy, o_wall, r["write_mb_s"])
    lines += ["", f"<!-- measurements: {json.dumps(r, sort_keys=True)} -->"]
    return "\n".join(lines) + "\n"


def projection(rate, overhead, serial_cost, write_mb_s, default_side=2048):
    """Throughput and tile sides for W workers, from the measured per-worker rate ``r``
    (pairs/s), the per-task overhead ``o`` on a worker's timeline (s) and the serial cost
    ``s`` per task of the scheduler pipeline (s)."""
    lines = [
        "### Projection to 16, 64 and 256 workers (a projection, not a measurement)",
        "",
        "Model, with the figures measured above: each worker computes r pairs/s (one "
        "thread); a tile of side t costs t^2 / r seconds of a worker plus a fixed o per "
        "task (an empty task's share of a worker's time: scheduling, round trip, result); "
        "the scheduler hands out tasks one at a time at a cost s each (the wall time per "
        "empty task, measured with scheduler, workers and client sharing 2 cores: an upper "
        "bound for a scheduler with a core of its own). The fixed cost stays under 5% of a "
        "tile when t >= sqrt(20 o r); the scheduler stays under 5% busy with W workers when "
        "t >= sqrt(20 W s r); the last wave of tiles stays short (at least 4 tiles per "
        "worker) when t <= n / sqrt(8 W) for an n x n symmetric matrix. Every pair writes "
        "two float64 entries (the tile and its mirror): 16 W r bytes/s of output.",
        "",
        f"r = {rate:,.0f} pairs/s, o = {overhead * 1e3:.2f} ms, s = {serial_cost * 1e3:.2f} ms.",
        "",
        "| workers W | projected pairs/s | t_min | t_max, n = 10,000 | t_max, n = 100,000 "
        "| output write rate | time, n = 10,000 | time, n = 100,000 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    readings = []
    for W in (16, 64, 256):
        t_min = max(math.sqrt(20 * overhead * rate), math.sqrt(20 * W * serial_cost * rate))
        throughput = W * rate / (1 + overhead * rate / t_min ** 2)
        cells = []
        for n in (10_000, 100_000):
            t_max = n / math.sqrt(8 * W)
            ok = t_min <= t_max
            cells.append((t_max, ok, n * n / 2 / throughput))
        (t10, ok10, s10), (t100, ok100, s100) = cells
        lines.append(
            f"| {W} | {throughput:,.0f} | {t_min:,.0f} | {t10:,.0f}"
            f"{'' if ok10 else ' (< t_min)'} | {t100:,.0f}{'' if ok100 else ' (< t_min)'} | "
            f"{16 * W * rate / 1e9:.2f} GB/s | {f'{s10:,.0f} s' if ok10 else '-'} | "
            f"{f'{s100 / 60:,.0f} min' if ok100 else '-'} |")
        readings.append((W, t_min, ok10, ok100))
    def workers(ws):
        names = [str(w) for w in ws]
        return "no" if not names else names[0] if len(names) == 1 else \
            ", ".join(names[:-1]) + " and " + names[-1]

    fits = [W for W, t_min, _, _ in readings if t_min <= default_side]
    small = [W for W, _, ok10, _ in readings if not ok10]
    big = [W for W, _, _, ok100 in readings if ok100]
    lines += [
        "",
        "Reading: the tile side the command line takes from the default `--working-memory` "
        f"(1 GiB: {default_side:,} x {default_side:,} for the numba engine) keeps the "
        f"overhead under 5% with {workers(fits)} workers. A 10,000 x 10,000 matrix has too "
        f"few tiles that large to keep {workers(small)} workers busy: it is a job for one "
        "machine; at n = 100,000 the bounds leave room with "
        f"{workers(big)} workers. The output rate is the constraint that grows fastest: "
        "this machine's disk "
        f"took {write_mb_s:,.0f} MB/s, so beyond a few workers the store must be a parallel "
        "file system or an object store (zarr writes each chunk as one object), or the "
        "matrix float32 (`--dtype float32`, half the bytes).",
    ]
    return lines


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
