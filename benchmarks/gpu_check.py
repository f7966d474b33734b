"""GPU check for the CuPy engine, in under 5 minutes on one H100: the GPU tests, then the
benchmark of issue 3 (n = 70,000 patches 28x28, W1 settings, float64 compute, float32
output streamed tile by tile to a host memmap), with the largest deviation from the CPU
reference on a subset.

Run:  python benchmarks/gpu_check.py [--n 70000] [--json results.json] [--skip-tests]

Steps and what each prints:
1. the device, CuPy and CUDA versions;
2. ``pytest -m gpu`` (the CuPy tests of the whole suite);
3. W1 (n = 2,000, symmetric, float64 result on the device): pairs/s, median of 5;
4. the largest relative deviation of the GPU D^2 from the reference backend (NumPy, CPU)
   on 300 images, for the three kinds, and whether it meets the accuracy contract;
5. n = 20,000 to a float32 host memmap, timed end to end; then n = 70,000 when the
   20,000 run predicts it fits the time left (else the extrapolation is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, patches  # noqa: E402

sys.path.insert(0, str(ROOT))
import ssimref  # noqa: E402
from ssimref import SSIMConfig  # noqa: E402

W1 = SSIMConfig.skimage(data_range=255)      # uniform 7x7, sample covariance, stride 1
BUDGET_S = 290                               # the whole check, tests included
U = 2.0**-53


def device_info(cp):
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return (f"{name}, {props['totalGlobalMem'] / 2**30:.0f} GiB; CuPy {cp.__version__}, "
            f"CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}")


def run_tests(seconds):
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
           "tests"]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:]
        return done.returncode, " ".join(tail), time.perf_counter() - start
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {seconds} s", time.perf_counter() - start


def synchronized(cp, fn):
    cp.cuda.Device().synchronize()
    start = time.perf_counter()
    result = fn()
    cp.cuda.Device().synchronize()
    return result, time.perf_counter() - start


def w1_rate(cp, n=2000, repeat=5):
    X = cp.asarray(patches(n))
    run = lambda: ssimref.distance_matrix(X, config=W1, backend="cupy")  # noqa: E731
    synchronized(cp, run)  # compile and warm up
    times = [synchronized(cp, run)[1] for _ in range(repeat)]
    return n * (n - 1) / 2 / statistics.median(times), times


def deviation(cp, n=300):
    """Largest relative deviation of the GPU D^2 from the reference backend on the CPU,
    and the contract check of tests/test_engines.py (rtol 1e-12 plus the floor)."""
    X = patches(n, seed=7)
    report = {}
    h, w = X.shape[1:]
    ho, wo = W1.positions(h, w)
    floor = 8 * ho * wo * U * (W1.covariance_factor() / W1.k2**2 + 1.0 / W1.k1)
    for kind in ("eq1", "eq2", "eq1-uncentered"):
        gpu = cp.asnumpy(ssimref.distance_matrix(cp.asarray(X), kind=kind, config=W1,
                                                 squared=True, backend="cupy"))
        cpu = ssimref.distance_matrix(X, kind=kind, config=W1, squared=True,
                                      backend="reference")
        off = ~np.eye(n, dtype=bool)
        rel = np.abs(gpu - cpu)[off] / cpu[off]
        ok = bool(np.all(np.abs(gpu - cpu) <= 1e-12 * cpu + floor))
        report[kind] = dict(max_relative=float(rel.max()), contract=ok,
                            exact_zero_diagonal=bool((np.diag(gpu) == 0).all()),
                            exactly_symmetric=bool((gpu == gpu.T).all()))
    return report


def streamed(cp, n, folder):
    """n x n float32 distances to a host memmap, end to end (transfer of the images,
    per-image terms, kernels, copies of every tile to the host, flush)."""
    X = patches(n, seed=3)
    path = Path(folder) / f"D{n}.npy"
    start = time.perf_counter()
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, n))
    ssimref.distance_matrix(cp.asarray(X), config=W1, backend="cupy", out=out,
                            working_memory=8192)
    out.flush()
    seconds = time.perf_counter() - start
    # spot check: 200 random entries against the CPU reference
    rng = np.random.default_rng(0)
    pick = rng.integers(0, n, size=(200, 2))
    want = np.array([ssimref.distance(X[a], X[b], config=W1) for a, b in pick])
    got = out[pick[:, 0], pick[:, 1]].astype(np.float64)
    spot = float(np.max(np.abs(got - want) / np.maximum(want, 1e-300)))
    del out
    path.unlink()
    return dict(n=n, seconds=seconds, pairs_per_s=n * (n - 1) / 2 / seconds,
                spot_max_relative=spot)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=70_000)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    import cupy as cp

    results = {"device": device_info(cp)}
    print("device:", results["device"], flush=True)
    if not args.skip_tests:
        code, line, secs = run_tests(120)
        results["tests"] = dict(returncode=code, summary=line, seconds=round(secs, 1))
        print(f"pytest -m gpu: {line} ({secs:.0f} s)", flush=True)
    rate, times = w1_rate(cp)
    results["w1_pairs_per_s"] = rate
    print(f"W1 n=2000 on the GPU: {rate:,.0f} pairs/s (runs {', '.join(f'{t:.3f}' for t in times)} s)",
          flush=True)
    results["deviation"] = deviation(cp)
    for kind, r in results["deviation"].items():
        print(f"deviation from the CPU reference ({kind}, 300 images): max relative "
              f"{r['max_relative']:.2e}, contract {'met' if r['contract'] else 'NOT met'}, "
              f"zero diagonal {r['exact_zero_diagonal']}, symmetric {r['exactly_symmetric']}",
              flush=True)
    folder = os.environ.get("TMPDIR", tempfile.gettempdir())
    small = streamed(cp, 20_000, folder)
    results["n20000"] = small
    print(f"n=20000, float32 to a host memmap: {small['seconds']:.1f} s, "
          f"{small['pairs_per_s']:,.0f} pairs/s, spot check max relative "
          f"{small['spot_max_relative']:.1e}", flush=True)
    predicted = small["seconds"] * (args.n / 20_000) ** 2
    left = BUDGET_S - (time.perf_counter() - start)
    if args.n > 20_000 and predicted < 0.8 * left:
        big = streamed(cp, args.n, folder)
        results[f"n{args.n}"] = big
        print(f"n={args.n}, float32 to a host memmap: {big['seconds']:.1f} s end to end, "
              f"{big['pairs_per_s']:,.0f} pairs/s (target <= 60 s for 70,000), spot check "
              f"max relative {big['spot_max_relative']:.1e}", flush=True)
    elif args.n > 20_000:
        results["extrapolated_seconds"] = predicted
        print(f"n={args.n} not run: {left:.0f} s left; extrapolated from n=20000 "
              f"(pairs scale as n^2): {predicted:.0f} s", flush=True)
    results["total_seconds"] = time.perf_counter() - start
    print(f"total {results['total_seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
