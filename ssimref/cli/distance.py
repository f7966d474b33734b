"""``ssimref distance``: the all-pairs SSIM distance matrix of an image set."""

from __future__ import annotations

import argparse

from .. import __version__
from ..io import load_images
from ..jobs import prepare_distance_job
from ..tiling import resolve_working_memory
from ..validation import KINDS, check_kind, check_stacks
from .common import (add_compute_arguments, add_config_arguments, add_image_arguments,
                     add_job_arguments, check_matrix_output, config_from_args, describe_run,
                     executor_from_args, images_of, source_fields)

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
    p.add_argument("--split", choices=("train", "validation", "test", "all"),
                   help="part of a bundled data set's fixed split (the same as IMAGES "
                   "NAME:SPLIT; default: all of it)")
    p.add_argument("-o", "--output", required=True, help="output: a .npy file (a .json with "
                   "the conventions is written beside it) or a .zarr store (the array "
                   "'matrix', conventions in its metadata); computed tile by tile, "
                   "resumable with --resume")
    p.add_argument("--kind", default="eq2", choices=KINDS,
                   help="which SSIM distance: Eq. (1), Eq. (1) without window means, or Eq. (2)")
    add_config_arguments(p)
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"),
                   help="dtype of the stored matrix (computed in float64 either way)")
    add_compute_arguments(p)
    add_job_arguments(p)
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
        with 2).
    ssimref.interrupt.Interrupted
        On SIGINT/SIGTERM: the completed tiles are kept (the command line prints how to
        resume).
    ssimref.jobs.JobError
        When the computation fails; the completed tiles are kept.
    """
    check_kind(args.kind)
    resolve_working_memory(args.working_memory, "--working-memory")
    output, sidecar = check_matrix_output(args.output, force=args.force, resume=args.resume,
                                          dask=args.dask is not None, inputs=[args.images])
    data = load_images(args.images, color=args.color, key=args.key, alpha=args.alpha,
                       split=args.split)
    images = images_of(data, args)
    # before any output is made
    _, _, _, config = check_stacks(images, None, config_from_args(args, data.data_range),
                                   ("IMAGES", "IMAGES"), option="--data-range")
    n = images.shape[0]
    job = prepare_distance_job(
        images, output, kind=args.kind, config=config, dtype=args.dtype,
        backend=args.backend, working_memory=args.working_memory,
        distributed=args.dask is not None, resume=args.resume, force=args.force,
        progress=args.progress, describe={**source_fields(data, args),
                                          "ssimref": __version__})
    if job.complete:
        print(f"{output} is complete already; nothing to resume")
        return 0
    with executor_from_args(args, [] if args.resume else [output]) as executor:
        result = job.run(executor)
        how = describe_run(result, executor)
    written = f"{output}" + ("" if sidecar is None else f" and {sidecar.name}")
    print(f"wrote {written} ({n} x {n} {args.dtype}, {args.kind} distances of {data.source}; "
          f"{config.describe()}) in {result.seconds:.2f} s; {how}")
    return 0
