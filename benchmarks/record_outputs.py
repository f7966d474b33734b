"""Record the outputs of every public function and CLI command, and compare two recordings.

This is the judge of a refactoring: record at the commit before it, record again after it,
compare. It checks that a change of internal structure left every number where it was.

    PYTHONPATH=/path/to/checkout python benchmarks/record_outputs.py record DIR
    python benchmarks/record_outputs.py compare BASE NEW [--all] [--report FILE] [--per-part]

``compare`` prints every entry that is not bit-identical (``--all``: every entry) with
its largest absolute and relative difference and PASS/FAIL, the entries found on one
side only, the public names missing, the changed sites (function by function) and a
summary line; it exits with 1 on any FAIL or entry found on one side only.

``record`` imports ``ssimref`` from ``PYTHONPATH`` (never from this script's location: the
script can judge any checkout, and the checkout it judges is printed and stored in the
manifest), computes a fixed list of calls on a deterministic corpus and writes

- ``DIR/<section>.npz``: every value as arrays (numbers, text as unicode arrays; loadable
  with ``np.load(..., allow_pickle=False)``), under opaque keys;
- ``DIR/manifest.json``: for each entry its category, how it was called, its outcome
  ("ok", "error" with the exception's type and message, or "missing" when a public name
  does not exist) and its parts (name, file, key, type); also the seconds each call took
  (informative: ``compare`` ignores them).

Entries are named ``area/function/inputs/options`` (e.g.
``core/distance_matrix/patches40/skimage/eq2/sym-numba-sq-wm0.2``). Each call runs on its own:
one failure is recorded and the recording goes on.

Corpus: generated images (uint8 and float, 2-D and (H, W, 3), 9x9 to 28x28, images as tall
as the window (one row of windows), identical pairs, constant images, a large offset, a
duplicated image in a stack), the benchmark patches (``common.patches``: 28x28 uint8 from
scikit-image's camera() and astronaut()), scikit-learn's digits (CLI, training) and the
verification package's cases. Configurations: Gaussian and uniform windows of sizes 3, 5,
7, 11, strides 1, 2 and the size, the three covariance normalisations, the presets.
Functions are found only through the package ``__init__`` files (``ssimref``,
``ssimref.kernels``, ``ssimref.gmmn``, ``ssimref.verification``; the verification oracle,
cases and golden file through their modules) and the CLI (``ssimref.cli.main`` in-process,
and ``python -m ssimref`` in a subprocess), so that implementation modules can move.

Categories and the rule ``compare`` applies:

- "forward": SSIM maps and components, distances, distance matrices, kernel and Gram
  matrices (centred or not), kernel parameters from medians, spectra, CLI matrices, text.
  Must be bit-identical.
- "reduction": values that sum over tiles or are trained: MMD^2 and CMMD^2 values,
  gradients and VJPs of any kind, permutation-test statistics and p-values, training
  metrics and weights, GMMN samples and evaluations. Float parts must agree within
  ``1e-13`` relative to the entry's largest float magnitude (``--per-part``: each part's
  own, stricter); integer parts (counts, steps, labels) exactly; text with its numbers
  within that tolerance or one unit of their last printed digit; PNG pixels within one
  intensity level.

A call that returns a value and a gradient is split into two entries (``.../K`` or
``.../values`` forward, ``.../grad(s)`` reduction).

Any change of outcome (ok / error / missing, another exception or message, another part,
shape or dtype) is a FAIL in both categories. Time-varying parts are masked before
recording: durations ("1.23 s"), timestamps, the temporary folder, JSON fields named
``seconds`` / ``*_seconds``, and checkpoint checksums (``np.savez`` stamps the zip members
with the time of writing, so the SHA-256 of a checkpoint changes from run to run).

BLAS and Numba run on one thread while recording: matrix products are then reproducible,
the Numba engine computes every pair independently whatever its thread count, and on a
loaded machine the many small parallel launches of tiny tiles would otherwise wait for
descheduled threads.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import patches  # noqa: E402  (benchmarks/common.py, beside this script)

FORMAT = "ssimref-recorded-outputs/1"
KINDS = ("eq1", "eq1-uncentered", "eq2")
REL_TOL = 1e-13
CATEGORIES = ("forward", "reduction")


# =============================================================================== values
class Missing(Exception):
    """A public name that the checkout does not have."""


def api(module, name):
    """``module.name`` looked up at call time (a missing one raises :class:`Missing`)."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise Missing(f"module {module} does not import: {exc}") from None
    try:
        return getattr(mod, name)
    except AttributeError:
        raise Missing(f"{module}.{name} does not exist") from None


def S(name):
    return api("ssimref", name)


def KER(name):
    return api("ssimref.kernels", name)


def GM(name):
    return api("ssimref.gmmn", name)


def VER(name):
    return api("ssimref.verification", name)


class Named:
    """An input with a short label used in entry names and call descriptions."""

    def __init__(self, label, value):
        self.label, self.value = label, value

    def __repr__(self):
        return self.label


def _value(a):
    return a.value if isinstance(a, Named) else a


def describe_call(func, args, kwargs):
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{func}({', '.join(parts)})"


def flatten(value, prefix="value"):
    """Yield ``(part name, array or None)`` for a result: arrays, numbers, text, None,
    tuples, lists, dicts and dataclasses (recursively)."""
    if value is None:
        yield prefix, None
    elif isinstance(value, str):
        yield prefix, np.array(value)
    elif isinstance(value, (bool, np.bool_)):
        yield prefix, np.array(bool(value))
    elif isinstance(value, (int, np.integer)):
        value = int(value)
        # beyond int64 (e.g. the 128-bit state of a random generator): as decimal text
        yield prefix, (np.array(value, dtype=np.int64) if -2**63 <= value < 2**63
                       else np.array(str(value)))
    elif isinstance(value, (float, np.floating)):
        yield prefix, np.asarray(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from flatten(getattr(value, f.name), f"{prefix}.{f.name}")
    elif isinstance(value, dict):
        for k in sorted(value, key=str):
            yield from flatten(value[k], f"{prefix}.{k}")
    elif isinstance(value, (tuple, list)):
        if value and all(isinstance(v, (int, float, np.integer, np.floating))
                         and not isinstance(v, (bool, np.bool_)) for v in value):
            yield prefix, np.asarray(value)
        else:
            for i, v in enumerate(value):
                yield from flatten(v, f"{prefix}.{i}")
    elif isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        a = np.array(value, copy=True)
        if a.dtype == object:
            raise TypeError(f"part {prefix} is an object array; not recordable without "
                            "pickles")
        yield prefix, a
    else:
        yield prefix, np.array(f"<{type(value).__name__}> {value!r}")


def part_type(a):
    if a is None:
        return "none"
    if a.dtype.kind == "U":
        return "text"
    return "array"


# ============================================================================= recorder
class Recorder:
    """Runs calls, keeps their parts in memory per section, writes them at the end."""

    def __init__(self, out_dir, tmp_root):
        self.out_dir = Path(out_dir)
        self.tmp_root = str(tmp_root)
        self.entries = {}
        self.arrays = {}
        self.section = "core"
        self.counter = 0
        self.timings = {}

    # -- masking of time-varying text
    def mask(self, text):
        for root in {self.tmp_root, os.path.realpath(self.tmp_root)}:
            text = text.replace(root, "<TMP>")
        text = re.sub(r"\d+\.\d+ s\b", "<SECONDS> s", text)
        text = re.sub(r"(seconds[\"']?\s*[:=]\s*)[-+0-9.eE]+", r"\1<SECONDS>", text)
        text = re.sub(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?( UTC)?",
                      "<TIMESTAMP>", text)
        return re.sub(r"\.\d+\.tmp\b", ".<PID>.tmp", text)

    def _store(self, name, category, call, status, value=None, error=None, warned=()):
        if name in self.entries:
            raise RuntimeError(f"entry {name!r} recorded twice")
        entry = {"category": category, "call": self.mask(call), "status": status,
                 "file": f"{self.section}.npz", "parts": []}
        if error is not None:
            entry["error"] = {"type": type(error).__name__, "message": self.mask(str(error))}
        if status == "ok":
            try:
                parts = list(flatten(value))
            except Exception as exc:  # noqa: BLE001  (an unrecordable result is an outcome)
                entry.update(status="error", error={
                    "type": type(exc).__name__, "message": f"recording the result: {exc}"})
                self.entries[name] = entry
                return
            store = self.arrays.setdefault(entry["file"], {})
            if warned:
                parts.append(("warnings", np.array("\n".join(warned))))
            for part, a in parts:
                if a is not None and a.dtype.kind == "U":
                    a = np.array(self.mask(str(a))) if a.ndim == 0 else a
                key = None
                if a is not None:
                    key = f"a{self.counter:06d}"
                    self.counter += 1
                    store[key] = a
                entry["parts"].append({"name": part, "key": key, "type": part_type(a)})
        self.entries[name] = entry

    def run(self, name, category, call, thunk, split=None):
        """Record ``thunk()`` as entry ``name``; with ``split`` (a dict suffix ->
        (category, selector)) record one entry ``name/suffix`` per selected value."""
        assert category in CATEGORIES
        warned = []
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                value = thunk()
            warned = sorted({f"{w.category.__name__}: {w.message}" for w in caught
                             if _ours(w)})
            status, error = "ok", None
        except Missing as exc:
            status, error, value = "missing", exc, None
        except Exception as exc:  # noqa: BLE001  (every outcome is recorded)
            status, error, value = "error", exc, None
        seconds = round(time.perf_counter() - start, 4)
        if split is None:
            self._store(name, category, call, status, value, error, warned)
            self.entries[name]["seconds"] = seconds
            return value
        for suffix, (cat, select) in split.items():
            sub_status, sub_error, sub_value = status, error, None
            if status == "ok":
                try:
                    sub_value = select(value)
                except Exception as exc:  # noqa: BLE001
                    sub_status, sub_error = "error", exc
            self._store(f"{name}/{suffix}", cat, call, sub_status, sub_value, sub_error,
                        warned if suffix == next(iter(split)) else ())
            self.entries[f"{name}/{suffix}"]["seconds"] = seconds
        return value

    def call(self, name, category, module, func, *args, split=None, **kwargs):
        """Record ``module.func(*args, **kwargs)`` (``Named`` inputs unwrapped)."""
        return self.run(name, category, describe_call(f"{module}.{func}", args, kwargs),
                        lambda: api(module, func)(*[_value(a) for a in args],
                                                  **{k: _value(v) for k, v in kwargs.items()}),
                        split=split)

    def write(self, extra):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for file, arrays in sorted(self.arrays.items()):
            with open(self.out_dir / file, "wb") as fh:
                np.savez(fh, **arrays)
        manifest = dict(extra, format=FORMAT, entries=self.entries)
        (self.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1,
                                                               sort_keys=True) + "\n")


