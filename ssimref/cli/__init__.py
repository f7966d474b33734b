"""The ``ssimref`` command line: one module per command, each parsing its arguments and
calling the library function that does the work.

Every command exits with 0 on success and with 2 and a one-line message on bad input;
outputs are written atomically and never overwrite an existing file without ``--force``.
The library's warnings (the reference engine running for want of Numba, tiles too small
for their fixed cost) are one line each on stderr.
SIGINT and SIGTERM are handled alike (:mod:`ssimref.interrupt`): a job stops at a tile
boundary; a resumable one (``distance``, ``kernel``) keeps its completed tiles and prints
the command that resumes it (exit status 130 or 143), the others remove what they
started.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from .. import __version__, interrupt
from ..engines import SlowEngineWarning
from ..generative.trainer import TrainingInterrupted
from ..jobs import JobError
from . import demo, distance, evaluate, experiment, gmmn, kernel, mmd, sample, train, verify
from .common import OneLineParser, cli_wording, shown_default

__all__ = ["main", "build_parser", "COMMANDS", "iter_parsers"]

#: The command modules, in the order ``ssimref --help`` lists them.
COMMANDS = (distance, kernel, mmd, demo, verify, train, sample, evaluate, gmmn, experiment)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``ssimref`` with every command of :data:`COMMANDS`.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = OneLineParser(
        prog="ssimref", description="SSIM as a first-class distance for kernel methods and "
        "generative models.")
    parser.add_argument("--version", action="version", version=f"ssimref {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    for _, each in iter_parsers(parser):
        each.formatter_class = _DefaultsFormatter
    return parser


def iter_parsers(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
                 ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """``parser`` and every subcommand's parser below it, with the words that name them.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    prefix : tuple of str, default ()
        The words naming ``parser``.

    Yields
    ------
    (tuple of str, argparse.ArgumentParser)
        E.g. ``(("gmmn", "train"), parser of "ssimref gmmn train")``, ``parser`` first.
    """
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from iter_parsers(sub, prefix + (name,))


class _DefaultsFormatter(argparse.HelpFormatter):
    """argparse's help, with "(default: X)" after every option that has a default and
    whose help does not state it already; subcommand names measured with the indent they
    are printed with (argparse 3.11 measures them without it, which pushes a name longer
    than the options, such as ``experiment``, onto a line of its own)."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if action.help is argparse.SUPPRESS or not hasattr(action, "_get_subactions"):
            return
        names = [self._format_action_invocation(sub) for sub in action._get_subactions()]
        if names:
            self._action_max_length = max(self._action_max_length, max(map(len, names))
                                          + self._current_indent + self._indent_increment)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.help == argparse.SUPPRESS:
            return action.help
        if action.option_strings and action.nargs != 0 and action.default is not None \
                and action.default != argparse.SUPPRESS and "default" not in text:
            shown = shown_default(action.default).replace("%", "%%")
            text = f"{text} (default: {shown})" if text else f"default: {shown}"
        return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        0 on success; 2 with a one-line message on stderr for bad input (ValueError,
        TypeError, OSError, ImportError); 1 when a resumable job failed (its completed
        tiles are kept; the command that resumes it is printed); 130 after SIGINT and
        143 after SIGTERM (a resumable job keeps its completed tiles and prints the
        command that resumes it; other commands remove what they started, so each output
        is complete or absent), the same for a training run stopped at a step boundary
        (its checkpoint written); 1 from ``verify`` when an implementation differs.

    Raises
    ------
    SystemExit
        From argparse, for unknown arguments and ``--help``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    installed = interrupt.install()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return args.func(args)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"ssimref: error: {cli_wording(str(exc), parser)}", file=sys.stderr)
        return 2
    except JobError as exc:
        print(f"ssimref: error: {exc}; resume with:\n  {interrupt.resume_command(argv)}",
              file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:  # a training run stopped at a step boundary
        print(f"ssimref: {exc}", file=sys.stderr)
        return interrupt.exit_status(exc)
    except KeyboardInterrupt as exc:  # SIGINT or SIGTERM (ssimref.interrupt)
        print(interrupt.message(exc, argv), file=sys.stderr)
        return interrupt.exit_status(exc)
    finally:
        if installed:
            interrupt.uninstall()


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: Any = None, line: str | None = None) -> None:
    """Show a warning of the library as one line on stderr ("note" for the engine note),
    without Python's file and line."""
    kind = "note" if issubclass(category, SlowEngineWarning) else "warning"
    print(f"ssimref: {kind}: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
