"""``ssimref mmd``: MMD^2 between two image sets and its p-value (a permutation test for
the unbiased and biased estimators, the asymptotic normal test for the linear one)."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

from .. import __version__
from ..io import check_writable, load_images, save_json
from ..kernels.factory import KERNEL_NAMES, check_kernel_options, make_kernel
from ..mmd.two_sample import DEFAULT_SEED
from ..validation import KINDS, check_kind, check_stacks
from .common import (add_compute_arguments, add_config_arguments, add_image_arguments,
                     config_from_args)

NAME = "mmd"
HELP = "MMD^2 between two image sets, with a p-value"
#: Relabellings of the permutation test when --permutations is not given.
DEFAULT_PERMUTATIONS = 1000
#: The flags of the SSIM conventions (:func:`ssimref.cli.common.add_config_arguments`).
CONFIG_FLAGS = ("--preset", "--window", "--size", "--sigma", "--stride", "--data-range",
                "--k1", "--k2", "--covariance")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``mmd`` command to the subcommands ``sub`` of ``ssimref``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        From :meth:`argparse.ArgumentParser.add_subparsers`.
    """
    p = sub.add_parser(NAME, help=HELP)
    add_image_arguments(p, "a", "first image set (as for 'distance': .npy/.npz, a folder, "
                        "or a data set such as 'digits' or 'mnist5k:test')")
    p.add_argument("b", help="second image set, same image shape")
    p.add_argument("--kernel", default="ssim", choices=KERNEL_NAMES,
                   help="ssim: -1/2 D^power (the paper's kernel; MMD = half the energy "
                   "distance); ssim-rbf: exp(-gamma D^2), gamma = 1/(2 scale med^2); "
                   "mean-ssim: mean SSIM over windows; rbf: Gaussian mixture on the "
                   "flattened pixels, variances scale * med^2 (default ssim). Options a "
                   "kernel does not use are refused")
    p.add_argument("--kind", choices=KINDS,
                   help="SSIM distance (default eq2; kernels ssim and ssim-rbf)")
    p.add_argument("--power", type=int, choices=(1, 2),
                   help="power of D (default 1; kernel ssim only)")
    p.add_argument("--scales", type=float, nargs="+",
                   help="median-heuristic scales (default 1): rbf variances scale * med^2, "
                   "one per component; ssim-rbf takes exactly one")
    p.add_argument("--estimator", default="unbiased", choices=("unbiased", "biased", "linear"),
                   help="MMD^2 estimator (default unbiased; Python's mmd_test defaults to "
                   "it too, mmd2 to biased); unbiased and biased are tested by permutations, "
                   "linear (n = m) by its asymptotic normal test (Gretton et al. 2012, "
                   "Corollary 16), with no permutations")
    p.add_argument("--permutations", type=int,
                   help="random relabellings for the p-value of the unbiased and biased "
                   f"estimators (default {DEFAULT_PERMUTATIONS}; every relabelling, exact, "
                   "when there are no more); 0 skips the test (also for linear)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"seed of the relabellings (default {DEFAULT_SEED}, recorded in the "
                   "output)")
    add_config_arguments(p)
    add_compute_arguments(p, backend=False, progress=False)
    p.add_argument("--json", help="also write the result and its conventions to this .json "
                   "(default: none)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ssimref mmd`` with the parsed ``args``.

    Parameters
    ----------
    args : argparse.Namespace
        From the parser of :func:`add_parser`.

    Returns
    -------
    int
        The exit status: 0.

    Raises
    ------
    ValueError, TypeError, OSError, ImportError
        For bad images, kernels, estimators or outputs (the command line prints them and
        exits with 2).
    """
    from ..mmd import mmd2, mmd_test
    check_kind(args.kind or "eq2")
    if args.json:
        if Path(args.json).suffix != ".json":
            raise ValueError(f"--json {args.json} must end in .json")
        check_writable(args.json, force=args.force, name="--json")
    permutations = DEFAULT_PERMUTATIONS if args.permutations is None else args.permutations
    if permutations < 0:
        raise ValueError(f"--permutations must be >= 0, got {permutations}")
    if args.estimator == "linear" and permutations > 0 and args.permutations is not None:
        raise ValueError(f"--permutations {args.permutations} does nothing with --estimator "
                         "linear, whose test is asymptotic normal (no permutations); leave "
                         "it out, pass --permutations 0 for no test, or use --estimator "
                         "unbiased for a permutation test")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    flags = {"config": [f for f in CONFIG_FLAGS if getattr(args, f[2:].replace("-", "_"))
                        is not None],
             "kind": ["--kind"] if args.kind is not None else [],
             "power": ["--power"] if args.power is not None else [],
             "scales": ["--scales"] if args.scales is not None else [],
             "channel_axis": ["--channel-axis"] if args.channel_axis is not None else []}
    check_kernel_options(args.kernel, {k: ", ".join(v) for k, v in flags.items() if v})
    scales = [1.0] if args.scales is None else args.scales
    if any(not v > 0 for v in scales):
        raise ValueError(f"--scales must be numbers > 0, got {' '.join(map(str, scales))}")
    a = load_images(args.a, color=args.color, key=args.key, alpha=args.alpha)
    b = load_images(args.b, color=args.color, key=args.key, alpha=args.alpha)
    implied = {r for r in (a.data_range, b.data_range) if r is not None}
    config = config_from_args(args, implied.pop() if len(implied) == 1 else None)
    if args.kernel != "rbf":
        _, _, _, config = check_stacks(a.images, b.images, config, ("A", "B"),
                                       channel_axis=args.channel_axis,
                                       option="--data-range")
    kernel = make_kernel(args.kernel, a.images, b.images, kind=args.kind or "eq2",
                         power=args.power or 1, config=config, scales=scales,
                         working_memory=args.working_memory,
                         channel_axis=args.channel_axis)
    start = time.perf_counter()
    test = None
    if permutations:
        options = {} if args.estimator == "linear" else {"n_resamples": permutations,
                                                        "rng": args.seed}
        test = mmd_test(a.images, b.images, kernel, estimator=args.estimator,
                        working_memory=args.working_memory, **options)
        statistic = test.statistic
    else:
        statistic = mmd2(a.images, b.images, kernel, args.estimator,
                         working_memory=args.working_memory)
    seconds = time.perf_counter() - start
    print(f"MMD^2 ({args.estimator} estimator, Gretton et al. 2012; the square, not MMD): "
          f"{statistic:.10g}")
    if test is None:
        print("p-value: not computed (--permutations 0)")
    else:
        print(f"p-value: {test.pvalue:.6g} ({test.rule})")
    print(f"kernel: {kernel.describe() if test is None else test.kernel}")
    print(f"samples: A = {a.source} ({a.images.shape[0]} images "
          f"{'x'.join(map(str, a.images.shape[1:]))}), B = {b.source} "
          f"({b.images.shape[0]} images); {seconds:.2f} s")
    if args.json:
        save_json(args.json, {
            "what": f"MMD^2 ({args.estimator} estimator)"
                    + ("" if test is None else f" and its p-value ({test.method} test)"),
            "mmd2": statistic, "estimator": args.estimator,
            "p_value": None if test is None else test.pvalue,
            "test": None if test is None else test.method,
            "permutations": 0 if test is None else test.n_resamples,
            "seed": None if test is None else test.seed,
            "convention": None if test is None else test.convention,
            "kernel": kernel.describe() if test is None else test.kernel,
            "a": a.record(), "b": b.record(), "n": int(a.images.shape[0]),
            "m": int(b.images.shape[0]), "config": asdict(config), "ssimref": __version__,
            "seconds": round(seconds, 3)}, args.force)
    return 0

