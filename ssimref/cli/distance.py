"""``ssimref distance``: the all-pairs SSIM distance matrix of an image set."""

from __future__ import annotations

import argparse

import time
from dataclasses import asdict

import numpy as np

from .. import __version__
from ..backend import arrays_for
from ..io import load_images, save_json, write_npy
from ..pairwise import distance_matrix
from ..validation import KINDS, check_kind, infer_data_range
from .common import (add_compute_arguments, add_config_arguments, add_image_arguments,
                     check_npy_output, config_from_args, split_field)

NAME = "distance"
HELP = "all-pairs SSIM distance matrix of an image set"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``distance`` command to the subcommands ``sub`` of ``ssimref``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        From :meth:`argparse.ArgumentParser.add_subparsers`.
    """
    p = sub.add_parser(NAME, help=HELP)
    add_image_arguments(p)
    p.add_argument("-o", "--output", required=True, help="output .npy file (a .json with "
                   "the conventions is written beside it)")
    p.add_argument("--kind", default="eq2", choices=KINDS)
    add_config_arguments(p)
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    add_compute_arguments(p)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ssimref distance`` with the parsed ``args``.

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
        For bad images, conventions or outputs (the command line prints them and exits
        with 2); KeyboardInterrupt leaves no output.
    """
    check_kind(args.kind)
    output, sidecar = check_npy_output(args.output, args.force)
    data = load_images(args.images, color=args.color, key=args.key)
    config = infer_data_range(config_from_args(args, data.data_range), [data.images],
                              names=("IMAGES",), option="--data-range")
    n = data.images.shape[0]
    start = time.perf_counter()
    images = arrays_for(args.backend, data.images)
    write_npy(output, (n, n), np.dtype(args.dtype),
              lambda out: distance_matrix(images, kind=args.kind, config=config,
                                          out=out, progress=args.progress,
                                          working_memory=args.working_memory,
                                          backend=args.backend,
                                          channel_axis=args.channel_axis),
              force=args.force)
    seconds = time.perf_counter() - start
    save_json(sidecar, {"what": f"SSIM distance matrix D(i, j) = ||D'_ij||_F, kind {args.kind}",
                        "source": data.source, "shape": [n, n], "dtype": args.dtype,
                        **split_field(data),
                        "kind": args.kind, "config": asdict(config), "backend": args.backend,
                        "ssimref": __version__, "seconds": round(seconds, 3)}, args.force)
    print(f"wrote {output} ({n} x {n} {args.dtype}, {args.kind} distances of {data.source}; "
          f"{config.describe()}) and {sidecar.name} in {seconds:.2f} s")
    return 0
