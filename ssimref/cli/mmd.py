"""``ssimref mmd``: MMD^2 between two image sets and a permutation p-value."""

from __future__ import annotations

import argparse

import time
from dataclasses import asdict
from pathlib import Path

from .. import __version__
from ..io import load_images, save_json
from ..kernels.factory import KERNEL_NAMES, make_kernel
from ..validation import KINDS, check_kind, infer_data_range
from .common import (add_compute_arguments, add_config_arguments, add_image_arguments,
                     config_from_args)

NAME = "mmd"
HELP = "MMD^2 between two image sets, with a permutation p-value"


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
                   "flattened pixels, variances scale * med^2 (default ssim)")
    p.add_argument("--kind", default="eq2", choices=KINDS, help="SSIM distance (default eq2)")
    p.add_argument("--power", type=int, default=1, choices=(1, 2),
                   help="power of D for --kernel ssim (default 1)")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0],
                   help="median-heuristic scales: rbf variances scale * med^2 (one per "
                   "component), ssim-rbf uses the first (default 1)")
    p.add_argument("--estimator", default="unbiased", choices=("unbiased", "biased", "linear"),
                   help="MMD^2 estimator (default unbiased)")
    p.add_argument("--permutations", type=int, default=1000,
                   help="random relabellings for the p-value; 0 skips the test (default 1000)")
    p.add_argument("--seed", type=int, default=None, help="seed of the relabellings")
    add_config_arguments(p)
    add_compute_arguments(p, backend=False, progress=False)
    p.add_argument("--json", help="also write the result and its conventions to this .json")
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
    check_kind(args.kind)
    if args.json:
        json_path = Path(args.json)
        if json_path.exists() and not args.force:
            raise FileExistsError(f"{json_path} exists; pass --force to overwrite it")
    if args.permutations < 0:
        raise ValueError(f"--permutations must be >= 0, got {args.permutations}")
    if args.permutations and args.estimator == "linear":
        raise ValueError("the permutation test uses the biased or unbiased estimator; pass "
                         "--permutations 0 with --estimator linear")
    a = load_images(args.a, color=args.color, key=args.key)
    b = load_images(args.b, color=args.color, key=args.key)
    implied = {r for r in (a.data_range, b.data_range) if r is not None}
    config = config_from_args(args, implied.pop() if len(implied) == 1 else None)
    if args.kernel != "rbf":
        config = infer_data_range(config, [a.images, b.images], names=("A", "B"),
                                  option="--data-range")
    kernel = make_kernel(args.kernel, a.images, b.images, kind=args.kind, power=args.power,
                         config=config, scales=args.scales,
                         working_memory=args.working_memory,
                         channel_axis=args.channel_axis)
    start = time.perf_counter()
    if args.permutations:
        result = mmd_test(a.images, b.images, kernel, args.permutations, args.seed,
                          estimator=args.estimator, working_memory=args.working_memory)
        statistic, p_value = result.statistic, result.p_value
    else:
        statistic = mmd2(a.images, b.images, kernel, args.estimator,
                         working_memory=args.working_memory)
        p_value = None
    seconds = time.perf_counter() - start
    print(f"MMD^2 ({args.estimator} estimator, Gretton et al. 2012; the square, not MMD): "
          f"{statistic:.10g}")
    if p_value is None:
        print("p-value: not computed (--permutations 0)")
    else:
        print(f"p-value: {p_value:.6g} (permutation test, p = (1 + #{{T_b >= T}}) / (B + 1), "
              f"B = {args.permutations} relabellings of the pooled sample, seed {args.seed})")
    print(f"kernel: {kernel.describe()}")
    print(f"samples: A = {a.source} ({a.images.shape[0]} images "
          f"{'x'.join(map(str, a.images.shape[1:]))}), B = {b.source} "
          f"({b.images.shape[0]} images); {seconds:.2f} s")
    if args.json:
        save_json(args.json, {
            "what": f"MMD^2 ({args.estimator} estimator) and permutation p-value",
            "mmd2": statistic, "estimator": args.estimator, "p_value": p_value,
            "permutations": args.permutations, "seed": args.seed,
            "p_value_rule": "(1 + #{T_b >= T}) / (B + 1)", "kernel": kernel.describe(),
            "a": a.source, "b": b.source, "n": int(a.images.shape[0]),
            "m": int(b.images.shape[0]), "config": asdict(config), "ssimref": __version__,
            "seconds": round(seconds, 3)}, args.force)
    return 0
