"""Input validation at the public edge.

Public functions call these once; the computing functions behind them trust their inputs.
Every failure is a ``ValueError`` or ``TypeError`` that names the argument and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .backend import Array, ArrayLike, Namespace, as_array, float_dtype, namespace
from .config import MAX_MAGNITUDE, SSIMConfig
from .kinds import KIND_NAMES as KINDS
from .kinds import KindName

__all__ = ["check_images", "check_stacks", "check_kind", "check_matrix", "check_dtype",
           "check_channel_axis", "channels_last", "channels_back", "MAX_IMPLICIT_CHANNELS",
           "check_not_masked", "check_positive", "infer_data_range", "range_advice", "RANGE_DTYPES", "KINDS"]


def check_kind(kind: str) -> KindName:
    """``kind`` itself when it names a distance kind.

    Parameters
    ----------
    kind : str

    Returns
    -------
    {"eq1", "eq1-uncentered", "eq2"}

    Raises
    ------
    ValueError
        For any other value; the message says what each kind is.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}: 'eq1' is the paper's "
                         "Eq. (1) on centred windows, 'eq1-uncentered' its approximation "
                         "sqrt(1 - s1 s2), 'eq2' is Eq. (2) sqrt(2 - s1 - s2)")
    return kind


def check_dtype(a: Array, name: str, xp: Namespace, *, allow_bool: bool = False) -> None:
    """Refuse non-real dtypes (and booleans unless ``allow_bool``).

    Parameters
    ----------
    a : Array
    name : str
        The argument's name, for the message.
    xp : Namespace
        The namespace of ``a`` (trusted).
    allow_bool : bool, default False
        Accept a boolean dtype (images: 0 and 1 with ``data_range=1``).

    Raises
    ------
    TypeError
        For a boolean dtype (unless ``allow_bool``), or one that is neither integer nor
        real floating (complex, object, strings).
    """
    dtype = a.dtype
    try:
        if xp.isdtype(dtype, "bool"):
            if allow_bool:
                return
            raise TypeError(f"{name} has boolean dtype; convert it to a number type "
                            "(e.g. float with values 0 and 1)")
        if xp.isdtype(dtype, "real floating") or xp.isdtype(dtype, "integral"):
            return
    except (TypeError, ValueError) as exc:
        if "boolean" in str(exc):
            raise
    hint = (" (for an ImageSet of ssimref.load_images, pass its .images, with "
            "data_range=its .data_range when that is set)" if str(dtype) == "object" else "")
    raise TypeError(f"{name} must hold real numbers (integer or floating dtype), got dtype "
                    f"{dtype}; complex, object and string arrays are not images{hint}")


def check_not_masked(a: Any, name: str) -> None:
    """Refuse NumPy masked arrays (before anything converts them and drops the mask).

    A masked pixel has no value, and a window holding one has no SSIM: NumPy would carry
    the mask through the arithmetic and return NaN or a mean over whatever it kept. The
    caller decides what a masked pixel means.

    Parameters
    ----------
    a : Any
        The argument as given.
    name : str
        Its name, for the message.

    Raises
    ------
    TypeError
        For a ``numpy.ma.MaskedArray``; the message names the fixes (fill or drop the
        masked pixels).
    """
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array; SSIM has no value for masked pixels. "
                        f"Fill them ({name}.filled(value)) or drop them (crop or select the "
                        f"unmasked region), then pass a plain array")


def check_positive(value: Any, name: str) -> float:
    """``value`` as a float, refusing anything but a finite real number > 0.

    Parameters
    ----------
    value : Any
    name : str
        The argument's name, for the message.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For booleans, strings, non-numbers, NaN, infinities and numbers <= 0.
    """
    try:
        ok = (not isinstance(value, (bool, str)) and math.isfinite(float(value))
              and float(value) > 0)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_values(a: Array, name: str, xp: Namespace) -> None:
    if math.prod(a.shape) == 0:
        raise ValueError(f"{name} is empty (shape {tuple(a.shape)}); images need at least "
                         "one window of pixels")
    if xp.isdtype(a.dtype, "real floating") and not bool(xp.all(xp.isfinite(a))):
        raise ValueError(f"{name} contains NaN or Inf; SSIM is undefined there. Replace or "
                         "drop those pixels first")


