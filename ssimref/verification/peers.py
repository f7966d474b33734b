"""Adapters that call other libraries' SSIM functions the way the conformance runner does.

A target is any callable ``fn(x, y, data_range=L) -> float`` returning the mean SSIM of two
images. The adapters below wrap libraries whose signatures differ; each declares the
convention its library documents (:data:`ssimref.verification.conventions.PRESETS`), and
receives the case images as they are (NumPy arrays in their own dtype and memory layout,
``(H, W)`` or ``(H, W, C)``), so that integer, float32 and non-contiguous inputs are
handled by the library itself. PyTorch libraries get ``torch.from_numpy`` tensors of
shape ``(1, C, H, W)`` in the array's dtype (float64 stays float64).

Adapters import their library only when called for, and report a library that is missing
or fails to import as :class:`PeerUnavailable` with the reason.

torchvision
    piq and torchmetrics import torchvision at import time (for their feature-network
    metrics) although their SSIM code does not use it. Where torchvision is installed but
    broken (for example a CUDA build of torchvision beside a CPU build of torch: "operator
    torchvision::nms does not exist"), both fail to import. ``hide_torchvision=True``
    makes :func:`load_peer` put a placeholder torchvision into the import system first: its
    modules import, and anything taken from them raises when used. This changes the
    process's imports for the rest of its life, so it is opt-in.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import types
from dataclasses import dataclass

import numpy as np

from .conventions import PRESETS, Convention

__all__ = ["Peer", "PeerUnavailable", "PEERS", "load_peer", "load_target",
           "hide_broken_torchvision"]


class PeerUnavailable(ImportError):
    """A library that is not installed or cannot be imported here."""


@dataclass
class Peer:
    """A callable SSIM target with its library's name, version and documented convention.

    ``channels`` says whether ``fn`` accepts ``(H, W, C)`` images; when False the runner
    calls it per channel and averages. ``native`` says whether ``fn`` receives the case's
    own dtype (True: the adapters, plain callables and ``module:function`` targets) or
    float64 copies of non-float64 cases (False); the report's table shows which.
    """

    name: str
    fn: object
    convention: Convention
    version: str = ""
    channels: bool = False
    native: bool = False
    note: str = ""

    def __call__(self, x, y, data_range):
        return self.fn(x, y, data_range=data_range)


def _torch_image(a):
    import torch

    a = np.asarray(a)
    t = torch.from_numpy(a if a.flags.c_contiguous or a.flags.f_contiguous else a.copy())
    return t.permute(2, 0, 1)[None] if t.ndim == 3 else t[None, None]


def _skimage():
    skimage = _import("skimage.metrics", "scikit-image")
    from skimage.metrics import structural_similarity

    def fn(x, y, data_range):
        axis = -1 if np.ndim(x) == 3 else None
        return float(structural_similarity(x, y, data_range=data_range, channel_axis=axis))
    return Peer("skimage", fn, PRESETS["skimage"], _version("scikit-image", skimage),
                channels=True, native=True,
                note="structural_similarity(x, y, data_range=L, channel_axis=-1 for colour)")


def _pytorch_msssim():
    mod = _import("pytorch_msssim", "pytorch-msssim")

    def fn(x, y, data_range):
        return float(mod.ssim(_torch_image(x), _torch_image(y), data_range=data_range))
    return Peer("pytorch_msssim", fn, PRESETS["pytorch_msssim"],
                _version("pytorch-msssim", mod), channels=True, native=True,
                note="pytorch_msssim.ssim(X, Y, data_range=L), X of shape (1, C, H, W)")


def _piq():
    mod = _import("piq", "piq")

    def fn(x, y, data_range):
        return float(mod.ssim(_torch_image(x), _torch_image(y), data_range=data_range))
    return Peer("piq", fn, PRESETS["piq"], _version("piq", mod), channels=True, native=True,
                note="piq.ssim(X, Y, data_range=L) (downsample=True by default)")


def _kornia():
    mod = _import("kornia.metrics", "kornia")

    def fn(x, y, data_range):
        return float(mod.ssim(_torch_image(x), _torch_image(y), 11,
                              max_val=float(data_range)).mean())
    return Peer("kornia", fn, PRESETS["kornia"], _version("kornia", sys.modules["kornia"]),
                channels=True, native=True,
                note="kornia.metrics.ssim(X, Y, 11, max_val=L).mean() (eps=1e-12 default)")


def _torchmetrics():
    _import("torchmetrics", "torchmetrics")
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    def fn(x, y, data_range):
        return float(tm_ssim(_torch_image(x), _torch_image(y), data_range=data_range))
    return Peer("torchmetrics", fn, PRESETS["torchmetrics"],
                _version("torchmetrics", sys.modules["torchmetrics"]), channels=True,
                native=True, note="structural_similarity_index_measure(X, Y, data_range=L)")


PEERS = {"skimage": _skimage, "pytorch_msssim": _pytorch_msssim, "piq": _piq,
         "kornia": _kornia, "torchmetrics": _torchmetrics}


def _version(dist, module):
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:  # metadata missing: fall back on the module attribute
        return str(getattr(module, "__version__", "unknown"))


def _import(module, dist):
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or e.g. RuntimeError from a broken torchvision
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ModuleNotFoundError) and exc.name and \
                exc.name.split(".")[0] == module.split(".")[0]:
            raise PeerUnavailable(f"{dist} is not installed (pip install {dist})") from None
        hint = ""
        if "torchvision" in reason or _mentions_torchvision(exc):
            hint = ("; torchvision is installed but does not import (often a torchvision "
                    "build that does not match torch). Fix the install, or pass "
                    "hide_torchvision=True (CLI: --hide-torchvision) to load it without "
                    "torchvision")
        raise PeerUnavailable(f"{dist} failed to import ({reason}){hint}") from exc


def _mentions_torchvision(exc):
    tb = exc.__traceback__
    while tb is not None:
        if "torchvision" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def load_peer(name, hide_torchvision=False) -> Peer:
    """The adapter of a named library: one of :data:`PEERS`.

    Raises
    ------
    ValueError
        For an unknown name.
    PeerUnavailable
        When the library is missing or does not import (the message says why).
    """
    if name not in PEERS:
        raise ValueError(f"unknown library {name!r}; adapters exist for {sorted(PEERS)} "
                         "(or give a module:function target)")
    if hide_torchvision:
        hide_broken_torchvision()
    return PEERS[name]()


def load_target(spec, hide_torchvision=False):
    """A library adapter by name, or a ``module:function`` callable.

    A ``module:function`` target is wrapped as a :class:`Peer` with the Wang 2004
    convention, called as ``fn(x, y, data_range=L)`` with each case's own arrays (their
    dtype and memory layout; colour cases channel by channel). ``module`` is imported as
    usual, and when it is not found, from the current directory too (which is on
    ``sys.path`` for that import only).

    Raises
    ------
    ValueError
        For an unknown library name or a missing attribute.
    PeerUnavailable
        When the module (or library) cannot be imported.
    TypeError
        When the attribute is not callable.
    """
    if ":" not in spec:
        return load_peer(spec, hide_torchvision)
    module_name, _, attr = spec.partition(":")
    if hide_torchvision:
        hide_broken_torchvision()
    try:
        module = _import_from_here_too(module_name)
    except Exception as exc:
        raise PeerUnavailable(f"cannot import {module_name!r} ({type(exc).__name__}: "
                              f"{exc})") from exc
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise ValueError(f"{module_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise TypeError(f"{spec} is not callable")
    return Peer(spec, fn, PRESETS["wang2004"],
                _version(module_name.split(".")[0], sys.modules[module_name.split(".")[0]]),
                native=True,
                note=f"{spec}(x, y, data_range=L) on each case's own arrays (colour cases "
                     "channel by channel)")


def _import_from_here_too(name):
    """``importlib.import_module(name)``, retried with the current directory on sys.path
    (for this import only) when the module itself is not found."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        here = os.getcwd()
        missing = (exc.name or "").split(".")[0]
        if missing != name.split(".")[0] or here in sys.path:
            raise  # a dependency of the module is missing, or here was searched already
        sys.path.insert(0, here)
        try:
            importlib.invalidate_caches()
            return importlib.import_module(name)
        finally:
            sys.path.remove(here)


