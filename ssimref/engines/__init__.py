"""Engines: the plug-ins that compute a tile of SSIM pairs, and its gradient.

Three engines implement one protocol: ``"reference"`` (:mod:`ssimref.engines.reference`,
the array-API code of the core, any array library), ``"numba"``
(:mod:`ssimref.engines.numba_engine`, fused kernels on the CPU) and ``"cupy"``
(:mod:`ssimref.engines.cupy_engine`, fused CUDA kernels). An engine is a module with

``NAME``
    Its name.
``squared_block(Xa, Yb, kind, config, *, upper=False)``
    ``D^2`` for every pair of two float64 tiles ``(ta, H, W, C)`` and ``(tb, H, W, C)``
    of the engine's array library, as a float64 array ``(ta, tb)``; with ``upper``
    (``Xa is Yb``, a diagonal tile) the block returned is exactly symmetric with a zero
    diagonal. Images that agree on every window are at exactly 0.
``bytes_per_pair(image_shape, config)``, ``bytes_per_image(image_shape, config)``
    Working memory of a tile, for the tile plan (:mod:`ssimref.tiling`).
``max_tile_pairs(image_shape, config)``
    Upper bound on the pairs of one tile (responsive progress and Ctrl-C, or tiles that
    stay in cache).

and, for gradients (every built-in engine; optional for plug-ins, which are then
refused where a gradient is asked for):

``value_and_vjp_block(Xa, Yb, kind, config, cotangent, *, upper=False, wrt_y=True)``
    The tile's ``S = D^2`` block handed to ``cotangent(S) -> (value, W)``, and the
    gradients ``dXa = sum_j W_ij dS_ij/dx_i``, ``dYb = sum_i W_ij dS_ij/dy_j``. A
    cotangent that is an :class:`ElementwiseCotangent` also states its rule, which an
    engine may evaluate inside its kernels (the Numba engine computes ``S`` and the VJP
    in one pass then); calling it is always correct.
``paired_value_and_vjp(X, Y, kind, config, cotangent)``
    The same for matched pairs ``(X[i], Y[i])``.
``vjp_bytes_per_pair``, ``vjp_bytes_per_image``, ``vjp_max_tile_pairs``
    The memory figures and the pair cap of a value-and-VJP tile.

and, optionally:

``distance_block(Xa, Yb, kind, config, *, upper=False, squared=False, dtype="float64", out=None)``
    ``D`` (``D^2`` with ``squared``) in ``dtype`` of two tiles of images as stored (any
    real dtype; ``Yb is Xa`` for a diagonal tile) and a config with its data range:
    :meth:`squared_block`'s block of the images in units of the range, rooted and rounded
    once, bit for bit, but without passes over the images or the block outside the
    engine's threads (the Numba engine converts the images on its threads, roots and
    rounds as it stores each pair), written into ``out`` when given (a NumPy view of the
    output: no block of its own, no copy). Engines without it get those passes from
    :func:`distance_block`, with their array library.

and, optionally, for engines whose blocks live on a device:

``host_stager()``
    Asynchronous copies of blocks into host staging buffers
    (:class:`ssimref.executor.Stager`); with it :func:`ssimref.distance_matrix` writes a
    host ``out`` (e.g. a memmap) from a writer thread while the device computes the next
    tiles (:class:`ssimref.executor.HostWriter`). Without it, each block is copied
    synchronously.

Which engine runs is decided here, in :func:`choose_engine`, and nowhere else; engines
are imported only when chosen, so the package imports without Numba or CuPy. How the
fused engines work and what accuracy they promise (:func:`accuracy_floor`,
:func:`vjp_accuracy_floor`): docs/engines.md. Other engines plug in with
:func:`register_engine` (any object with the attributes of :class:`Engine`) and are then
chosen by name, never by "auto".
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import numpy.typing as npt
from array_api_compat import is_cupy_namespace, is_numpy_namespace

if TYPE_CHECKING:
    from ..backend import Array, Namespace
    from ..config import SSIMConfig

__all__ = ["ENGINES", "Engine", "ElementwiseCotangent", "choose_engine", "check_backend",
           "distance_block",
           "available_engines", "get_engine", "register_engine", "unregister_engine",
           "accuracy_floor", "vjp_accuracy_floor", "UNIT_ROUNDOFF", "FORWARD_METHODS",
           "VJP_METHODS", "SlowEngineWarning"]

#: The unit roundoff of float64.
UNIT_ROUNDOFF = 2.0 ** -53

#: Names of the built-in engines accepted by ``backend=`` arguments.
ENGINES = ("auto", "reference", "numba", "cupy")

#: What every engine provides (:class:`Engine`).
FORWARD_METHODS = ("NAME", "squared_block", "bytes_per_pair", "bytes_per_image",
                   "max_tile_pairs")
#: What an engine provides for gradients (every built-in engine; optional for plug-ins).
VJP_METHODS = ("value_and_vjp_block", "paired_value_and_vjp", "vjp_bytes_per_pair",
               "vjp_bytes_per_image", "vjp_max_tile_pairs")

_MODULES = {"reference": "reference", "numba": "numba_engine", "cupy": "cupy_engine"}
_REGISTERED: dict[str, Engine] = {}
_SLOW_ENGINE_NOTED = False


class SlowEngineWarning(UserWarning):
    """Issued once per process when ``backend="auto"`` runs the all-pairs computations
    of NumPy arrays on the reference engine because Numba is not installed (the fused
    Numba engine is about 75 times faster on 28x28 images: BENCHMARKS.md, W1)."""


class Engine(Protocol):
    """The protocol of an engine (a module or any object with these attributes).

    Attributes
    ----------
    NAME : str
        The name ``backend=`` arguments use.
    """

    NAME: str

    def squared_block(self, Xa: Array, Yb: Array, kind: str, config: SSIMConfig, *,
                      upper: bool = False) -> Array:
        """``D^2`` of every pair of two tiles.

        Parameters
        ----------
        Xa, Yb : Array, shape (ta, H, W, C) and (tb, H, W, C), float64
            Of the engine's array library.
        kind : {"eq1", "eq1-uncentered", "eq2"}
        config : SSIMConfig
            With its data range set.
        upper : bool, default False
            ``Xa is Yb`` (a diagonal tile).

        Returns
        -------
        Array, shape (ta, tb), float64
            With ``upper``, exactly symmetric with a zero diagonal.
        """

    def bytes_per_pair(self, image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
        """Working bytes of one pair of a tile.

        Parameters
        ----------
        image_shape : tuple of int
            ``(H, W, C)``.
        config : SSIMConfig

        Returns
        -------
        int
        """

    def bytes_per_image(self, image_shape: tuple[int, int, int],
                        config: SSIMConfig) -> int:
        """Working bytes of one image's terms in a tile.

        Parameters
        ----------
        image_shape : tuple of int
        config : SSIMConfig

        Returns
        -------
        int
        """

    def max_tile_pairs(self, image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
        """Upper bound on the pairs of one tile.

        Parameters
        ----------
        image_shape : tuple of int
        config : SSIMConfig

        Returns
        -------
        int
        """


    def value_and_vjp_block(self, Xa: Array, Yb: Array, kind: str, config: SSIMConfig,
                            cotangent: Callable[[Array], tuple[Any, Array]], *,
                            upper: bool = False,
                            wrt_y: bool = True) -> tuple[Any, Array, Array | None]:
        """One tile's ``S = D^2`` block, a function of it, and that function's gradient.

        Parameters
        ----------
        Xa, Yb, kind, config, upper
            As for :meth:`squared_block`.
        cotangent : callable
            ``cotangent(S) -> (value, W)`` receives the tile's ``S`` block (as
            :meth:`squared_block` returns it) and returns whatever the caller keeps and
            the cotangent ``W`` (ta, tb) of ``S``. With ``upper`` only the pairs
            ``i < j`` of ``W`` count.
        wrt_y : bool, default True
            Also return ``dYb``.

        Returns
        -------
        value : Any
            The first item of ``cotangent(S)``.
        dXa : Array, shaped like Xa, float64
            ``sum_j W_ij dS_ij/dx_i``; with ``upper`` the gradient of
            ``sum_{i<j} W_ij S_ij`` with respect to the one stack (both roles).
        dYb : Array, shaped like Yb, float64, or None
            ``sum_i W_ij dS_ij/dy_j``; None with ``upper`` or without ``wrt_y``.
        """

    def paired_value_and_vjp(
            self, X: Array, Y: Array, kind: str, config: SSIMConfig,
            cotangent: Callable[[Array], tuple[Any, Array | None]],
    ) -> tuple[Any, Array | None, Array | None]:
        """Matched pairs ``(X[i], Y[i])``: ``S_i = D^2``, a function of it and its
        gradient.

        Parameters
        ----------
        X, Y : Array, shape (n, H, W, C), float64
        kind, config
            As for :meth:`squared_block`.
        cotangent : callable
            ``cotangent(S) -> (value, w)``, ``w`` (n,) or None (values only).

        Returns
        -------
        value : Any
        dX, dY : Array, shaped like X and Y, float64, or None when ``w`` is None
            The gradients of ``sum_i w_i S_i``.
        """

    def vjp_bytes_per_pair(self, image_shape: tuple[int, int, int],
                           config: SSIMConfig) -> int:
        """Working bytes of one pair of a value-and-VJP tile, the caller's cotangent
        function included.

        Parameters
        ----------
        image_shape : tuple of int
        config : SSIMConfig

        Returns
        -------
        int
        """

    def vjp_bytes_per_image(self, image_shape: tuple[int, int, int],
                            config: SSIMConfig) -> int:
        """Working bytes of one image of a value-and-VJP tile (its terms and gradient).

        Parameters
        ----------
        image_shape : tuple of int
        config : SSIMConfig

        Returns
        -------
        int
        """

    def vjp_max_tile_pairs(self, image_shape: tuple[int, int, int],
                           config: SSIMConfig) -> int:
        """Upper bound on the pairs of one value-and-VJP tile.

        Parameters
        ----------
        image_shape : tuple of int
        config : SSIMConfig

        Returns
        -------
        int
        """


class ElementwiseCotangent:
    """A cotangent function ``S -> (value, W)`` of a value-and-VJP tile that is elementwise
    in ``S``, with the rule it follows, so that an engine can evaluate ``W`` inside its
    kernels, pair by pair, once ``S`` is known.

    Parameters
    ----------
    function : callable
        ``function(S) -> (value, W)`` on a whole ``(ta, tb)`` block: what the caller
        keeps, and the cotangent ``W`` of ``S``. Engines call it (always on the full block,
        refined near 0 as :meth:`Engine.squared_block` returns it); it is the definition.
    rule : {"linear", "sqrt", "exp"}
        ``W = upstream * h'(S)`` with ``h(S) = coef * S``, ``coef * sqrt(S)`` (and ``W = 0``
        where ``S = 0``, the subgradient of :func:`ssimref.gradients.distance_weight`) or
        ``exp(-coef * S)``, computed as ``coef * G``, ``(coef * G) / (2 sqrt(S))`` and
        ``((-coef) * exp(-coef * S)) * G``: the operations, in order, of the kernels'
        NumPy code, so that an engine evaluating the rule gets the same ``W`` from the
        same ``S``.
    coef : float
    upstream : Array, shape (ta, tb), float64
        ``G``.

    Notes
    -----
    An engine that uses the rule must give the same values and gradients as calling
    ``function`` on its ``S`` block, to its accuracy contract (docs/engines.md).
    """

    RULES = ("linear", "sqrt", "exp")

    def __init__(self, function: Callable[[Any], tuple[Any, Any]], rule: str, coef: float,
                 upstream: Any) -> None:
        if rule not in self.RULES:
            raise ValueError(f"rule must be one of {self.RULES}, got {rule!r}")
        self.function = function
        self.rule = rule
        self.coef = float(coef)
        self.upstream = upstream

    def __call__(self, S: Any) -> tuple[Any, Any]:
        return self.function(S)


def get_engine(name: str) -> Engine:
    """The engine called ``name``, imported on first use.

    Parameters
    ----------
    name : str
        "reference", "numba", "cupy", or a name given to :func:`register_engine`.

    Returns
    -------
    Engine
        The engine module (or registered object).

    Raises
    ------
    KeyError
        For an unknown name ("auto" included: resolve it with :func:`choose_engine`).
    ImportError
        When the engine's library (Numba, CuPy) is not installed.

    See Also
    --------
    choose_engine : validates a ``backend=`` argument and resolves "auto".
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    return cast("Engine", importlib.import_module(f"{__name__}.{_MODULES[name]}"))


