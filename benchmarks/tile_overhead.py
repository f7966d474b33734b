"""The fixed cost of a tile: distance_matrix of the same images under several working
memories, timed round-robin, and a least-squares fit ``time = a * tiles + b * pairs``.

Run:  python benchmarks/tile_overhead.py [--n 400] [--repeat 3] [--backend numba]
Writes the "tile-overhead" section of BENCHMARKS.md. The fit's ``a`` (seconds per tile)
over ``b`` (seconds per pair) is the tile size at which a tile spends as long on its fixed
cost as on its pairs: the ground for ssimref.tiling.SMALL_TILE_PAIRS.

Workload: the first n of scikit-learn's 8x8 digits (data range 16) and n 28x28 patches
(uint8), Gaussian 7x7 (sigma 1.5; uniform 3x3 on the 8x8 digits), kind eq2, symmetric.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, patches, summary, versions, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ssimref  # noqa: E402
from ssimref.config import SSIMConfig  # noqa: E402
from ssimref.engines import get_engine  # noqa: E402
from ssimref.tiling import plan_pairs  # noqa: E402

BUDGETS = {8: (0.05, 0.2, 1.0, 64.0), 28: (1.0, 2.0, 5.0, 64.0)}


def workloads(n):
    from sklearn.datasets import load_digits
    digits = load_digits().images[:n]
    return {8: (digits, SSIMConfig(window="uniform", size=3, data_range=16)),
            28: (patches(n), SSIMConfig(data_range=255))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    engine = get_engine(args.backend)
    start_machine = machine()
    rows, fits = [], []
    warnings.simplefilter("ignore")  # the small budgets are the point here
    for side, (X, config) in workloads(args.n).items():
        shape = (side, side, 1)
        sizes = dict(bytes_per_pair=engine.bytes_per_pair(shape, config),
                     bytes_per_image=engine.bytes_per_image(shape, config),
                     max_pairs=engine.max_tile_pairs(shape, config))
        plans = {wm: plan_pairs(args.n, None, working_memory=wm, **sizes)
                 for wm in BUDGETS[side]}
        ssimref.distance_matrix(X[:20], config=config, backend=args.backend)  # compile
        times = {wm: [] for wm in plans}
        for _ in range(args.repeat):  # round-robin: the machine's load falls on all alike
            for wm in plans:
                t0 = time.perf_counter()
                ssimref.distance_matrix(X, config=config, backend=args.backend,
                                        working_memory=wm)
                times[wm].append(time.perf_counter() - t0)
        A = np.array([[len(p), p.total_pairs] for p in plans.values()], float)
        med = np.array([summary(times[wm])[1] for wm in plans])
        per_tile, per_pair = np.linalg.lstsq(A, med, rcond=None)[0]
        fits.append(f"{side}x{side}: {per_tile * 1e3:.1f} ms per tile, "
                    f"{per_pair * 1e6:.2f} us per pair, break-even tile "
                    f"{per_tile / per_pair:,.0f} pairs")
        for wm, plan in plans.items():
            lo, mid, hi = summary(times[wm])
            rows.append(f"| {side}x{side} | {wm:g} | {len(plan):,} | {plan.tile_rows} | "
                        f"{lo:.3f} / {mid:.3f} / {hi:.3f} |")
    body = "\n".join([
        "## Tile overhead (the small-tile warning)",
        "",
        f"`python benchmarks/tile_overhead.py --n {args.n} --repeat {args.repeat} "
        f"--backend {args.backend}`, run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {start_machine}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in versions("numpy", "numba", "ssimref").items())
        + ".",
        "",
        f"n = {args.n} images, symmetric distance matrix ({args.n * (args.n - 1) // 2:,} "
        "pairs), the same call under each working memory, timed round-robin; seconds "
        "min / median / max.",
        "",
        "| images | working memory (MiB) | tiles | tile side | seconds |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Least-squares fit of the medians, time = a tiles + b pairs: " + "; ".join(fits)
        + ". ssimref.tiling.SMALL_TILE_PAIRS (10,000) warns below the break-even tile "
        "measured under load.",
    ])
    if not args.no_write:
        write_section("tile-overhead", body)
    print(body)


if __name__ == "__main__":
    main()
