"""The ``ssimref`` command line.

Every subcommand exits with 0 on success and with 2 and a one-line message on bad input;
outputs are written atomically and never overwrite an existing file without ``--force``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from . import __version__
from .config import COVARIANCES, WINDOWS, SSIMConfig, resolve_config
from .io import atomic_path, load_images, save_json
from .pairwise import distance_matrix
from .validation import KINDS, check_kind, infer_data_range

PRESETS = {"paper": SSIMConfig.paper, "wang2004": SSIMConfig.wang2004,
           "skimage": SSIMConfig.skimage}


def add_image_arguments(parser, name="images", help_text=None):
    parser.add_argument(name, help=help_text or "a .npy/.npz file, a folder of PNG/JPEG "
                        "images (sorted by name, same size), or 'digits' (sklearn's bundled "
                        "8x8 digits, data range 16)")
    parser.add_argument("--color", action="store_true",
                        help="read folders as RGB (channels last) instead of grayscale")
    parser.add_argument("--key", help="array name inside a .npz file holding several")


def add_config_arguments(parser):
    """The SSIM conventions as flags; None means 'the preset's / library default'."""
    group = parser.add_argument_group("SSIM conventions (see ssimref.SSIMConfig)")
    group.add_argument("--preset", choices=sorted(PRESETS),
                       help="start from a named convention, then apply the flags below")
    group.add_argument("--window", choices=WINDOWS)
    group.add_argument("--size", type=int, help="window side in pixels (default 7)")
    group.add_argument("--sigma", type=float, help="Gaussian sigma (default 1.5)")
    group.add_argument("--stride", type=int, help="step between windows (default 1)")
    group.add_argument("--data-range", type=float, dest="data_range",
                       help="intensity range L (required for float images)")
    group.add_argument("--k1", type=float)
    group.add_argument("--k2", type=float)
    group.add_argument("--covariance", choices=COVARIANCES)


def config_from_args(args, default_data_range=None) -> SSIMConfig:
    base = PRESETS[args.preset](data_range=None) if args.preset else SSIMConfig()
    if base.data_range is None and args.data_range is None and default_data_range is not None:
        base = resolve_config(base, data_range=default_data_range)
    return resolve_config(base, window=args.window, size=args.size, sigma=args.sigma,
                          stride=args.stride, data_range=args.data_range, k1=args.k1,
                          k2=args.k2, covariance=args.covariance)


def describe(config: SSIMConfig) -> str:
    window = (f"{config.window} {config.size}x{config.size}" +
              (f" sigma {config.sigma:g}" if config.window == "gaussian" else ""))
    return (f"window {window}, stride {config.stride}, covariance {config.covariance}, "
            f"data_range {config.data_range:g}, k1 {config.k1:g}, k2 {config.k2:g}")


def _check_output(path, force):
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"output {path} must end in .npy (NumPy format, no pickles)")
    sidecar = path.with_suffix(".json")
    for p in (path, sidecar):
        if p.exists() and not force:
            raise FileExistsError(f"{p} exists; pass --force to overwrite it")
    return path, sidecar


def write_matrix(path, shape, dtype, fill, force):
    """Compute a matrix straight into a temporary .npy memmap, then rename it into place."""
    with atomic_path(path, force) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        fill(out)
        out.flush()
        del out


def cmd_distance(args) -> int:
    check_kind(args.kind)
    output, sidecar = _check_output(args.output, args.force)
    data = load_images(args.images, color=args.color, key=args.key)
    config = infer_data_range(config_from_args(args, data.data_range), [data.images],
                              names=("IMAGES",))
    n = data.images.shape[0]
    start = time.perf_counter()
    write_matrix(output, (n, n), np.dtype(args.dtype),
                 lambda out: distance_matrix(data.images, kind=args.kind, config=config,
                                             out=out, progress=args.progress,
                                             working_memory=args.working_memory),
                 args.force)
    seconds = time.perf_counter() - start
    save_json(sidecar, {"what": f"SSIM distance matrix D(i, j) = ||D'_ij||_F, kind {args.kind}",
                        "source": data.source, "shape": [n, n], "dtype": args.dtype,
                        "kind": args.kind, "config": asdict(config),
                        "ssimref": __version__, "seconds": round(seconds, 3)}, args.force)
    print(f"wrote {output} ({n} x {n} {args.dtype}, {args.kind} distances of {data.source}; "
          f"{describe(config)}) and {sidecar.name} in {seconds:.2f} s")
    return 0


MMD_KERNELS = ("ssim", "ssim-rbf", "mean-ssim", "rbf")


def _mmd_kernel(args, config, A, B):
    """The kernel the ``mmd`` subcommand asked for, bandwidths from the pooled sample."""
    from .kernels.differentiable import (MeanSSIMKernel, RBFMixture, SSIMDistanceKernel,
                                         SSIMRBFKernel)
    memory = args.working_memory
    if args.kernel == "ssim":
        return SSIMDistanceKernel(args.kind, args.power, config, working_memory=memory)
    if args.kernel == "ssim-rbf":
        return SSIMRBFKernel.from_median(A, B, args.kind, config, scale=args.scales[0],
                                         working_memory=memory)
    if args.kernel == "mean-ssim":
        return MeanSSIMKernel(config, working_memory=memory)
    return RBFMixture.from_median(A, B, scales=tuple(args.scales))


def cmd_mmd(args) -> int:
    from .gmmn import mmd2, mmd_test
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
        config = infer_data_range(config, [a.images, b.images], names=("A", "B"))
    kernel = _mmd_kernel(args, config, a.images, b.images)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssimref", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ssimref {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("distance", help="all-pairs SSIM distance matrix of an image set")
    add_image_arguments(p)
    p.add_argument("-o", "--output", required=True, help="output .npy file (a .json with "
                   "the conventions is written beside it)")
    p.add_argument("--kind", default="eq2", choices=KINDS)
    add_config_arguments(p)
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--working-memory", type=float, dest="working_memory",
                   help="MiB for tiles (scikit-learn's working_memory when omitted)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=cmd_distance)

    p = sub.add_parser("mmd", help="MMD^2 between two image sets and a permutation p-value")
    add_image_arguments(p, "a", "first image set (as for 'distance': .npy/.npz, a folder, "
                        "or 'digits')")
    p.add_argument("b", help="second image set, same image shape")
    p.add_argument("--kernel", default="ssim", choices=MMD_KERNELS,
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
    p.add_argument("--working-memory", type=float, dest="working_memory",
                   help="MiB for tiles (scikit-learn's working_memory when omitted)")
    p.add_argument("--json", help="also write the result and its conventions to this .json")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.set_defaults(func=cmd_mmd)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"ssimref: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ssimref: interrupted; no output was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
