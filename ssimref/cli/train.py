"""``ssimref train MODEL``: train a generative model (resumable). The flags of every model
are generated from its config dataclass (:mod:`ssimref.generative.config`): flag, type,
default and help have one source."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from .common import OneLineParser

from .common import add_progress_argument, shown_default


NAME = "train"
HELP = "train a generative model (resumable)"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def all_fields() -> dict[str, list[Any]]:
    """Every model's config fields, merged, in a stable order.

    Returns
    -------
    dict of str to list
        ``name -> [type, default, metadata, models that have the field]``; the command
        line builds one flag per name from it.
    """
    from ..generative.config import config_fields
    from ..generative.runs import MODELS
    out: dict[str, list[Any]] = {}
    for model, spec in MODELS.items():
        for name, kind, default, meta in config_fields(spec.config_class()):
            entry = out.setdefault(name, [kind, default, meta, []])
            entry[3].append(model)
    return out


def _tuple_type(default: tuple) -> type:
    return int if default and all(isinstance(v, int) for v in default) else float


def add_config_options(parser: argparse.ArgumentParser, model: str,
                       fields: dict[str, list[Any]]) -> None:
    """Add a flag for every config field of ``model`` (with its default and help), and
    hidden flags for the fields of the other models, so that giving one gets a clear
    error.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser of ``ssimref train MODEL``.
    model : str
        A key of :data:`ssimref.generative.runs.MODELS`.
    fields : dict
        ``name -> [type, default, metadata, models]`` over every model's config.
    """
    from ..generative.config import config_fields
    from ..generative.runs import MODELS
    own = {name: (kind, default, meta)
           for name, kind, default, meta in config_fields(MODELS[model].config_class())}
    group = parser.add_argument_group(f"{model} options (defaults from its config)")
    for name, (kind, default, meta, _) in fields.items():
        if name not in own:  # accepted, then refused with a message naming its models
            options: dict[str, Any] = {"dest": name, "default": None,
                                       "help": argparse.SUPPRESS}
            if kind is bool:
                parser.add_argument(_flag(name), action=argparse.BooleanOptionalAction,
                                    **options)
            else:
                parser.add_argument(_flag(name), nargs="+" if kind is tuple else None,
                                    **options)
            continue
        kind, default, meta = own[name]
        shown = shown_default(default)
        options = {"dest": name, "default": None,
                   "help": f"{meta.get('help', '')} (default: {shown})"}
        if kind is bool:
            group.add_argument(_flag(name), action=argparse.BooleanOptionalAction, **options)
            continue
        if kind is tuple:
            options.update(nargs="+", type=_tuple_type(default), metavar="N")
        else:
            options["type"] = kind
            if meta.get("choices"):
                options["choices"] = meta["choices"]
        group.add_argument(_flag(name), **options)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``train`` command to the subcommands ``sub`` of ``ssimref``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        From :meth:`argparse.ArgumentParser.add_subparsers`.
    """
    from ..generative.runs import MODELS
    p = sub.add_parser(NAME, help=HELP, description="Train a generative model. Every run "
                       "folder is resumable: Ctrl-C or SIGTERM stops at a step boundary, "
                       "writes a checkpoint and prints the command that resumes it.")
    models = p.add_subparsers(dest="model", required=True, metavar="MODEL",
                              parser_class=OneLineParser)
    fields = all_fields()
    for name, spec in MODELS.items():
        m = models.add_parser(name, help=spec.help, description=spec.help)
        add_config_options(m, name, fields)
        m.add_argument("-o", "--output", required=True, help="run folder (runs/NAME)")
        m.add_argument("--resume", action="store_true", help="continue the run in the "
                       "folder from its last checkpoint (only --steps may change)")
        m.add_argument("--force", action="store_true",
                       help="start afresh in a non-empty run folder")
        add_progress_argument(m)
        m.set_defaults(func=run, _fields=fields)


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The config options of ``args.model`` given on the command line.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser built with :func:`add_config_options`; ``args._fields`` is
        :func:`all_fields` (or one model's share of it).

    Returns
    -------
    dict of str to object
        The options given; flags left at None are not given. Lists become tuples.

    Raises
    ------
    ValueError
        If an option of another model was given, naming the models that take it.
    """
    from ..generative.runs import config_class
    given = {k: (tuple(v) if isinstance(v, list) else v) for k in args._fields
             if (v := getattr(args, k, None)) is not None}
    foreign = sorted(set(given) - set(config_class(args.model).__dataclass_fields__))
    if foreign:
        detail = "; ".join(f"{_flag(k)} is an option of {', '.join(args._fields[k][3])}"
                           for k in foreign)
        raise ValueError(f"{args.model} does not take "
                         f"{', '.join(_flag(k) for k in foreign)} ({detail})")
    return given


def run(args: argparse.Namespace) -> int:
    """Run ``ssimref train MODEL`` with the parsed ``args``.

    Parameters
    ----------
    args : argparse.Namespace
        From the parser of :func:`add_parser`.

    Returns
    -------
    int
        The exit status: 0 (an interrupted run raises
        :class:`ssimref.generative.trainer.TrainingInterrupted`, which the command line
        reports with status 130).

    Raises
    ------
    ValueError
        An option of another model, or a bad value (as for the model's config).
    FileNotFoundError
        ``--resume`` on a folder without ``config.json``.
    """
    from ..generative.runs import run_config, train
    name = args.model
    given = given_options(args)
    run_dir = Path(args.output)
    config = run_config(name, run_dir, resume=args.resume, **given)
    summary = train(name, run_dir, config, resume=args.resume, force=args.force,
                    progress=args.progress)
    losses = ", ".join(f"{k} {v:.4g}" for k, v in summary["losses"].items())
    print(f"trained {run_dir} ({name}) to step {summary['steps']} in "
          f"{summary['seconds']:.1f} s of training; last losses: {losses or 'none'}; "
          f"metrics in {run_dir / 'metrics.jsonl'}, grids in {run_dir / 'samples'}")
    return 0