# ------------------------------------------------------------------------ torchvision stub
class _PlaceholderMeta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _placeholder(f"{cls.__qualname__}.{name}")


def _unavailable(self, *args, **kwargs):
    raise RuntimeError(f"{type(self).__qualname__} is unavailable: torchvision was hidden "
                       "because it does not import here")


def _placeholder(qualname):
    """A class standing for any torchvision object: it can be subclassed and its
    attributes read (more placeholders); creating an instance raises."""
    return _PlaceholderMeta(qualname.rsplit(".", 1)[-1], (),
                            {"__init__": _unavailable, "__qualname__": qualname})


class _PlaceholderModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _placeholder(f"{self.__name__}.{name}")


class _TorchvisionPlaceholder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _PlaceholderModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def hide_broken_torchvision() -> bool:
    """Replace torchvision by a placeholder when (and only when) it fails to import.

    Returns True when the placeholder is (now) in place, False when torchvision imports
    normally and was left alone.
    """
    if any(isinstance(f, _TorchvisionPlaceholder) for f in sys.meta_path):
        return True
    try:
        importlib.import_module("torchvision")
        return False
    except Exception:
        pass
    # Drop what the failed imports left behind (torchvision's submodules and any library
    # whose import stopped half-way because of it) so that they import afresh.
    for name in list(sys.modules):
        if name.split(".")[0] in ("torchvision", "torchmetrics", "piq"):
            del sys.modules[name]
    sys.meta_path.insert(0, _TorchvisionPlaceholder())
    return True