def register_engine(engine: Any, *, replace: bool = False) -> None:
    """Make ``engine`` available to ``backend=engine.NAME`` arguments.

    Parameters
    ----------
    engine : Engine
        A module or object with the attributes of :class:`Engine`; the value-and-VJP
        methods (:data:`VJP_METHODS`) are needed only where gradients are asked of it.
    replace : bool, default False
        Replace an engine registered under the same name.

    Raises
    ------
    TypeError
        When ``engine`` lacks an attribute of the protocol.
    ValueError
        For the name of a built-in engine or "auto", or a registered name without
        ``replace``.

    See Also
    --------
    unregister_engine, choose_engine
    """
    missing = [name for name in FORWARD_METHODS if not hasattr(engine, name)]
    if missing:
        raise TypeError(f"engine lacks {missing} of the engine protocol "
                        "(ssimref.engines.Engine)")
    name = engine.NAME
    if not isinstance(name, str) or name in ENGINES:
        raise ValueError(f"engine NAME must be a string other than {ENGINES}, got {name!r}")
    if name in _REGISTERED and not replace:
        raise ValueError(f"an engine named {name!r} is registered; pass replace=True or "
                         "unregister_engine it first")
    _REGISTERED[name] = engine


def unregister_engine(name: str) -> None:
    """Remove the engine registered as ``name`` (nothing happens for an unknown name).

    Parameters
    ----------
    name : str

    See Also
    --------
    register_engine
    """
    _REGISTERED.pop(name, None)