#: The dtypes whose range is the pixel range: images of these dtypes without a
#: ``data_range`` get ``iinfo.max - iinfo.min`` (255, 65535). Every other dtype (float,
#: bool, signed integers, wider unsigned integers) needs ``data_range``: its dtype's range
#: says nothing about the data (an int64 array of 8-bit values is not a 64-bit image).
RANGE_DTYPES = ("uint8", "uint16")


def range_advice(option: str = "data_range") -> str:
    """What to pass when the data range cannot be inferred (for messages).

    Parameters
    ----------
    option : str, default "data_range"
        How the caller spells the argument (``"--data-range"`` on the command line).

    Returns
    -------
    str
    """
    sep = " " if option.startswith("--") else "="
    return (f"pass {option}{sep}1 for images in [0, 1], {option}{sep}255 for 8-bit values, "
            f"or the range your data really has (it sets c1 and c2); only uint8 (255) and "
            f"uint16 (65535) images imply their range")


def infer_data_range(config: SSIMConfig, arrays: Sequence[ArrayLike],
                     names: Sequence[str] = ("x", "y"),
                     xp: Namespace | None = None, *,
                     option: str = "data_range") -> SSIMConfig:
    """``config`` with its data range set: as given, else from the arrays' shared dtype
    when that is one of :data:`RANGE_DTYPES` (255 for uint8, 65535 for uint16).

    Parameters
    ----------
    config : SSIMConfig
    arrays : sequence of array_like
        The images the config will be used on.
    names : sequence of str, default ("x", "y")
        Their argument names, for messages.
    xp : Namespace, optional
        Their namespace (looked up, and the arrays converted, when None).
    option : str, default "data_range"
        How the caller spells the argument in messages (``"--data-range"`` on the
        command line).

    Returns
    -------
    SSIMConfig
        ``config`` itself when its ``data_range`` is set.

    Raises
    ------
    ValueError
        For arrays of any other dtype (floating, boolean, signed or wider integers)
        without a data range, or of different dtypes among uint8 and uint16; for integer
        or boolean arrays whose values span more than a given data range (8-bit values
        with ``data_range=1``); for arrays whose values reach
        :data:`ssimref.config.MAX_MAGNITUDE` times a given data range (floating arrays
        included); the message names ``option`` and suggests values.
    """
    if xp is None:
        arrays = [as_array(a) for a in arrays]
        xp = namespace(*arrays)
    if config.data_range is not None:
        extremes = _extremes(arrays, xp)
        _check_integer_span(config.data_range, arrays, names, extremes, xp, option)
        _check_magnitude(config.data_range, arrays, names, extremes, xp, option)
        return config
    dtypes = {a.dtype for a in arrays}
    names_of = sorted({_dtype_name(d) for d in dtypes})
    if not set(names_of) <= set(RANGE_DTYPES):
        other = [d for d in names_of if d not in RANGE_DTYPES]
        raise ValueError(f"{option} is required for {' and '.join(other)} images "
                         f"({', '.join(names)}): " + range_advice(option))
    if len(dtypes) > 1:
        raise ValueError(f"{' and '.join(names)} have different integer dtypes "
                         f"({', '.join(names_of)}); pass {option} explicitly")
    info = xp.iinfo(dtypes.pop())
    return SSIMConfig(**{**config.__dict__, "data_range": float(info.max - info.min)})


def _extremes(arrays: Sequence[Array], xp: Namespace) -> list[tuple[float, float] | None]:
    """Each array's smallest and largest value (None when empty), in its own dtype (no
    float copy of a large memmap); booleans by all/any. One pass of each per array,
    shared by the span and the magnitude checks."""
    def pair(a: Array) -> tuple[float, float] | None:
        if not a.size:
            return None
        if a.dtype == xp.bool:
            return float(xp.all(a)), float(xp.any(a))
        return float(xp.min(a)), float(xp.max(a))
    return [pair(a) for a in arrays]


