"""The conventions in which SSIM implementations differ, as one explicit record.

:class:`ssimref.SSIMConfig` holds the conventions ssimref itself computes with (window,
covariance normalisation, data range, constants, 'valid' windows). Other implementations
also differ in things ssimref deliberately does not do (docs/conformance.md): padding
the image so that the SSIM map keeps the image's size, filtering with a window longer than
the border they crop, downsampling large images first as Wang's later ``ssim.m`` does,
taking the data range from the data, adding an epsilon to the denominator, window weights
rounded or held in float32, or defects such as computing the luminance term from one
image's mean for both windows. A
:class:`Convention` names all of them, so that :mod:`ssimref.verification.oracle` can
evaluate SSIM under any of them and :mod:`ssimref.verification.conformance` can fit them.

Knobs
-----
window, size, sigma
    "gaussian" (``w_ij = g_i g_j``, ``g_k = exp(-(k - r)^2 / (2 sigma^2))``, ``r = (size-1)/2``,
    normalised to sum 1) or "uniform" (``1 / size^2``), ``size`` taps per side.
covariance
    "sample" (``1 / (1 - sum w^2)``), "population" (1) or "count" (``q / (q - 1)`` whatever the
    weights: scikit-image's ``use_sample_covariance``, whose ``q = win_size^2`` counts the
    pixels of the window it crops by: ``q = (2 crop + 1)^2`` when ``crop > 0``, else
    ``size^2``). See :class:`ssimref.SSIMConfig`.
data_range
    ``None``: the range ``L`` the caller passes; a number: that fixed ``L`` whatever is
    passed (a library default such as 1.0 or 255 that overrides the caller); "dynamic":
    ``max(ptp(x), ptp(y))`` of the two images, as torchmetrics does when it is not given.
k1, k2
    ``c1 = (k1 L)^2``, ``c2 = (k2 L)^2``.
border
    "valid": only windows inside the image. "same-<mode>": the image is first padded by
    ``size // 2`` pixels per side so that the map keeps the image's size; ``<mode>`` is
    NumPy's ``np.pad`` mode name: "reflect" (``d c b | a b c d``, PyTorch's and OpenCV's
    REFLECT_101), "symmetric" (``c b a | a b c d``: scipy.ndimage's "reflect", MATLAB's
    "symmetric"), "constant" (zeros) or "edge" (replicate).
crop
    Pixels removed from every side of a 'same' map before the mean (0 for "valid"). With
    ``size`` (the filter's taps) and ``border`` (its padding) this describes a filter longer
    than the border that is cropped: scikit-image's ``gaussian_weights=True, win_size=7``
    filters with 11 taps (``truncate=3.5``, sigma 1.5) under scipy's "reflect" padding
    (``same-symmetric``) and crops ``(7 - 1) // 2 = 3`` pixels, so its mean includes positions
    where the filter ran over mirrored pixels. A 'same' map of an odd window cropped by
    ``size // 2`` is the 'valid' map.
downsample
    "none"; "ssim.m": Wang's ``ssim.m`` (2009): ``f = max(1, round(min(H, W) / 256))``
    (MATLAB rounds halves away from zero), an ``f x f`` box filter applied with
    ``imfilter(..., 'symmetric', 'same')`` and every ``f``-th pixel kept from the first;
    "avgpool": piq's ``F.avg_pool2d(x, f)`` with Python's ``round``: means of disjoint
    ``f x f`` blocks, a remainder dropped.
luminance
    "own": ``s1 = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1)``. "first": the defect of
    computing the luminance term from image 1's mean for both windows (``mu_y := mu_x``),
    which makes ``s1 == 1`` and SSIM equal to ``s2``.
eps
    A number added to the product of the two denominators, as kornia does
    (``num1 num2 / (den1 den2 + eps)``, default ``eps = 1e-12``): two black images score
    ``c1 c2 / (c1 c2 + eps)``, 0.99982 at ``L = 0.5``, instead of 1.
weights
    "float64": the window weights above, summing to 1. "float32": the 1-D weights ``g`` held
    in float32 as pytorch-msssim builds them (offsets ``k - r`` and ``exp`` in float32,
    normalised by their float32 sum), the 2-D weights their products ``g_i g_j``; at
    11 taps, sigma 1.5 ``g`` sums to ``1 - 3.1e-8``. "round<d>" (``d`` = 1..15): the 2-D weights
    rounded to ``d`` decimals, as a reference that prints its window does (``round6`` of
    Gaussian 11, sigma 1.5 sums to ``1 - 2e-6``). Such weights do not sum to 1, and the
    moments are then what implementations compute from them: ``mu = sum w x``,
    ``sigma_x^2 = f (sum w x^2 - mu_x^2)`` (likewise ``sigma_xy``), which is
    ``f (sum w (x - mu_x)^2 + (1 - S) mu_x^2)`` with ``S = sum w``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

__all__ = ["Convention", "PRESETS", "BORDERS", "DOWNSAMPLES", "LUMINANCES", "preset",
           "downsample_factor", "weight_decimals"]

BORDERS = ("valid", "same-reflect", "same-symmetric", "same-constant", "same-edge")
DOWNSAMPLES = ("none", "ssim.m", "avgpool")
LUMINANCES = ("own", "first")


@dataclass(frozen=True)
class Convention:
    """Every convention of one SSIM implementation (see the module docstring).

    The defaults are Wang et al. 2004 (``ssim_index.m``) with the caller's data range.
    """

    window: str = "gaussian"
    size: int = 11
    sigma: float = 1.5
    covariance: str = "population"
    data_range: float | str | None = None
    k1: float = 0.01
    k2: float = 0.03
    border: str = "valid"
    crop: int = 0
    downsample: str = "none"
    luminance: str = "own"
    eps: float = 0.0
    weights: str = "float64"

    def __post_init__(self):
        if self.window not in ("gaussian", "uniform"):
            raise ValueError(f"window must be 'gaussian' or 'uniform', got {self.window!r}")
        if self.covariance not in ("sample", "population", "count"):
            raise ValueError("covariance must be 'sample', 'population' or 'count', got "
                             f"{self.covariance!r}")
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size must be a positive integer, got {self.size!r}")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma!r}")
        if isinstance(self.data_range, str):
            if self.data_range != "dynamic":
                raise ValueError("data_range must be None, a number or 'dynamic', got "
                                 f"{self.data_range!r}")
        elif self.data_range is not None and not self.data_range > 0:
            raise ValueError(f"data_range must be > 0, got {self.data_range!r}")
        for name, allowed in (("border", BORDERS), ("downsample", DOWNSAMPLES),
                              ("luminance", LUMINANCES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got "
                                 f"{getattr(self, name)!r}")
        if isinstance(self.crop, bool) or not isinstance(self.crop, int) or self.crop < 0:
            raise ValueError(f"crop must be an integer >= 0, got {self.crop!r}")
        if self.crop and self.border == "valid":
            raise ValueError("crop applies to 'same' maps: pass border='same-<mode>' with "
                             f"crop={self.crop}, or crop=0 for valid windows")
        if not (isinstance(self.eps, (int, float)) and 0 <= self.eps < math.inf):
            raise ValueError(f"eps must be a finite number >= 0, got {self.eps!r}")
        if self.weights not in ("float64", "float32") and weight_decimals(self.weights) is None:
            raise ValueError("weights must be 'float64', 'float32' or 'round<d>' with d in "
                             f"1..15, got {self.weights!r}")

    @classmethod
    def from_config(cls, config, **overrides) -> "Convention":
        """The convention of an :class:`ssimref.SSIMConfig` (stride 1, 'valid' windows)."""
        if config.stride != 1:
            raise ValueError("conventions describe stride-1 SSIM maps; got a config with "
                             f"stride {config.stride}")
        base = dict(window=config.window, size=config.size, sigma=config.sigma,
                    covariance=config.covariance, data_range=config.data_range,
                    k1=config.k1, k2=config.k2)
        base.update(overrides)
        return cls(**base)

    def replace(self, **changes) -> "Convention":
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def count(self) -> int:
        """``q`` of the "count" covariance ``q / (q - 1)``: the pixels of the window whose
        border is cropped, ``(2 crop + 1)^2`` when ``crop > 0``, else ``size^2``."""
        return (2 * self.crop + 1) ** 2 if self.crop else self.size * self.size

    def canonical(self) -> "Convention":
        """An equal-valued convention with irrelevant knobs normalised: sigma of a uniform
        window, "count" as "sample" where they are equal (uniform float64 weights of
        ``count`` pixels), and an eps of 0 as 0.0."""
        c = replace(self, eps=float(self.eps))
        if c.window == "uniform":
            same = c.weights == "float64" and c.count == c.size * c.size
            c = replace(c, sigma=1.5, covariance="sample" if c.covariance == "count" and same
                        else c.covariance)
        return c

    def describe(self, knob: str | None = None) -> str:
        """A short human description of the whole convention, or of one knob."""
        if knob is None:
            return ", ".join(self.describe(name) for name in _DESCRIBED
                             if getattr(self, name) != _DEFAULT_HIDDEN.get(name, object()))
        if knob == "filter":
            return f"{self.describe('window')} filter, {self.describe('border')}"
        value = getattr(self, knob)
        if knob in ("window", "size"):
            text = f"{self.window} {self.size}x{self.size}"
            return text + (f" sigma {self.sigma:g}" if self.window == "gaussian" else "")
        if knob == "sigma":
            return f"sigma {value:g}"
        if knob == "data_range":
            if value is None:
                return "data_range as passed"
            if value == "dynamic":
                return "data_range max(ptp(x), ptp(y))"
            return f"data_range fixed at {value:g}"
        if knob == "covariance":
            if value == "count":
                return f"count covariance (q / (q - 1), q = {self.count})"
            return f"{value} covariance"
        if knob == "border":
            if value == "valid":
                return "valid windows"
            crop = f", cropped by {self.crop} pixels per side" if self.crop else ""
            return f"'same' map, {value[5:]} padding{crop}"
        if knob == "crop":
            return f"map cropped by {value} pixels per side"
        if knob == "eps":
            return ("no eps" if value == 0 else
                    f"eps {value:g} added to the product of the denominators")
        if knob == "weights":
            if value == "float64":
                return "weights summing to 1"
            total = 1 - math.fsum(self._weight_sum_terms())
            if value == "float32":
                return f"weights held in float32 (2-D weights sum to 1 - {total:.2g})"
            return (f"weights rounded to {weight_decimals(value)} decimals "
                    f"(summing to 1 - {total:.2g})")
        if knob == "downsample":
            return {"none": "no downsampling", "ssim.m": "ssim.m downsampling",
                    "avgpool": "avg-pool downsampling (piq)"}[value]
        if knob == "luminance":
            return ("luminance from both means" if value == "own" else
                    "luminance from image 1's mean for both windows (s1 == 1)")
        return f"{knob} {value:g}"

    def _weight_sum_terms(self):
        from .oracle import window_weights
        return [w for row in window_weights(self) for w in row]


_DESCRIBED = ("window", "covariance", "data_range", "border", "downsample", "luminance",
              "eps", "weights")
_DEFAULT_HIDDEN = {"eps": 0.0, "weights": "float64"}  # described only when not these
KNOBS = tuple(f.name for f in fields(Convention))


def weight_decimals(weights: str):
    """``d`` of a "round<d>" weights knob (1..15), or None for any other value."""
    if isinstance(weights, str) and weights.startswith("round") and weights[5:].isdigit():
        d = int(weights[5:])
        return d if 1 <= d <= 15 else None
    return None


def downsample_factor(height: int, width: int, method: str) -> int:
    """The downsampling factor ``f`` of ``method`` for an image of this size (1 = none)."""
    if method == "none":
        return 1
    ratio = min(height, width) / 256
    if method == "ssim.m":
        return max(1, math.floor(ratio + 0.5))  # MATLAB's round: halves away from zero
    return max(1, round(ratio))  # Python's round, as piq: halves to even


PRESETS = {
    "wang2004": Convention(),
    "ssim.m": Convention(downsample="ssim.m"),
    "skimage": Convention(window="uniform", size=7, covariance="count"),
    "skimage-gaussian": Convention(window="gaussian", size=11, covariance="count"),
    "paper": Convention(window="gaussian", size=7, covariance="sample"),
    "pytorch_msssim": Convention(),
    "piq": Convention(downsample="avgpool"),
    "kornia": Convention(border="same-reflect", eps=1e-12),
    "torchmetrics": Convention(border="same-reflect"),
}
"""Named conventions: the papers' and the peer libraries' documented defaults
(docs/conformance.md), each with the caller's data range. kornia's window size is the
adapter's (11); its eps is its default (1e-12)."""


def preset(name: str) -> Convention:
    """The named convention of :data:`PRESETS`."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown convention {name!r}; known: {sorted(PRESETS)}") from None