def _ours(w):
    """Warnings that ssimref issued (its own classes, or raised from its code)."""
    return (w.category.__module__.startswith("ssimref")
            or "ssimref" in Path(str(w.filename)).parts)


# =============================================================================== corpus
def _raise(exc):
    raise exc


def _ro(a):
    """A read-only copy (a function that writes into its input then fails loudly)."""
    a = np.array(a, copy=True, order="K")
    a.flags.writeable = False
    return a


def _texture(rng, shape, low=0, high=256, dtype=np.uint8):
    return rng.integers(low, high, size=shape).astype(dtype)


def _smooth(rng, shape):
    """A smooth float image in [0, 1] (sum of a few low-frequency cosines)."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.zeros((h, w))
    for _ in range(3):
        fy, fx, ph = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(0, 6.3)
        img += np.cos(2 * np.pi * (fy * yy + fx * xx) + ph)
    img = (img - img.min()) / (img.max() - img.min())
    if len(shape) == 3:
        img = np.stack([np.roll(img, c, axis=1) for c in range(shape[2])], axis=-1)
    return img


def make_pairs():
    """Image pairs: name -> (x, y, data_range or None). Integer images infer their range."""
    rng = np.random.default_rng(20201)
    P = patches(2, seed=11)
    base = _texture(rng, (16, 16))
    smooth = _smooth(rng, (16, 16))
    noisy = np.clip(smooth + rng.normal(0, 0.05, smooth.shape), 0, 1)
    pairs = {
        "u8_16": (_texture(rng, (16, 16)), _texture(rng, (16, 16)), None),
        "u8_9": (_texture(rng, (9, 9)), _texture(rng, (9, 9)), None),
        "u8_13x20": (_texture(rng, (13, 20)), _texture(rng, (13, 20)), None),
        "u8_28_patches": (P[0], P[1], None),
        "u8_overflow_16": (_texture(rng, (16, 16), 200, 256), _texture(rng, (16, 16), 200, 256),
                           None),
        "f64_16": (rng.random((16, 16)), rng.random((16, 16)), 1.0),
        "f64_smooth_noisy_16": (smooth, noisy, 1.0),
        "f32_16": (rng.random((16, 16)).astype(np.float32),
                   rng.random((16, 16)).astype(np.float32), 1.0),
        "u8_rgb_16": (_texture(rng, (16, 16, 3)), _texture(rng, (16, 16, 3)), None),
        "f64_rgb_12": (_smooth(rng, (12, 12, 3)), rng.random((12, 12, 3)), 1.0),
        "identical_u8_16": (base, base.copy(), None),
        "constant_u8_16": (np.full((16, 16), 100, np.uint8), np.full((16, 16), 150, np.uint8),
                           None),
        "constant_same_16": (np.full((16, 16), 77.0), np.full((16, 16), 77.0), 255.0),
        "constant_vs_texture_16": (np.full((16, 16), 128, np.uint8), base, None),
        "offset_f64_16": (1e6 + 255 * smooth, 1e6 + 255 * noisy, 255.0),
        "negative_f64_16": (255 * smooth - 128, 128 - 255 * noisy, 255.0),
        "fortran_u8_16": (np.asfortranarray(_texture(rng, (16, 16))),
                          np.asfortranarray(_texture(rng, (16, 16))), None),
    }
    for size in (3, 5, 7, 11):  # as tall as the window: one row of windows; and 1 x 1
        pairs[f"thin_{size}x{size + 6}"] = (_texture(rng, (size, size + 6)),
                                            _texture(rng, (size, size + 6)), None)
        pairs[f"single_{size}x{size}"] = (_texture(rng, (size, size)),
                                          _texture(rng, (size, size)), None)
    return {k: (_ro(x), _ro(y), r) for k, (x, y, r) in pairs.items()}


def make_stacks():
    """Image stacks: name -> (X, Y, data_range or None); Y has the same image shape."""
    rng = np.random.default_rng(20202)
    u8 = _texture(rng, (10, 16, 16))
    u8[7] = u8[3]                                  # a duplicate: D = 0 off the diagonal
    u8[5] = 90                                     # a constant image
    smooth = np.stack([_smooth(rng, (10, 10)) for _ in range(8)])
    stacks = {
        "u8_16": (u8, _texture(rng, (7, 16, 16)), None),
        "patches40": (patches(40), patches(30, seed=1), None),
        "u8_rgb_12": (_texture(rng, (6, 12, 12, 3)), _texture(rng, (5, 12, 12, 3)), None),
        "f64_10": (smooth, rng.random((6, 10, 10)), 1.0),
        "offset_f64_12": (1e5 + 255 * np.stack([_smooth(rng, (12, 12)) for _ in range(6)]),
                          1e5 + 255 * rng.random((4, 12, 12)), 255.0),
        "thin_u8_7x15": (_texture(rng, (6, 7, 15)), _texture(rng, (4, 7, 15)), None),
        "u8_9": (_texture(rng, (8, 9, 9)), _texture(rng, (5, 9, 9)), None),
    }
    return {k: (_ro(X), _ro(Y), r) for k, (X, Y, r) in stacks.items()}


def config_grid():
    """label -> fields of SSIMConfig (data range left to the images or the call)."""
    grid = {}
    for window in ("gaussian", "uniform"):
        for size in (3, 5, 7, 11):
            for stride in sorted({1, 2, size}):
                for cov in ("sample", "population", "count"):
                    label = f"{window[0]}{size}-s{stride}-{cov}"
                    grid[label] = dict(window=window, size=size, stride=stride,
                                       covariance=cov)
    grid["u4-s4-sample"] = dict(window="uniform", size=4, stride=4, covariance="sample")
    grid["g7-sigma0.8-k0.02-0.05"] = dict(window="gaussian", size=7, sigma=0.8, k1=0.02,
                                          k2=0.05)
    return grid


PRESETS = {  # label -> (preset method, kwargs)
    "paper": ("paper", {}),
    "wang2004": ("wang2004", {}),
    "skimage": ("skimage", {}),
    "skimage-gaussian": ("skimage", {"gaussian_weights": True}),
}

MATRIX_CONFIGS = {  # a smaller set for the matrix functions
    "skimage": None, "paper": None, "wang2004": None,
    "u3-s3-sample": dict(window="uniform", size=3, stride=3, covariance="sample"),
    "g5-s2-count": dict(window="gaussian", size=5, stride=2, covariance="count"),
    "u4-s4-sample": dict(window="uniform", size=4, stride=4, covariance="sample"),
    "g3-s1-population": dict(window="gaussian", size=3, stride=1, covariance="population"),
}


def make_config(label, fields=None):
    """An SSIMConfig from a grid label or a preset (built through ``ssimref.SSIMConfig``)."""
    SSIMConfig = S("SSIMConfig")
    if fields is None and label in PRESETS:
        method, kwargs = PRESETS[label]
        return Named(label, getattr(SSIMConfig, method)(**kwargs))
    return Named(label, SSIMConfig(**(fields if fields is not None else config_grid()[label])))


def fits(shape, config):
    return shape[0] >= config.value.size and shape[1] >= config.value.size


def range_kw(data_range):
    return {} if data_range is None else {"data_range": data_range}


# ============================================================================ sections
def record_core_pairs(rec, quick):
    """SSIM components and maps, distance maps and distances of single pairs."""
    rec.section = "core_pairs"
    pairs = make_pairs()
    labels = list(config_grid()) + list(PRESETS)
    if quick:
        labels = list(dict.fromkeys(labels[::7] + list(PRESETS)))
    for label in labels:
        try:
            cfg = make_config(label)
        except Missing as exc:
            rec.run(f"core/config/{label}", "forward", f"SSIMConfig[{label}]",
                    lambda exc=exc: _raise(exc))
            continue
        rec.run(f"core/SSIMConfig/{label}", "forward", f"SSIMConfig[{label}]: derived values",
                lambda cfg=cfg.value: {"repr": repr(cfg), "q": cfg.q, "taps": cfg.taps(),
                                       "covariance_factor": cfg.covariance_factor(),
                                       "constants(255)": cfg.constants(255.0),
                                       "positions(16, 20)": cfg.positions(16, 20)})
        for pname, (x, y, dr) in pairs.items():
            if not fits(x.shape, cfg):
                continue
            X, Y = Named(f"{pname}.x", x), Named(f"{pname}.y", y)
            kw = dict(config=cfg, **range_kw(dr))
            base = f"{pname}/{label}"
            rec.call(f"core/ssim_components/{base}", "forward", "ssimref", "ssim_components",
                     X, Y, **kw)
            rec.call(f"core/ssim_map/{base}", "forward", "ssimref", "ssim_map", X, Y, **kw)
            rec.call(f"core/ssim/{base}", "forward", "ssimref", "ssim", X, Y, **kw)
            for kind in KINDS:
                rec.call(f"core/distance_map/{base}/{kind}", "forward", "ssimref",
                         "distance_map", X, Y, kind, **kw)
                for squared in (False, True):
                    rec.call(f"core/distance/{base}/{kind}/squared={squared}", "forward",
                             "ssimref", "distance", X, Y, kind, squared=squared, **kw)
            if label in ("paper", "skimage", "u4-s4-sample", "g11-s1-count"):
                rec.call(f"core/ssim_map/{base}/float32", "forward", "ssimref", "ssim_map",
                         X, Y, dtype="float32", **kw)
                rec.call(f"core/distance_map/{base}/eq2/float32", "forward", "ssimref",
                         "distance_map", X, Y, "eq2", dtype="float32", **kw)
                rec.call(f"core/distance/{base}/eq1/float32", "forward", "ssimref",
                         "distance", X, Y, "eq1", dtype="float32", **kw)
    rec.run("core/backend/available_engines", "forward",
            "ssimref.backend.available_engines()",
            lambda: list(api("ssimref.backend", "available_engines")()))
    rec.run("core/backend/choose_engine", "forward",
            "ssimref.backend.choose_engine(b, numpy) for b in auto, reference, numba",
            lambda: [api("ssimref.backend", "choose_engine")(b, np)
                     for b in ("auto", "reference", "numba")])
    # conventions as keyword overrides, without a config object
    x, y, _ = pairs["u8_16"]
    X, Y = Named("u8_16.x", x), Named("u8_16.y", y)
    rec.call("core/ssim/u8_16/overrides-uniform5-population", "forward", "ssimref", "ssim",
             X, Y, window="uniform", size=5, covariance="population")
    rec.call("core/distance/u8_16/overrides-default-data_range100/eq2", "forward", "ssimref",
             "distance", X, Y, "eq2", data_range=100.0)
    rec.call("core/ssim_components/u8_16/defaults", "forward", "ssimref", "ssim_components",
             X, Y)


def matrix_configs():
    return {label: make_config(label, fields) for label, fields in MATRIX_CONFIGS.items()}


DM_VARIANTS = (  # (label, symmetric, squared, backend, working memory, dtype)
    ("sym-numba", True, False, "numba", None, None),
    ("sym-numba-sq", True, True, "numba", "tiny", None),
    ("sym-reference", True, False, "reference", None, None),
    ("sym-reference-sq", True, True, "reference", "tiny", None),
    ("sym-auto-f32", True, False, "auto", "small", "float32"),
    ("xy-numba", False, False, "numba", None, None),
    ("xy-numba-sq", False, True, "numba", "small", None),
    ("xy-reference", False, False, "reference", "tiny", None),
    ("xy-reference-sq-f32", False, True, "reference", None, "float32"),
)
# working_memory (MiB) that gives tiles of one or two pairs ("tiny") and of a few pairs
# ("small"); the 28x28 patches need more per pair, and 1 MiB already cuts them in tiles
WORKING_MEMORY = {"tiny": 0.01, "small": 0.1}
WORKING_MEMORY_PATCHES = {"tiny": 0.2, "small": 1.0}


def record_core_matrices(rec, quick):
    """distance_matrix, distance_matrix_vjp, paired_distance(_and_grad)."""
    rec.section = "core_matrices"
    stacks = make_stacks()
    try:
        configs = matrix_configs()
    except Missing as exc:
        rec.run("core/config/matrix", "forward", "SSIMConfig", lambda exc=exc: _raise(exc))
        return
    rng = np.random.default_rng(7)
    for sname, (Xa, Ya, dr) in stacks.items():
        X, Y = Named(f"{sname}.X", Xa), Named(f"{sname}.Y", Ya)
        n, m = Xa.shape[0], Ya.shape[0]
        G_sym = Named(f"G{n}x{n}", _ro(rng.normal(size=(n, n))))
        G_xy = Named(f"G{n}x{m}", _ro(rng.normal(size=(n, m))))
        k = min(n, m)
        weights = Named(f"w{k}", _ro(rng.uniform(0.5, 2.0, size=k)))
        Xk, Yk = Named(f"{sname}.X[:{k}]", Xa[:k]), Named(f"{sname}.Y[:{k}]", Ya[:k])
        memory = {None: None, **(WORKING_MEMORY_PATCHES if sname == "patches40"
                                 else WORKING_MEMORY)}
        for label, cfg in configs.items():
            if not fits(Xa.shape[1:], cfg):
                continue
            kw = dict(config=cfg, **range_kw(dr))
            for kind in KINDS:
                base = f"{sname}/{label}/{kind}"
                for vlabel, sym, squared, backend, wm, dtype in DM_VARIANTS:
                    if quick and vlabel not in ("sym-numba", "xy-reference"):
                        continue
                    if sname == "patches40" and backend == "reference" and label not in (
                            "skimage", "u4-s4-sample"):
                        continue  # the reference engine on 40 patches: two configs suffice
                    wm = memory.get(wm)
                    vlabel += "" if wm is None else f"-wm{wm}"
                    rec.call(f"core/distance_matrix/{base}/{vlabel}", "forward", "ssimref",
                             "distance_matrix", X, None if sym else Y, kind, squared=squared,
                             backend=backend, working_memory=wm, dtype=dtype, progress=False,
                             **kw)
                if sname == "patches40" and label != "skimage":
                    continue
                for wm in (None, memory["tiny"], memory["small"]):
                    for squared in (False, True):
                        if quick and (wm == memory["small"] or squared):
                            continue
                        opts = f"squared={squared}/wm={wm}"
                        rec.call(f"core/distance_matrix_vjp/{base}/sym/{opts}", "reduction",
                                 "ssimref", "distance_matrix_vjp", X, None, G_sym, kind,
                                 squared=squared, working_memory=wm, **kw)
                        rec.call(f"core/distance_matrix_vjp/{base}/xy/{opts}", "reduction",
                                 "ssimref", "distance_matrix_vjp", X, Y, G_xy, kind,
                                 squared=squared, working_memory=wm, **kw)
                        rec.call(f"core/paired_distance/{base}/{opts}", "forward", "ssimref",
                                 "paired_distance", Xk, Yk, kind, squared=squared,
                                 working_memory=wm, **kw)
                        for wname, w in (("ones", None), ("weights", weights)):
                            rec.call(f"core/paired_distance_and_grad/{base}/{opts}/{wname}",
                                     "forward", "ssimref", "paired_distance_and_grad", Xk, Yk,
                                     kind, squared=squared, weights=w, working_memory=wm,
                                     split={"values": ("forward", lambda r: r[0]),
                                            "grads": ("reduction", lambda r: r[1:])}, **kw)
    # scikit-learn's working_memory setting as the default, and an `out` array
    Xa, Ya, _ = stacks["u8_16"]
    X, Y = Named("u8_16.X", Xa), Named("u8_16.Y", Ya)

    def with_sklearn_memory():
        from sklearn import config_context
        with config_context(working_memory=0.005):
            return (S("distance_matrix")(Xa, kind="eq2", window="uniform", size=5),
                    S("distance_matrix_vjp")(Xa, Ya, np.ones((10, 7)), "eq1", window="uniform",
                                             size=5))
    rec.run("core/distance_matrix+vjp/u8_16/sklearn-working_memory-0.005", "reduction",
            "with sklearn.config_context(working_memory=0.005): distance_matrix(u8_16.X, "
            "kind='eq2', window='uniform', size=5), distance_matrix_vjp(u8_16.X, u8_16.Y, "
            "ones, 'eq1', window='uniform', size=5)", with_sklearn_memory,
            split={"D": ("forward", lambda r: r[0]), "vjp": ("reduction", lambda r: r[1])})

    def into_out():
        out = np.full((10, 7), -1.0, dtype=np.float32)
        res = S("distance_matrix")(Xa, Ya, "eq2", out=out, window="uniform", size=3)
        return out, res is out
    rec.run("core/distance_matrix/u8_16/out-float32", "forward",
            "distance_matrix(u8_16.X, u8_16.Y, 'eq2', out=float32 (10, 7), window='uniform', "
            "size=3)", into_out)
    rec.call("core/distance_matrix/u8_16/Y-is-X", "forward", "ssimref", "distance_matrix",
             X, X, "eq2", window="gaussian", size=3)


def record_kernels(rec, quick):
    """ssimref.kernels: centring, SSIM kernels, alternatives, PSD tools."""
    rec.section = "kernels"
    stacks = make_stacks()
    DM = lambda *a, **k: S("distance_matrix")(*a, **k)  # noqa: E731
    for sname in ("u8_16", "patches40", "u8_rgb_12", "f64_10"):
        Xa, Ya, dr = stacks[sname]
        if sname == "patches40":
            Xa, Ya = Xa[:16], Ya[:9]
        X, Y = Named(f"{sname}.X", Xa), Named(f"{sname}.Y", Ya)
        for label, fields in (("skimage", None), ("paper", None),
                              ("u3-s3-sample", MATRIX_CONFIGS["u3-s3-sample"])):
            try:
                cfg = make_config(label, fields)
            except Missing:
                continue
            kw = dict(config=cfg, **range_kw(dr))
            c = cfg.value
            for kind in KINDS:
                base = f"{sname}/{label}/{kind}"
                for power in (1, 2, 0.5):
                    rec.run(f"kernels/double_center/{base}/p={power}", "forward",
                            f"double_center(distance_matrix({X}, kind={kind!r}, config={cfg}),"
                            f" power={power})",
                            lambda: KER("double_center")(DM(Xa, None, kind, **_kw(kw)), power))
                    rec.run(f"kernels/center_out_of_sample/{base}/p={power}", "forward",
                            f"center_out_of_sample(distance_matrix({Y}, {X}), "
                            f"distance_matrix({X}), power={power})",
                            lambda: KER("center_out_of_sample")(DM(Ya, Xa, kind, **_kw(kw)),
                                                                DM(Xa, None, kind, **_kw(kw)),
                                                                power))
                    rec.call(f"kernels/ssim_kernel/{base}/p={power}", "forward",
                             "ssimref.kernels", "ssim_kernel", X, None, kind, power, **kw)
                    rec.call(f"kernels/ssim_kernel/{base}/p={power}/test-vs-train", "forward",
                             "ssimref.kernels", "ssim_kernel", Y, X, kind, power,
                             working_memory=0.01, **kw)
                for repair in (None, "clip"):
                    def fitted(kind=kind, repair=repair):
                        est = KER("SSIMKernel")(kind=kind, power=1, config=c, repair=repair,
                                                working_memory=0.01, **range_kw(dr))
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            K = est.fit_transform(Xa)
                        return {"fit_transform": K, "transform": est.transform(Ya),
                                "psd_report_": est.psd_report_, "power_": est.power_,
                                "image_shape_": list(est.image_shape_),
                                "n_features_in_": est.n_features_in_}
                    rec.run(f"kernels/SSIMKernel/{base}/repair={repair}", "forward",
                            f"SSIMKernel(kind={kind!r}, config={cfg}, repair={repair!r}, "
                            f"working_memory=0.01).fit_transform({X}); .transform({Y})",
                            fitted)
                rec.run(f"kernels/ssim_rbf_kernel/{base}/gamma=None", "forward",
                        f"ssim_rbf_kernel(distance_matrix({X}, kind={kind!r}))",
                        lambda: KER("ssim_rbf_kernel")(DM(Xa, None, kind, **_kw(kw))))
                rec.run(f"kernels/ssim_rbf_kernel/{base}/gamma=0.05-rect", "forward",
                        f"ssim_rbf_kernel(distance_matrix({X}, {Y}, kind={kind!r}), 0.05)",
                        lambda: KER("ssim_rbf_kernel")(DM(Xa, Ya, kind, **_kw(kw)), 0.05))
                rec.run(f"kernels/median_heuristic/{base}/square", "forward",
                        f"median_heuristic(distance_matrix({X}, kind={kind!r}))",
                        lambda: KER("median_heuristic")(DM(Xa, None, kind, **_kw(kw))))
                rec.run(f"kernels/median_heuristic/{base}/rect", "forward",
                        f"median_heuristic(distance_matrix({X}, {Y}, kind={kind!r}))",
                        lambda: KER("median_heuristic")(DM(Xa, Ya, kind, **_kw(kw))))
            rec.call(f"kernels/mean_ssim_kernel/{sname}/{label}", "forward", "ssimref.kernels",
                     "mean_ssim_kernel", X, **kw)
            rec.call(f"kernels/mean_ssim_kernel/{sname}/{label}/xy-reference-wm0.01",
                     "forward", "ssimref.kernels", "mean_ssim_kernel", X, Y,
                     backend="reference", working_memory=0.01, **kw)
    # PSD tools on a PSD kernel, an indefinite matrix and a kernel of the power 2 eq1 kind
    rng = np.random.default_rng(3)
    A = rng.normal(size=(9, 9))
    indefinite = Named("indefinite9", _ro((A + A.T) / 2))
    psd = Named("psd9", _ro(A @ A.T))
    Xa = stacks["u8_16"][0]
    for name, M in (("indefinite9", indefinite), ("psd9", psd)):
        rec.call(f"kernels/psd_report/{name}", "forward", "ssimref.kernels", "psd_report", M)
        rec.call(f"kernels/psd_report/{name}/tol=1e-3", "forward", "ssimref.kernels",
                 "psd_report", M, 1e-3)
        for method in ("clip", "flip", "shift"):
            rec.call(f"kernels/repair_psd/{name}/{method}", "forward", "ssimref.kernels",
                     "repair_psd", M, method)
    for kind in KINDS:
        rec.run(f"kernels/psd_report/ssim_kernel-u8_16-p2-{kind}", "forward",
                f"psd_report(ssim_kernel(u8_16.X, kind={kind!r}, power=2, size=3))",
                lambda kind=kind: KER("psd_report")(KER("ssim_kernel")(Xa, None, kind, 2,
                                                                        size=3)))
        rec.run(f"kernels/repair_psd/ssim_kernel-u8_16-p2-{kind}/clip", "forward",
                f"repair_psd(ssim_kernel(u8_16.X, kind={kind!r}, power=2, size=3), 'clip')",
                lambda kind=kind: KER("repair_psd")(KER("ssim_kernel")(Xa, None, kind, 2,
                                                                        size=3), "clip"))
    # flat rows with image_shape
    def flat_rows():
        est = KER("SSIMKernel")(kind="eq2", image_shape=(16, 16), size=5, check_psd=False)
        K = est.fit_transform(Xa.reshape(10, -1))
        return K, est.transform(stacks["u8_16"][1].reshape(7, -1))
    rec.run("kernels/SSIMKernel/u8_16-flat-rows/g5/eq2", "forward",
            "SSIMKernel(kind='eq2', image_shape=(16, 16), size=5).fit_transform(flat rows)",
            flat_rows)


def _kw(kw):
    return {k: _value(v) for k, v in kw.items()}


def differentiable_kernels(stacks):
    """(label, factory, X, Y, image kernel?) for the differentiable kernel objects."""
    rng = np.random.default_rng(11)
    vec_X, vec_Y = _ro(rng.random((14, 6))), _ro(rng.random((9, 6)) + 0.3)
    flat_X = stacks["f64_10"][0]
    flat_Y = stacks["f64_10"][1]
    line_X, line_Y = _ro(rng.normal(size=12)), _ro(rng.normal(size=8) + 1.0)
    u8_X, u8_Y = stacks["u8_16"][0], stacks["u8_16"][1]
    rgb_X, rgb_Y = stacks["u8_rgb_12"][0], stacks["u8_rgb_12"][1]
    p_X = _ro(stacks["patches40"][0][:12] / 255.0)
    p_Y = _ro(stacks["patches40"][1][:8] / 255.0)
    cfg_u = lambda: S("SSIMConfig")(window="uniform", size=5)  # noqa: E731
    cfg_p = lambda: S("SSIMConfig").paper(data_range=1.0)  # noqa: E731
    return [
        ("RBFMixture-default/vec6", lambda: KER("RBFMixture")(), vec_X, vec_Y),
        ("RBFMixture-weighted/flat10x10", lambda: KER("RBFMixture")(
            variances=(0.5, 2.0, 8.0), weights=(1.0, 0.5, 2.0)), flat_X, flat_Y),
        ("RBFMixture-1d/line", lambda: KER("RBFMixture")((1.5,)), line_X, line_Y),
        ("RBFMixture.from_median/vec6", lambda: KER("RBFMixture").from_median(
            vec_X, vec_Y, scales=(0.5, 1.0, 2.0)), vec_X, vec_Y),
        ("RBFMixture.from_median-subsample/flat10x10", lambda: KER("RBFMixture").from_median(
            flat_X, None, max_points=5, seed=3), flat_X, flat_Y),
        ("SSIMDistanceKernel-eq2-p1/u8_16-u5", lambda: KER("SSIMDistanceKernel")(
            "eq2", 1, cfg_u()), u8_X, u8_Y),
        ("SSIMDistanceKernel-eq1-p2-wm0.01/u8_16-u5", lambda: KER("SSIMDistanceKernel")(
            "eq1", 2, cfg_u(), working_memory=0.01), u8_X, u8_Y),
        ("SSIMDistanceKernel-eq1u-p1-wm0.002/patches12-paper", lambda: KER(
            "SSIMDistanceKernel")("eq1-uncentered", 1, cfg_p(), working_memory=0.002),
         p_X, p_Y),
        ("SSIMDistanceKernel-eq2-p1/rgb12-g3", lambda: KER("SSIMDistanceKernel")(
            "eq2", 1, size=3), rgb_X, rgb_Y),
        ("SSIMRBFKernel-0.05-eq2/u8_16-u5", lambda: KER("SSIMRBFKernel")(
            0.05, "eq2", cfg_u()), u8_X, u8_Y),
        ("SSIMRBFKernel.from_median-eq1/patches12-paper", lambda: KER(
            "SSIMRBFKernel").from_median(p_X, p_Y, "eq1", cfg_p(), scale=2.0,
                                         working_memory=0.01), p_X, p_Y),
        ("SSIMRBFKernel.from_median-subsample/u8_16-u5", lambda: KER(
            "SSIMRBFKernel").from_median(u8_X, None, config=cfg_u(), max_points=6, seed=2),
         u8_X, u8_Y),
        ("MeanSSIMKernel/u8_16-u5", lambda: KER("MeanSSIMKernel")(cfg_u()), u8_X, u8_Y),
        ("MeanSSIMKernel-wm0.005/patches12-paper", lambda: KER("MeanSSIMKernel")(
            cfg_p(), working_memory=0.005), p_X, p_Y),
    ]


def record_differentiable(rec, quick):
    """gram, value_and_vjp, gram_vjp, paired, paired_vjp, describe of the kernel objects."""
    rec.section = "differentiable"
    stacks = make_stacks()
    rng = np.random.default_rng(12)
    KV = ("forward", lambda r: r[0])
    GRADS = ("reduction", lambda r: r[1:])
    for label, factory, Xa, Ya in differentiable_kernels(stacks):
        n, m = Xa.shape[0], Ya.shape[0]
        k = min(n, m)
        X, Y = Named("X", Xa), Named("Y", Ya)
        Xk, Yk = Named(f"X[:{k}]", Xa[:k]), Named(f"Y[:{k}]", Ya[:k])
        Gs = _ro(rng.normal(size=(n, n)))
        Gxy = _ro(rng.normal(size=(n, m)))
        g = _ro(rng.normal(size=k))
        name = f"kernels/{label}"

        def method(meth, *args, **kwargs):
            return lambda: getattr(factory(), meth)(*[_value(a) for a in args],
                                                    **{a: _value(b) for a, b in kwargs.items()})
        desc = label.split("/")[0]
        rec.run(f"{name}/describe", "forward", f"{desc}.describe()", method("describe"))
        params = {"RBFMixture": lambda k: {"variances": k.variances, "weights": k.weights,
                                           "median": k.median},
                  "SSIMRBFKernel": lambda k: {"gamma": k.gamma, "median": k.median}}
        for cls, get in params.items():
            if desc.startswith(cls):
                rec.run(f"{name}/parameters", "forward", f"{desc} parameters",
                        lambda get=get: get(factory()))
        rec.run(f"{name}/gram", "forward", f"{desc}.gram(X)", method("gram", X))
        rec.run(f"{name}/gram-xy", "forward", f"{desc}.gram(X, Y)", method("gram", X, Y))
        rec.run(f"{name}/value_and_vjp-sym", "forward", f"{desc}.value_and_vjp(X, None, G)",
                method("value_and_vjp", X, None, Named("G", Gs)),
                split={"K": KV, "grad": GRADS})
        rec.run(f"{name}/value_and_vjp-xy", "forward", f"{desc}.value_and_vjp(X, Y, G)",
                method("value_and_vjp", X, Y, Named("G", Gxy)),
                split={"K": KV, "grad": GRADS})
        rec.run(f"{name}/value_and_vjp-xy-wrt_y", "forward",
                f"{desc}.value_and_vjp(X, Y, G, wrt_y=True)",
                method("value_and_vjp", X, Y, Named("G", Gxy), wrt_y=True),
                split={"K": KV, "grad": GRADS})
        rec.run(f"{name}/gram_vjp-sym", "reduction", f"{desc}.gram_vjp(X, None, G)",
                method("gram_vjp", X, None, Named("G", Gs)))
        rec.run(f"{name}/gram_vjp-xy", "reduction", f"{desc}.gram_vjp(X, Y, G)",
                method("gram_vjp", X, Y, Named("G", Gxy)))
        rec.run(f"{name}/gram_vjp-xy-wrt_y", "reduction",
                f"{desc}.gram_vjp(X, Y, G, wrt_y=True)",
                method("gram_vjp", X, Y, Named("G", Gxy), wrt_y=True))
        rec.run(f"{name}/paired", "forward", f"{desc}.paired(X[:k], Y[:k])",
                method("paired", Xk, Yk))
        rec.run(f"{name}/paired_vjp", "reduction", f"{desc}.paired_vjp(X[:k], Y[:k], g)",
                method("paired_vjp", Xk, Yk, Named("g", g)))


def mmd_kernels(stacks):
    """(label, factory, X, Y, Y_same_size) for the MMD functions."""
    rng = np.random.default_rng(21)
    vec_X, vec_Y = _ro(rng.random((24, 16))), _ro(rng.random((20, 16)) * 0.8 + 0.1)
    vec_Y24 = _ro(rng.random((24, 16)) * 0.8 + 0.2)
    img = _texture(rng, (44, 12, 12))
    img_X, img_Y, img_Y24 = _ro(img[:24]), _ro(img[24:]), _ro(_texture(rng, (24, 12, 12)))
    p = patches(48, seed=4) / 255.0
    p_X, p_Y, p_Y24 = _ro(p[:24]), _ro(p[24:44]), _ro(patches(24, seed=5) / 255.0)
    cfg_u = lambda: S("SSIMConfig")(window="uniform", size=5)  # noqa: E731
    cfg_p = lambda: S("SSIMConfig").paper(data_range=1.0)  # noqa: E731
    return [
        ("rbf-default/vec16", lambda: KER("RBFMixture")((0.5, 1.0, 2.0, 4.0)),
         vec_X, vec_Y, vec_Y24),
        ("rbf-li/patches28-flat", lambda: KER("RBFMixture")((2.0, 5.0, 10.0, 20.0, 40.0,
                                                             80.0)), p_X, p_Y, p_Y24),
        ("ssimdist-eq2-p1/u8_12-u5", lambda: KER("SSIMDistanceKernel")("eq2", 1, cfg_u()),
         img_X, img_Y, img_Y24),
        ("ssimdist-eq1-p2-wm0.005/u8_12-u5", lambda: KER("SSIMDistanceKernel")(
            "eq1", 2, cfg_u(), working_memory=0.005), img_X, img_Y, img_Y24),
        ("ssimdist-eq2-p1/patches28-paper", lambda: KER("SSIMDistanceKernel")(
            "eq2", 1, cfg_p()), p_X, p_Y, p_Y24),
        ("ssimrbf-0.1-eq1u/u8_12-u5", lambda: KER("SSIMRBFKernel")(
            0.1, "eq1-uncentered", cfg_u()), img_X, img_Y, img_Y24),
        ("meanssim/u8_12-u5", lambda: KER("MeanSSIMKernel")(cfg_u()), img_X, img_Y, img_Y24),
    ]


def record_mmd(rec, quick):
    """mmd2, mmd2_and_grad, cmmd2, cmmd2_and_grad, cmmd_weights, mmd_test."""
    rec.section = "mmd"
    stacks = make_stacks()
    rec.run("gmmn/ESTIMATORS", "forward", "ssimref.gmmn.ESTIMATORS", lambda: list(GM("ESTIMATORS")))
    for label, factory, Xa, Ya, Y24 in mmd_kernels(stacks):
        for est in ("biased", "unbiased", "linear"):
            Yuse = Y24 if est == "linear" else Ya
            for wm in (None, 0.01, 0.002):
                if quick and wm == 0.002:
                    continue
                base = f"gmmn/{{}}/{label}/{est}/wm={wm}"
                rec.run(base.format("mmd2"), "reduction",
                        f"mmd2(X, Y, {label.split('/')[0]}, {est!r}, working_memory={wm})",
                        lambda est=est, Yuse=Yuse, wm=wm: GM("mmd2")(
                            Xa, Yuse, factory(), est, working_memory=wm))
                for sqrt in (False, True):
                    rec.run(base.format("mmd2_and_grad") + f"/sqrt={sqrt}", "reduction",
                            f"mmd2_and_grad(X, Y, {label.split('/')[0]}, {est!r}, sqrt={sqrt}, "
                            f"working_memory={wm})",
                            lambda est=est, Yuse=Yuse, wm=wm, sqrt=sqrt: GM("mmd2_and_grad")(
                                Xa, Yuse, factory(), est, sqrt=sqrt, working_memory=wm))
        for est, batch, wm in (("unbiased", None, None), ("biased", 5, None),
                               ("unbiased", 7, 0.01)):
            rec.run(f"gmmn/mmd_test/{label}/{est}/batch={batch}/wm={wm}", "reduction",
                    f"mmd_test(X, Y, {label.split('/')[0]}, permutations=49, seed=7, "
                    f"estimator={est!r}, batch={batch}, working_memory={wm})",
                    lambda est=est, batch=batch, wm=wm: GM("mmd_test")(
                        Xa, Ya, factory(), permutations=49, seed=7, estimator=est,
                        batch=batch, working_memory=wm))
    # conditional MMD
    rng = np.random.default_rng(31)
    labels = _ro(np.repeat(np.arange(4), 6)[rng.permutation(24)])
    cond = _ro(rng.normal(size=(24, 2)))
    for label, factory, Xa, _, Y24 in mmd_kernels(stacks):
        if quick and not label.startswith(("rbf-default", "ssimdist-eq2-p1/u8")):
            continue
        for cname, conditions, ck in (
                ("delta-labels", labels, "delta"),
                ("precomputed-rbf", None, "precomputed"),
                ("rbf-object", cond, "object")):
            for lam, wm in ((1e-3, None), (0.1, 0.01)):
                def args(conditions=conditions, ck=ck):
                    if ck == "precomputed":
                        return KER("RBFMixture")((1.0,)).gram(cond), "precomputed"
                    if ck == "object":
                        return conditions, KER("RBFMixture")((0.5, 2.0))
                    return conditions, "delta"
                base = f"gmmn/{{}}/{label}/{cname}/lam={lam}/wm={wm}"
                desc = f"(Y_gen, Y_data, {cname}, {label.split('/')[0]}, lam={lam}, " \
                       f"working_memory={wm})"
                rec.run(base.format("cmmd2"), "reduction", "cmmd2" + desc,
                        lambda args=args, lam=lam, wm=wm: GM("cmmd2")(
                            Xa, Y24, *_cond(args(), factory), lam=lam, working_memory=wm))
                rec.run(base.format("cmmd2_and_grad"), "reduction", "cmmd2_and_grad" + desc,
                        lambda args=args, lam=lam, wm=wm: GM("cmmd2_and_grad")(
                            Xa, Y24, *_cond(args(), factory), lam=lam, working_memory=wm))
    for lam in (1e-3, 0.5):
        rec.run(f"gmmn/cmmd_weights/rbf-gram24/lam={lam}", "forward",
                f"cmmd_weights(RBFMixture((1,)).gram(cond24), {lam})",
                lambda lam=lam: GM("cmmd_weights")(KER("RBFMixture")((1.0,)).gram(cond), lam))
        rec.run(f"gmmn/cmmd_weights/delta-gram24/lam={lam}", "forward",
                f"cmmd_weights(labels24 == labels24.T, {lam})",
                lambda lam=lam: GM("cmmd_weights")(
                    (labels[:, None] == labels[None, :]).astype(float), lam))


def _cond(args, factory):
    conditions, condition_kernel = args
    return conditions, factory(), condition_kernel


def _read_file(path, rec):
    """A file as recordable parts: .npy/.npz arrays, JSON (timing fields and checksums
    dropped), JSON lines, PNG pixels, other files as (masked) text."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if path.suffix == ".json":
        return _untimed(json.loads(path.read_text()))
    if path.suffix == ".jsonl":
        return [_untimed(json.loads(line)) for line in path.read_text().splitlines()
                if line.strip()]
    if path.suffix == ".png":
        from PIL import Image
        with Image.open(path) as im:
            return {"mode": im.mode, "pixels": np.asarray(im)}
    return rec.mask(path.read_text(errors="replace"))


