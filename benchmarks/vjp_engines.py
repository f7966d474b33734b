"""Vector-Jacobian blocks of the Numba engine against its forward block and the reference
VJP, and a simulated SSIM-kernel MMD^2 value-and-gradient pipeline built from them.

Run:  python benchmarks/vjp_engines.py [--repeat 5] [--threads 1 2] [--n 500] [--quick]
Writes benchmarks/vjp_engines.md (atomically; nothing else).

1. Pairs per second on the same tiles (28x28 uint8 patches of camera()/astronaut() as
   float64, data range 255, kind eq2, sample covariance), W1 (uniform 7x7, stride 1) and
   Gaussian 7x7 (sigma 1.5): ``squared_block`` (the forward), ``vjp_block`` with
   ``wrt_y=False`` (the MMD (X, Y) blocks), with ``wrt_y=True``, and on a diagonal tile
   (``upper=True``, unordered pairs, against the forward's diagonal tile), and the
   reference VJP (``PairForward(...).vjp``) on a small tile. Every contender runs once per
   round, rounds interleaved; each call gets fresh images (stacks rotate through distinct
   sets of patches).

2. The MMD pipeline the engines will serve: biased SSIM-kernel MMD^2 between X and Y
   (n = m, k = -1/2 D, eq2, Gaussian 7x7 sigma 1.5, sample covariance, patches in [0, 1],
   data range 1; benchmarks/mmd.py's setting), value and gradient with respect to X, built
   directly from the blocks: forward blocks S_XX (diagonal), S_XY, S_YY (diagonal), the
   cotangents of S from the kernel, then ``vjp_block`` on the (X, X) diagonal tile and on
   (X, Y) with ``wrt_y=False``. Timed beside the forward distance matrix of the 2n pooled
   images (``ssimref.distance_matrix(..., backend="numba")``), interleaved. The pipeline is
   first checked against ``ssimref.gmmn.mmd2_and_grad`` on the reference engine at n = 24.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, patches, summary, versions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numba  # noqa: E402

import ssimref  # noqa: E402
from ssimref import SSIMConfig  # noqa: E402
from ssimref.engines import numba_engine, numba_vjp  # noqa: E402
from ssimref.gradients import PairForward  # noqa: E402

OUT = Path(__file__).resolve().parent / "vjp_engines.md"
UNIFORM7 = SSIMConfig.skimage(data_range=255)
GAUSSIAN7 = SSIMConfig(window="gaussian", size=7, sigma=1.5, data_range=255)
MMD_CONFIG = SSIMConfig(window="gaussian", size=7, sigma=1.5, covariance="sample",
                        data_range=1.0)


def cell(values, fmt="{:,.0f}"):
    lo, med, hi = summary(values)
    return " / ".join(fmt.format(v) for v in (lo, med, hi))


def rounds(contenders, repeat, threads):
    """One untimed call of each, then ``repeat`` rounds with each contender once per
    round. ``contenders``: name -> (fn(k) for round k, pairs). Returns name -> seconds."""
    numba.set_num_threads(threads)
    for fn, _ in contenders.values():
        fn(0)
    times = {name: [] for name in contenders}
    for r in range(repeat):
        for name, (fn, _) in contenders.items():
            start = time.perf_counter()
            fn(r + 1)
            times[name].append(time.perf_counter() - start)
        print(f"  round {r + 1}/{repeat}, load {os.getloadavg()[0]:.2f}", flush=True)
    return times


# ------------------------------------------------------------------------ 1. pairs/s
def block_contenders(config, side, ref_side, sets):
    """Stacks rotate through ``sets`` distinct sets of patches: every call sees images
    it has not seen in the call before."""
    pool = patches(2 * side * sets, seed=7).astype(np.float64)[..., None]
    X = [np.ascontiguousarray(pool[2 * k * side:(2 * k + 1) * side]) for k in range(sets)]
    Y = [np.ascontiguousarray(pool[(2 * k + 1) * side:(2 * k + 2) * side])
         for k in range(sets)]
    rng = np.random.default_rng(3)
    W = [rng.normal(size=(side, side)) for _ in range(sets)]
    Wr = rng.normal(size=(ref_side, ref_side))
    pairs, unordered = side * side, side * (side - 1) / 2

    def pick(k):
        return X[k % sets], Y[k % sets], W[k % sets]

    def ref(k):
        A, B, _ = pick(k)
        PairForward(A[:ref_side, None], B[None, :ref_side], "eq2", config, np).vjp(
            Wr, wrt_y=False)

    return {
        "forward `squared_block`": (lambda k: numba_engine.squared_block(
            *pick(k)[:2], "eq2", config), pairs),
        "`vjp_block`, dX only (`wrt_y=False`)": (lambda k: numba_vjp.vjp_block(
            *pick(k), "eq2", config, wrt_y=False), pairs),
        "`vjp_block`, dX and dY": (lambda k: numba_vjp.vjp_block(
            *pick(k), "eq2", config), pairs),
        "forward, diagonal tile (`upper=True`)": (lambda k: numba_engine.squared_block(
            pick(k)[0], pick(k)[0], "eq2", config, upper=True), unordered),
        "`vjp_block`, diagonal tile (`upper=True`)": (lambda k: numba_vjp.vjp_block(
            pick(k)[0], pick(k)[0], pick(k)[2], "eq2", config, upper=True), unordered),
        f"reference `PairForward.vjp`, dX only, {ref_side}x{ref_side} tile": (
            ref, ref_side * ref_side),
    }


# ---------------------------------------------------------------------- 2. MMD pipeline
def mmd_blocks(X, Y, config=MMD_CONFIG, kind="eq2"):
    """Biased MMD^2 with k = -1/2 D between X and Y, and its gradient with respect to X,
    from the engine blocks (one tile per block; n, m up to VJP_MAX_TILE_PAIRS)."""
    n, m = X.shape[0], Y.shape[0]
    Sxx = numba_engine.squared_block(X, X, kind, config, upper=True)
    Sxy = numba_engine.squared_block(X, Y, kind, config)
    Syy = numba_engine.squared_block(Y, Y, kind, config, upper=True)
    Dxx, Dxy, Dyy = np.sqrt(Sxx), np.sqrt(Sxy), np.sqrt(Syy)
    value = (-0.5 * Dxx.sum() / n**2 - 0.5 * Dyy.sum() / m**2 + Dxy.sum() / (n * m))
    # cotangents of S: d(-1/2 D)/dS = -1/(4 D), 0 where D = 0 (the subgradient);
    # K_XX counts each unordered pair twice, K_XY enters with -2/(n m)
    with np.errstate(divide="ignore"):
        inv_xx = np.where(Dxx > 0, 1.0 / Dxx, 0.0)
        inv_xy = np.where(Dxy > 0, 1.0 / Dxy, 0.0)
    Wxx = np.triu(inv_xx, 1) * (-0.5 / n**2)
    Wxy = inv_xy * (0.5 / (n * m))
    dX = numba_vjp.vjp_block(X, X, Wxx, kind, config, upper=True)[0]
    dX += numba_vjp.vjp_block(X, Y, Wxy, kind, config, wrt_y=False)[0]
    return value, dX


def check_pipeline():
    """The block pipeline against the reference path (ssimref.gmmn.mmd2_and_grad)."""
    from ssimref.gmmn import mmd2_and_grad
    from ssimref.kernels import SSIMDistanceKernel

    P = patches(48, seed=11).astype(np.float64)[..., None] / 255.0
    X, Y = P[:24].copy(), P[24:].copy()
    Y[3] = X[5]  # a pair at distance 0
    value, dX = mmd_blocks(X, Y)
    ref_value, ref_dX = mmd2_and_grad(
        X, Y, SSIMDistanceKernel("eq2", 1, MMD_CONFIG, backend="reference"), "biased")
    dev = float(np.abs(dX - ref_dX).max() / np.abs(ref_dX).max())
    assert abs(value - ref_value) <= 1e-12 * abs(ref_value), (value, ref_value)
    assert dev <= 1e-10, dev
    return dev


def pipeline_contenders(n, sets):
    pool = patches(2 * n * sets, seed=1).astype(np.float64)[..., None] / 255.0
    data = [(np.ascontiguousarray(pool[2 * k * n:(2 * k + 1) * n]),
             np.ascontiguousarray(pool[(2 * k + 1) * n:(2 * k + 2) * n]))
            for k in range(sets)]
    pooled = [np.concatenate(d) for d in data]
    return {
        f"MMD^2 value + grad from the blocks, n = m = {n}": (
            lambda k: mmd_blocks(*data[k % sets]), None),
        f"forward distance matrix of the {2 * n} pooled images": (
            lambda k: ssimref.distance_matrix(pooled[k % sets], config=MMD_CONFIG,
                                              backend="numba"), None),
    }


# ------------------------------------------------------------------------------ main
def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--side", type=int, default=256, help="tile side for pairs/s")
    parser.add_argument("--n", type=int, default=500, help="MMD sample sizes n = m")
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.side, args.n = 2, 64, 100
    start_machine = machine()
    compile_s = numba_vjp.vjp_warm_up()
    dev = check_pipeline()
    lines = []
    for threads in args.threads:
        for name, config in (("W1: uniform 7x7", UNIFORM7), ("Gaussian 7x7", GAUSSIAN7)):
            print(f"{name}, {threads} thread(s)", flush=True)
            contenders = block_contenders(config, args.side, 24, sets=3)
            times = rounds(contenders, args.repeat, threads)
            rate = {label: [pairs / t for t in times[label]]
                    for label, (_, pairs) in contenders.items()}
            fwd = statistics.median(rate["forward `squared_block`"])
            fwd_upper = statistics.median(rate["forward, diagonal tile (`upper=True`)"])
            for label in contenders:
                base = fwd_upper if "diagonal" in label else fwd
                ratio = base / statistics.median(rate[label])
                lines.append(f"| {name} | {threads} | {label} | {cell(rate[label])} | "
                             f"{ratio:.2f} |")
    pipe_lines = []
    for threads in args.threads:
        print(f"MMD pipeline, {threads} thread(s)", flush=True)
        contenders = pipeline_contenders(args.n, sets=3)
        times = rounds(contenders, args.repeat, threads)
        names = list(contenders)
        med = {k: statistics.median(v) for k, v in times.items()}
        for label in names:
            ratio = med[label] / med[names[1]]
            pipe_lines.append(f"| {threads} | {label} | {cell(times[label], '{:.3f}')} | "
                              f"{ratio:.2f} |")
    body = f"""## Vector-Jacobian blocks (Numba engine)

