"""``ssimref verify``: check another SSIM implementation against the oracle and name the
convention it differs in."""

from __future__ import annotations

import argparse

NAME = "verify"
HELP = "check another SSIM implementation against the oracle"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``verify`` command to the subcommands ``sub`` of ``ssimref``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        From :meth:`argparse.ArgumentParser.add_subparsers`.
    """
    p = sub.add_parser(NAME, help=HELP,
                       description="Run an SSIM implementation over ssimref's case corpus, "
                       "compare its mean SSIM with the loop-based oracle under a stated "
                       "convention, and fit the convention knobs to explain differences. "
                       "Exit code 0 when every case passes, 1 when some differ, 2 on errors "
                       "(unknown target, a library that does not import).")
    p.add_argument("target", nargs="?", default="skimage",
                   help="skimage, pytorch_msssim, piq, kornia, torchmetrics, or "
                   "module:function (module also looked up in the current directory) called "
                   "as fn(x, y, data_range=L) on each case's own 2-D arrays (uint8 cases as "
                   "uint8; colour cases channel by channel) and returning mean SSIM")
    p.add_argument("--convention", help="what the target should compute: a preset "
                   "(wang2004, ssim.m, skimage, skimage-gaussian, paper, pytorch_msssim, piq, "
                   "kornia, torchmetrics); default: the library's documented convention, "
                   "wang2004 for module:function")
    p.add_argument("--tolerance", type=float, default=1e-6,
                   help="absolute tolerance on mean SSIM (default 1e-6)")
    p.add_argument("--cases", help="comma-separated case names (default: all; see "
                   "--list-cases)")
    p.add_argument("--list-cases", action="store_true", help="list the case names and exit")
    p.add_argument("--hide-torchvision", action="store_true",
                   help="load piq/torchmetrics with a placeholder torchvision when the "
                   "installed one does not import (their SSIM does not use it)")
    p.set_defaults(func=run)



def run(args: argparse.Namespace) -> int:
    """Run ``ssimref verify`` with the parsed ``args``.

    Parameters
    ----------
    args : argparse.Namespace
        From the parser of :func:`add_parser`.

    Returns
    -------
    int
        The exit status: 0 when every case passes, 1 when some differ.

    Raises
    ------
    ValueError, ImportError
        For an unknown convention or target, or a library that does not import.
    """
    from ..verification.cases import CASE_NAMES
    from ..verification.conformance import check
    from ..verification.conventions import PRESETS
    from ..validation import check_positive

    if args.list_cases:
        for name in CASE_NAMES:
            print(name)
        return 0
    check_positive(args.tolerance, "--tolerance")
    if args.convention is not None and args.convention not in PRESETS:
        raise ValueError(f"--convention must be one of {', '.join(sorted(PRESETS))}, got "
                         f"{args.convention!r}")
    cases = None if args.cases is None else [c.strip() for c in args.cases.split(",") if c]
    result = check(args.target, args.convention, cases=cases, tolerance=args.tolerance,
                   hide_torchvision=args.hide_torchvision)
    print(result)
    return 0 if result.passed else 1
