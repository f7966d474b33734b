"""GPU check for the CuPy engine, in under 5 minutes on one H100/H200: the GPU tests, the
forward and VJP deviations from the CPU reference, the VJP timings and the streaming
breakdown of a large W1 matrix.

Run:  python benchmarks/gpu_check.py [--n 70000] [--json results.json] [--skip-tests]

Without CuPy or a CUDA device it says so and exits with status 0 (nothing to check).

Steps and what each prints (each step is skipped, and says so, when the time left would
not cover it):
1. the device, CuPy and CUDA versions;
2. ``pytest -m gpu`` (the CuPy tests of the whole suite, 120 s at most);
3. W1 (n = 2,000, symmetric, float64 result on the device): pairs/s, median of 5;
4. the largest relative deviation of the GPU D^2 from the reference backend (NumPy, CPU)
   on 300 images, for the three kinds, relative to ``max(D^2, floor)`` (the accuracy
   floor: duplicate patches give 0 on both sides), and whether the contract holds;
5. the VJP: ``distance_matrix_vjp`` on the GPU against the reference on the CPU (60
   images, every kind), under the gradients' contract (1e-10 of each image's largest
   entry plus ``vjp_accuracy_floor``); the largest deviation relative to that;
6. VJP timings: SSIM-kernel MMD^2 value and gradient (benchmarks/mmd.py's setting:
   eq2, Gaussian 7x7, sample covariance, data range 1; n = m = 500 and 2,000, median of
   3, target <= 0.15 s at 2,000) beside the forward matrix of the pooled images;
7. streaming breakdown of W1 at n = 20,000 (float64 compute, float32 result): kept on
   the device, into a host array, into a host memmap (end to end, the flush included);
   then the memmap at ``--n`` (70,000) when the 20,000 run predicts it fits the time
   left (else the extrapolation is printed; target <= 12 s).
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
from ssimref.engines import accuracy_floor, vjp_accuracy_floor  # noqa: E402

W1 = SSIMConfig.skimage(data_range=255)      # uniform 7x7, sample covariance, stride 1
MMD_CONFIG = SSIMConfig(window="gaussian", size=7, sigma=1.5, covariance="sample",
                        data_range=1.0)
BUDGET_S = 290                               # the whole check, tests included
GPU_BACKEND = "cupy"                         # the engine checked


def find_cupy():
    """CuPy when it imports and sees a CUDA device, else (None, why)."""
    try:
        import cupy as cp
    except ImportError as exc:
        return None, f"CuPy is not installed ({exc})"
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError without a driver
        return None, f"CuPy finds no CUDA driver or device ({type(exc).__name__}: {exc})"
    if count < 1:
        return None, "CuPy sees no CUDA device"
    return cp, ""


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
    run = lambda: ssimref.distance_matrix(X, config=W1, backend=GPU_BACKEND)  # noqa: E731
    synchronized(cp, run)  # compile and warm up
    times = [synchronized(cp, run)[1] for _ in range(repeat)]
    return n * (n - 1) / 2 / statistics.median(times), times


def deviation(cp, n=300):
    """Largest relative deviation of the GPU D^2 from the reference backend on the CPU
    (relative to ``max(D^2, floor)``: duplicate patches are at 0 on both sides), and the
    contract check of tests/test_engines.py (rtol 1e-12 plus the floor)."""
    X = patches(n, seed=7)
    report = {}
    h, w = X.shape[1:]
    floor = accuracy_floor(W1, (h, w, 1))
    for kind in ("eq1", "eq2", "eq1-uncentered"):
        gpu = cp.asnumpy(ssimref.distance_matrix(cp.asarray(X), kind=kind, config=W1,
                                                 squared=True, backend=GPU_BACKEND))
        cpu = ssimref.distance_matrix(X, kind=kind, config=W1, squared=True,
                                      backend="reference")
        off = ~np.eye(n, dtype=bool)
        rel = np.abs(gpu - cpu)[off] / np.maximum(cpu[off], floor)
        ok = bool(np.all(np.abs(gpu - cpu) <= 1e-12 * cpu + floor))
        report[kind] = dict(max_relative=float(rel.max()), contract=ok,
                            exact_zero_diagonal=bool((np.diag(gpu) == 0).all()),
                            exactly_symmetric=bool((gpu == gpu.T).all()))
    return report


def vjp_deviation(cp, n=60):
    """``distance_matrix_vjp`` (of ``sum G_ij D_ij^2``, so that ``G`` is the cotangent of
    ``S``) on the GPU against the reference on the CPU (every kind, X against Y with dY,
    and symmetric): the largest deviation as a fraction of the gradients' tolerance
    (<= 1 meets the contract)."""
    P = patches(2 * n, seed=9).astype(np.float64)
    X, Y = P[:n], P[n:]
    Y[:3] = X[:3]  # pairs at distance 0
    G = np.random.default_rng(1).normal(size=(n, n))
    report = {}
    for kind in ("eq1", "eq2", "eq1-uncentered"):
        worst = 0.0
        for other in (Y, None):
            got = ssimref.distance_matrix_vjp(cp.asarray(X), None if other is None
                                              else cp.asarray(other), cp.asarray(G),
                                              kind, W1, squared=True, backend=GPU_BACKEND)
            want = ssimref.distance_matrix_vjp(X, other, G, kind, W1, squared=True,
                                               backend="reference")
            for g, r, sums in ((got[0], want[0], np.abs(G).sum(axis=1)),
                               (got[1], want[1], np.abs(G).sum(axis=0))):
                if r is None:
                    continue
                g = cp.asnumpy(g).reshape(n, -1)
                r = np.asarray(r).reshape(n, -1)
                if other is None:  # both roles of each image
                    sums = np.abs(G).sum(axis=0) + np.abs(G).sum(axis=1)
                tol = 1e-10 * np.abs(r).max(axis=1) + vjp_accuracy_floor(
                    W1, (28, 28, 1), sums)
                worst = max(worst, float((np.abs(g - r).max(axis=1) / tol).max()))
        report[kind] = worst
    return report


def vjp_times(cp, n, repeat=3):
    """MMD^2 value and gradient on the GPU (fresh X, Y per call) beside the forward
    matrix of the pooled images: medians in seconds."""
    from ssimref.gmmn import mmd2_and_grad
    from ssimref.kernels import SSIMDistanceKernel

    kernel = SSIMDistanceKernel("eq2", 1, MMD_CONFIG)
    P = cp.asarray(patches(2 * n * (repeat + 1), seed=13).astype(np.float64) / 255.0)
    mmd2_and_grad(P[:8], P[8:16], kernel)  # compile
    ssimref.distance_matrix(P[:16], config=MMD_CONFIG)
    ours, forward = [], []
    for r in range(repeat):
        Z = P[2 * n * (r + 1):2 * n * (r + 2)]
        ours.append(synchronized(cp, lambda: mmd2_and_grad(Z[:n], Z[n:], kernel))[1])
        forward.append(synchronized(cp, lambda: ssimref.distance_matrix(
            Z, config=MMD_CONFIG))[1])
    return statistics.median(ours), statistics.median(forward)


def streamed(cp, n, folder, where="memmap"):
    """n x n float32 distances, end to end (transfer of the images, per-image terms,
    kernels, and for the host the copies of every tile and the flush): ``where`` is
    "device" (the result kept on the GPU), "host" (a NumPy array) or "memmap"."""
    X = patches(n, seed=3)
    path = Path(folder) / f"D{n}.npy"
    start = time.perf_counter()
    if where == "device":
        out = ssimref.distance_matrix(cp.asarray(X), config=W1, backend=GPU_BACKEND,
                                      dtype="float32", working_memory=8192)
        cp.cuda.Device().synchronize()
        seconds = time.perf_counter() - start
        del out
        return dict(n=n, where=where, seconds=seconds,
                    pairs_per_s=n * (n - 1) / 2 / seconds)
    if where == "host":
        out = np.empty((n, n), dtype=np.float32)
    else:
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, n))
    ssimref.distance_matrix(cp.asarray(X), config=W1, backend=GPU_BACKEND, out=out,
                            working_memory=8192)
    if where == "memmap":
        out.flush()
    seconds = time.perf_counter() - start
    # spot check: 200 random entries against the CPU reference
    rng = np.random.default_rng(0)
    pick = rng.integers(0, n, size=(200, 2))
    want = np.array([ssimref.distance(X[a], X[b], config=W1) for a, b in pick])
    got = out[pick[:, 0], pick[:, 1]].astype(np.float64)
    spot = float(np.max(np.abs(got - want) / np.maximum(want, 1e-300)))
    del out
    if where == "memmap":
        path.unlink()
    return dict(n=n, where=where, seconds=seconds, pairs_per_s=n * (n - 1) / 2 / seconds,
                spot_max_relative=spot)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=70_000)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    cp, why = find_cupy()
    if cp is None:
        print(f"no GPU to check: {why}. Nothing was run (the CPU suite and benchmarks "
              "cover the rest).")
        return 0
    left = lambda: BUDGET_S - (time.perf_counter() - start)  # noqa: E731

    results = {"device": device_info(cp)}
    print("device:", results["device"], flush=True)
    if not args.skip_tests:
        code, line, secs = run_tests(120)
        results["tests"] = dict(returncode=code, summary=line, seconds=round(secs, 1))
        print(f"pytest -m gpu: {line} ({secs:.0f} s)", flush=True)
    rate, times = w1_rate(cp)
    results["w1_pairs_per_s"] = rate
    print(f"W1 n=2000 on the GPU: {rate:,.0f} pairs/s (runs "
          f"{', '.join(f'{t:.3f}' for t in times)} s)", flush=True)
    results["deviation"] = deviation(cp)
    for kind, r in results["deviation"].items():
        print(f"deviation from the CPU reference ({kind}, 300 images): max relative "
              f"{r['max_relative']:.2e} (to max(D^2, floor)), contract "
              f"{'met' if r['contract'] else 'NOT met'}, zero diagonal "
              f"{r['exact_zero_diagonal']}, symmetric {r['exactly_symmetric']}", flush=True)
    results["vjp_deviation"] = vjp_deviation(cp)
    for kind, worst in results["vjp_deviation"].items():
        print(f"VJP vs the CPU reference ({kind}, 60 images): worst deviation "
              f"{worst:.2e} of the tolerance ({'met' if worst <= 1 else 'NOT met'})",
              flush=True)
    for n in (500, 2000):
        if left() < 60:
            print(f"VJP timing n={n} skipped: {left():.0f} s left", flush=True)
            continue
        ours, forward = vjp_times(cp, n)
        results[f"mmd_vjp_n{n}"] = dict(seconds=ours, forward_seconds=forward)
        print(f"MMD^2 value+grad n=m={n} on the GPU: {ours:.3f} s median of 3 (forward "
              f"matrix of the {2 * n} pooled images {forward:.3f} s, ratio "
              f"{ours / forward:.1f}x)" + ("; target <= 0.15 s" if n == 2000 else ""),
              flush=True)
    folder = os.environ.get("TMPDIR", tempfile.gettempdir())
    small = {}
    for where in ("device", "host", "memmap"):
        if left() < 40:
            print(f"n=20000 to {where} skipped: {left():.0f} s left", flush=True)
            continue
        small[where] = streamed(cp, 20_000, folder, where)
        results[f"n20000_{where}"] = small[where]
        print(f"n=20000, float32 result on the {where}: {small[where]['seconds']:.2f} s, "
              f"{small[where]['pairs_per_s']:,.0f} pairs/s"
              + (f", spot check max relative {small[where]['spot_max_relative']:.1e}"
                 if "spot_max_relative" in small[where] else ""), flush=True)
    if "memmap" in small and args.n > 20_000:
        predicted = small["memmap"]["seconds"] * (args.n / 20_000) ** 2
        if predicted < 0.8 * left():
            big = streamed(cp, args.n, folder)
            results[f"n{args.n}"] = big
            print(f"n={args.n}, float32 to a host memmap: {big['seconds']:.1f} s end to "
                  f"end, {big['pairs_per_s']:,.0f} pairs/s (target <= 12 s for 70,000), "
                  f"spot check max relative {big['spot_max_relative']:.1e}", flush=True)
        else:
            results["extrapolated_seconds"] = predicted
            print(f"n={args.n} not run: {left():.0f} s left; extrapolated from n=20000 "
                  f"(pairs scale as n^2): {predicted:.0f} s", flush=True)
    results["total_seconds"] = time.perf_counter() - start
    print(f"total {results['total_seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