@functools.cache
def available_engines() -> tuple[str, ...]:
    """Fused engines usable in this environment: "numba" when Numba imports, "cupy" when
    CuPy imports and sees a CUDA device. Decided once per process.

    Returns
    -------
    tuple of str
        The reference engine, always available, is not listed; nor are registered
        engines.

    See Also
    --------
    choose_engine
    """
    found = []
    try:
        import numba  # noqa: F401
        found.append("numba")
    except ImportError:
        pass
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            found.append("cupy")
    except Exception:  # ImportError, or CUDARuntimeError when no driver/device is present
        pass
    return tuple(found)


def check_backend(backend: str) -> str:
    """Validate the name a ``backend=`` argument gives, without choosing an engine.

    Parameters
    ----------
    backend : str
        "auto", "reference", "numba", "cupy", or a registered engine's name.

    Returns
    -------
    str
        ``backend``.

    Raises
    ------
    ValueError
        For anything else.

    See Also
    --------
    choose_engine : also checks that the engine can run on the arrays.
    """
    if isinstance(backend, str) and (backend in ENGINES or backend in _REGISTERED):
        return backend
    raise ValueError(f"backend must be one of {ENGINES}"
                     + (f" or a registered engine {sorted(_REGISTERED)}"
                        if _REGISTERED else "") + f", got {backend!r}")


