"""``ssimref kernel``: the SSIM kernel -1/2 H D^p H of an image set, and of test images
against it."""

from __future__ import annotations

import argparse

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import __version__
from ..backend import arrays_for
from ..io import load_images, save_json, write_npy
from ..kernels.centering import check_power
from ..kernels.psd import DEFAULT_PSD_TOL, spectrum_report
from ..kernels.ssim_kernel import ssim_kernel
from ..tiling import resolve_working_memory
from ..validation import KINDS, check_kind, infer_data_range
from .common import (add_compute_arguments, add_config_arguments, add_image_arguments,
                     check_npy_output, check_plot_output, config_from_args,
                     split_field)

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
    p.add_argument("-o", "--output", required=True, help="output .npy file for the n x n "
                   "training kernel (a .json with the conventions is written beside it)")
    p.add_argument("--test", help="test images (same forms as IMAGES and the same image "
                   "shape): writes their m x n kernel against IMAGES, centred with the "
                   "training statistics")
    p.add_argument("--output-test", "-o-test", dest="output_test",
                   help="output .npy file for the test kernel (with --test)")
    p.add_argument("--power", type=float, default=1.0,
                   help="p in D^p: 1 (default, the paper's SSIM kernel) or 2 (classical "
                   "MDS); any value in (0, 2] gives a PSD kernel")
    p.add_argument("--kind", default="eq2", choices=KINDS)
    add_config_arguments(p)
    p.add_argument("--plot", help="also draw the training kernel as a heatmap PNG "
                   "(needs matplotlib)")
    p.add_argument("--check-psd", action="store_true", dest="check_psd",
                   help="report the training kernel's extreme eigenvalues (O(n^3))")
    add_compute_arguments(p)
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
        exits with 2); KeyboardInterrupt leaves no output.
    """
    check_kind(args.kind)
    power = check_power(args.power)
    if (args.test is None) != (args.output_test is None):
        raise ValueError("--test IMAGES and -o-test FILE go together: the test kernel "
                         "needs both its images and where to write it")
    output, sidecar = check_npy_output(args.output, args.force)
    outputs = [output, sidecar]
    if args.output_test is not None:
        output_test, sidecar_test = check_npy_output(args.output_test, args.force)
        outputs += [output_test, sidecar_test]
    plot = check_plot_output(args.plot, args.force)
    if len({p.resolve() for p in outputs} | ({plot.resolve()} if plot else set())) != \
            len(outputs) + (plot is not None):
        raise ValueError("the outputs -o, -o-test and --plot must be different files")

    data = load_images(args.images, color=args.color, key=args.key)
    config = infer_data_range(config_from_args(args, data.data_range), [data.images],
                              names=("IMAGES",), option="--data-range")
    test = None
    if args.test is not None:
        test = load_images(args.test, color=args.color, key=args.key)
        if tuple(test.images.shape[1:]) != tuple(data.images.shape[1:]):
            raise ValueError(f"--test images have shape {tuple(test.images.shape[1:])} but "
                             f"IMAGES have {tuple(data.images.shape[1:])}; kernels compare "
                             "images of one shape")
    n = data.images.shape[0]
    memory = resolve_working_memory(args.working_memory, "--working-memory")
    options = dict(kind=args.kind, power=power, config=config, progress=args.progress,
                   working_memory=memory, backend=args.backend,
                   channel_axis=args.channel_axis)
    state = {}

    def fill_train(out):
        _, state["centerer"] = ssim_kernel(arrays_for(args.backend, data.images), out=out,
                                           return_centerer=True, **options)
        if args.check_psd:
            state["psd"] = spectrum_report(np.asarray(out), DEFAULT_PSD_TOL)

    what = (f"SSIM kernel K = -1/2 H D^{power:g} H, D = SSIM distances of kind {args.kind}")
    start = time.perf_counter()
    write_npy(output, (n, n), np.dtype("float64"), fill_train, force=args.force)
    seconds = time.perf_counter() - start
    meta = {"what": what, "source": data.source, **split_field(data), "shape": [n, n],
            "dtype": "float64",
            "kind": args.kind, "power": power, "config": asdict(config),
            "ssimref": __version__, "seconds": round(seconds, 3)}
    if "psd" in state:
        meta["psd"] = asdict(state["psd"])
    save_json(sidecar, meta, args.force)
    print(f"wrote {output} ({n} x {n} float64, {what}, of {data.source}; {config.describe()}) "
          f"and {sidecar.name} in {seconds:.2f} s")
    if "psd" in state:
        print(f"spectrum: {state['psd']}")

    if test is not None:
        m = test.images.shape[0]

        def fill_test(out):
            ssim_kernel(arrays_for(args.backend, test.images),
                        arrays_for(args.backend, data.images), out=out,
                        centerer=state["centerer"], **options)

        start = time.perf_counter()
        write_npy(output_test, (m, n), np.dtype("float64"), fill_test, force=args.force)
        seconds = time.perf_counter() - start
        save_json(sidecar_test, {
            "what": what + ", test rows against the training set, centred with the "
                    "training statistics (Bengio et al. 2004)",
            "source": test.source, **split_field(test), "train_source": data.source,
            "train_kernel": str(output),
            "shape": [m, n], "dtype": "float64", "kind": args.kind, "power": power,
            "config": asdict(config), "ssimref": __version__,
            "seconds": round(seconds, 3)}, args.force)
        print(f"wrote {output_test} ({m} x {n} float64, test images {test.source} against "
              f"the training set) and {sidecar_test.name} in {seconds:.2f} s")

    if plot is not None:
        from ..plotting import save_kernel_heatmap
        K = np.load(output, mmap_mode="r", allow_pickle=False)
        order = None if data.labels is None else np.argsort(data.labels, kind="stable")
        save_kernel_heatmap(K, plot, order=order, force=args.force,
                            title=f"SSIM kernel ({args.kind}, power {power:g}) of "
                                  f"{Path(str(data.source)).name}"
                                  + (", sorted by label" if order is not None else ""))
        print(f"wrote {plot}")
    return 0
