"""mmd2_and_grad (hand-derived gradients, tiled) against the same loss differentiated by
PyTorch autograd on the CPU: time and peak memory.

Run:  python benchmarks/mmd.py [--rbf-n 1000 4000] [--ssim-n 500] [--repeat 3]
                               [--ssim-repeat 2] [--threads 1]
Writes the "mmd" section of BENCHMARKS.md.

Threads: both libraries get the same number (NumPy's BLAS through threadpoolctl, torch
through set_num_threads); 1 by default, because on a shared 2-core machine two spinning
OpenMP threads made torch 2-3x slower than one.

Loss: the biased MMD^2 (V-statistic) between a "generated" sample X and a data sample Y,
differentiated with respect to X (value and gradient), float64 throughout.

- RBF: Li et al.'s mixture, variances (2, 5, 10, 20, 40, 80), on n = m points of
  dimension 784 in [0, 1]. PyTorch: the blocks K_XX, K_XY, K_YY through the Gram identity
  (as GMMN code writes it), then loss.backward().
- SSIM: the SSIM distance kernel -1/2 D (kind eq2, Gaussian 7x7 sigma 1.5, sample
  covariance, data range 1) on 28x28 patches. PyTorch: the same formula in torch ops
  (conv2d local moments on mean-shifted images), checked against ssimref to 1e-10 first,
  evaluated in chunks of rows with a backward pass per chunk (gradient accumulation) so that
  the autograd graph fits in memory, and a safe square root (0 gradient at D = 0).

Memory: peak resident set size above the process's size before the call (Linux VmHWM after
resetting it through /proc/self/clear_refs), in a fresh subprocess per measurement, for
both; for ssimref also tracemalloc's peak (NumPy's allocations).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, patches, summary, versions, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ssimref  # noqa: E402
from ssimref import SSIMConfig  # noqa: E402
from ssimref.gmmn import mmd2_and_grad  # noqa: E402
from ssimref.kernels import RBFMixture, SSIMDistanceKernel  # noqa: E402

VARIANCES = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
SSIM_CONFIG = SSIMConfig(window="gaussian", size=7, sigma=1.5, covariance="sample",
                         data_range=1.0)
TORCH_ROWS = 4  # rows of X (or Y) per autograd chunk in the SSIM loss
NOTES = (
    "Notes: one thread each because on this shared 2-core machine two spinning OpenMP "
    "threads made torch 2-3x slower than one. For the SSIM loss torch evaluates about 1.5x "
    "as many pairs as ssimref (it does not use the symmetry of K_XX and K_YY), so per pair "
    "the time ratio is about the table's divided by 1.5; for RBF at n = 1,000 both "
    "evaluate every pair (ssimref's tiles are 1,024 wide), at n = 4,000 ssimref skips the "
    "lower-triangle tiles of K_XX and K_YY. Memory depends on the tiling of both: ssimref "
    "at its default working_memory (1,024 MiB for the SSIM tiles), torch with chunks of "
    f"{TORCH_ROWS} rows.")


# ----------------------------------------------------------------------------- workloads
def rbf_data(n):
    """X uniform in [0, 1]^784 (an untrained generator); Y sklearn digits upsampled 8x8 ->
    28x28 (nearest, padded), scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    rng = np.random.default_rng(0)
    X = rng.random((n, 784))
    digits = load_digits().images / 16.0
    up = np.kron(digits, np.ones((3, 3)))  # 24 x 24
    up = np.pad(up, ((0, 0), (2, 2), (2, 2))).reshape(len(digits), 784)
    Y = up[rng.integers(0, len(up), n)]
    return X, Y


def ssim_data(n):
    """X: n patches 28x28 of camera()/astronaut() in [0, 1]; Y: n others."""
    P = patches(2 * n, seed=1).astype(np.float64) / 255.0
    return P[:n], P[n:]


# ----------------------------------------------------------------------------- ours
def ours(case, X, Y):
    if case == "rbf":
        return mmd2_and_grad(X, Y, RBFMixture(VARIANCES), "biased")
    return mmd2_and_grad(X, Y, SSIMDistanceKernel("eq2", 1, SSIM_CONFIG), "biased")