def distance_block(engine: Engine, Xa: Array, Yb: Array, kind: str, config: SSIMConfig, *,
                   upper: bool = False, squared: bool = False, dtype: str = "float64",
                   out: npt.NDArray[Any] | None = None) -> Array:
    """A tile's block of ``D`` (``D^2`` with ``squared``) in ``dtype`` on ``engine``.

    The engine's own ``distance_block`` where it has one (the Numba engine converts the
    images, roots and rounds on its threads, and writes into ``out``); otherwise the
    images in units of the data range (:func:`ssimref.moments.in_range_units`), the
    engine's :meth:`Engine.squared_block` block of them, rooted and cast with the block's
    array library. Either way every entry is accumulated in float64 and rounded once to
    ``dtype``, the same bits.

    Parameters
    ----------
    engine : Engine
    Xa : Array, shape (ta, H, W, C), any real dtype
        The tile's row images as stored, on the engine's array library.
    Yb : Array, shape (tb, H, W, C), any real dtype
        Its column images; ``Xa`` itself for a diagonal tile (``upper``).
    kind, upper
        As for :meth:`Engine.squared_block`.
    config : SSIMConfig
        With its data range set (not in units of it).
    squared : bool, default False
        ``D^2`` instead of ``D``.
    dtype : {"float64", "float32"}, default "float64"
    out : numpy.ndarray, shape (ta, tb), of ``dtype``, optional
        Where an engine with its own ``distance_block`` writes the block (the tile's view
        of a NumPy output); the others ignore it.

    Returns
    -------
    Array, shape (ta, tb), of ``dtype``, on the engine's array library
        ``out`` itself when the engine wrote there.
    """
    own = getattr(engine, "distance_block", None)
    if own is not None:
        if out is not None and (tuple(out.shape) != (Xa.shape[0], Yb.shape[0])
                                or out.dtype != np.dtype(dtype)):
            out = None
        return own(Xa, Yb, kind, config, upper=upper, squared=squared, dtype=dtype,
                   out=out)
    from ..backend import float_dtype, namespace
    from ..moments import in_range_units

    xp = namespace(Xa)
    Xu = in_range_units(Xa, config, xp)
    Yu = Xu if Yb is Xa else in_range_units(Yb, config, xp)
    block = engine.squared_block(Xu, Yu, kind, config.in_range_units(), upper=upper)
    xp = namespace(block)
    if not squared:
        block = xp.sqrt(block)
    return xp.astype(block, float_dtype(xp, dtype), copy=False)