def _read_folder(folder, rec):
    """Every file under ``folder``, by relative path (see :func:`_read_file`)."""
    return {p.relative_to(folder).as_posix(): _read_file(p, rec)
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


_TIMING_KEY = re.compile(r"(^|_)seconds$|^sha256$|timestamp|^started$|^finished$")


def _untimed(obj):
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if not _TIMING_KEY.search(str(k))}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def record_training(rec, quick, tmp):
    """Short GMMN trainings through ssimref.gmmn.train: final weights, metrics, grids."""
    rec.section = "training"
    runs = {
        "rbf-data": dict(kernel="rbf", space="data", steps=30, batch=32),
        "ssim-data": dict(kernel="ssim", space="data", steps=12, batch=20),
        "rbf-code": dict(kernel="rbf", space="code", steps=20, batch=32, ae_steps=30,
                         ae_batch=32),
        "ssim-code": dict(kernel="ssim", space="code", steps=8, batch=16, ae_steps=10,
                          ae_batch=32),
        "rbf-conditional": dict(kernel="rbf", conditional=True, steps=20, batch=40),
        "ssim-conditional": dict(kernel="ssim", conditional=True, steps=8, batch=20),
        "rbf-data-mmd2-sgd-unbiased": dict(kernel="rbf", steps=20, batch=32, loss="mmd2",
                                           optimizer="sgd", lr=0.05, estimator="unbiased"),
        "rbf-data-linear": dict(kernel="rbf", steps=15, batch=32, estimator="linear"),
    }
    if quick:
        runs = {k: v for k, v in runs.items() if k in ("rbf-data", "ssim-data")}
    common = dict(seed=5, log_every=5, sample_every=10, checkpoint_every=10,
                  eval_samples=60, hidden=(16, 32))
    for name, fields in runs.items():
        run_dir = Path(tmp) / "train" / name
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        options = dict(common, **fields)

        def train(run_dir=run_dir, options=options):
            summary = GM("train")(run_dir, GM("TrainConfig")(**options), progress=False)
            return {"summary": _untimed(summary), "files": _read_folder(run_dir, rec)}
        rec.run(f"gmmn/train/{name}", "reduction", f"train(RUN, TrainConfig(**{options}))",
                train)
        rec.run(f"gmmn/load_run/{name}", "reduction", "load_run(RUN): generator parameters",
                lambda run_dir=run_dir: {k: v for k, v in
                                         GM("load_run")(run_dir).gmmn.generator.params.items()})


