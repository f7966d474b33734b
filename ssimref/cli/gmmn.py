"""``ssimref gmmn``: generative moment-matching networks: train, sample, evaluate, and the
RBF-versus-SSIM experiment."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import sample

from .common import add_progress_argument

NAME = "gmmn"
HELP = "generative moment-matching networks: train, sample, evaluate"


def cmd_gmmn_train(args: argparse.Namespace) -> int:
    """``ssimref gmmn train``: train a GMMN into the run folder ``args.output``.

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
        For bad arguments, folders or files (the command line prints them and exits with
        2).

    See Also
    --------
    ssimref.gmmn.train.train
    """
    from ..gmmn.train import train
    from ..generative.runs import run_config
    from .train import given_options

    run_dir = Path(args.output)
    config = run_config("gmmn", run_dir, resume=args.resume, **given_options(args))
    summary = train(run_dir, config, resume=args.resume, force=args.force,
                    progress=args.progress)
    print(f"trained {run_dir} to step {summary['steps']} (final batch loss "
          f"{summary['loss'] if summary['loss'] is None else format(summary['loss'], '.4g')}, "
          f"{summary['seconds']:.1f} s of training); metrics in {run_dir / 'metrics.jsonl'}, "
          f"grids in {run_dir / 'samples'}")
    return 0


def cmd_gmmn_evaluate(args: argparse.Namespace) -> int:
    """``ssimref gmmn evaluate``: evaluate a run and write its ``evaluation.json``.

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
        For bad arguments, folders or files (the command line prints them and exits with
        2).

    See Also
    --------
    ssimref.gmmn.evaluate.evaluate_run
    """
    from ..gmmn.evaluate import evaluate_run, format_evaluation

    from ..io import check_writable
    from .common import at_least

    at_least(args.n, "-n", 2)
    at_least(args.parzen_samples, "--parzen-samples", 1)
    target = Path(args.run) / "evaluation.json"
    if Path(args.run).is_dir():
        check_writable(target, force=args.force, name="the evaluation file")
    out = evaluate_run(args.run, n=args.n, parzen_samples=args.parzen_samples,
                       device=args.device, force=True, reference=True)
    print(f"{args.run} against the test digits, beside real training digits as a "
          f"reference (the same number of samples, {args.n}):")
    for line in format_evaluation(out):
        print(line)
    print(f"wrote {target}")
    return 0


def cmd_gmmn_experiment(args: argparse.Namespace) -> int:
    """``ssimref gmmn experiment``: train and evaluate the RBF-versus-SSIM experiment.

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
        For bad arguments, folders or files (the command line prints them and exits with
        2).

    See Also
    --------
    ssimref.gmmn.experiment.run_experiment
    """
    from ..gmmn.experiment import run_experiment

    from .common import at_least

    seeds = tuple(range(args.seeds))
    if not seeds:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    for flag, value, low in [("--steps", args.steps, 1), ("--batch", args.batch, 1),
                             ("--ae-steps", args.ae_steps, 0), ("-n", args.n, 2),
                             ("--parzen-samples", args.parzen_samples, 1)]:
        at_least(value, flag, low)
    if not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    from ..gmmn.train import TrainConfig
    results = run_experiment(args.output, seeds=seeds, steps=args.steps, batch=args.batch,
                             ae_steps=args.ae_steps, n_eval=args.n,
                             base=TrainConfig(lr=args.lr),
                             parzen_samples=args.parzen_samples,
                             progress=args.progress, force=args.force)
    from ..gmmn.experiment import format_table
    print(format_table(results))
    print(f"wall time {results['wall_seconds']:.0f} s ({results['runs_trained_in_this_call']} "
          f"of {len(results['runs'])} runs trained in this call, the others only evaluated); "
          f"wrote {args.output}/results.json, table.md, samples.png")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``gmmn`` command and its subcommands to the subcommands ``sub`` of
    ``ssimref``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        From :meth:`argparse.ArgumentParser.add_subparsers`.
    """
    gmmn = sub.add_parser(NAME, help=HELP)
    commands = gmmn.add_subparsers(dest="gmmn_command", required=True)

    from .train import add_config_options, all_fields

    p = commands.add_parser("train", help="train a GMMN (resumable; the same as "
                            "'ssimref train gmmn')")
    fields = all_fields()
    add_config_options(p, "gmmn", fields)
    p.add_argument("-o", "--output", required=True, help="run folder (runs/NAME)")
    p.add_argument("--resume", action="store_true", help="continue the run in the folder "
                   "from its last checkpoint (only --steps may change)")
    p.add_argument("--force", action="store_true", help="start afresh in a non-empty folder")
    add_progress_argument(p)
    p.set_defaults(func=cmd_gmmn_train, model="gmmn", _fields=fields)

    sample.add_arguments(commands.add_parser("sample", help="draw samples from a trained "
                                             "run (as 'ssimref sample')"))

    p = commands.add_parser("evaluate", help="metrics on the held-out digits")
    p.add_argument("run", help="run folder")
    p.add_argument("-n", type=int, default=500, help="samples for MMDs, memorisation and "
                   "classifier (default 500)")
    p.add_argument("--parzen-samples", type=int, default=2000, dest="parzen_samples",
                   help="samples for the Parzen density (default 2000)")
    p.add_argument("--device", choices=("cpu", "gpu"), help="where the model runs: cpu "
                   "(NumPy) or gpu (CuPy) (default: the run's device)")
    p.add_argument("--force", action="store_true", help="overwrite evaluation.json")
    p.set_defaults(func=cmd_gmmn_evaluate)

    p = commands.add_parser("experiment", help="RBF vs SSIM kernels, data vs code space, "
                            "unconditional and conditional, several seeds")
    p.add_argument("-o", "--output", default="runs/experiment", help="experiment folder")
    p.add_argument("--seeds", type=int, default=3, help="seeds per condition (default 3)")
    p.add_argument("--steps", type=int, default=1000, help="generator steps per run "
                   "(default 1000: the whole experiment then takes about 18 minutes on a "
                   "2-core machine)")
    p.add_argument("--batch", type=int, default=64, help="minibatch size (default 64)")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate of the "
                   "generators (default 3e-3)")
    p.add_argument("--ae-steps", type=int, default=1500, dest="ae_steps",
                   help="autoencoder pre-training steps of the code-space runs")
    p.add_argument("-n", type=int, default=500, help="evaluation samples")
    p.add_argument("--parzen-samples", type=int, default=2000, dest="parzen_samples",
                   help="samples for the Parzen log-likelihood")
    p.add_argument("--force", action="store_true", help="retrain runs that exist")
    add_progress_argument(p, "progress bars")
    p.set_defaults(func=cmd_gmmn_experiment)