# ----------------------------------------------------------------------------- torch
def torch_rbf(X, Y):
    import torch
    Xt = torch.tensor(X, requires_grad=True)
    Yt = torch.from_numpy(Y)
    n, m = len(X), len(Y)

    def gram(A, B):
        sq = ((A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T).clamp_min(0)
        return sum(torch.exp(sq * (-0.5 / s)) for s in VARIANCES)

    loss = gram(Xt, Xt).sum() / n**2 + gram(Yt, Yt).sum() / m**2 \
        - 2.0 * gram(Xt, Yt).sum() / (n * m)
    loss.backward()
    return float(loss.detach()), Xt.grad.numpy()


def torch_ssim_parts(config):
    import torch
    taps = torch.tensor(config.taps(), dtype=torch.float64)
    window = (taps[:, None] * taps[None, :])[None, None]
    c1, c2 = config.constants()
    return window, config.stride, config.covariance_factor(), c1, c2


def torch_moments(a, parts):
    """Local mean and variance of images a (P, 1, H, W), mean-shifted like ssimref."""
    import torch.nn.functional as F
    window, stride, f, _, _ = parts
    shift = a.mean(dim=(-2, -1), keepdim=True)
    a0 = a - shift
    m0 = F.conv2d(a0, window, stride=stride)
    var = (F.conv2d(a0 * a0, window, stride=stride) - m0 * m0).clamp_min(0.0) * f
    return m0 + shift, var


def torch_distances(A, B, parts, moments_a=None, moments_b=None):
    """SSIM distances (kind eq2) of all pairs of A (r, H, W) and B (c, H, W): (r, c)."""
    import torch
    _, _, _, c1, c2 = parts
    r, c = A.shape[0], B.shape[0]
    mu_a, var_a = moments_a if moments_a is not None else torch_moments(A[:, None], parts)
    mu_b, var_b = moments_b if moments_b is not None else torch_moments(B[:, None], parts)
    d = (A[:, None] - B[None, :]).reshape(r * c, 1, *A.shape[1:])
    mu_d, var_d = torch_moments(d, parts)
    shape = (r, c) + tuple(mu_d.shape[1:])
    mu_d, var_d = mu_d.reshape(shape), var_d.reshape(shape)
    t1 = mu_d * mu_d / (mu_a[:, None] ** 2 + mu_b[None, :] ** 2 + c1)
    t2 = var_d / (var_a[:, None] + var_b[None, :] + c2)
    S = (t1 + t2).sum(dim=(-3, -2, -1))
    positive = S > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, S, torch.ones_like(S))),
                       torch.zeros_like(S))


def torch_ssim(X, Y):
    import torch
    parts = torch_ssim_parts(SSIM_CONFIG)
    Xt = torch.tensor(X, requires_grad=True)
    Yt = torch.from_numpy(Y)
    n, m = len(X), len(Y)
    total = 0.0
    with torch.no_grad():
        mom_y = torch_moments(Yt[:, None], parts)
        for i in range(0, m, TORCH_ROWS):  # K_YY: no gradient
            total += float(-0.5 * torch_distances(Yt[i:i + TORCH_ROWS], Yt, parts,
                                                  moments_b=mom_y).sum()) / m**2
    for i in range(0, n, TORCH_ROWS):
        rows = Xt[i:i + TORCH_ROWS]
        part = -0.5 * (torch_distances(rows, Xt, parts).sum() / n**2
                       - 2.0 * torch_distances(rows, Yt, parts, moments_b=mom_y).sum()
                       / (n * m))
        part.backward()
        total += float(part.detach())
    return total, Xt.grad.numpy()


def torch_run(case, X, Y):
    return torch_rbf(X, Y) if case == "rbf" else torch_ssim(X, Y)


def check_torch_ssim():
    """The torch SSIM distance matrix equals ssimref's (max relative difference)."""
    import torch
    X = patches(12, seed=5).astype(np.float64) / 255.0
    D = torch_distances(torch.from_numpy(X), torch.from_numpy(X),
                        torch_ssim_parts(SSIM_CONFIG)).numpy()
    ref = ssimref.distance_matrix(X, kind="eq2", config=SSIM_CONFIG)
    return float(np.max(np.abs(D - ref)) / np.max(np.abs(ref)))


# ----------------------------------------------------------------------------- memory
def _reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def set_threads(threads):
    import torch
    from threadpoolctl import threadpool_limits
    torch.set_num_threads(threads)
    return threadpool_limits(threads)


def measure_memory(impl, case, n, threads):
    """Run in a subprocess: one call, peak RSS above the starting RSS (MiB)."""
    import tracemalloc
    limits = set_threads(threads)  # noqa: F841  (kept alive for the measurement)
    X, Y = rbf_data(n) if case == "rbf" else ssim_data(n)
    if impl == "torch":
        import torch  # noqa: F401  (imported before the baseline)
        torch_run(case, X[:8], Y[:8])  # initialise torch's kernels outside the measurement
    else:
        ours(case, X[:8], Y[:8])
    base = _status_kib("VmRSS")
    _reset_peak()
    traced = None
    if impl == "torch":
        torch_run(case, X, Y)
    else:
        tracemalloc.start()
        ours(case, X, Y)
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    peak = _status_kib("VmHWM")
    return {"rss_mib": (peak - base) / 1024, "traced_mib": traced}


