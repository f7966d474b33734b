"""Engines: the plug-ins that compute a tile of SSIM pairs.

Three engines implement one protocol: ``"reference"`` (:mod:`ssimref.engines.reference`,
the array-API code of the core, any array library), ``"numba"``
(:mod:`ssimref.engines.numba_engine`, fused kernels on the CPU) and ``"cupy"``
(:mod:`ssimref.engines.cupy_engine`, a fused CUDA kernel). An engine is a module with

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

Gradients run on the reference engine, which also provides
``value_and_vjp_block(Xa, Yb, kind, config, cotangent, *, upper, wrt_y)``,
``paired_value_and_vjp(X, Y, kind, config, cotangent)`` and their memory figures
(:mod:`ssimref.engines.reference`).

Which engine runs is decided here, in :func:`choose_engine`, and nowhere else; engines
are imported only when chosen, so the package imports without Numba or CuPy. How the
fused engines work and what accuracy they promise (:func:`accuracy_floor`):
docs/engines.md. Other engines plug in with :func:`register_engine` (any object with the
attributes of :class:`Engine`) and are then chosen by name, never by "auto".
"""

from __future__ import annotations

import functools
import importlib
import warnings
from typing import TYPE_CHECKING, Any, Protocol, cast

from array_api_compat import is_cupy_namespace, is_numpy_namespace

if TYPE_CHECKING:
    from ..backend import Array, Namespace
    from ..config import SSIMConfig

__all__ = ["ENGINES", "Engine", "choose_engine", "available_engines", "get_engine",
           "register_engine", "unregister_engine", "accuracy_floor", "UNIT_ROUNDOFF",
           "SlowEngineWarning"]

#: The unit roundoff of float64.
UNIT_ROUNDOFF = 2.0 ** -53

#: Names of the built-in engines accepted by ``backend=`` arguments.
ENGINES = ("auto", "reference", "numba", "cupy")

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
        A module or object with the attributes of :class:`Engine`.
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
    missing = [name for name in ("NAME", "squared_block", "bytes_per_pair",
                                 "bytes_per_image", "max_tile_pairs")
               if not hasattr(engine, name)]
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


def choose_engine(backend: str, xp: Namespace) -> str:
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
        For an unknown name, or an engine that cannot run here or on these arrays.

    See Also
    --------
    available_engines, get_engine
    """
    if backend in _REGISTERED:
        return backend
    if backend not in ENGINES:
        raise ValueError(f"backend must be one of {ENGINES}"
                         + (f" or a registered engine {sorted(_REGISTERED)}"
                            if _REGISTERED else "") + f", got {backend!r}")
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
