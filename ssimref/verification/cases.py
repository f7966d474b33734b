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
black_half_range      12x12 all-zero images at data range 0.5: SSIM is 1, but an eps added to
                      the denominator shows (c1 c2 = 5.6e-9)
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
(too large for the loop-based oracle, so it has no golden values). Nothing is built at
import: :data:`CASE_NAMES` and :data:`DESCRIPTIONS` are static, and each case is built on
first use (drawing from one seeded generator in corpus order, so that its pixels never
depend on which cases were asked for) and cached, with read-only arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Case", "corpus", "case", "CASE_NAMES", "DESCRIPTIONS", "LARGE_CASES"]

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


_BUILDERS = []


def _case(name, description, data_range=255.0, tolerance=None):
    """Register the builder of a case: ``fn(rng) -> (x, y)``. Cases are built in the order
    they are registered, all from one generator seeded with :data:`SEED`, so that each
    case's pixels do not depend on which cases were asked for."""
    def register(fn):
        _BUILDERS.append((name, description, float(data_range), tolerance, fn))
        return fn
    return register


SHAPE = (24, 24)


@_case("random_pair", "two independent uniform integer textures in 0..255")
def _random_pair(rng):
    return _texture(rng, SHAPE), _texture(rng, SHAPE)


@_case("correlated_pair", "a smooth image and a copy with integer noise (+-20), clipped")
def _correlated_pair(rng):
    smooth = _smooth(rng, (32, 32))
    return smooth, np.clip(smooth + rng.integers(-20, 21, size=smooth.shape), 0, 255)


@_case("identical", "x == y, a texture")
def _identical(rng):
    same = _texture(rng, SHAPE)
    return same, same.copy()


@_case("constant_images", "flat 100 against flat 150")
def _constant_images(rng):
    return np.full(SHAPE, 100.0), np.full(SHAPE, 150.0)


@_case("constant_vs_texture", "flat 128 against a texture")
def _constant_vs_texture(rng):
    return np.full(SHAPE, 128.0), _texture(rng, SHAPE)


@_case("zero_images", "both all zero")
def _zero_images(rng):
    return np.zeros(SHAPE), np.zeros(SHAPE)


@_case("zero_vs_texture", "all zero against a texture")
def _zero_vs_texture(rng):
    return np.zeros(SHAPE), _texture(rng, SHAPE)


@_case("black_half_range", "both all zero, data range 0.5: c1 c2 = 5.6e-9, so an eps added "
       "to the denominator shows (kornia's 1e-12: 0.99982)", data_range=0.5)
def _black_half_range(rng):
    return np.zeros((12, 12)), np.zeros((12, 12))


@_case("saturated", "a texture and its contrast-doubled copy clipped at 255")
def _saturated(rng):
    base = _texture(rng, SHAPE, 0, 200)
    return base, np.clip(2.0 * base, 0, 255)


@_case("negated", "x against -x (negative pixel values)")
def _negated(rng):
    base = _texture(rng, SHAPE)
    return base, -base


@_case("inverted", "x against 255 - x")
def _inverted(rng):
    base = _texture(rng, SHAPE)
    return base, 255.0 - base


@_case("narrow_range", "textures within 100..140, declared range 255")
def _narrow_range(rng):
    return _texture(rng, SHAPE, 100, 140), _texture(rng, SHAPE, 100, 140)


@_case("unit_range", "float64 textures in [0, 1] (multiples of 1/64), data range 1",
       data_range=1.0)
def _unit_range(rng):
    return _texture(rng, SHAPE, 0, 64) / 64, _texture(rng, SHAPE, 0, 64) / 64


@_case("tiny", "11x11 textures: one 11x11 window")
def _tiny(rng):
    return _texture(rng, (11, 11)), _texture(rng, (11, 11))


@_case("odd_size", "23x17 textures")
def _odd_size(rng):
    return _texture(rng, (23, 17)), _texture(rng, (23, 17))


