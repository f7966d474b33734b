"""Time two git revisions of ssimref on the same workloads, in interleaved rounds, in one run.

Judges whether a change made ssimref slower: both revisions are timed on the same
machine at the same time, so that other jobs' load falls on both alike.

    python benchmarks/compare_commits.py REV_A REV_B [--rounds 5] [--repeat 1]
                        [--w1-n 2000] [--rbf-n 1000 4000] [--threads 1] [--markdown]

Each revision is checked out as a detached git worktree in a temporary folder (removed at
the end, also on Ctrl-C or SIGTERM). Every timing runs in a fresh Python subprocess whose
``PYTHONPATH`` is that worktree (it refuses to time an ssimref imported from anywhere
else): it builds the workload's data, makes one warm-up call on a subset (Numba
compilation, first-touch allocations), then times one call on the full workload (the
fastest of ``--repeat`` calls). A round times every workload once per revision, A then B,
and the next round B then A.

Workloads (only public names that exist at both revisions are called):

- ``w1``: W1 of ``benchmarks/distance_matrix_engines.py``: ``n`` (2,000) uint8 patches
  28x28 of scikit-image's camera() and astronaut() (``common.patches(n)``), data range
  255, uniform 7x7 window, stride 1, sample covariance (``SSIMConfig.skimage``), kind
  eq2, symmetric, ``ssimref.distance_matrix(X, kind="eq2", config=..., backend="numba")``
  with Numba's default threads. Reported also as pairs per second, ``n (n - 1) / 2``.
- ``rbf-N``: the RBF case of ``benchmarks/mmd.py``: biased MMD^2 value and gradient,
  ``ssimref.gmmn.mmd2_and_grad(X, Y, ssimref.kernels.RBFMixture((2, 5, 10, 20, 40, 80)),
  "biased")``, ``X`` uniform in [0, 1]^784 (``default_rng(0)``), ``Y`` N of scikit-learn's
  digits upsampled to 28x28 in [0, 1]; BLAS on ``--threads`` threads (1, as mmd.py), at
  each ``N`` of ``--rbf-n`` (1,000 and 4,000, as mmd.py).

Printed: min / median / max seconds per revision and workload, the ratio of medians
B / A (> 1: B slower) and the median of the per-round ratios (A and B of one round ran
next to each other, so this one is less sensitive to load that drifts between rounds). ``--markdown`` prints a table for BENCHMARKS.md with the machine,
versions and command. Each worker also returns a check value (sum of the matrix; MMD^2 and
the gradient's norm) so that a difference in what the revisions compute shows up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine, patches, versions  # noqa: E402  (imports no ssimref)

ROOT = HERE.parent
VARIANCES = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
WARM_UP_POINTS = 200


# ============================================================================ workloads
def rbf_data(n):
    """The data of benchmarks/mmd.py's RBF case: X uniform in [0, 1]^784; Y sklearn digits
    upsampled 8x8 -> 28x28 (nearest, padded), scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    rng = np.random.default_rng(0)
    X = rng.random((n, 784))
    digits = load_digits().images / 16.0
    up = np.kron(digits, np.ones((3, 3)))  # 24 x 24
    up = np.pad(up, ((0, 0), (2, 2), (2, 2))).reshape(len(digits), 784)
    Y = up[rng.integers(0, len(up), n)]
    return X, Y


def make_workload(name, w1_n):
    """``(run(subset) -> check value, description)`` with the data built once."""
    import ssimref
    if name == "w1":
        from ssimref import SSIMConfig
        X = patches(w1_n)
        config = SSIMConfig.skimage(data_range=255)

        def run_w1(subset=False):
            D = ssimref.distance_matrix(X[:WARM_UP_POINTS] if subset else X, kind="eq2",
                                        config=config, backend="numba")
            return float(np.sum(D))
        return run_w1
    n = int(name.split("-")[1])
    from ssimref.gmmn import mmd2_and_grad
    from ssimref.kernels import RBFMixture
    X, Y = rbf_data(n)

    def run_rbf(subset=False):
        a, b = (X[:WARM_UP_POINTS], Y[:WARM_UP_POINTS]) if subset else (X, Y)
        value, grad = mmd2_and_grad(a, b, RBFMixture(VARIANCES), "biased")
        return [float(value), float(np.linalg.norm(grad))]
    return run_rbf


