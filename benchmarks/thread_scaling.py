"""All-pairs SSIM distances on one and on all Numba threads, interleaved in one process,
with a profile of where one call's time goes.

Run:  python benchmarks/thread_scaling.py [--n 4000] [--rounds 5] [--no-write]
Writes the "thread-scaling" section of BENCHMARKS.md.

Workload W1 (benchmarks/distance_matrix_engines.py): n uint8 patches 28x28 of camera()
and astronaut(), data_range 255, uniform 7x7 window, stride 1, kind eq2, float64,
symmetric, backend numba, default working memory. Pairs per second count distinct pairs
n (n - 1) / 2. Each round times one call on 1 thread and one on every thread
(``numba.set_num_threads``), alternating which goes first, so that other jobs' load falls
on both alike; the speedup is the median of the per-round ratios beside the ratio of the
medians.

The profile (cProfile, one extra call on every thread) splits the call into the fused
kernels (which also root, cast and flag the pairs near 0), the per-image terms, and the
passes that run outside the kernels: the mirror of each diagonal tile, the refinement
near 0, the copies of each tile and its mirror into the output, the conversion of the
tile's images.
"""

from __future__ import annotations

import argparse
import os
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

import numba

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, patches, summary, versions, write_section  # noqa: E402

import ssimref  # noqa: E402
from ssimref import SSIMConfig  # noqa: E402

CONFIG = SSIMConfig.skimage(data_range=255)  # W1: uniform 7x7, sample covariance

#: Profile rows: (label, function names as cProfile reports them, whether their time is
#: cumulative: the refinement calls the reference engine, the host copies wait for their
#: threads).
PARTS = (("fused kernels", ("_tiles_sliding", "_tiles_separable"), False),
         ("per-image terms", ("_image_terms",), False),
         ("mirror inside diagonal tiles", ("_mirror_upper",), False),
         ("refinement near 0 (reference engine)", ("refine_near_zero",), True),
         ("tile and mirror copies into the output", ("host_copy",), True),
         ("images to float64 in units of the range", ("in_range_units", "_to_units"), True))


def call(X):
    ssimref.distance_matrix(X, kind="eq2", config=CONFIG, backend="numba")


def timed_on(X, threads):
    numba.set_num_threads(threads)
    start = time.perf_counter()
    call(X)
    return time.perf_counter() - start


def profile(X):
    """Seconds per part of one call, and the call's total."""
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    call(X)
    prof.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(prof).stats
    parts = {}
    for label, names, cumulative in PARTS:
        parts[label] = sum(st[3 if cumulative else 2] for (_, _, fn), st in stats.items()
                           if fn in names)
    parts["everything else (Python, allocations, tasks)"] = total - sum(parts.values())
    return parts, total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    threads = numba.get_num_threads()
    X = patches(args.n)
    pairs = args.n * (args.n - 1) / 2
    start_machine = machine()
    call(X[:64])  # compile
    one, many = [], []
    for r in range(args.rounds):
        order = (1, threads) if r % 2 == 0 else (threads, 1)
        for t in order:
            (one if t == 1 else many).append(timed_on(X, t))
        print(f"round {r}: 1 thread {one[-1]:.3f} s, {threads} threads {many[-1]:.3f} s",
              flush=True)
    numba.set_num_threads(threads)
    parts, total = profile(X)
    end_load = ", ".join(f"{v:.2f}" for v in os.getloadavg())

    rate1 = [pairs / t for t in one]
    rate_n = [pairs / t for t in many]
    per_round = statistics.median(a / b for a, b in zip(one, many))
    ratio = statistics.median(one) / statistics.median(many)
    v = versions("numpy", "numba")
    cmd = "python benchmarks/thread_scaling.py " + " ".join(argv or sys.argv[1:])
    lines = [
        "## Thread scaling: W1 on one and on every Numba thread",
        "",
        f"`{cmd.strip()}`, run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {start_machine}; {end_load} at the end. Numba threads: {threads}. "
        f"Versions: {', '.join(f'{k} {val}' for k, val in v.items())}, ssimref "
        f"{ssimref.__version__}.",
        "",
        f"W1 (uint8 28x28 patches, uniform 7x7, eq2, float64, symmetric, backend numba), "
        f"n = {args.n:,} ({pairs:,.0f} distinct pairs); {args.rounds} rounds, each timing "
        "one call per thread count, alternating which goes first. Pairs per second, "
        "min / median / max.",
        "",
        "| threads | seconds (min / median / max) | pairs per second (min / median / max) |",
        "|---|---|---|",
        "| 1 | " + " / ".join(f"{s:.3f}" for s in summary(one)) + " | "
        + " / ".join(f"{s:,.0f}" for s in summary(rate1)) + " |",
        f"| {threads} | " + " / ".join(f"{s:.3f}" for s in summary(many)) + " | "
        + " / ".join(f"{s:,.0f}" for s in summary(rate_n)) + " |",
        "",
        f"Speedup of {threads} threads over 1: {ratio:.2f}x (ratio of medians), "
        f"{per_round:.2f}x (median of the per-round ratios).",
        "",
        f"Where one call on {threads} threads spends its time (cProfile, one more call, "
        f"{total:.3f} s in all):",
        "",
        "| part | seconds | share |",
        "|---|---|---|",
    ]
    lines += [f"| {label} | {sec:.3f} | {sec / total:.1%} |" for label, sec in parts.items()]
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_write:
        write_section("thread-scaling", body)


if __name__ == "__main__":
    main()
