"""``ssimref evaluate RUN``: the metrics that no training loss grades (Frechet distance
in a classifier's features, MMD^2 with both kernels and p-values, sharpness, memorisation,
reconstruction or restoration errors), each with its direction, and a figure."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "evaluate"
HELP = "metrics of a trained run on held-out digits"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``evaluate`` command to the subcommands ``sub`` of ``ssimref``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        From :meth:`argparse.ArgumentParser.add_subparsers`.
    """
    p = sub.add_parser(NAME, help=HELP)
    p.add_argument("run", help="run folder (from 'ssimref train')")
    p.add_argument("-n", type=int, default=500, help="samples (default 500)")
    p.add_argument("--permutations", type=int, default=200,
                   help="relabellings of each MMD permutation test (default 200)")
    p.add_argument("--split", default="test", choices=("test", "validation"),
                   help="held-out digits to compare with: test (evaluation.json and "
                   "figure.png) or validation (evaluation-validation.json; for choices "
                   "such as learning rates)")
    p.add_argument("--device", choices=("cpu", "gpu"), help="where the model runs: cpu "
                   "(NumPy) or gpu (CuPy) (default: the run's device)")
    p.add_argument("--force", action="store_true", help="overwrite the evaluation file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ssimref evaluate`` with the parsed ``args``.

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
    ValueError
        ``--permutations`` below 1, or as for
        :func:`ssimref.generative.evaluate.evaluate_run`.
    """
    from ..generative.evaluate import evaluate_run, format_metrics
    if args.permutations < 1:
        raise ValueError(f"--permutations must be >= 1, got {args.permutations}")
    out = evaluate_run(args.run, n=args.n, permutations=args.permutations,
                       device=args.device, force=args.force, split=args.split)
    print(f"{out['model']} run {args.run} at step {out['step']} ({out['metrics']['n']} "
          f"samples against the {args.split} digits):")
    for line in format_metrics(out):
        print(line)
    if args.split == "test":
        print(f"wrote {Path(args.run) / 'evaluation.json'} and "
              f"{Path(args.run) / 'figure.png'}")
    else:
        print(f"wrote {Path(args.run) / 'evaluation-validation.json'}")
    return 0