def _check_integer_span(data_range: float, arrays: Sequence[Array], names: Sequence[str],
                        extremes: Sequence[tuple[float, float] | None], xp: Namespace,
                        option: str) -> None:
    """Refuse integer (or boolean) images whose values span more than ``data_range``: a
    range smaller than the values' spread cannot be theirs (8-bit values with
    ``data_range=1`` give a plausible but wrong SSIM). Floating images are not checked:
    their values may overshoot their range (a generator's output, a filtered image)."""
    integer = [(lh, name) for a, name, lh in zip(arrays, names, extremes)
               if lh is not None and xp.isdtype(a.dtype, ("integral", "bool"))]
    if not integer:
        return
    low = min(lh[0] for lh, _ in integer)
    high = max(lh[1] for lh, _ in integer)
    if high - low > data_range:
        which = " and ".join(name for _, name in integer)
        sep = " " if option.startswith("--") else "="
        raise ValueError(f"{option} is {data_range:g} but the values of {which} span "
                         f"{low:g} to {high:g}, more than that; pass the range the data "
                         f"really has, at least {high - low:g} (e.g. {option}{sep}255 for "
                         f"8-bit values, {option}{sep}65535 for 16-bit ones)")


def _check_magnitude(data_range: float, arrays: Sequence[Array], names: Sequence[str],
                     extremes: Sequence[tuple[float, float] | None], xp: Namespace,
                     option: str) -> None:
    """Refuse images whose values reach ``MAX_MAGNITUDE`` times ``data_range``: in such
    units ``c1`` and ``c2`` vanish below the rounding of the local moments, so the range
    cannot be the data's, and the window terms' products overflow float64. Floating
    images overshoot their range by factors, not by 1e30."""
    present = [(lh, name) for a, name, lh in zip(arrays, names, extremes)
               if lh is not None and a.dtype != xp.bool]
    if not present:
        return
    low = min(lh[0] for lh, _ in present)
    high = max(lh[1] for lh, _ in present)
    peak = max(abs(low), abs(high))
    if peak >= MAX_MAGNITUDE * data_range:
        which = " and ".join(name for _, name in present)
        sep = " " if option.startswith("--") else "="
        suggestion = high - low if high > low else peak
        raise ValueError(f"{option} is {data_range:g} but the values of {which} reach "
                         f"{peak:g}, {peak / data_range:.3g} times that (at most "
                         f"{MAX_MAGNITUDE:g} times is accepted: beyond, c1 and c2 vanish "
                         f"and SSIM's terms overflow float64); pass the range the data "
                         f"really has (e.g. {option}{sep}{suggestion:g})")


def _dtype_name(dtype: Any) -> str:
    name = getattr(dtype, "name", None) or str(dtype)
    return str(name).rsplit(".", 1)[-1]


def _check_window_fits(config: SSIMConfig, shape: tuple[int, ...], name: str,
                       stack: bool) -> None:
    h, w = shape[:2]
    if config.size > h or config.size > w:
        layout = "(n, H, W, C)" if stack else "(H, W, C)"
        raise ValueError(f"size={config.size} is larger than the images of {name} "
                         f"({h}x{w} pixels); use size <= {min(h, w)} or larger images"
                         + (f" (images are read as {layout} with the channels last; if "
                            "they are not, pass channel_axis)" if len(shape) == 3 else ""))


#: Without ``channel_axis``, a channel axis longer than this is refused: it is far more
#: often a channel-first array read channels-last than an image with that many channels.
MAX_IMPLICIT_CHANNELS = 4