def memory_in_subprocess(impl, case, n, threads):
    out = subprocess.run([sys.executable, __file__, "--measure", impl, case, str(n),
                          str(threads)],
                         capture_output=True, text=True, check=True, env=os.environ.copy())
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- main
def timed_runs(fn, repeat):
    """Seconds of each of ``repeat`` runs, and the first run's result."""
    times, first = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        first = out if first is None else first
    return times, first


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rbf-n", type=int, nargs="*", default=[1000, 4000])
    parser.add_argument("--ssim-n", type=int, nargs="*", default=[500])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per RBF entry")
    parser.add_argument("--ssim-repeat", type=int, default=2, help="timed runs per SSIM entry")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--measure", nargs=4, metavar=("IMPL", "CASE", "N", "THREADS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        impl, case, n, threads = args.measure
        print(json.dumps(measure_memory(impl, case, int(n), int(threads))))
        return

    limits = set_threads(args.threads)  # noqa: F841
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine_at_start = machine()
    ssim_check = check_torch_ssim()
    print(f"torch SSIM distances vs ssimref: max relative difference {ssim_check:.2e}")
    if not ssim_check < 1e-10:
        raise SystemExit("the torch SSIM distance does not match ssimref; not timing it")
    rows = []
    cases = [("rbf", n) for n in args.rbf_n] + [("ssim", n) for n in args.ssim_n]
    for case, n in cases:
        X, Y = rbf_data(n) if case == "rbf" else ssim_data(n)
        repeat = args.repeat if case == "rbf" else args.ssim_repeat
        ours(case, X[:8], Y[:8]), torch_run(case, X[:8], Y[:8])  # warm up both
        t_ours, (v_ours, g_ours) = timed_runs(lambda: ours(case, X, Y), repeat)
        t_torch, (v_torch, g_torch) = timed_runs(lambda: torch_run(case, X, Y), repeat)
        agree_v = abs(v_ours - v_torch) / abs(v_torch)
        agree_g = float(np.max(np.abs(g_ours - g_torch)) / np.max(np.abs(g_torch)))
        m_ours = memory_in_subprocess("ours", case, n, args.threads)
        m_torch = memory_in_subprocess("torch", case, n, args.threads)
        lo, med, hi = summary(t_ours)
        tlo, tmed, thi = summary(t_torch)
        label = ("RBF mixture, d = 784" if case == "rbf" else
                 "SSIM distance kernel, 28x28")
        rows.append(
            f"| {label} | {n} | {lo:.2f} / {med:.2f} / {hi:.2f} | "
            f"{tlo:.2f} / {tmed:.2f} / {thi:.2f} | {tmed / med:.2f}x | "
            f"{m_ours['rss_mib']:.0f} ({m_ours['traced_mib']:.0f}) | "
            f"{m_torch['rss_mib']:.0f} | {m_torch['rss_mib'] / max(m_ours['rss_mib'], 1):.1f}x "
            f"| {agree_v:.1e} / {agree_g:.1e} |")
        print(rows[-1], flush=True)

    v = versions("numpy", "torch", "ssimref")
    body = "\n".join([
        "## MMD: hand-derived gradients vs PyTorch autograd (CPU)",
        "",
        f"`python benchmarks/mmd.py --rbf-n {' '.join(map(str, args.rbf_n))} --ssim-n "
        f"{' '.join(map(str, args.ssim_n))} --repeat {args.repeat} --ssim-repeat "
        f"{args.ssim_repeat} --threads {args.threads}`, run {started}.",
        f"Machine: {machine_at_start}. Versions: "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + f". Threads: {args.threads} for both (NumPy's BLAS via threadpoolctl, "
        "torch.set_num_threads).",
        "",
        "Loss: biased MMD^2 between X (n points, differentiated) and Y (m = n points), "
        "value and gradient with respect to X, float64. ssimref: "
        "`mmd2_and_grad(X, Y, kernel, \"biased\")` (default working_memory). PyTorch: the "
        "same loss in torch ops, `loss.backward()`.",
        "- RBF: `RBFMixture((2, 5, 10, 20, 40, 80))`, X uniform in [0, 1]^784, Y sklearn "
        "digits upsampled to 28x28 in [0, 1]. PyTorch computes the full K_XX, K_XY, K_YY "
        "(Gram identity, one exp per variance) in one graph.",
        "- SSIM: `SSIMDistanceKernel(\"eq2\")`, Gaussian 7x7 window, sigma 1.5, sample "
        "covariance, data range 1, patches of skimage's camera()/astronaut() in [0, 1]. "
        f"The torch SSIM distance matches ssimref to {ssim_check:.1e} (max relative "
        f"difference on 12 patches). PyTorch evaluates chunks of {TORCH_ROWS} rows against "
        "all columns with a backward pass per chunk (so its graph fits in memory) and all "
        "n^2 pairs of K_XX and m^2 of K_YY; ssimref evaluates each unordered pair of K_XX "
        "and K_YY once (symmetry), i.e. about 2/3 of the pairs.",
        "",
        "Time in seconds, min / median / max over the runs; ratio = torch median / ssimref "
        "median (> 1: ssimref faster). Memory: peak RSS above the process's RSS before the "
        "call (Linux VmHWM reset through /proc/self/clear_refs), one call in a fresh "
        "subprocess per entry, MiB; in parentheses tracemalloc's peak for ssimref (its "
        "NumPy arrays). Agreement: relative difference of the values / max relative "
        "difference of the gradients between the two.",
        "",
        "| loss | n = m | ssimref time (s) | torch time (s) | time ratio | ssimref memory "
        "(MiB) | torch memory (MiB) | memory ratio | agreement |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        NOTES,
    ])
    if not args.no_write:
        write_section("mmd", body)
    print(body)


if __name__ == "__main__":
    main()