@_case("large_offset", "1e8 + a smooth image, and 1e8 + a noisy copy; data range 255")
def _large_offset(rng):
    base = _smooth(rng, SHAPE)
    return 1e8 + base, 1e8 + np.clip(base + rng.integers(-10, 11, size=SHAPE), 0, 255)


@_case("uint8_overflow", "uint8 textures in 200..255: x*y and x^2 overflow uint8")
def _uint8_overflow(rng):
    return (_texture(rng, SHAPE, 200, 255).astype(np.uint8),
            _texture(rng, SHAPE, 200, 255).astype(np.uint8))


@_case("float32_input", "float32 textures in [0, 1] (multiples of 1/255), data range 1",
       data_range=1.0, tolerance=1e-5)
def _float32_input(rng):
    return ((_texture(rng, SHAPE) / 255).astype(np.float32),
            (_texture(rng, SHAPE) / 255).astype(np.float32))


@_case("multichannel", "(20, 22, 3) colour textures, channels last")
def _multichannel(rng):
    return _texture(rng, (20, 22, 3)), _texture(rng, (20, 22, 3))


@_case("non_contiguous", "every 2nd row and 3rd column of 48x60 textures (24x20 views)")
def _non_contiguous(rng):
    big_x, big_y = _texture(rng, (48, 60)), _texture(rng, (48, 60))
    return big_x[::2, ::3], big_y[::2, ::3]


@_case("fortran_order", "column-major 24x24 textures")
def _fortran_order(rng):
    return (np.asfortranarray(_texture(rng, SHAPE)),
            np.asfortranarray(_texture(rng, SHAPE)))


@_case("large_downsampling", "385x387 smooth image and a noisy copy: ssim.m and piq "
       "downsample by 2")
def _large_downsampling(rng):
    big = _smooth(rng, (385, 387))
    return big, np.clip(big + rng.integers(-30, 31, size=big.shape), 0, 255)


LARGE_CASES = ("large_downsampling",)
CASE_NAMES = tuple(name for name, *_ in _BUILDERS)
DESCRIPTIONS = {name: description for name, description, *_ in _BUILDERS}
"""Each case's one-line description, without building it."""

_built = []  # the cases built so far, in corpus order
_rng = []  # the generator they were drawn from, once the first case is built


def _read_only(a):
    a.setflags(write=False)
    return a


def _build_up_to(count):
    """Build the first ``count`` cases (once; later calls reuse them)."""
    if not _rng:
        _rng.append(np.random.default_rng(SEED))
    while len(_built) < count:
        name, description, data_range, tolerance, fn = _BUILDERS[len(_built)]
        x, y = fn(_rng[0])
        _built.append(Case(name, description, _read_only(x), _read_only(y), data_range,
                           tolerance))
    return _built[:count]


def corpus(large=True, names=None):
    """The cases, built on first use and cached.

    Their arrays are shared between calls and read-only; copy one (keeping its layout,
    which is part of some cases) before changing it.

    Parameters
    ----------
    large : bool
        Include the 385x387 downsampling case (ignored when ``names`` is given).
    names : sequence of str, optional
        Only these cases, in corpus order.

    Raises
    ------
    ValueError
        For an unknown case name.
    """
    if names is not None:
        names = list(names)
        unknown = set(names) - set(CASE_NAMES)
        if unknown:
            raise ValueError(f"unknown case(s) {sorted(unknown)}; known: {list(CASE_NAMES)}")
        last = max((CASE_NAMES.index(n) for n in names), default=-1)
        return [c for c in _build_up_to(last + 1) if c.name in names]
    cases = _build_up_to(len(CASE_NAMES)) if large else _build_up_to(
        len(CASE_NAMES) - len(LARGE_CASES))
    return [c for c in cases if large or c.name not in LARGE_CASES]


def case(name):
    """One case by name."""
    return corpus(names=[name])[0]
