"""Calling a target: from what the user names to one mean-SSIM value per case.

A target is a callable, a :class:`~ssimref.verification.peers.Peer` or a name
(:func:`~ssimref.verification.peers.load_target`). :func:`call` runs it on one case
(channel by channel for targets that take 2-D images), records the warnings it raised,
and turns an exception into a message instead of stopping the run.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..conventions import Convention, preset
from ..peers import Peer, load_target

__all__ = ["as_peer", "resolve_convention", "fresh_copy", "call"]


def as_peer(fn, hide_torchvision=False):
    """A :class:`Peer` for a callable, a Peer or a target name."""
    if isinstance(fn, str):
        return load_target(fn, hide_torchvision)
    if isinstance(fn, Peer):
        return fn
    if callable(fn):
        return Peer(getattr(fn, "__qualname__", repr(fn)), fn, preset("wang2004"))
    raise TypeError(f"fn must be callable or a target name, got {type(fn).__name__}")


def resolve_convention(convention, peer):
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


def call(peer, case):
    """``(value, message)``: the implementation's mean SSIM on a case, or None and why."""
    x, y = fresh_copy(case.x), fresh_copy(case.y)
    if not peer.native:
        x, y = (a if a.dtype == np.float64 else a.astype(np.float64) for a in (x, y))
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