def check_channel_axis(channel_axis: Any, ndim: int, stack: bool = False,
                       name: str = "x") -> int | None:
    """The channel axis of an image (``stack`` False) or a stack of images, normalised.

    Parameters
    ----------
    channel_axis : int or None
        scikit-image's name: the axis of ``name`` that holds the channels (negative values
        count from the end); None for channels last (or no channel axis).
    ndim : int
        ``name.ndim``.
    stack : bool, default False
        A stack ``(n, ...)`` (axis 0 is the image index) rather than one image.
    name : str, default "x"
        The argument's name, for messages.

    Returns
    -------
    int or None
        The axis in ``0 .. ndim - 1``, or None when ``channel_axis`` is None.

    Raises
    ------
    TypeError
        For a ``channel_axis`` that is not an integer.
    ValueError
        For an array without a channel axis (images not 3-D, stacks not 4-D), an axis out
        of range, or axis 0 of a stack.
    """
    if channel_axis is None:
        return None
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)):
        raise TypeError(f"channel_axis must be an integer or None, got {channel_axis!r}")
    want = 4 if stack else 3
    if ndim != want:
        shape = "(n, H, W, C) in some order" if stack else "(H, W, C) in some order"
        raise ValueError(f"channel_axis={channel_axis} needs {name} with a channel axis, "
                         f"{want} dimensions {shape}; got {ndim} dimensions (leave "
                         "channel_axis=None for single-channel data)")
    axis = int(channel_axis) + ndim if channel_axis < 0 else int(channel_axis)
    if not 0 <= axis < ndim:
        raise ValueError(f"channel_axis={channel_axis} is out of range for {name} with "
                         f"{ndim} dimensions")
    if stack and axis == 0:
        raise ValueError(f"channel_axis=0 is the image index of the stack {name}; the "
                         "channels of (n, C, H, W) stacks are channel_axis=1")
    return axis


def channels_last(a: Array, axis: int | None, xp: Namespace) -> Array:
    """``a`` with its channel axis ``axis`` (from :func:`check_channel_axis`) moved last.

    Parameters
    ----------
    a : Array
    axis : int or None
        None leaves ``a`` as it is.
    xp : Namespace

    Returns
    -------
    Array
        A view where the library makes one.
    """
    if axis is None or axis == a.ndim - 1:
        return a
    return xp.moveaxis(a, axis, -1)


def channels_back(a: Array, axis: int | None, xp: Namespace) -> Array:
    """The inverse of :func:`channels_last` for an array of the same number of
    dimensions (a gradient, or a map of window positions).

    Parameters
    ----------
    a : Array
        Channels last.
    axis : int or None
        Where the input held its channels.
    xp : Namespace

    Returns
    -------
    Array
    """
    if axis is None or axis == a.ndim - 1:
        return a
    return xp.moveaxis(a, -1, axis)


def _check_channel_count(a: Array, name: str, stack: bool) -> None:
    """Without ``channel_axis``: refuse a last axis longer than MAX_IMPLICIT_CHANNELS."""
    shape = tuple(a.shape)
    if a.ndim != (4 if stack else 3) or shape[-1] <= MAX_IMPLICIT_CHANNELS:
        return
    if stack:
        read = (f"{shape[0]} images of {shape[1]}x{shape[2]} pixels with {shape[3]} "
                "channels")
        fix = ("pass channel_axis=1 for a channel-first stack (n, C, H, W), or transpose it "
               "to (n, H, W, C)")
    else:
        read = f"an image of {shape[0]}x{shape[1]} pixels with {shape[2]} channels"
        fix = ("pass channel_axis=0 for a channel-first image (C, H, W), or transpose it to "
               "(H, W, C)")
    raise ValueError(f"{name} has shape {shape}, which channels-last reads as {read}; more "
                     f"than {MAX_IMPLICIT_CHANNELS} channels is refused as the likely sign of "
                     f"channel-first data: {fix}; pass channel_axis=-1 if the {shape[-1]} "
                     "channels are real")