`python benchmarks/vjp_engines.py --repeat {args.repeat} --threads {' '.join(map(str, args.threads))}`, run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.
Machine: {start_machine}; load average at the end {', '.join(f'{v:.2f}' for v in os.getloadavg())} (the cores are shared with other jobs: compare rows of one table, which were timed round-robin, rather than absolute figures).
Versions: {', '.join(f'{k} {v}' for k, v in versions('numpy', 'numba', 'llvmlite', 'scikit-image').items())}.
Numba compile (or cache load) of the VJP kernels before timing: {compile_s:.1f} s.

Pairs per second, min / median / max over {args.repeat} rounds after an untimed one; every
call gets images it did not see in the call before. Tiles {args.side} x {args.side} of
28x28 uint8 patches (camera(), astronaut()) as float64, data range 255, eq2, sample
covariance; diagonal tiles count unordered pairs {args.side} ({args.side} - 1) / 2.
Time per pair relative to the forward: the forward's median pairs/s over the row's median
(diagonal tiles against the diagonal forward).

| window | threads | what | pairs/s (min / median / max) | time per pair / forward |
|---|---|---|---|---|
""" + "\n".join(lines) + f"""

### Simulated MMD^2 pipeline

Biased MMD^2 with the SSIM distance kernel k = -1/2 D (eq2, Gaussian 7x7 sigma 1.5,
sample covariance, patches / 255 with data range 1), value and gradient with respect to
X, built from `squared_block` (S_XX and S_YY diagonal tiles, S_XY) and `vjp_block`
((X, X) diagonal tile, (X, Y) with `wrt_y=False`), beside `ssimref.distance_matrix` of the
{2 * args.n} pooled images with the Numba engine. Checked first against
`ssimref.gmmn.mmd2_and_grad` (reference path) at n = m = 24: value to 1e-12, gradient to
{dev:.1e} of its largest entry. Seconds, min / median / max over {args.repeat} rounds.

| threads | what | seconds (min / median / max) | time / forward matrix |
|---|---|---|---|
""" + "\n".join(pipe_lines) + "\n"
    tmp = OUT.with_name(OUT.name + ".tmp")
    tmp.write_text(body)
    os.replace(tmp, OUT)
    print(body)


if __name__ == "__main__":
    main()
