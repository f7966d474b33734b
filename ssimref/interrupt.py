"""One policy for interrupted work: SIGINT (Ctrl-C) and SIGTERM alike.

- A job stops at a tile (or step) boundary: while a tile is computed, written and
  recorded, a first signal is only noted; the executor (:mod:`ssimref.executor`) checks
  for it between tiles with :func:`boundary` and raises :class:`Interrupted` there. A
  second signal raises at once. Outside such a section a signal raises at once.
- A resumable job keeps what is complete and says how to resume: it re-raises the
  interruption with :func:`keep`, naming what it kept; the command line prints the exact
  command to run again with ``--resume`` (:func:`message`).
- A partial result never stands under the final name (:mod:`ssimref.io`,
  :mod:`ssimref.stores`), and a job that is not resumable removes what it started (its
  temporary files are deleted as the exception passes).

:func:`install` sets the handlers (the command line does, in the main thread); a library
caller that installs nothing keeps Python's default: Ctrl-C raises
:class:`KeyboardInterrupt` at once, which every writer here also survives (a tile counts
as complete only once it is recorded after its write).
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

__all__ = ["Interrupted", "install", "uninstall", "deferred", "boundary", "keep", "message",
           "exit_status", "resume_command"]


class Interrupted(KeyboardInterrupt):
    """A job stopped by SIGINT or SIGTERM.

    Attributes
    ----------
    signal_name : str
        "SIGINT" or "SIGTERM".
    kept : str or None
        What a resumable job kept (e.g. "D.zarr (12 of 40 tiles complete)"), None when
        nothing was kept.
    """

    def __init__(self, signal_name: str = "SIGINT", kept: str | None = None) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.kept = kept


_state: dict[str, Any] = {"installed": False, "depth": 0, "pending": None, "previous": {}}
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _handler(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    if _state["depth"] > 0 and _state["pending"] is None:
        _state["pending"] = name  # stop at the next tile boundary
        return
    _state["pending"] = None
    raise Interrupted(name)


def install() -> bool:
    """Handle SIGINT and SIGTERM by this policy. Idempotent.

    Returns
    -------
    bool
        Whether the handlers are installed (only the main thread can install them).
    """
    if _state["installed"]:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    for sig in _SIGNALS:
        _state["previous"][sig] = signal.signal(sig, _handler)
    _state["installed"] = True
    return True


def uninstall() -> None:
    """Restore the handlers :func:`install` replaced."""
    if not _state["installed"]:
        return
    for sig, previous in _state["previous"].items():
        signal.signal(sig, previous)
    _state.update(installed=False, depth=0, pending=None, previous={})


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A section (a run over tiles) in which a first signal waits for :func:`boundary`.

    Yields
    ------
    None

    Raises
    ------
    Interrupted
        On leaving the section normally when a signal came after the last boundary.
    """
    _state["depth"] += 1
    try:
        yield
    except BaseException:
        _state["depth"] -= 1
        if _state["depth"] == 0:
            _state["pending"] = None
        raise
    _state["depth"] -= 1
    if _state["depth"] == 0:
        boundary()  # a signal that came during the last tile stops the job here


def boundary() -> None:
    """Call between tiles: stop there when a signal came.

    Raises
    ------
    Interrupted
        When a signal arrived since the section began (or the last boundary).
    """
    pending = _state["pending"]
    if pending is not None:
        _state["pending"] = None
        raise Interrupted(pending)


def keep(exc: BaseException, kept: str) -> Interrupted:
    """An interruption that names what a resumable job kept.

    Parameters
    ----------
    exc : BaseException
        SIGINT's KeyboardInterrupt or an :class:`Interrupted`.
    kept : str
        What was kept, e.g. "D.zarr (incomplete: 12 of 40 tiles of matrix complete)".

    Returns
    -------
    Interrupted
        To be raised.
    """
    return Interrupted(getattr(exc, "signal_name", "SIGINT"), kept)


def exit_status(exc: BaseException) -> int:
    """The exit status after an interruption.

    Parameters
    ----------
    exc : BaseException
        KeyboardInterrupt or :class:`Interrupted`.

    Returns
    -------
    int
        128 + the signal number: 130 for SIGINT, 143 for SIGTERM.
    """
    return 128 + int(getattr(signal, getattr(exc, "signal_name", "SIGINT")))


def message(exc: BaseException, argv: Sequence[Any]) -> str:
    """What the command line prints when ``ssimref *argv`` was interrupted.

    Parameters
    ----------
    exc : BaseException
        KeyboardInterrupt or :class:`Interrupted`.
    argv : sequence
        The command's arguments.

    Returns
    -------
    str
        What was kept and the command that resumes; for a job that keeps nothing, that
        every output is complete or absent.
    """
    name = getattr(exc, "signal_name", "SIGINT")
    kept = getattr(exc, "kept", None)
    if kept is None:
        return (f"ssimref: interrupted ({name}); files are replaced atomically, so each "
                "output is complete or absent")
    return (f"ssimref: interrupted ({name}); kept {kept}; resume with:\n"
            f"  {resume_command(argv)}")


def resume_command(argv: Sequence[Any]) -> str:
    """The command that resumes ``ssimref *argv``.

    Parameters
    ----------
    argv : sequence
        The command's arguments.

    Returns
    -------
    str
        ``ssimref *argv --resume``, quoted for a POSIX shell.
    """
    argv = [str(a) for a in argv]
    return shlex.join(["ssimref", *argv, *([] if "--resume" in argv else ["--resume"])])