def _prepare(arrays: Sequence[ArrayLike], names: Sequence[str], ndims: tuple[int, int],
             dtype: Any, channel_axis: Any = None,
             ) -> tuple[Namespace, list[Array], Any]:
    for a, name in zip(arrays, names):
        check_not_masked(a, name)
    arrays = [as_array(a) for a in arrays]
    xp = namespace(*arrays)
    stack = ndims == (3, 4)
    moved = []
    for a, name in zip(arrays, names):
        check_dtype(a, name, xp, allow_bool=True)
        if channel_axis is None:
            if a.ndim not in ndims:
                raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} "
                                 f"dimensions ({_SHAPES[ndims]}), got shape "
                                 f"{tuple(a.shape)}")
            _check_channel_count(a, name, stack)
        else:
            a = channels_last(a, check_channel_axis(channel_axis, a.ndim, stack, name), xp)
        _check_values(a, name, xp)
        moved.append(a)
    work = float_dtype(xp, dtype)
    return xp, moved, work


_SHAPES = {(2, 3): "(H, W) or (H, W, C) with channels last; channel_axis=0 for (C, H, W)",
           (3, 4): "(n, H, W) or (n, H, W, C) with channels last; channel_axis=1 for "
                   "(n, C, H, W)"}


def check_images(x: ArrayLike, y: ArrayLike, config: SSIMConfig, dtype: Any = None,
                 names: tuple[str, str] = ("x", "y"), *, channel_axis: Any = None,
                 option: str = "data_range",
                 ) -> tuple[Namespace, Array, Array, SSIMConfig, bool]:
    """Validate two images of the same shape.

    Parameters
    ----------
    x, y : array_like, shape (H, W) or (H, W, C) (any order with ``channel_axis``)
    config : SSIMConfig
    dtype : {None, "float64", "float32"}
        Working precision (float64 when None).
    names : tuple of str, default ("x", "y")
        The arguments' names, for messages.
    channel_axis : int, optional
        The channel axis of 3-D images (:func:`check_channel_axis`); None: channels last,
        at most :data:`MAX_IMPLICIT_CHANNELS` of them.
    option : str, default "data_range"
        How the caller spells the data range in messages (``"--data-range"`` on the
        command line).

    Returns
    -------
    xp : Namespace
    x, y : Array, shape (H, W, C)
        Both images channels last, in their own dtype (the computation converts them,
        :func:`ssimref.moments.in_range_units`).
    config : SSIMConfig
        With its data range set.
    squeeze : bool
        Whether the input was 2-D (outputs then drop the channel axis).

    Raises
    ------
    TypeError
        For arrays of different libraries, non-real dtypes, masked arrays, or an
        unsupported ``dtype`` or ``channel_axis``.
    ValueError
        For other dimensions, more than 4 channels without ``channel_axis``, different
        shapes, empty images, NaN or Inf, a window larger than the images, or a missing
        data range (:func:`infer_data_range`).
    """
    xp, (x, y), _ = _prepare((x, y), names, (2, 3), dtype, channel_axis)
    if tuple(x.shape) != tuple(y.shape):
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    config = infer_data_range(config, (x, y), names, xp, option=option)
    _check_window_fits(config, tuple(x.shape), f"{names[0]} and {names[1]}", False)
    squeeze = x.ndim == 2
    x, y = (a if a.ndim == 3 else xp.expand_dims(a, axis=-1) for a in (x, y))
    return xp, x, y, config, squeeze


