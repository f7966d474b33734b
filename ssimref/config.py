"""SSIM conventions, made explicit.

Every number this library computes depends on a handful of conventions that SSIM
implementations choose differently (docs/conventions.md, "Matching other libraries"): the
window's shape, size and sigma, the stride between windows, the data range that sets the
stabilising constants, and the normalisation of the local (co)variances.
:class:`SSIMConfig` holds all of them; every public function takes ``config=None`` plus the
same field names as keyword overrides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, TypeAlias

__all__ = ["SSIMConfig", "resolve_config", "WINDOWS", "COVARIANCES", "WindowName",
           "CovarianceName", "MAX_COVARIANCE_FACTOR", "MAX_MAGNITUDE"]

#: The largest sample-covariance factor ``1 / (1 - sum_k w_k^2)`` a config accepts. A
#: larger one belongs to a window that is one pixel in all but name (a Gaussian with a
#: tiny sigma), whose weighted variance is round-off that the factor would only amplify.
MAX_COVARIANCE_FACTOR = 1e6

#: The largest pixel magnitude accepted, in units of the data range: images whose values
#: reach ``MAX_MAGNITUDE * data_range`` are refused at the public edge. Beyond it ``c1``
#: and ``c2`` vanish below the rounding of the local moments (so the range cannot be the
#: data's), and the window terms' products leave float64 (docs/conventions.md).
MAX_MAGNITUDE = 1e30

#: Window shapes (the ``window`` field).
WindowName: TypeAlias = Literal["gaussian", "uniform"]
#: Covariance normalisations (the ``covariance`` field).
CovarianceName: TypeAlias = Literal["sample", "population", "count"]

WINDOWS: tuple[WindowName, ...] = ("gaussian", "uniform")
COVARIANCES: tuple[CovarianceName, ...] = ("sample", "population", "count")


@dataclass(frozen=True)
class SSIMConfig:
    """The conventions of one SSIM computation.

    Parameters
    ----------
    window : {"gaussian", "uniform"}, default "gaussian"
        Window weights. "gaussian": separable, ``w[i, j] = g[i] g[j]`` with
        ``g[k] = exp(-(k - r)^2 / (2 sigma^2))`` for ``k = 0 .. size-1``, ``r = (size-1)/2``,
        normalised to sum 1. "uniform": ``w[i, j] = 1 / size^2``.
    size : int, default 7
        Window side in pixels; a window holds ``q = size^2`` pixels. Must be at least 2;
        Gaussian windows must have an odd size so that they are centred.
    sigma : float, default 1.5
        Standard deviation of the Gaussian window, in pixels (ignored for "uniform").
    stride : int, default 1
        Step between window positions along both axes. ``stride == size`` gives the
        paper's non-overlapping blocks. Only 'valid' positions are used (no padding):
        ``(H - size) // stride + 1`` positions along an axis of length ``H``.
    data_range : float or None, default None
        The intensity range ``l`` of the images. ``None`` infers it from the dtype only
        where the dtype is the pixel range: 255 for uint8, 65535 for uint16. Every other
        input (floating point, boolean, signed or wider integers) requires it.
    k1, k2 : float, default 0.01, 0.03
        Stabilising constants ``c1 = (k1 l)^2`` and ``c2 = (k2 l)^2``; ``c3 = c2 / 2``
        always, which merges contrast and structure into ``s2``.
    covariance : {"sample", "population", "count"}, default "sample"
        Normalisation of local variances and covariances, whose weighted sums
        ``sum_k w_k (x_k - mu_x)(y_k - mu_y)`` (with ``sum_k w_k = 1``) are multiplied by

        - "sample": ``1 / (1 - sum_k w_k^2)``, the unbiased estimator for normalised
          weights. For a uniform window this is ``q / (q - 1)``: the paper's ``1/(q-1)``
          (Brunet, Vrscay and Wang). For the 11-tap Gaussian with sigma 1.5 it is 1.0367.
        - "population": 1, as in Wang et al. 2004, MATLAB, TensorFlow, pytorch-msssim.
        - "count": ``q / (q - 1)`` whatever the weights: scikit-image's
          ``use_sample_covariance=True``, which for Gaussian weights differs from "sample".

    Raises
    ------
    ValueError
        For an unknown ``window`` or ``covariance``, a ``size`` below 2 (or even, for a
        Gaussian window), a ``stride`` below 1, or a ``sigma``, ``k1``, ``k2`` or
        ``data_range`` that is not a finite number > 0; the message names the field.

    See Also
    --------
    resolve_config : merge keyword overrides into a config.
    describe : the conventions in words.

    Notes
    -----
    The presets :meth:`paper`, :meth:`wang2004` and :meth:`skimage` name the conventions
    of the paper, of Wang et al. 2004 and of scikit-image's ``structural_similarity``.

    References
    ----------
    Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 13(4), 2004.
    Brunet, Vrscay, Wang, "On the mathematical properties of the structural similarity
    index", IEEE TIP 21(4), 2012.
    """

    window: WindowName = "gaussian"
    size: int = 7
    sigma: float = 1.5
    stride: int = 1
    data_range: float | None = None
    k1: float = 0.01
    k2: float = 0.03
    covariance: CovarianceName = "sample"

    def __post_init__(self) -> None:
        _check_config(self)

    # ----------------------------------------------------------------- presets
    @classmethod
    def paper(cls, data_range: float | None = None, **overrides: Any) -> SSIMConfig:
        """The paper's convention: sample covariance ``1/(q-1)``, library defaults
        otherwise (7x7 Gaussian window, sigma 1.5, stride 1).

        Parameters
        ----------
        data_range : float, optional
            ``L``; None infers it from uint8 or uint16 images (others require it).
        **overrides
            Other fields.

        Returns
        -------
        SSIMConfig

        Raises
        ------
        ValueError, TypeError
            As for :class:`SSIMConfig` (an unknown field is a TypeError).

        References
        ----------
        Ghojogh, Karray, Crowley, ICIAR 2020, Section 2; Brunet, Vrscay, Wang, IEEE TIP
        21(4), 2012 (the ``1/(q-1)`` normalisation).
        """
        return cls(data_range=data_range, covariance="sample", **overrides)

    @classmethod
    def wang2004(cls, data_range: float | None = None, **overrides: Any) -> SSIMConfig:
        """Wang et al. 2004 (``ssim_index.m``): 11x11 Gaussian, sigma 1.5, population
        covariance, 'valid' windows.

        Like every preset it carries no data range of its own (``ssim_index.m`` assumes
        8-bit images, ``L = 255``): without ``data_range`` the range is inferred as for
        any config (uint8: 255, uint16: 65535; other inputs are refused), so float images
        in [0, 1] are never silently scored with ``L = 255``.

        Parameters
        ----------
        data_range : float, optional
            ``L``; None infers it from uint8 or uint16 images.
        **overrides
            Other fields.

        Returns
        -------
        SSIMConfig

        Raises
        ------
        ValueError, TypeError
            As for :class:`SSIMConfig`.

        References
        ----------
        Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 13(4), 2004, Section III (the
        11x11 Gaussian window, sigma 1.5).
        """
        base: dict[str, Any] = dict(window="gaussian", size=11, sigma=1.5,
                                    covariance="population", data_range=data_range)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def skimage(cls, data_range: float | None = None, gaussian_weights: bool = False,
                **overrides: Any) -> SSIMConfig:
        """scikit-image ``structural_similarity`` defaults, restricted to its interior.

        scikit-image filters with reflected borders and crops ``(win_size-1)/2`` pixels
        before averaging, so its mean SSIM equals ours with 'valid' windows.

        Parameters
        ----------
        data_range : float, optional
            ``L`` (scikit-image requires it for float images).
        gaussian_weights : bool, default False
            False: 7x7 uniform window with sample covariance ``q/(q-1)``. True: its 11-tap
            Gaussian (sigma 1.5, truncate 3.5), still normalised by ``q/(q-1)``
            (covariance "count").
        **overrides
            Other fields.

        Returns
        -------
        SSIMConfig

        Raises
        ------
        ValueError, TypeError
            As for :class:`SSIMConfig`.

        See Also
        --------
        wang2004, paper : the other presets (docs/conventions.md compares them).
        """
        base: dict[str, Any]
        if gaussian_weights:
            base = dict(window="gaussian", size=11, sigma=1.5, covariance="count")
        else:
            base = dict(window="uniform", size=7, covariance="sample")
        base["data_range"] = data_range
        base.update(overrides)
        return cls(**base)

    # ------------------------------------------------------------ derived values
    @property
    def q(self) -> int:
        """Number of pixels in a window, ``size**2``."""
        return self.size * self.size

    def taps(self) -> tuple[float, ...]:
        """The 1-D window weights ``g`` (sum 1); the 2-D window is ``g g^T``.

        Returns
        -------
        tuple of float, length ``size``
            ``1/size`` each for "uniform"; the normalised Gaussian
            ``exp(-(k - r)^2 / (2 sigma^2))``, ``r = (size - 1)/2``, for "gaussian".
        """
        if self.window == "uniform":
            return (1.0 / self.size,) * self.size
        g = _gaussian(self.size, self.sigma)
        total = math.fsum(g)
        return tuple(v / total for v in g)

    def covariance_factor(self) -> float:
        """The factor ``f`` applied to weighted (co)variance sums (see ``covariance``).

        Returns
        -------
        float
            1 ("population"); ``q/(q-1)`` ("count", or a uniform window);
            ``1 / (1 - sum_k w_k^2)`` ("sample" with Gaussian weights), computed without
            cancellation (:func:`_sample_factor`); ``inf`` where that sum is 1 (a window
            of one pixel), which the constructor refuses.
        """
        if self.covariance == "population":
            return 1.0
        q = self.q
        if self.covariance == "count" or self.window == "uniform":
            return q / (q - 1.0)
        return _sample_factor(self.size, self.sigma)

    def constants(self, data_range: float | None = None) -> tuple[float, float]:
        """The stabilising constants ``(c1, c2) = ((k1 L)^2, (k2 L)^2)``.

        Parameters
        ----------
        data_range : float, optional
            ``L``; this config's when None.

        Returns
        -------
        tuple of float

        Raises
        ------
        ValueError
            When neither ``data_range`` nor the config's is set.
        """
        L = self.data_range if data_range is None else data_range
        if L is None:
            raise ValueError("data_range is not set; pass data_range=... (e.g. 255 or 1.0)")
        return (self.k1 * L) ** 2, (self.k2 * L) ** 2

    def in_range_units(self) -> SSIMConfig:
        """This config in units of the data range: ``data_range = 1``, hence ``c1 = k1^2``
        and ``c2 = k2^2``.

        SSIM is unchanged when the images and ``L`` are scaled together, so every
        computation divides the images by ``L`` once (:func:`ssimref.moments.in_range_units`)
        and then works with this config: the numbers are of order 1 whatever the scale of
        the data (no overflow or underflow at ``L = 1e200`` or ``1e-200``), and scaling
        images and ``L`` by a power of two changes no bit (docs/conventions.md, "Units of
        the data range").

        Returns
        -------
        SSIMConfig
            ``self`` when its data range is already 1.

        Raises
        ------
        ValueError
            When the data range is not set.
        """
        if self.data_range is None:
            raise ValueError("data_range is not set; pass data_range=... (e.g. 255 or 1.0)")
        return self if self.data_range == 1.0 else replace(self, data_range=1.0)

    def describe(self) -> str:
        """The conventions in one line of words (for messages, sidecars and reports).

        Returns
        -------
        str
            E.g. ``"window gaussian 7x7 sigma 1.5, stride 1, covariance sample,
            data_range 255, k1 0.01, k2 0.03"``.
        """
        window = (f"{self.window} {self.size}x{self.size}"
                  + (f" sigma {self.sigma:g}" if self.window == "gaussian" else ""))
        data_range = "inferred" if self.data_range is None else f"{self.data_range:g}"
        return (f"window {window}, stride {self.stride}, covariance {self.covariance}, "
                f"data_range {data_range}, k1 {self.k1:g}, k2 {self.k2:g}")

    def positions(self, height: int, width: int) -> tuple[int, int]:
        """Number of valid window positions along each axis of an image.

        Parameters
        ----------
        height, width : int
            Image size in pixels.

        Returns
        -------
        tuple of int
            ``((height - size) // stride + 1, (width - size) // stride + 1)``.
        """
        return ((height - self.size) // self.stride + 1,
                (width - self.size) // self.stride + 1)


def _gaussian(size: int, sigma: float) -> list[float]:
    """The unnormalised 1-D Gaussian ``e_k = exp(-(k - r)^2 / (2 sigma^2))``."""
    r = (size - 1) / 2.0
    two_var = 2.0 * sigma**2
    if two_var == 0.0:  # sigma**2 underflowed: only the centre has weight
        return [1.0 if k == r else 0.0 for k in range(size)]
    return [math.exp(-((k - r) ** 2) / two_var) for k in range(size)]


def _sample_factor(size: int, sigma: float) -> float:
    """``1 / (1 - sum_ij w_ij^2)`` of the 2-D Gaussian window ``w = g g^T``, without
    cancellation.

    With ``g = e / E`` (``E = sum_k e_k``) and ``S = sum_k g_k^2``, the 2-D sum is
    ``S^2``, so ``1 - S^2 = (1 - S)(1 + S)``, and ``1 - S = (E^2 - sum_k e_k^2) / E^2
    = 2 P / E^2`` with ``P = sum_{i<j} e_i e_j``, a sum of positive terms. Hence

        f = E^2 / (2 P (1 + S)),

    accurate to a few ulps for any sigma, where ``1 / (1 - S^2)`` loses
    ``-log10(1 - S^2)`` digits (all of them once ``S^2`` rounds to 1: sigma 0.1 gave a
    ZeroDivisionError).
    """
    e = _gaussian(size, sigma)
    total = math.fsum(e)
    after = 0.0  # sum of e_j for j > i, accumulated from the right
    products = []
    for value in reversed(e):
        products.append(value * after)
        after += value
    P = math.fsum(products)
    if P == 0.0:  # every weight but the centre's underflowed: a one-pixel window
        return math.inf
    S = math.fsum((v / total) ** 2 for v in e)
    return total * total / (2.0 * P * (1.0 + S))


def _check_config(cfg: SSIMConfig) -> None:
    if cfg.window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, got {cfg.window!r}")
    if cfg.covariance not in COVARIANCES:
        raise ValueError(f"covariance must be one of {COVARIANCES}, got {cfg.covariance!r}")
    if isinstance(cfg.size, bool) or not isinstance(cfg.size, int) or cfg.size < 2:
        raise ValueError(f"size must be an integer >= 2, got {cfg.size!r}")
    if cfg.window == "gaussian" and cfg.size % 2 == 0:
        raise ValueError(f"size must be odd for a Gaussian window (so it is centred), "
                         f"got {cfg.size}; use size={cfg.size + 1} or window='uniform'")
    if isinstance(cfg.stride, bool) or not isinstance(cfg.stride, int) or cfg.stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {cfg.stride!r}")
    for name in ("sigma", "k1", "k2"):
        value = getattr(cfg, name)
        if not _is_real(value) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if cfg.window == "gaussian" and cfg.covariance == "sample":
        f = _sample_factor(cfg.size, cfg.sigma)
        if f > MAX_COVARIANCE_FACTOR:
            raise ValueError(
                f"sigma={cfg.sigma!r} with covariance='sample' makes the {cfg.size}x{cfg.size} "
                f"Gaussian window one pixel in all but name: its sample-covariance factor "
                f"1/(1 - sum w^2) is {f:.3g} (at most {MAX_COVARIANCE_FACTOR:g} is accepted), "
                "which would only amplify round-off. Use a larger sigma (>= 0.18), "
                "covariance='population', or window='uniform'")
    if cfg.data_range is not None:
        L = cfg.data_range
        if not _is_real(L) or not math.isfinite(L) or L <= 0:
            raise ValueError(f"data_range must be a finite number > 0, got {L!r} "
                             "(the intensity range of the images, e.g. 255 or 1.0)")


def _is_real(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (bool, complex, str))


_FIELDS = tuple(f.name for f in fields(SSIMConfig))


def resolve_config(config: SSIMConfig | None = None, **overrides: Any) -> SSIMConfig:
    """Merge keyword overrides (``None`` means "not given") into ``config``.

    Parameters
    ----------
    config : SSIMConfig, optional
        The base conventions; ``SSIMConfig()`` when None.
    **overrides
        Fields of :class:`SSIMConfig`; None values are ignored. Integral floats for
        ``size`` and ``stride`` become ints, numbers for the float fields floats.

    Returns
    -------
    SSIMConfig
        ``config`` itself when nothing is overridden, else a new config.

    Raises
    ------
    TypeError
        For a keyword that is not a field of :class:`SSIMConfig`, or a ``config`` that is
        not an :class:`SSIMConfig`.
    ValueError
        For an override that :class:`SSIMConfig` refuses.
    """
    if config is None:
        config = SSIMConfig()
    elif not isinstance(config, SSIMConfig):
        raise TypeError(f"config must be an SSIMConfig or None, got {type(config).__name__}")
    unknown = set(overrides) - set(_FIELDS)
    if unknown:
        raise TypeError(f"unknown SSIM convention(s) {sorted(unknown)}; "
                        f"the fields of SSIMConfig are {list(_FIELDS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    for name in ("size", "stride"):
        if name in given and _is_real(given[name]) and float(given[name]).is_integer() \
                and not isinstance(given[name], bool):
            given[name] = int(given[name])
    for name in ("sigma", "k1", "k2", "data_range"):
        if name in given and _is_real(given[name]):
            given[name] = float(given[name])
    return replace(config, **given) if given else config