def worker(name, w1_n, threads, expect, repeat):
    """Runs in the subprocess: warm up, time ``repeat`` calls (keeping the fastest), print
    one JSON line."""
    import ssimref
    where = Path(ssimref.__file__).resolve().parents[1]
    if where != Path(expect).resolve():
        raise SystemExit(f"ssimref was imported from {where}, not from {expect}")
    from threadpoolctl import threadpool_limits
    limits = threadpool_limits(threads, user_api="blas") if name != "w1" else None
    run = make_workload(name, w1_n)
    start = time.perf_counter()
    run(subset=True)
    warm_up = time.perf_counter() - start
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        check = run()
        times.append(time.perf_counter() - start)
    seconds = min(times)
    del limits
    print(json.dumps({"workload": name, "seconds": seconds, "warm_up": warm_up,
                      "check": check, "ssimref": str(where)}))


# ============================================================================ driver
def git(*args):
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


class Worktrees:
    """Detached worktrees of the revisions in a temporary folder, removed on exit."""

    def __init__(self, revisions):
        self.revisions = revisions
        self.tmp = Path(tempfile.mkdtemp(prefix="ssimref-compare-"))
        self.paths = []

    def __enter__(self):
        for label, rev in self.revisions:
            path = self.tmp / label
            git("worktree", "add", "--detach", str(path), rev)
            self.paths.append(path)
        return self.paths

    def __exit__(self, *exc):
        for path in self.paths:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(path)], capture_output=True, check=False)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True,
                       check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


def time_once(worktree, workload, args, cwd):
    env = dict(os.environ, PYTHONPATH=str(worktree))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", workload,
           "--w1-n", str(args.w1_n), "--threads", str(args.threads), "--expect", str(worktree),
           "--repeat", str(args.repeat)]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"timing {workload} at {worktree} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(values):
    return min(values), statistics.median(values), max(values)


