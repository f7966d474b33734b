"""``ssimref demo``: SSIM-kernel SVC on scikit-learn's digits."""

from __future__ import annotations

import argparse

from .common import add_progress_argument

NAME = "demo"
HELP = "SSIM-kernel SVC on scikit-learn's digits: tables and plots"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command to the subcommands ``sub`` of ``ssimref``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        From :meth:`argparse.ArgumentParser.add_subparsers`.
    """
    p = sub.add_parser(NAME, help=HELP)
    p.add_argument("-o", "--output", default="ssimref-demo",
                   help="folder for results.json and the PNG plots (default: "
                   "./ssimref-demo)")
    p.add_argument("--seed", type=int, default=0, help="seed of folds, split and noise "
                   "(default 0)")
    p.add_argument("--limit", type=int, help="use a stratified subset of this many digits "
                   "(quick runs; default all 1797)")
    p.add_argument("--no-plots", action="store_true", dest="no_plots",
                   help="print the tables only")
    add_progress_argument(p, "progress bars")
    p.add_argument("--force", action="store_true", help="write into an existing folder")
    p.set_defaults(func=run)



def run(args: argparse.Namespace) -> int:
    """Run ``ssimref demo`` with the parsed ``args``.

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
    ValueError, OSError
        As for :func:`ssimref.demo.run_demo`.
    """
    from ..demo import run_demo
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")

    run_demo(args.output, force=args.force, seed=args.seed, limit=args.limit,
             plots=not args.no_plots, progress=args.progress)
    return 0