def choose_engine(backend: str, xp: Namespace, *, vjp: bool = False) -> str:
    """Resolve ``backend`` for the all-pairs computations on arrays of namespace ``xp``.

    Parameters
    ----------
    backend : str
        "auto", "reference", "numba", "cupy", or a registered engine's name. "auto"
        picks "cupy" for CuPy arrays, "numba" for NumPy arrays when the fused Numba
        engine is available, and "reference" (the array-API code) otherwise; for NumPy
        arrays without Numba, a :class:`SlowEngineWarning` says so once per process.
    xp : Namespace
        The namespace of the arrays.
    vjp : bool, default False
        Gradients are wanted: the engine must provide the value-and-VJP methods
        (:data:`VJP_METHODS`; every built-in engine does).

    Returns
    -------
    str
        An engine name for :func:`get_engine`.

    Warns
    -----
    SlowEngineWarning
        Once per process, when "auto" falls back to the reference engine for NumPy
        arrays because Numba is not installed.

    Raises
    ------
    ValueError
        For an unknown name, an engine that cannot run here or on these arrays, or, with
        ``vjp``, a registered engine without the value-and-VJP methods.

    See Also
    --------
    available_engines, get_engine, check_backend
    """
    check_backend(backend)
    if backend in _REGISTERED:
        missing = [name for name in VJP_METHODS if not hasattr(_REGISTERED[backend], name)]
        if vjp and missing:
            raise ValueError(f"engine {backend!r} computes no gradients (it lacks "
                             f"{missing}); use backend='auto' or register an engine "
                             "with those methods")
        return backend
    available = available_engines()
    if backend == "auto":
        if is_cupy_namespace(xp) and "cupy" in available:
            return "cupy"
        if is_numpy_namespace(xp) and "numba" in available:
            return "numba"
        if is_numpy_namespace(xp):
            _note_slow_engine()
        return "reference"
    if backend != "reference" and backend not in available:
        raise ValueError(f"backend {backend!r} is not available here (available: "
                         f"{['reference', *available]}); install the 'fast' extra for "
                         "numba or the 'gpu' extra for cupy, or use backend='auto'")
    if backend == "numba" and not is_numpy_namespace(xp):
        raise ValueError("backend 'numba' needs NumPy arrays; use backend='auto'")
    if backend == "cupy" and not is_cupy_namespace(xp):
        raise ValueError("backend 'cupy' needs CuPy arrays (cupy.asarray(X)); use "
                         "backend='auto'")
    return backend


