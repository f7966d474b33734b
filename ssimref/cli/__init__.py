"""The ``ssimref`` command line: one module per command, each parsing its arguments and
calling the library function that does the work.

Every command exits with 0 on success and with 2 and a one-line message on bad input;
outputs are written atomically and never overwrite an existing file without ``--force``.
SIGINT and SIGTERM are handled alike (:mod:`ssimref.interrupt`): a job stops at a tile
boundary; a resumable one (``distance``, ``kernel``) keeps its completed tiles and prints
the command that resumes it (exit status 130 or 143), the others remove what they
started.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__, interrupt
from ..generative.trainer import TrainingInterrupted
from ..jobs import JobError
from . import demo, distance, evaluate, experiment, gmmn, kernel, mmd, sample, train, verify
from .common import OneLineParser

__all__ = ["main", "build_parser", "COMMANDS"]

#: The command modules, in the order ``ssimref --help`` lists them.
COMMANDS = (distance, kernel, mmd, demo, verify, train, sample, evaluate, gmmn, experiment)


class _HelpFormatter(argparse.HelpFormatter):
    """argparse (3.11) measures the names of subcommands without the indent it prints
    them with, so a name longer than the options (``experiment``) is pushed onto a line
    of its own; this formatter counts that indent."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if action.help is argparse.SUPPRESS or not hasattr(action, "_get_subactions"):
            return
        names = [self._format_action_invocation(sub) for sub in action._get_subactions()]
        if names:
            self._action_max_length = max(self._action_max_length, max(map(len, names))
                                          + self._current_indent + self._indent_increment)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``ssimref`` with every command of :data:`COMMANDS`.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = OneLineParser(
        prog="ssimref", description="SSIM as a first-class distance for kernel methods and "
        "generative models.", formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"ssimref {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


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
    args = build_parser().parse_args(argv)
    installed = interrupt.install()
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"ssimref: error: {exc}", file=sys.stderr)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
