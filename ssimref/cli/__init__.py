"""The ``ssimref`` command line: one module per command, each parsing its arguments and
calling the library function that does the work.

Every command exits with 0 on success and with 2 and a one-line message on bad input;
outputs are written atomically and never overwrite an existing file without ``--force``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..generative.trainer import TrainingInterrupted
from . import demo, distance, evaluate, experiment, gmmn, kernel, mmd, sample, train, verify

__all__ = ["main", "build_parser", "COMMANDS"]

#: The command modules, in the order ``ssimref --help`` lists them.
COMMANDS = (distance, kernel, mmd, demo, verify, train, sample, evaluate, gmmn, experiment)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``ssimref`` with every command of :data:`COMMANDS`.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="ssimref", description="SSIM as a first-class distance for kernel methods and "
        "generative models.")
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
        TypeError, OSError, ImportError); 130 after Ctrl-C (no output is left); 1 from
        ``verify`` when an implementation differs.

    Raises
    ------
    SystemExit
        From argparse, for unknown arguments and ``--help``.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"ssimref: error: {exc}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        print(f"ssimref: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("ssimref: interrupted; files are replaced atomically, so each output is "
              "complete or absent (a training run resumes from its last checkpoint with "
              "--resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
