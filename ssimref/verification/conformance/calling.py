"""Calling a target: from what the user names to one mean-SSIM value per case.

A target is a callable, a :class:`~ssimref.verification.peers.Peer` or a name
(:func:`~ssimref.verification.peers.load_target`). :func:`call` runs it on one case
(channel by channel for targets that take 2-D images), records the warnings it raised,
and turns an exception into a message instead of stopping the run.

What a target receives: fresh, writable copies of the case's arrays in the case's own
dtype and memory layout (uint8 cases arrive as uint8, Fortran-ordered ones as
Fortran-ordered), unless its :class:`~ssimref.verification.peers.Peer` says
``native=False``, when non-float64 arrays are converted to float64 first.
:func:`passed_as` describes exactly what was passed, for the report's table.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..conventions import Convention, preset
from ..peers import Peer, load_target

__all__ = ["as_peer", "resolve_convention", "fresh_copy", "arguments", "passed_as", "call"]


def as_peer(fn, hide_torchvision=False):
    """A :class:`Peer` for a callable, a Peer or a target name."""
    if isinstance(fn, str):
        return load_target(fn, hide_torchvision)
    if isinstance(fn, Peer):
        return fn
    if callable(fn):
        return Peer(getattr(fn, "__qualname__", repr(fn)), fn, preset("wang2004"),
                    native=True, note="fn(x, y, data_range=L) on each case's own arrays")
    raise TypeError(f"fn must be callable or a target name, got {type(fn).__name__}")


def resolve_convention(convention, peer):
    """The stated convention: ``convention`` as given (preset name, Convention or
    SSIMConfig), or the target's documented one when None."""
    if convention is None:
        return peer.convention
    if isinstance(convention, Convention):
        return convention
    if isinstance(convention, str):
        return preset(convention)
    from ..config import SSIMConfig
    if isinstance(convention, SSIMConfig):
        return Convention.from_config(convention)
    raise TypeError("convention must be None, a preset name, a Convention or an "
                    f"SSIMConfig, got {type(convention).__name__}")


def fresh_copy(a):
    """A writable copy of ``a`` in the same dtype and memory layout: C- or F-ordered, or
    a strided view (every 2nd element of a larger buffer) for a non-contiguous array.
    Targets get these, so that one that writes into its input cannot change the cached
    case for the next target."""
    if a.flags.c_contiguous or a.flags.f_contiguous:
        return a.copy(order="K")
    buffer = np.empty(tuple(2 * n for n in a.shape), dtype=a.dtype)
    view = buffer[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    return view


def arguments(peer, case):
    """The two arrays the target is called with (before any per-channel split)."""
    x, y = fresh_copy(case.x), fresh_copy(case.y)
    if not peer.native:
        x, y = (a if a.dtype == np.float64 else a.astype(np.float64) for a in (x, y))
    return x, y


def passed_as(peer, case) -> str:
    """What the target receives on ``case``: shape, dtype, layout when not C-ordered, and
    the per-channel calls of a colour case for a target that takes 2-D images."""
    x, _ = arguments(peer, case)
    if x.ndim == 3 and not peer.channels:
        x = x[:, :, 0]
        suffix = f", per channel (x{case.channels})"
    else:
        suffix = ""
    layout = ("" if x.flags.c_contiguous else " F-order" if x.flags.f_contiguous
              else " strided")
    return "x".join(map(str, x.shape)) + f" {x.dtype}{layout}{suffix}"


def call(peer, case):
    """``(value, message)``: the implementation's mean SSIM on a case (NaN and Inf as
    returned), or None and why it failed."""
    x, y = arguments(peer, case)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if x.ndim == 3 and not peer.channels:
                value = math.fsum(float(peer(x[:, :, c], y[:, :, c], case.data_range))
                                  for c in range(x.shape[2])) / x.shape[2]
            else:
                value = float(peer(x, y, case.data_range))
        except Exception as exc:  # a library that rejects the input: report, go on
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return None, f"raised {type(exc).__name__}: {text}"[:200]
    notes = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}"[:160]
                    for w in caught})
    return value, "; ".join(notes)
