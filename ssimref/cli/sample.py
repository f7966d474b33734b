"""``ssimref sample RUN``: images from a trained run of any model, as a PNG grid or a
.npy stack."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

NAME = "sample"
HELP = "samples (or restorations) of a trained run"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sample`` command to the subcommands ``sub`` of ``ssimref``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        From :meth:`argparse.ArgumentParser.add_subparsers`.
    """
    add_arguments(sub.add_parser(NAME, help=HELP))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``ssimref sample`` (also those of ``ssimref gmmn sample``).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The command's parser; its ``func`` is set to :func:`run`.
    """
    p.add_argument("run", help="run folder (from 'ssimref train')")
    p.add_argument("-n", type=int, default=100, help="number of samples (default 100)")
    p.add_argument("-o", "--output", required=True, help="grid .png or images .npy")
    p.add_argument("--label", type=int, help="class to generate (class-conditional "
                   "models; default: every class equally often, in order)")
    p.add_argument("--seed", type=int, help="noise seed (default: the run's seed)")
    p.add_argument("--device", choices=("cpu", "gpu"), help="where the model runs: cpu "
                   "(NumPy) or gpu (CuPy) (default: the run's device)")
    p.add_argument("--force", action="store_true", help="overwrite the output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ssimref sample`` with the parsed ``args``.

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
        An output that is neither .png nor .npy, ``-n`` below 1, ``--label`` for an
        unconditional model or outside the classes.
    FileNotFoundError
        ``RUN`` is not a run folder.
    """
    from ..generative.grid import save_grid
    from ..generative.runs import load_run
    from ..io import check_writable, save_npy

    output = Path(args.output)
    if output.suffix not in (".png", ".npy"):
        raise ValueError(f"output {output} must end in .png (a grid) or .npy (the images)")
    if args.n < 1:
        raise ValueError(f"-n must be >= 1, got {args.n}")
    check_writable(output, force=args.force, name="-o")
    if args.seed is not None and args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.label is not None and args.label < 0:
        raise ValueError(f"--label must be >= 0, got {args.label}")
    run = load_run(args.run, device=args.device)
    model = run.model
    conditional = getattr(model, "conditional", False)
    labels = None
    if args.label is not None:
        if not conditional:
            raise ValueError(f"--label needs a class-conditional model; {args.run} holds an "
                             f"unconditional {run.name}")
        if not 0 <= args.label < run.splits.n_classes:
            raise ValueError(f"--label must be in 0..{run.splits.n_classes - 1}, got "
                             f"{args.label}")
        labels = np.full(args.n, args.label)
    elif conditional:  # every label equally often, in order (rows of a 10x10 grid)
        labels = (np.arange(args.n) * run.splits.n_classes) // args.n
    seed = run.config.seed if args.seed is None else args.seed
    images = np.asarray(model.sample(args.n, np.random.default_rng([seed, 3]), labels))
    if output.suffix == ".npy":
        save_npy(output, images, force=args.force)
    else:
        save_grid(output, images, force=args.force)
    what = f" of label {args.label}" if args.label is not None else ""
    print(f"wrote {output}: {len(images)} {run.name} samples{what} from {args.run} (step "
          f"{run.meta['step']}, noise seed {seed})")
    return 0
