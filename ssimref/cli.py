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
from .backend import ENGINES, arrays_for
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
    images = arrays_for(args.backend, data.images)
    write_matrix(output, (n, n), np.dtype(args.dtype),
                 lambda out: distance_matrix(images, kind=args.kind, config=config,
                                             out=out, progress=args.progress,
                                             working_memory=args.working_memory,
                                             backend=args.backend),
                 args.force)
    seconds = time.perf_counter() - start
    save_json(sidecar, {"what": f"SSIM distance matrix D(i, j) = ||D'_ij||_F, kind {args.kind}",
                        "source": data.source, "shape": [n, n], "dtype": args.dtype,
                        "kind": args.kind, "config": asdict(config), "backend": args.backend,
                        "ssimref": __version__, "seconds": round(seconds, 3)}, args.force)
    print(f"wrote {output} ({n} x {n} {args.dtype}, {args.kind} distances of {data.source}; "
          f"{describe(config)}) and {sidecar.name} in {seconds:.2f} s")
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
    p.add_argument("--backend", default="auto", choices=ENGINES,
                   help="engine for the pairs: auto (numba on the CPU when installed), "
                   "reference, numba, or cupy (GPU; the matrix is streamed to the output "
                   "file tile by tile)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=cmd_distance)
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
