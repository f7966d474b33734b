"""Pairs per second of ssimref.distance_matrix (reference backend) against a scikit-image
loop, on 28x28 patches of scikit-image's camera() and astronaut().

Run:  python benchmarks/distance_matrix.py [--n 300 1000] [--repeat 5]
Writes the "core distance matrix" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, patches, summary, timed, versions, write_section  # noqa: E402

import ssimref  # noqa: E402
from ssimref import SSIMConfig  # noqa: E402

WINDOWS = {
    "uniform 7x7": (SSIMConfig.skimage(255), dict(win_size=7)),
    "Gaussian 11x11": (SSIMConfig.skimage(255, gaussian_weights=True), dict(gaussian_weights=True)),
    "Gaussian 7x7": (SSIMConfig(data_range=255), None),
}


def skimage_pairs_per_second(X, sk_kwargs, pairs=400, repeat=5):
    from skimage.metrics import structural_similarity
    rng = np.random.default_rng(1)
    idx = rng.integers(0, len(X), (pairs, 2))
    Xf = X.astype(np.float64)

    def loop():
        for i, j in idx:
            structural_similarity(Xf[i], Xf[j], data_range=255, **sk_kwargs)

    times = timed(loop, repeat=repeat)
    return [pairs / t for t in times]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for label, (config, sk_kwargs) in WINDOWS.items():
        for n in args.n:
            X = patches(n)
            pairs = n * (n - 1) / 2
            times = timed(lambda: ssimref.distance_matrix(X, kind="eq2", config=config,
                                                          backend="reference"),
                          repeat=args.repeat)
            ours = [pairs / t for t in times]
            if sk_kwargs is not None:
                sk = skimage_pairs_per_second(X, sk_kwargs, repeat=args.repeat)
                ratio = f"{np.median(ours) / np.median(sk):.1f}x"
                sk_cell = f"{np.median(sk):,.0f}"
            else:
                sk_cell, ratio = "(no skimage equivalent)", "-"
            lo, med, hi = summary(ours)
            rows.append(f"| {label} | {n} | {lo:,.0f} / {med:,.0f} / {hi:,.0f} | "
                        f"{sk_cell} | {ratio} |")
            print(rows[-1], flush=True)

    v = versions("numpy", "scikit-image", "ssimref")
    body = "\n".join([
        "## Core: reference distance matrix vs a scikit-image loop",
        "",
        f"`python benchmarks/distance_matrix.py --n {' '.join(map(str, args.n))} "
        f"--repeat {args.repeat}`, run {started}.",
        f"Machine: {machine()}. Versions: "
        + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        "Workload: n uint8 patches 28x28 cut from skimage's camera() and astronaut(), "
        "data_range 255, stride 1, kind eq2, float64, symmetric (each unordered pair once), "
        "`backend=\"reference\"` (the array-API code, no fused engine). scikit-image: "
        "`structural_similarity` in a Python loop over 400 random pairs, same conventions "
        "(uniform: win_size 7, sample covariance; Gaussian: gaussian_weights=True).",
        "Pairs per second, min / median / max over the timed runs; ratio of medians.",
        "",
        "| window | n | ssimref reference (pairs/s) | scikit-image loop (pairs/s, median) | ratio |",
        "|---|---|---|---|---|",
        *rows,
    ])
    if not args.no_write:
        write_section("core-distance-matrix", body)
    print(body)


if __name__ == "__main__":
    main()