# ================================================================================= CLI
def _cli_in_process(argv, cwd):
    """``ssimref.cli.main(argv)`` in ``cwd``: (exit code, stdout, stderr)."""
    main = api("ssimref.cli", "main")
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:  # argparse errors and --version
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def _cli_subprocess(argv, cwd):
    proc = subprocess.run([sys.executable, "-m", "ssimref", *argv], cwd=cwd,
                          capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def cli_run(rec, name, argv, category, folder, file_category=None, subprocess_=False,
            masks=(), skip=()):
    """Run one command in ``folder`` (a fresh temporary folder holding its inputs); record
    its exit code and masked stdout/stderr as ``cli/NAME/run`` and every file it created
    or changed as ``cli/NAME/file/PATH``, except those in ``skip``. ``masks``: extra
    (pattern, replacement) pairs for time-varying text of this command (multiline)."""
    folder = Path(folder)
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    how = ("python -m ssimref " if subprocess_ else "ssimref.cli.main: ssimref ") + " ".join(argv)
    runner = _cli_subprocess if subprocess_ else _cli_in_process
    def masked(text):
        for pattern, replacement in masks:
            text = re.sub(pattern, replacement, text, flags=re.M)
        return rec.mask(text)
    result = rec.run(f"cli/{name}/run", category, how,
                     lambda: dict(zip(("exit_code", "stdout", "stderr"),
                                      (lambda r: (r[0], masked(r[1]), masked(r[2])))(
                                          runner(argv, folder)))))
    if result is None:
        return
    changed = [p for p in sorted(folder.rglob("*")) if p.is_file()
               and before.get(p) != p.stat().st_mtime_ns]
    for path in changed:
        rel = path.relative_to(folder).as_posix()
        if rel in skip:
            continue
        cat = file_category(rel) if file_category else category
        rec.run(f"cli/{name}/file/{rel}", cat, f"{how} -> {rel}",
                lambda path=path: _read_file(path, rec))


def record_cli(rec, quick, tmp):
    """Every subcommand, in-process, plus `python -m ssimref` in a subprocess."""
    rec.section = "cli"
    stacks = make_stacks()
    root = Path(tmp) / "cli"
    root.mkdir()

    def folder(name):
        f = root / name.replace("/", "_")
        f.mkdir()
        np.save(f / "images.npy", patches(24, seed=8))
        np.save(f / "test.npy", patches(6, seed=9))
        np.save(f / "other.npy", patches(20, seed=10))
        np.save(f / "other24.npy", patches(24, seed=12))
        np.save(f / "floats_b.npy", stacks["f64_10"][1])
        np.save(f / "floats.npy", stacks["f64_10"][0])
        np.save(f / "rgb.npy", stacks["u8_rgb_12"][0])
        np.savez(f / "labelled.npz", images=stacks["u8_16"][0], labels=np.arange(10) % 3)
        return f

    inputs = {"images.npy", "test.npy", "other.npy", "floats.npy", "rgb.npy", "labelled.npz"}

    def run(name, argv, category="forward", file_category=None, subprocess_=False, where=None,
            **options):
        f = where if where is not None else folder(name)
        cli_run(rec, name, argv, category, f, file_category, subprocess_, **options)
        return f

    # distance
    run("distance/default", ["distance", "images.npy", "-o", "D.npy"])
    run("distance/eq1-skimage-f32-wm", ["distance", "images.npy", "-o", "D.npy", "--kind",
                                        "eq1", "--preset", "skimage", "--dtype", "float32",
                                        "--working-memory", "0.01"])
    run("distance/reference-blocks", ["distance", "images.npy", "-o", "D.npy", "--kind",
                                      "eq1-uncentered", "--window", "uniform", "--size", "4",
                                      "--stride", "4", "--backend", "reference"])
    run("distance/wang2004-k", ["distance", "images.npy", "-o", "D.npy", "--preset",
                                "wang2004", "--k1", "0.02", "--k2", "0.04", "--covariance",
                                "count", "--backend", "numba"])
    run("distance/floats", ["distance", "floats.npy", "-o", "D.npy", "--data-range", "1",
                            "--size", "5", "--sigma", "1.0"])
    run("distance/floats-no-range", ["distance", "floats.npy", "-o", "D.npy"])
    run("distance/rgb", ["distance", "rgb.npy", "-o", "D.npy", "--size", "3"])
    run("distance/npz-key", ["distance", "labelled.npz", "--key", "images", "-o", "D.npy",
                             "--window", "uniform", "--size", "5"])
    if not quick:
        run("distance/digits", ["distance", "digits", "-o", "D.npy", "--window", "uniform",
                                "--size", "3", "--dtype", "float32"])
    f = run("distance/refuse-overwrite", ["distance", "images.npy", "-o", "D.npy", "--size", "3"])
    run("distance/refuse-overwrite-again", ["distance", "images.npy", "-o", "D.npy", "--size",
                                            "3"], where=f)
    run("distance/force", ["distance", "images.npy", "-o", "D.npy", "--size", "5", "--force"],
        where=f)
    png = root / "pngs"
    png.mkdir()
    from PIL import Image
    for i, img in enumerate(stacks["u8_rgb_12"][0]):
        Image.fromarray(np.ascontiguousarray(img)).save(png / f"img{i:02d}.png")
    run("distance/png-folder-color", ["distance", str(png), "--color", "-o", "D.npy", "--size",
                                      "3"])
    run("distance/png-folder-gray", ["distance", str(png), "-o", "D.npy", "--size", "3",
                                     "--window", "uniform"])
    # kernel
    run("kernel/train-test-psd", ["kernel", "images.npy", "-o", "K.npy", "--test", "test.npy",
                                  "-o-test", "Kt.npy", "--check-psd"])
    run("kernel/p2-eq1-wm", ["kernel", "images.npy", "-o", "K.npy", "--power", "2", "--kind",
                             "eq1", "--working-memory", "0.01", "--check-psd", "--preset",
                             "skimage"])
    run("kernel/p0.5-reference-test", ["kernel", "floats.npy", "-o", "K.npy", "--power",
                                       "0.5", "--data-range", "1", "--size", "3", "--backend",
                                       "reference", "--test", "floats.npy", "-o-test",
                                       "Kt.npy"])
    run("kernel/test-without-output", ["kernel", "images.npy", "-o", "K.npy", "--test",
                                       "test.npy"])
    # mmd (statistics: reduction)
    run("mmd/ssim-json", ["mmd", "images.npy", "other.npy", "--permutations", "19", "--seed",
                          "3", "--json", "mmd.json"], "reduction")
    run("mmd/rbf-biased", ["mmd", "images.npy", "other.npy", "--kernel", "rbf", "--scales",
                           "0.5", "2", "--estimator", "biased", "--permutations", "29",
                           "--seed", "1", "--json", "mmd.json"], "reduction")
    run("mmd/ssim-rbf-wm", ["mmd", "images.npy", "other.npy", "--kernel", "ssim-rbf",
                            "--kind", "eq1", "--permutations", "9", "--seed", "2",
                            "--working-memory", "0.01", "--size", "5"], "reduction")
    run("mmd/mean-ssim-linear", ["mmd", "images.npy", "other24.npy", "--kernel", "mean-ssim",
                                 "--estimator", "linear", "--permutations", "0", "--json",
                                 "mmd.json"], "reduction")
    run("mmd/ssim-rbf-floats", ["mmd", "floats.npy", "floats_b.npy", "--data-range", "1",
                                "--kernel", "ssim-rbf", "--scales", "0.5", "--estimator",
                                "biased", "--permutations", "15", "--seed", "0", "--size",
                                "3"], "reduction")
    run("mmd/mismatched-shapes", ["mmd", "digits", "images.npy", "--permutations", "0"],
        "reduction")
    run("mmd/ssim-p2-biased", ["mmd", "test.npy", "other.npy", "--power", "2", "--estimator",
                               "biased", "--permutations", "0", "--preset", "paper"],
        "reduction")
    # demo (kernels, SVCs on them)
    if not quick:
        run("demo/limit200", ["demo", "--limit", "200", "--no-plots", "-o", "demo"])
    # gmmn train / sample / evaluate (trained: reduction)
    f = run("gmmn/train-rbf", ["gmmn", "train", "--kernel", "rbf", "--steps", "20",
                               "--batch", "32", "--seed", "4", "--log-every", "5",
                               "--sample-every", "10", "--checkpoint-every", "10",
                               "--no-progress", "-o", "run"], "reduction")
    run("gmmn/sample-npy", ["gmmn", "sample", "run", "-n", "16", "-o", "s.npy"], "reduction",
        where=f)
    run("gmmn/sample-png-seed", ["gmmn", "sample", "run", "-n", "20", "--seed", "9", "-o",
                                 "s.png"], "reduction", where=f)
    run("gmmn/evaluate", ["gmmn", "evaluate", "run", "-n", "100", "--parzen-samples", "200"],
        "reduction", where=f)
    run("gmmn/train-resume", ["gmmn", "train", "--steps", "25", "--resume", "--no-progress",
                              "-o", "run"], "reduction", where=f)
    f = run("gmmn/train-ssim-conditional", ["gmmn", "train", "--kernel", "ssim",
                                            "--conditional", "--steps", "6", "--batch", "20",
                                            "--seed", "2", "--log-every", "3",
                                            "--sample-every", "6", "--checkpoint-every", "3",
                                            "--no-progress", "-o", "crun"], "reduction")
    run("gmmn/sample-label", ["gmmn", "sample", "crun", "-n", "8", "--label", "3", "-o",
                              "s3.npy"], "reduction", where=f)
    if not quick:  # eight tiny runs; table.md repeats results.json with training seconds
        run("gmmn/experiment-tiny", ["gmmn", "experiment", "-o", "exp", "--seeds", "1",
                                     "--steps", "4", "--batch", "16", "--ae-steps", "4",
                                     "-n", "60", "--parzen-samples", "100", "--no-progress"],
            "reduction", skip=("exp/table.md",),
            masks=((r"\| [\d.]+ \|$", "| <SECONDS> |"), (r"wall time \d+ s",
                                                          "wall time <SECONDS> s")))
    # verify (the oracle against scikit-image)
    run("verify/skimage", ["verify", "skimage"])
    run("verify/skimage-cases", ["verify", "skimage", "--cases", "tiny,identical,multichannel",
                                 "--convention", "skimage", "--tolerance", "1e-9"])
    run("verify/list-cases", ["verify", "--list-cases"])
    # the module entry point in a subprocess
    run("subprocess/version", ["--version"], subprocess_=True)
    run("subprocess/distance", ["distance", "images.npy", "-o", "D.npy", "--size", "5",
                                "--kind", "eq1"], subprocess_=True)
    run("subprocess/bad-kind", ["distance", "images.npy", "-o", "D.npy", "--kind", "eq3"],
        subprocess_=True)
    del inputs


# ======================================================================== verification
def record_verification(rec, quick):
    """The oracle on a few cases, the golden file against the fast functions, check() on
    an ssimref-based callable, gradcheck of a distance gradient."""
    rec.section = "verification"
    try:
        cases = api("ssimref.verification.cases", "corpus")(large=False)
    except Exception as exc:  # noqa: BLE001
        rec.run("verification/cases", "forward", "ssimref.verification.cases.corpus(large=False)",
                lambda exc=exc: _raise(exc))
        cases = []
    oracle = "ssimref.verification.oracle"
    for case in cases:
        if case.name not in ("tiny", "constant_images", "odd_size", "multichannel",
                             "large_offset"):
            continue
        for label in ("paper", "skimage"):
            cfg = make_config(label)
            cfg = Named(label, _replace_range(cfg.value, case.data_range))
            X, Y = Named(f"case:{case.name}.x", case.x), Named(f"case:{case.name}.y", case.y)
            rec.call(f"verification/oracle.ssim_components/{case.name}/{label}", "forward",
                     oracle, "ssim_components", X, Y, cfg)
            for kind in KINDS:
                rec.call(f"verification/oracle.distance/{case.name}/{label}/{kind}", "forward",
                         oracle, "distance", X, Y, cfg, kind)
    # golden values: the fast functions on every golden case and configuration
    try:
        golden = api("ssimref.verification.make_golden", "load_golden")()
        case_arrays = api("ssimref.verification.make_golden", "case_arrays")
    except Exception as exc:  # noqa: BLE001
        rec.run("verification/golden", "forward", "load_golden()",
                lambda exc=exc: _raise(exc))
        golden = {"cases": {}, "values": {}, "configs": {}}
    for cname, entry in sorted(golden["cases"].items()):
        x, y = case_arrays(entry)
        for gname, fields in sorted(golden["configs"].items()):
            def fast(x=x, y=y, fields=fields, stored=golden["values"][cname][gname]):
                cfg = S("SSIMConfig")(data_range=entry["data_range"], **fields)
                s1, s2 = S("ssim_components")(x, y, cfg)
                got = {"ssim": S("ssim")(x, y, cfg), "s1_mean": float(np.mean(s1)),
                       "s2_mean": float(np.mean(s2)), "s1": s1, "s2": s2}
                for kind in KINDS:
                    got[f"d2_{kind}"] = S("distance")(x, y, kind, cfg, squared=True)
                got["max_abs_deviation_from_golden"] = max(
                    abs(got[q] - stored[q]) for q in stored if q != "exact")
                return got
            rec.run(f"verification/golden/{cname}/{gname}", "forward",
                    f"ssim_components, ssim, distance(squared) on golden case {cname}, "
                    f"config {gname}", fast)
    # check(): an ssimref-based callable against the oracle, with a deliberate convention
    # mismatch on one run so that the diagnosis runs too
    def ours_wang(x, y, data_range):
        return S("ssim")(x, y, S("SSIMConfig").wang2004(data_range=data_range))

    def ours_uniform(x, y, data_range):
        return S("ssim")(x, y, window="uniform", size=7, data_range=data_range)
    small = ["random_pair", "tiny", "odd_size", "constant_images", "multichannel",
             "unit_range", "large_offset"]
    for label, fn in (("ssimref-wang2004", ours_wang), ("ssimref-uniform7", ours_uniform)):
        rec.run(f"verification/check/{label}", "forward",
                f"check({label}, 'wang2004', cases={small})",
                lambda fn=fn: _conformance(VER("check")(fn, "wang2004", cases=small)))
    rec.run("verification/Convention/wang2004", "forward",
            "Convention.from_config(SSIMConfig.wang2004()).as_dict(), describe()",
            lambda: (lambda c: {"dict": c.as_dict(), "text": c.describe()})(
                VER("Convention").from_config(S("SSIMConfig").wang2004())))
    # gradcheck of the gradient of sum_i D(X_i, Y_i) from paired_distance_and_grad
    rng = np.random.default_rng(41)
    Xg, Yg = rng.random((2, 10, 10)), rng.random((2, 10, 10))
    for kind in KINDS:
        def grad_check(kind=kind):
            def loss(x):
                return float(np.sum(S("paired_distance")(x, Yg, kind, data_range=1.0,
                                                         window="uniform", size=3)))

            def grad(x):
                return S("paired_distance_and_grad")(x, Yg, kind, data_range=1.0,
                                                     window="uniform", size=3)[1]
            res = VER("gradcheck")(loss, grad, Xg, max_points=60, seed=1)
            return {"passed": res.passed, "max_rel_error": res.max_rel_error,
                    "n_checked": res.n_checked, "worst_index": list(res.worst_index),
                    "analytic": res.analytic, "numeric": res.numeric}
        rec.run(f"verification/gradcheck/paired_distance/{kind}", "reduction",
                f"gradcheck(sum paired_distance, paired_distance_and_grad, {kind})",
                grad_check)


def _replace_range(config, data_range):
    return dataclasses.replace(config, data_range=float(data_range))


def _conformance(result):
    return {"passed": result.passed, "report": str(result)}


def record_bad_input(rec, quick):
    """Rejected inputs: the exception (type and message) is the recorded outcome."""
    rec.section = "bad_input"
    stacks = make_stacks()
    Xa, Ya, _ = stacks["u8_16"]
    X, Y = Named("u8_16.X", Xa), Named("u8_16.Y", Ya)
    x, y = Named("u8_16.X[0]", Xa[0]), Named("u8_16.X[1]", Xa[1])
    f = Named("floats", stacks["f64_10"][0])
    calls = [
        ("distance_matrix/working_memory=-1", "ssimref", "distance_matrix", (X,),
         dict(working_memory=-1)),
        ("distance_matrix/working_memory=0", "ssimref", "distance_matrix", (X,),
         dict(working_memory=0)),
        ("distance_matrix/kind=eq3", "ssimref", "distance_matrix", (X,), dict(kind="eq3")),
        ("distance_matrix/backend=gpu", "ssimref", "distance_matrix", (X,), dict(backend="gpu")),
        ("distance_matrix/float-no-range", "ssimref", "distance_matrix", (f,), {}),
        ("distance_matrix/window-too-large", "ssimref", "distance_matrix", (X,), dict(size=17)),
        ("distance_matrix_vjp/working_memory=-1", "ssimref", "distance_matrix_vjp",
         (X, None, Named("ones10x10", np.ones((10, 10)))), dict(working_memory=-1)),
        ("distance_matrix_vjp/G-shape", "ssimref", "distance_matrix_vjp",
         (X, Y, Named("ones10x10", np.ones((10, 10)))), {}),
        ("paired_distance/working_memory=-1", "ssimref", "paired_distance", (X, X),
         dict(working_memory=-1)),
        ("paired_distance/n-mismatch", "ssimref", "paired_distance", (X, Y), {}),
        ("paired_distance_and_grad/working_memory=-1", "ssimref", "paired_distance_and_grad",
         (X, X), dict(working_memory=-1)),
        ("ssim/shape-mismatch", "ssimref", "ssim",
         (x, Named("zeros9x9-uint8", np.zeros((9, 9), np.uint8))), {}),
        ("ssim/size-even-gaussian", "ssimref", "ssim", (x, y), dict(size=4)),
        ("ssim/unknown-convention", "ssimref", "ssim", (x, y), dict(windw="uniform")),
        ("mmd2/working_memory=-1", "ssimref.gmmn", "mmd2",
         (Named("v", np.ones((4, 2))), Named("w", np.zeros((4, 2))),
          Named("RBFMixture()", None)), dict(working_memory=-1)),
        ("mmd2/estimator", "ssimref.gmmn", "mmd2",
         (Named("v", np.ones((4, 2))), Named("w", np.zeros((4, 2))),
          Named("RBFMixture()", None)), dict(estimator="median")),
        ("double_center/power=3", "ssimref.kernels", "double_center",
         (Named("zeros3x3", np.zeros((3, 3))),), dict(power=3)),
        ("repair_psd/method", "ssimref.kernels", "repair_psd",
         (Named("eye3", np.eye(3)),), dict(method="nearest")),
    ]
    for name, module, func, args, kwargs in calls:
        def thunk(module=module, func=func, args=args, kwargs=kwargs):
            values = [KER("RBFMixture")() if isinstance(a, Named) and a.label == "RBFMixture()"
                      else _value(a) for a in args]
            return api(module, func)(*values, **kwargs)
        rec.run(f"bad_input/{name}", "forward", describe_call(f"{module}.{func}", args, kwargs),
                thunk)
    rec.run("bad_input/SSIMDistanceKernel/working_memory=-1", "forward",
            "SSIMDistanceKernel(working_memory=-1)",
            lambda: KER("SSIMDistanceKernel")(working_memory=-1))
    rec.run("bad_input/value_and_vjp/wrt_y-without-Y", "forward",
            "RBFMixture().value_and_vjp(v, None, G, wrt_y=True)",
            lambda: KER("RBFMixture")().value_and_vjp(np.ones((3, 2)), None, np.ones((3, 3)),
                                                      wrt_y=True))


SECTIONS = {
    "core_pairs": record_core_pairs,
    "core_matrices": record_core_matrices,
    "kernels": record_kernels,
    "differentiable": record_differentiable,
    "mmd": record_mmd,
    "training": record_training,
    "cli": record_cli,
    "verification": record_verification,
    "bad_input": record_bad_input,
}


def record(out_dir, quick=False, only=None):
    out_dir = Path(out_dir)
    if (out_dir / "manifest.json").exists():
        raise SystemExit(f"{out_dir} already holds a recording; choose another folder")
    import ssimref
    where = Path(ssimref.__file__).resolve().parent.parent
    print(f"recording ssimref {ssimref.__version__} from {where}", flush=True)
    here = Path(__file__).resolve().parent.parent
    if where == here and os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] != str(here):
        print("warning: ssimref comes from this script's own checkout", flush=True)
    from threadpoolctl import threadpool_limits
    _one_numba_thread()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ssimref-record-") as tmp, \
            threadpool_limits(limits=1, user_api="blas"):
        rec = Recorder(out_dir, tmp)
        for name, section in SECTIONS.items():
            if only and name not in only:
                continue
            t0 = time.perf_counter()
            if name in ("training", "cli"):
                section(rec, quick, tmp)
            else:
                section(rec, quick)
            rec.timings[name] = round(time.perf_counter() - t0, 2)
            n = sum(e["file"] == f"{name}.npz" for e in rec.entries.values())
            print(f"  {name}: {n} entries in {rec.timings[name]:.1f} s", flush=True)
        seconds = time.perf_counter() - start
        versions = {}
        for pkg in ("numpy", "scipy", "numba", "scikit-learn", "scikit-image"):
            try:
                from importlib import metadata
                versions[pkg] = metadata.version(pkg)
            except Exception:  # noqa: BLE001
                versions[pkg] = "?"
        extra = {"ssimref_path": str(where), "ssimref_version": ssimref.__version__,
                 "python": sys.version.split()[0], "versions": versions, "quick": quick,
                 "sections": rec.timings, "seconds": round(seconds, 1)}
        rec.write(extra)
    counts = _counts(rec.entries)
    print(f"wrote {len(rec.entries)} entries to {out_dir} in {seconds:.1f} s: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()), flush=True)


def _one_numba_thread():
    """Numba on one thread: each pair is computed independently (the thread count only
    changes how tasks are chunked), and on a loaded machine every parallel launch of a
    small tile otherwise waits for descheduled threads."""
    try:
        import numba
        numba.set_num_threads(1)
    except ImportError:  # the checkout may not need Numba
        pass


def _counts(entries):
    counts = {}
    for e in entries.values():
        for key in (e["category"], e["status"]):
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


# ============================================================================= compare
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _text_close(a, b, tol):
    """Same text apart from numbers that differ by at most ``tol`` relative or one unit
    of their last printed digit. Returns (ok, max relative difference of the numbers)."""
    if _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False, math.inf
    worst = 0.0
    for sa, sb in zip(_NUMBER.findall(a), _NUMBER.findall(b)):
        if sa == sb:
            continue
        va, vb = float(sa), float(sb)
        mantissa = sa.lower().split("e")[0]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        exponent = int(sa.lower().split("e")[1]) if "e" in sa.lower() else 0
        unit = 10.0 ** (exponent - decimals)
        diff = abs(va - vb)
        worst = max(worst, diff / max(abs(va), abs(vb), 1e-300))
        if diff > max(unit * 1.000001, tol * max(abs(va), abs(vb))):
            return False, worst
    return True, worst


class PartDiff:
    """How one part differs. Float parts carry ``max_abs`` and ``scale`` (their largest
    magnitude on either side) and are judged at the entry level; every other kind of part
    is judged here (``ok``)."""

    def __init__(self, identical, ok=True, max_abs=0.0, scale=0.0, note="", floating=False):
        self.identical, self.ok, self.floating = identical, ok, floating
        self.max_abs, self.scale, self.note = max_abs, scale, note


def compare_part(a, b, category, name):
    if a is None or b is None:
        same = a is None and b is None
        return PartDiff(same, same, note="" if same else "None on one side")
    if a.dtype.kind == "U" or b.dtype.kind == "U":
        if a.dtype.kind != b.dtype.kind or a.shape != b.shape:
            return PartDiff(False, False, note="text vs array")
        if np.array_equal(a, b):
            return PartDiff(True)
        if category == "forward":
            return PartDiff(False, False, note="text differs")
        ok = all(_text_close(str(sa), str(sb), REL_TOL)[0]
                 for sa, sb in zip(a.reshape(-1), b.reshape(-1)))
        return PartDiff(False, ok, note="numbers in the text differ"
                        + ("" if ok else " beyond their printed precision"))
    if a.shape != b.shape or a.dtype != b.dtype:
        return PartDiff(False, False, note=f"{a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}")
    if a.tobytes() == b.tobytes():
        return PartDiff(True, floating=a.dtype.kind in "fc",
                        scale=_magnitude(a) if a.dtype.kind in "fc" else 0.0)
    if a.dtype.kind in "biu":
        max_abs = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
        ok = category == "reduction" and a.dtype == np.uint8 and name.endswith("pixels") \
            and max_abs <= 1
        return PartDiff(False, ok, max_abs, note=f"integers differ by up to {max_abs:g}")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    finite = np.isfinite(a64)
    if not np.array_equal(finite, np.isfinite(b64)) or \
            not np.array_equal(a64[~finite], b64[~finite], equal_nan=True):
        return PartDiff(False, False, math.inf, note="NaN/Inf differ")
    max_abs = float(np.max(np.abs(a64[finite] - b64[finite]))) if finite.any() else 0.0
    note = "" if max_abs else "equal values, different bits (signed zero or NaN payload)"
    return PartDiff(False, True, max_abs, max(_magnitude(a64), _magnitude(b64)), note,
                    floating=True)


def _magnitude(a):
    a = np.abs(a[np.isfinite(a)])
    return float(a.max()) if a.size else 0.0


def load_recording(folder):
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        raise SystemExit(f"{folder}: not a recording of this script ({manifest.get('format')})")
    files = {}
    for name in {e["file"] for e in manifest["entries"].values() if e["status"] == "ok"}:
        with np.load(folder / name, allow_pickle=False) as data:
            files[name] = {k: data[k] for k in data.files}
    return manifest, files


def compare_entry(ea, eb, fa, fb, per_part=False):
    """(identical, ok, max_abs, max_rel, note) of one entry recorded on both sides.

    ``max_rel`` is the largest absolute difference of a float part divided by the entry's
    largest float magnitude (both sides), or with ``per_part`` by that part's own.
    Forward entries pass only when bit-identical; reduction entries when ``max_rel <=
    1e-13`` and every other part passes its own rule (module docstring)."""
    nan = math.nan
    category = ea["category"]
    if ea["category"] != eb["category"]:
        return False, False, nan, nan, f"category {ea['category']} vs {eb['category']}"
    if ea["status"] != eb["status"]:
        def outcome(e):
            err = e.get("error")
            return e["status"] + (f" ({err['type']}: {err['message']})" if err else "")
        return False, False, nan, nan, f"outcome {outcome(ea)} -> {outcome(eb)}"
    if ea["status"] != "ok":
        same = ea.get("error") == eb.get("error")
        return same, same, nan, nan, "" if same else \
            f"{ea['error']['type']}: {ea['error']['message']} -> " \
            f"{eb['error']['type']}: {eb['error']['message']}"
    pa = {p["name"]: p for p in ea["parts"]}
    pb = {p["name"]: p for p in eb["parts"]}
    if list(pa) != list(pb):
        only_a, only_b = sorted(set(pa) - set(pb)), sorted(set(pb) - set(pa))
        return False, False, nan, nan, \
            f"parts differ: only in BASE {only_a[:5]}, only in NEW {only_b[:5]}"
    diffs = {}
    for part in pa:
        a = None if pa[part]["key"] is None else fa[ea["file"]][pa[part]["key"]]
        b = None if pb[part]["key"] is None else fb[eb["file"]][pb[part]["key"]]
        diffs[part] = compare_part(a, b, category, part)
    identical = all(d.identical for d in diffs.values())
    ok = all(d.ok for d in diffs.values())
    floats = [d for d in diffs.values() if d.floating]
    entry_scale = max((d.scale for d in floats), default=0.0)
    max_abs, max_rel = 0.0, 0.0
    for d in floats:
        scale = d.scale if per_part else entry_scale
        rel = d.max_abs / scale if scale else (0.0 if d.max_abs == 0 else math.inf)
        max_abs, max_rel = max(max_abs, d.max_abs), max(max_rel, rel)
    if category == "forward":
        ok = identical
    else:
        ok = ok and max_rel <= REL_TOL
    notes = [f"{part}: {d.note}" for part, d in diffs.items() if d.note and not d.identical]
    return identical, ok, max_abs, max_rel, "; ".join(notes[:3])


def site(name):
    """The function an entry exercises: its first two path components (three for CLI)."""
    parts = name.split("/")
    return "/".join(parts[:3] if parts[0] == "cli" else parts[:2])


def compare(base, new, show_all=False, report=None, per_part=False):
    ma, fa = load_recording(base)
    mb, fb = load_recording(new)
    ea, eb = ma["entries"], mb["entries"]
    print(f"BASE {base}: ssimref from {ma['ssimref_path']} ({len(ea)} entries, "
          f"{ma['seconds']} s)")
    print(f"NEW  {new}: ssimref from {mb['ssimref_path']} ({len(eb)} entries, "
          f"{mb['seconds']} s)")
    rows = []
    stats = {c: {"identical": 0, "pass": 0, "fail": 0} for c in CATEGORIES}
    changed_sites, failed_sites = {}, {}
    for name in sorted(set(ea) & set(eb)):
        identical, ok, max_abs, max_rel, note = compare_entry(ea[name], eb[name], fa, fb,
                                                              per_part)
        cat = ea[name]["category"]
        stats[cat]["identical" if identical else ("pass" if ok else "fail")] += 1
        if not identical:
            changed_sites.setdefault(site(name), []).append(max_rel)
        if not ok:
            failed_sites.setdefault(site(name), []).append(name)
        rows.append((name, cat, identical, max_abs, max_rel, ok, note))
    only_a, only_b = sorted(set(ea) - set(eb)), sorted(set(eb) - set(ea))
    missing = {n: e for n, e in {**ea, **eb}.items() if e["status"] == "missing"}

    def line(r):
        name, cat, identical, max_abs, max_rel, ok, note = r
        return (f"{'PASS' if ok else 'FAIL'}  {cat:9s}  identical={'yes' if identical else 'no '}"
                f"  max_abs={max_abs:.3g}  max_rel={max_rel:.3g}  {name}"
                + (f"  [{note}]" if note else ""))
    if report:
        with open(report, "w") as fh:
            fh.write("result\tcategory\tbit_identical\tmax_abs\tmax_rel\tentry\tnote\n")
            for name, cat, identical, max_abs, max_rel, ok, note in rows:
                fh.write(f"{'PASS' if ok else 'FAIL'}\t{cat}\t{'yes' if identical else 'no'}\t"
                         f"{max_abs:.6g}\t{max_rel:.6g}\t{name}\t{note}\n")
    shown = [r for r in rows if show_all or not r[2] or not r[5]]
    if shown:
        print(f"\n{'all entries' if show_all else 'entries that are not bit-identical'}:")
        for r in shown:
            print(line(r))
    if only_a or only_b:
        print(f"\nentries only in BASE ({len(only_a)}):")
        for n in only_a:
            print(f"  {n}")
        print(f"entries only in NEW ({len(only_b)}):")
        for n in only_b:
            print(f"  {n}")
    if missing:
        print(f"\nentries whose public name is missing ({len(missing)}):")
        for n, e in sorted(missing.items()):
            side = "BASE" if n in ea and ea[n]["status"] == "missing" else "NEW"
            print(f"  {n} ({side}: {e['error']['message']})")
    if changed_sites:
        print("\nchanged sites (entries not bit-identical; worst relative difference):")
        for s, rels in sorted(changed_sites.items()):
            fails = len(failed_sites.get(s, []))
            worst = max((r for r in rels if not math.isnan(r)), default=math.nan)
            print(f"  {s}: {len(rels)} entries, max_rel {worst:.3g}"
                  + (f", {fails} FAIL" if fails else ""))
    n_fail = sum(s["fail"] for s in stats.values()) + len(only_a) + len(only_b)
    summary = "; ".join(f"{c}: {s['identical']} bit-identical, {s['pass']} within tolerance, "
                        f"{s['fail']} FAIL" for c, s in stats.items())
    print(f"\nSUMMARY: {len(rows)} entries compared ({summary}); {len(only_a)} only in BASE, "
          f"{len(only_b)} only in NEW; {len(missing)} missing names -> "
          f"{'FAIL' if n_fail else 'PASS'}")
    return 1 if n_fail else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("record", help="record the outputs of the ssimref on PYTHONPATH")
    p.add_argument("dir", help="output folder (must not hold a recording)")
    p.add_argument("--quick", action="store_true", help="a subset (for developing this "
                   "script; compare only with another --quick recording)")
    p.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="these sections only")
    p = sub.add_parser("compare", help="compare two recordings")
    p.add_argument("base")
    p.add_argument("new")
    p.add_argument("--all", action="store_true", help="print every entry, not only the "
                   "ones that are not bit-identical")
    p.add_argument("--report", help="also write a per-entry table (TSV) to this file")
    p.add_argument("--per-part", action="store_true", help="relative differences against each "
                   "part's own largest magnitude instead of the entry's (stricter when an "
                   "entry holds a value and a gradient of different sizes)")
    args = parser.parse_args(argv)
    if args.command == "record":
        record(args.dir, args.quick, args.only)
        return 0
    return compare(args.base, args.new, args.all, args.report, args.per_part)


if __name__ == "__main__":
    sys.exit(main())