def _note_slow_engine() -> None:
    """Warn, once per process, that "auto" fell back to the reference engine."""
    global _SLOW_ENGINE_NOTED
    if _SLOW_ENGINE_NOTED:
        return
    _SLOW_ENGINE_NOTED = True
    warnings.warn("Numba is not installed, so SSIM pairs run on the reference engine, "
                  "about 75 times slower than the fused Numba engine; pip install "
                  "'ssimref[fast]' to install it (this note is shown once)",
                  SlowEngineWarning, stacklevel=3)


def accuracy_floor(config: SSIMConfig, image_shape: tuple[int, int, int]) -> float:
    """The absolute term of the fused engines' accuracy contract on ``D^2``.

    ``|D2_engine - D2_reference| <= 1e-12 D2_reference + accuracy_floor``.

    Parameters
    ----------
    config : SSIMConfig
        With its data range set.
    image_shape : tuple of int
        ``(H, W, C)``.

    Returns
    -------
    float
        ``8 n u (f / k2^2 + 1 / k1)`` with ``n`` the window positions times channels,
        ``u`` the unit roundoff and ``f`` the covariance factor (docs/engines.md,
        "Accuracy contract").
    """
    h, w, c = image_shape
    ho, wo = config.positions(h, w)
    return 8 * ho * wo * c * UNIT_ROUNDOFF * (config.covariance_factor() / config.k2 ** 2
                                              + 1.0 / config.k1)


def vjp_accuracy_floor(config: SSIMConfig, image_shape: tuple[int, int, int],
                       weight_sums: float | npt.ArrayLike) -> float | npt.NDArray[np.float64]:
    """The absolute term of the fused engines' accuracy contract on gradients, per image.

    For an image whose pairs have cotangents ``W`` summing in absolute value to
    ``weight_sums`` (``sum_j |W_ij|`` for a row image, ``sum_i |W_ij|`` for a column
    image, both for an image of a diagonal tile, ``|w_i|`` for matched pairs), every
    entry ``g`` of its gradient satisfies
    ``|g - g_reference| <= 1e-10 max|g_reference over the image| + vjp_accuracy_floor``.

    Parameters
    ----------
    config : SSIMConfig
        With its data range set.
    image_shape : tuple of int
        ``(H, W, C)``.
    weight_sums : float or array_like
        ``sum |W|`` over each image's pairs.

    Returns
    -------
    float or numpy.ndarray
        ``8 u (H + W) (f / k2^2 + 1 / k1)^2 weight_sums / L``, shaped like
        ``weight_sums``, with ``u`` the unit roundoff, ``f`` the covariance factor and
        ``L`` the data range (docs/engines.md, "Accuracy contract of the gradients").

    Raises
    ------
    ValueError
        When ``config`` has no data range.

    See Also
    --------
    accuracy_floor : the contract on ``D^2``.
    """
    h, w = image_shape[0], image_shape[1]
    unit = config.covariance_factor() / config.k2 ** 2 + 1.0 / config.k1
    sums = np.asarray(weight_sums, dtype=np.float64)
    if config.data_range is None:
        raise ValueError("config.data_range must be set (the floor is per unit of intensity)")
    floor = 8 * UNIT_ROUNDOFF * (h + w) * unit * unit * sums / config.data_range
    return float(floor) if floor.ndim == 0 else floor
