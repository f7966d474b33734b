"""A named corpus of image pairs that break SSIM implementations.

Every case is generated in code from a fixed seed (no files, nothing downloaded), small
enough for the loop-based oracle, and chosen for one failure it provokes:

====================  ===================================================================
case                  what it probes
====================  ===================================================================
random_pair           two independent textures: the plain case every convention changes
correlated_pair       a smooth image and a noisy copy: SSIM near 1, sensitive to windows
identical             x == y: SSIM must be exactly 1 (no cancellation, no eps bias)
constant_images       two flat images of different levels: zero variance, s2 == 1
constant_vs_texture   a flat image against a texture
zero_images           both all zero: 0/0 unless c1, c2 > 0 (eps-biased implementations)
zero_vs_texture       an all-zero image against a texture
saturated             a texture and its contrast-doubled copy clipped at 255
negated               x against -x: negative pixel values
inverted              x against 255 - x: perfectly anti-correlated structure
narrow_range          content within 100..140 of 0..255: data range inferred from the data
                      differs from the declared one
unit_range            float images in [0, 1] with data_range 1 (hard-coded 255 shows here)
tiny                  11x11 images: exactly one 11x11 window
odd_size              23x17 images: odd, unequal sides (padding and cropping off by one)
large_offset          1e8 + texture, data range 255: E[x^2] - E[x]^2 cancellation
uint8_overflow        uint8 images near 255: products overflow in uint8 arithmetic
float32_input         float32 images in [0, 1]: float32 arithmetic
multichannel          (20, 22, 3) colour images: per-channel SSIM averaged over channels
non_contiguous        strided views into larger arrays
fortran_order         column-major (Fortran-ordered) arrays
large_downsampling    385x387 images: the only size in the corpus where ssim.m and piq
                      downsample (by 2); odd sides tell ssim.m's filter-and-subsample
                      (193x194 pixels) from piq's average pooling (192x193)
====================  ===================================================================

``corpus()`` returns them in this order; ``corpus(large=False)`` leaves out the 385x387 case
(too large for the loop-based oracle, so it has no golden values).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Case", "corpus", "case", "CASE_NAMES", "LARGE_CASES"]

SEED = 20200617


@dataclass(frozen=True)
class Case:
    """One image pair with the data range to call SSIM with.

    Attributes
    ----------
    name, description : str
    x, y : ndarray (H, W) or (H, W, C)
        In their own dtype and memory layout (the layout is part of some cases).
    data_range : float
        The intensity range ``L`` a caller passes.
    tolerance : float or None
        A looser absolute tolerance for cases whose input dtype limits the attainable
        accuracy (float32); ``None`` uses the runner's tolerance.
    """

    name: str
    description: str
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    data_range: float
    tolerance: float | None = None

    @property
    def shape(self):
        return tuple(self.x.shape)

    @property
    def channels(self) -> int:
        return 1 if self.x.ndim == 2 else self.x.shape[2]

    @property
    def layout(self) -> str:
        """'C', 'F' (column-major) or 'strided' (neither contiguous)."""
        flags = self.x.flags
        return "C" if flags.c_contiguous else "F" if flags.f_contiguous else "strided"


def _texture(rng, shape, low=0, high=255):
    return rng.integers(low, high + 1, size=shape).astype(np.float64)


def _smooth(rng, shape):
    """A smooth integer image in 0..255: a sum of a few random 2-D cosines."""
    h, w = shape
    rows = np.arange(h)[:, None]
    cols = np.arange(w)[None, :]
    img = np.zeros(shape)
    for _ in range(4):
        fr, fc = rng.uniform(0.02, 0.2, size=2)
        phase = rng.uniform(0, 2 * np.pi)
        img += np.cos(2 * np.pi * (fr * rows + fc * cols) + phase)
    img = (img - img.min()) / (img.max() - img.min())
    return np.round(20 + 215 * img)


def _build(large=True):
    rng = np.random.default_rng(SEED)
    cases = []

    def add(name, description, x, y, data_range=255.0, tolerance=None):
        cases.append(Case(name, description, x, y, float(data_range), tolerance))

    shape = (24, 24)
    add("random_pair", "two independent uniform integer textures in 0..255",
        _texture(rng, shape), _texture(rng, shape))
    smooth = _smooth(rng, (32, 32))
    add("correlated_pair", "a smooth image and a copy with integer noise (+-20), clipped",
        smooth, np.clip(smooth + rng.integers(-20, 21, size=smooth.shape), 0, 255))
    same = _texture(rng, shape)
    add("identical", "x == y, a texture", same, same.copy())
    add("constant_images", "flat 100 against flat 150", np.full(shape, 100.0),
        np.full(shape, 150.0))
    add("constant_vs_texture", "flat 128 against a texture", np.full(shape, 128.0),
        _texture(rng, shape))
    add("zero_images", "both all zero", np.zeros(shape), np.zeros(shape))
    add("zero_vs_texture", "all zero against a texture", np.zeros(shape),
        _texture(rng, shape))
    base = _texture(rng, shape, 0, 200)
    add("saturated", "a texture and its contrast-doubled copy clipped at 255", base,
        np.clip(2.0 * base, 0, 255))
    base = _texture(rng, shape)
    add("negated", "x against -x (negative pixel values)", base, -base)
    base = _texture(rng, shape)
    add("inverted", "x against 255 - x", base, 255.0 - base)
    add("narrow_range", "textures within 100..140, declared range 255",
        _texture(rng, shape, 100, 140), _texture(rng, shape, 100, 140))
    add("unit_range", "float64 textures in [0, 1] (multiples of 1/64), data range 1",
        _texture(rng, shape, 0, 64) / 64, _texture(rng, shape, 0, 64) / 64, 1.0)
    add("tiny", "11x11 textures: one 11x11 window", _texture(rng, (11, 11)),
        _texture(rng, (11, 11)))
    add("odd_size", "23x17 textures", _texture(rng, (23, 17)), _texture(rng, (23, 17)))
    base = _smooth(rng, shape)
    add("large_offset", "1e8 + a smooth image, and 1e8 + a noisy copy; data range 255",
        1e8 + base, 1e8 + np.clip(base + rng.integers(-10, 11, size=shape), 0, 255))
    add("uint8_overflow", "uint8 textures in 200..255: x*y and x^2 overflow uint8",
        _texture(rng, shape, 200, 255).astype(np.uint8),
        _texture(rng, shape, 200, 255).astype(np.uint8))
    add("float32_input", "float32 textures in [0, 1] (multiples of 1/255), data range 1",
        (_texture(rng, shape) / 255).astype(np.float32),
        (_texture(rng, shape) / 255).astype(np.float32), 1.0, tolerance=1e-5)
    add("multichannel", "(20, 22, 3) colour textures, channels last",
        _texture(rng, (20, 22, 3)), _texture(rng, (20, 22, 3)))
    big_x, big_y = _texture(rng, (48, 60)), _texture(rng, (48, 60))
    add("non_contiguous", "every 2nd row and 3rd column of 48x60 textures (24x20 views)",
        big_x[::2, ::3], big_y[::2, ::3])
    add("fortran_order", "column-major 24x24 textures", np.asfortranarray(_texture(rng, shape)),
        np.asfortranarray(_texture(rng, shape)))
    if large:
        big = _smooth(rng, (385, 387))
        add("large_downsampling", "385x387 smooth image and a noisy copy: ssim.m and piq "
            "downsample by 2", big,
            np.clip(big + rng.integers(-30, 31, size=big.shape), 0, 255))
    return cases


LARGE_CASES = ("large_downsampling",)
CASE_NAMES = tuple(c.name for c in _build(large=True))


def corpus(large=True, names=None):
    """The cases, freshly generated (callers may modify them).

    Parameters
    ----------
    large : bool
        Include the 385x387 downsampling case.
    names : sequence of str, optional
        Only these cases, in corpus order.
    """
    cases = _build(large=large or (names is not None and any(n in LARGE_CASES for n in names)))
    if names is not None:
        unknown = set(names) - set(CASE_NAMES)
        if unknown:
            raise ValueError(f"unknown case(s) {sorted(unknown)}; known: {list(CASE_NAMES)}")
        cases = [c for c in cases if c.name in names]
    return cases


def case(name):
    """One case by name."""
    return corpus(names=[name])[0]
