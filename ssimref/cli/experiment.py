"""``ssimref experiment paper``: the paper's claims tested on 28x28 digits (GMMN, VAE,
AAE, image-conditional GAN, LSGAN; SSIM against l2, bce and the RBF mixture), resumable;
``--plan`` measures step times and projects the duration without training; ``--report
DOC`` renders the results (of a finished or a running experiment) into a Markdown
document."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import add_progress_argument

NAME = "experiment"
HELP = "SSIM vs l2, bce and RBF in generative models on 28x28 digits"


def _seeds(text: str) -> int | list[int]:
    """``--seeds 3`` (seeds 0, 1, 2) or ``--seeds 0,4,7``."""
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes a count or a comma-separated list "
                                         f"of seeds, got {text!r}") from None


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``experiment`` command to the subcommands ``sub`` of ``ssimref``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        From :meth:`argparse.ArgumentParser.add_subparsers`.
    """
    p = sub.add_parser(NAME, help=HELP)
    commands = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    e = commands.add_parser(
        "paper", help="SSIM against l2, bce and the RBF mixture in GMMN, VAE, AAE and "
        "image-conditional GAN/LSGAN on mnist5k (28x28), several seeds, a learning-rate "
        "grid per arm chosen on the validation split, paired comparisons and verdicts",
        description="Train, evaluate and compare every condition; writes design.json, one "
        "run folder per arm, learning rate and seed, results.json, tables.md and figures. "
        "Resumable: run the same command again after an interruption.")
    e.add_argument("-o", "--output", default=None, help="experiment folder "
                   "(default runs/paper)")
    e.add_argument("--seeds", type=_seeds, default=None,
                   help="seeds per arm: a count (seeds 0..N-1) or a list such as 0,1,2 "
                   "(default 3; 2 with --quick); the first is the tuning seed")
    e.add_argument("--device", default="cpu", choices=("cpu", "gpu"),
                   help="where the models train and are evaluated: cpu (NumPy) or gpu "
                   "(CuPy; refused before any work without a CUDA device)")
    e.add_argument("--quick", action="store_true", help="smoke test: 8x8 digits, 8 steps "
                   "per run, small evaluations (every condition and output, under a minute)")
    e.add_argument("--force", action="store_true", help="retrain and re-evaluate every run, "
                   "also in a folder that holds another design")
    e.add_argument("--plan", action="store_true", help="measure each arm's step time (a "
                   "few steps in a temporary folder) and project the duration; writes "
                   "nothing")
    e.add_argument("--report", metavar="DOC", default=None,
                   help="render the results of the folder -o (finished or not) into the "
                   "Markdown file DOC, between its lines '<!-- paper-results:begin -->' "
                   "and '<!-- paper-results:end -->', with the figures as img/paper-*.png "
                   "beside it; trains and evaluates nothing, writes nothing into -o "
                   "(default: no report; the experiment runs)")
    e.add_argument("--resume", action="store_true", help="continue the experiment in -o, "
                   "which must hold one (without --resume the command starts an experiment "
                   "or continues the one it finds)")
    add_progress_argument(e, "progress bars of the training runs")
    e.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ssimref experiment paper`` with the parsed ``args``.

    Parameters
    ----------
    args : argparse.Namespace
        From the parser of :func:`add_parser`.

    Returns
    -------
    int
        The exit status: 0 (an interrupted training run raises
        :class:`ssimref.generative.trainer.TrainingInterrupted`, which the command line
        reports with status 130 and the command that resumes the experiment).

    Raises
    ------
    ValueError
        Bad seeds; ``--report``: a document without the markers.
    FileExistsError
        The folder holds another design (or files but no design) and no ``--force``.
    FileNotFoundError
        ``--report``: no such document, or no experiment in the folder.
    """
    from ..experiments import paper_design, plan_paper, run_paper, write_report
    if args.report is not None:
        _refuse(args, "--report", ("seeds", "quick", "force", "plan", "resume",
                                   "progress", "device"))
        results = write_report(args.output or "runs/paper", args.report)
        _print_verdicts(results)
        return 0
    if args.plan:
        _refuse(args, "--plan", ("output", "force", "resume", "progress"))
    if args.resume and args.force:
        raise ValueError("--resume continues the experiment and --force retrains it; "
                         "give one of them")
    design = paper_design(seeds=args.seeds, device=args.device, quick=args.quick)
    if args.plan:
        plan_paper(design)
        return 0
    args.output = args.output or "runs/paper"
    _check_folder(Path(args.output))
    if args.resume and not (Path(args.output) / "design.json").exists():
        raise FileNotFoundError(f"--resume: {args.output} holds no experiment (no "
                                "design.json); run without --resume to start one")
    results = run_paper(args.output, design=design, force=args.force,
                        progress=args.progress)
    _print_verdicts(results)
    print(f"wrote {Path(args.output) / 'results.json'}, tables.md and figures")
    return 0


def _check_folder(out: Path) -> None:
    """Before any work: ``out`` is a folder or can be made one (its nearest existing
    ancestor is a folder that takes new files)."""
    from ..io import check_writable
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(f"-o {out}: {existing} is a file, not a folder")
    check_writable(existing / "design.json", name=f"-o {out}:", folder_only=True)


_DEFAULTS = {"output": None, "seeds": None, "quick": False, "force": False, "plan": False,
             "resume": False, "progress": None, "device": "cpu"}


def _refuse(args: argparse.Namespace, mode: str, names: tuple[str, ...]) -> None:
    """ValueError naming the options given with ``mode`` that would do nothing."""
    given = ["-o" if n == "output" else "--no-progress" if getattr(args, n) is False
             else "--" + n.replace("_", "-") for n in names
             if getattr(args, n) != _DEFAULTS[n]]
    if given:
        raise ValueError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} nothing "
                         f"with {mode}; leave {'it' if len(given) == 1 else 'them'} out")


def _print_verdicts(results: dict[str, Any]) -> None:
    print()
    for name, fam in results["families"].items():
        pairs = "; ".join(f"{c['ssim']} vs {c['baseline']}: {c['verdict']}"
                          for c in fam["comparisons"])
        print(f"{name}: {fam['verdict']} ({fam['primary']}; {pairs})")