def report(args, labels, workloads, results, started, machine_at_start):
    print(f"\n{args.rounds} rounds, order alternating; seconds min / median / max; "
          "ratio = median B / median A (> 1: B slower)")
    rows = []
    for workload in workloads:
        meds = []
        for label in labels:
            times = [r["seconds"] for r in results[workload][label]]
            lo, med, hi = summarise(times)
            meds.append(med)
            extra = ""
            if workload == "w1":
                pairs = args.w1_n * (args.w1_n - 1) / 2
                extra = f"  ({pairs / med:,.0f} pairs/s at the median)"
            print(f"  {workload:9s} {label}: {lo:.3f} / {med:.3f} / {hi:.3f} s{extra}")
        ratio = meds[1] / meds[0]
        paired = statistics.median(b["seconds"] / a["seconds"] for a, b in
                                   zip(*(results[workload][label] for label in labels)))
        checks = {label: results[workload][label][0]["check"] for label in labels}
        same = checks[labels[0]] == checks[labels[1]]
        print(f"  {workload:9s} ratio of medians B/A {ratio:.3f}, median of the per-round "
              f"ratios {paired:.3f}; check values "
              + ("identical" if same else f"differ: {checks}"))
        rows.append((workload, meds, ratio, paired, same))
    if not args.markdown:
        return
    v = versions("numpy", "numba", "scipy", "scikit-learn", "threadpoolctl")
    a, b = labels
    lines = [
        f"### Revisions {args.rev_a} (A) and {args.rev_b} (B), timed together",
        "",
        f"`python benchmarks/compare_commits.py {args.rev_a} {args.rev_b} --rounds "
        f"{args.rounds} --repeat {args.repeat} --w1-n {args.w1_n} --rbf-n "
        f"{' '.join(map(str, args.rbf_n))} --threads {args.threads}`, run {started}.",
        f"Machine: {machine_at_start}. Versions: "
        + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        f"Each timing is the fastest of {args.repeat} call(s) in a fresh subprocess on a "
        "detached worktree of its revision, after a warm-up call on 200 points; rounds "
        "alternate the order (A B, B A, ...). W1: `distance_matrix` of n uint8 patches 28x28, uniform 7x7, stride 1, "
        "eq2, symmetric, backend numba. RBF: `mmd2_and_grad` biased, "
        f"`RBFMixture({VARIANCES})`, n = m points of dimension 784, BLAS threads "
        f"{args.threads}. Seconds, min / median / max over {args.rounds} rounds; ratio of "
        "the medians B / A (> 1: B slower) and median of the per-round ratios B_r / A_r "
        "(A and B of a round ran next to each other).",
        "",
        f"| workload | {a} (s) | {b} (s) | ratio B/A | per-round ratio | same result |",
        "|---|---|---|---|---|---|",
    ]
    for workload, _, ratio, paired, same in rows:
        cells = []
        for label in labels:
            lo, med, hi = summarise([r["seconds"] for r in results[workload][label]])
            cells.append(f"{lo:.3f} / {med:.3f} / {hi:.3f}")
        name = f"W1, n = {args.w1_n}" if workload == "w1" else \
            f"RBF MMD^2 + grad, n = {workload.split('-')[1]}"
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {ratio:.3f} | {paired:.3f} | "
                     f"{'yes' if same else 'no'} |")
    print("\n" + "\n".join(lines))


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev_a", nargs="?", help="base revision (A)")
    parser.add_argument("rev_b", nargs="?", help="revision compared with it (B)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--w1-n", type=int, default=2000, dest="w1_n",
                        help="images in W1 (default 2000)")
    parser.add_argument("--rbf-n", type=int, nargs="*", default=[1000, 4000], dest="rbf_n",
                        help="points per sample in the RBF workload (default 1000 4000)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads in the RBF workload (default 1, as mmd.py)")
    parser.add_argument("--repeat", type=int, default=1, help="timed calls per subprocess, "
                        "the fastest kept (default 1)")
    parser.add_argument("--no-w1", action="store_true", help="skip W1")
    parser.add_argument("--markdown", action="store_true",
                        help="also print a table for BENCHMARKS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--expect", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.w1_n, args.threads, args.expect, args.repeat)
        return 0
    if not (args.rev_a and args.rev_b):
        parser.error("REV_A and REV_B are required")
    if args.rounds < 1 or args.repeat < 1:
        parser.error("--rounds and --repeat must be >= 1")
    revisions = [("A", git("rev-parse", "--verify", args.rev_a + "^{commit}")),
                 ("B", git("rev-parse", "--verify", args.rev_b + "^{commit}"))]
    labels = [f"A {revisions[0][1][:7]}", f"B {revisions[1][1][:7]}"]
    workloads = ([] if args.no_w1 else ["w1"]) + [f"rbf-{n}" for n in args.rbf_n]
    results = {w: {label: [] for label in labels} for w in workloads}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine_at_start = machine()
    signal.signal(signal.SIGTERM, _terminate)
    print(f"A = {args.rev_a} ({revisions[0][1][:10]}), B = {args.rev_b} "
          f"({revisions[1][1][:10]}); {machine_at_start}", flush=True)
    with Worktrees(revisions) as paths, tempfile.TemporaryDirectory() as cwd:
        for r in range(args.rounds):
            order = [0, 1] if r % 2 == 0 else [1, 0]
            for workload in workloads:
                for i in order:
                    out = time_once(paths[i], workload, args, cwd)
                    results[workload][labels[i]].append(out)
            load = os.getloadavg()[0]
            print(f"round {r + 1}/{args.rounds} ({'AB' if order == [0, 1] else 'BA'}): "
                  + ", ".join(f"{w} " + " / ".join(
                      f"{results[w][labels[i]][-1]['seconds']:.3f}" for i in (0, 1))
                      for w in workloads)
                  + f" s (A / B); load {load:.2f}", flush=True)
    report(args, labels, workloads, results, started, machine_at_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