def check_stacks(X: ArrayLike, Y: ArrayLike | None, config: SSIMConfig,
                 names: tuple[str, str] = ("X", "Y"), *, channel_axis: Any = None,
                 option: str = "data_range",
                 ) -> tuple[Namespace, Array, Array | None, SSIMConfig]:
    """Validate one or two stacks of images ``(n, H, W[, C])`` of matching image shape.

    Parameters
    ----------
    X : array_like, shape (n, H, W) or (n, H, W, C) (any order with ``channel_axis``)
    Y : array_like, shape (m, H, W) or (m, H, W, C), or None
    config : SSIMConfig
    names : tuple of str, default ("X", "Y")
        The arguments' names, for messages.
    channel_axis : int, optional
        The channel axis of 4-D stacks (:func:`check_channel_axis`, ``stack=True``);
        None: channels last, at most :data:`MAX_IMPLICIT_CHANNELS` of them.
    option : str, default "data_range"
        How the caller spells the data range in messages (``"--data-range"`` on the
        command line).

    Returns
    -------
    xp : Namespace
    X : Array, shape (n, H, W, C)
        In its own dtype (converted tile by tile by the caller).
    Y : Array, shape (m, H, W, C), or None when not given
    config : SSIMConfig
        With its data range set.

    Raises
    ------
    TypeError, ValueError
        As for :func:`check_images`, for stacks.
    """
    given = [X] if Y is None else [X, Y]
    xp, arrays, _ = _prepare(given, names[:len(given)], (3, 4), None, channel_axis)
    if len(arrays) == 2 and tuple(arrays[0].shape[1:]) != tuple(arrays[1].shape[1:]):
        raise ValueError(f"{names[0]} and {names[1]} must hold images of the same shape, got "
                         f"{tuple(arrays[0].shape[1:])} and {tuple(arrays[1].shape[1:])}")
    config = infer_data_range(config, arrays, names[:len(given)], xp, option=option)
    _check_window_fits(config, tuple(arrays[0].shape[1:]), " and ".join(names[:len(given)]),
                       True)
    arrays = [a if a.ndim == 4 else xp.expand_dims(a, axis=-1) for a in arrays]
    return xp, arrays[0], (arrays[1] if len(arrays) == 2 else None), config


def check_matrix(M: ArrayLike, name: str = "D", *, square: bool = True,
                 symmetric: bool = False, nonnegative: bool = False,
                 symmetry_rtol: float = 1e-10) -> tuple[Namespace, Array]:
    """Validate a real matrix (distances or a kernel).

    Parameters
    ----------
    M : array_like, shape (n, m)
    name : str, default "D"
        The argument's name, for messages.
    square : bool, default True
        Require ``n == m``.
    symmetric : bool, default False
        Require symmetry within ``symmetry_rtol`` of the largest entry.
    nonnegative : bool, default False
        Refuse negative entries (distances).
    symmetry_rtol : float, default 1e-10

    Returns
    -------
    xp : Namespace
    M : Array, float64
        A ``symmetric`` matrix comes back exactly symmetrised, ``(M + M^T) / 2``.

    Raises
    ------
    TypeError
        For boolean or non-real dtypes, or a masked array.
    ValueError
        For another number of dimensions, an empty or non-square matrix, NaN or Inf,
        negative entries (``nonnegative``), or an asymmetry beyond ``symmetry_rtol``.
    """
    check_not_masked(M, name)
    M = as_array(M)
    xp = namespace(M)
    check_dtype(M, name, xp)
    if M.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {tuple(M.shape)}")
    if math.prod(M.shape) == 0:
        raise ValueError(f"{name} is empty (shape {tuple(M.shape)})")
    if square and M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be square (n x n), got shape {tuple(M.shape)}")
    M = xp.astype(M, xp.float64)
    if not bool(xp.all(xp.isfinite(M))):
        raise ValueError(f"{name} contains NaN or Inf; recompute it from finite data")
    if nonnegative and bool(xp.any(M < 0)):
        raise ValueError(f"{name} has negative entries (smallest {float(xp.min(M)):g}); "
                         "distances are >= 0: pass distances, not similarities or kernels")
    if symmetric:
        scale = float(xp.max(xp.abs(M)))
        gap = float(xp.max(xp.abs(M - M.T)))
        if gap > symmetry_rtol * scale:
            raise ValueError(f"{name} must be symmetric; max |{name} - {name}^T| = {gap:.3g} "
                             f"(largest entry {scale:.3g}). Symmetrise it with "
                             f"({name} + {name}.T) / 2 if the asymmetry is round-off")
        if gap > 0:
            M = (M + M.T) / 2.0
    return xp, M
