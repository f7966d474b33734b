"""``ssimref kernel``: the SSIM kernel -1/2 H D^p H of an image set, and of test images
against it."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import __version__
from ..io import load_images
from ..jobs import prepare_kernel_job
from ..kernels.centering import check_power
from ..kernels.psd import DEFAULT_PSD_TOL, spectrum_report
from ..stores import annotate_result, open_matrix
from ..tiling import resolve_working_memory
from ..validation import KINDS, check_kind, check_stacks
from .common import (add_compute_arguments, add_config_arguments, add_image_arguments,
                     add_job_arguments, check_matrix_output, check_plot_output,
                     config_from_args, describe_run, executor_from_args, images_of,
                     source_fields)

NAME = "kernel"
HELP = "SSIM kernel -1/2 H D^p H of images (and of test images)"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``kernel`` command to the subcommands ``sub`` of ``ssimref``.

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
    p.add_argument("-o", "--output", required=True, help="output for the n x n training "
                   "kernel: a .npy file (a .json with the conventions is written beside it) "
                   "or a .zarr store (the array 'matrix'); computed tile by tile (squared "
                   "distances, then row means, then centred tiles), resumable with --resume")
    p.add_argument("--test", help="test images (same forms as IMAGES and the same image "
                   "shape): writes their m x n kernel against IMAGES, centred with the "
                   "training statistics (default: none)")
    p.add_argument("--output-test", "-o-test", dest="output_test",
                   help="output .npy file or .zarr store for the test kernel (with --test; "
                   "default: none)")
    p.add_argument("--power", type=float, default=1.0,
                   help="p in D^p: 1 (default, the paper's SSIM kernel) or 2 (classical "
                   "MDS); any value in (0, 2] gives a PSD kernel")
    p.add_argument("--kind", default="eq2", choices=KINDS,
                   help="which SSIM distance: Eq. (1), Eq. (1) without window means, or Eq. (2)")
    add_config_arguments(p)
    p.add_argument("--plot", help="also draw the training kernel as a heatmap PNG "
                   "(needs matplotlib; default: none)")
    p.add_argument("--check-psd", action="store_true", dest="check_psd",
                   help="report the training kernel's extreme eigenvalues (O(n^3))")
    add_compute_arguments(p)
    add_job_arguments(p)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ssimref kernel`` with the parsed ``args``.

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
        For bad images, conventions, powers or outputs (the command line prints them and
        exits with 2).
    ssimref.interrupt.Interrupted
        On SIGINT/SIGTERM: the completed tiles are kept (the command line prints how to
        resume).
    ssimref.jobs.JobError
        When the computation fails; the completed tiles are kept.
    """
    check_kind(args.kind)
    power = check_power(args.power)
    memory = resolve_working_memory(args.working_memory, "--working-memory")
    if (args.test is None) != (args.output_test is None):
        raise ValueError("--test IMAGES and -o-test FILE go together: the test kernel "
                         "needs both its images and where to write it")
    options = dict(force=args.force, resume=args.resume, dask=args.dask is not None,
                   inputs=[args.images, args.test])
    output, sidecar = check_matrix_output(args.output, **options)
    outputs = [output] + ([sidecar] if sidecar else [])
    output_test = None
    if args.output_test is not None:
        output_test, sidecar_test = check_matrix_output(args.output_test, flag="-o-test",
                                                        **options)
        outputs += [output_test] + ([sidecar_test] if sidecar_test else [])
    plot = check_plot_output(args.plot, args.force)
    if len({p.resolve() for p in outputs} | ({plot.resolve()} if plot else set())) != \
            len(outputs) + (plot is not None):
        raise ValueError("the outputs -o, -o-test and --plot must be different files")

    data = load_images(args.images, color=args.color, key=args.key, alpha=args.alpha,
                       split=args.split)
    images = images_of(data, args)
    test = test_images = None
    if args.test is not None:
        test = load_images(args.test, color=args.color, key=args.key, alpha=args.alpha)
        test_images = images_of(test, args, "--test")
    # one data range for both sets: test images of another type than the training images
    # (bool against uint8) would otherwise be measured with the training images' range
    _, _, _, config = check_stacks(images, test_images,
                                   config_from_args(args, data.data_range),
                                   ("IMAGES", "--test"), option="--data-range")
    n = images.shape[0]
    train_fields = source_fields(data, args)
    job = prepare_kernel_job(
        images, output, kind=args.kind, config=config, power=power,
        backend=args.backend, working_memory=memory, distributed=args.dask is not None,
        resume=args.resume, force=args.force, progress=args.progress,
        describe={**train_fields, "ssimref": __version__},
        test_images=test_images, test_output=output_test,
        test_describe=None if test is None else {
            **source_fields(test, args), "train_source": train_fields["source"],
            "train_images": train_fields["images"], "ssimref": __version__})
    if job.complete:
        print(f"{output} is complete already; nothing to resume")
        return 0
    made = [] if args.resume else [p for p in (output, output_test) if p is not None]
    with executor_from_args(args, made) as executor:
        result, test_result = job.run(executor)
        how = describe_run(result, executor)
    what = result.meta["what"]
    written = f"{output}" + ("" if sidecar is None else f" and {sidecar.name}")
    print(f"wrote {written} ({n} x {n} float64, {what}, of {data.source}; "
          f"{config.describe()}) in {result.seconds:.2f} s; {how}")
    if test_result is not None and test is not None and test_images is not None:
        m = test_images.shape[0]
        print(f"wrote {output_test} ({m} x {n} float64, test images {test.source} against "
              f"the training set)")

    if args.check_psd or plot is not None:
        K = open_matrix(output)
        if args.check_psd:
            report = spectrum_report(np.asarray(K[...]), DEFAULT_PSD_TOL)
            annotate_result(output, {"psd": asdict(report)})
            print(f"spectrum: {report}")
        if plot is not None:
            from ..plotting import save_kernel_heatmap
            order = None if data.labels is None else np.argsort(data.labels, kind="stable")
            save_kernel_heatmap(np.asarray(K[...]), plot, order=order, force=args.force,
                                title=f"SSIM kernel ({args.kind}, power {power:g}) of "
                                      f"{Path(str(data.source)).name}"
                                      + (", sorted by label" if order is not None else ""))
            print(f"wrote {plot}")
    return 0
