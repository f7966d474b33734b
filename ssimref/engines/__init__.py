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
docs/engines.md.
"""

from __future__ import annotations

import functools
import importlib

from array_api_compat import is_cupy_namespace, is_numpy_namespace

__all__ = ["ENGINES", "choose_engine", "available_engines", "get_engine", "accuracy_floor",
           "UNIT_ROUNDOFF"]

#: The unit roundoff of float64.
UNIT_ROUNDOFF = 2.0 ** -53

#: Names accepted by ``backend=`` arguments.
ENGINES = ("auto", "reference", "numba", "cupy")

_MODULES = {"reference": "reference", "numba": "numba_engine", "cupy": "cupy_engine"}


def get_engine(name: str):
    """The engine ``name`` ("reference", "numba" or "cupy"), imported on first use."""
    return importlib.import_module(f"{__name__}.{_MODULES[name]}")


@functools.cache
def available_engines() -> tuple[str, ...]:
    """Fused engines usable in this environment: "numba" when Numba imports, "cupy" when
    CuPy imports and sees a CUDA device. Decided once per process. (The reference engine
    is always available.)"""
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


def choose_engine(backend: str, xp) -> str:
    """Resolve ``backend`` for the all-pairs computations on arrays of namespace ``xp``.

    "auto" picks "cupy" for CuPy arrays, "numba" for NumPy arrays when the fused Numba
    engine is available, and "reference" (the array-API code) otherwise.

    Raises
    ------
    ValueError
        For an unknown name, or an engine that cannot run here or on these arrays.
    """
    if backend not in ENGINES:
        raise ValueError(f"backend must be one of {ENGINES}, got {backend!r}")
    available = available_engines()
    if backend == "auto":
        if is_cupy_namespace(xp) and "cupy" in available:
            return "cupy"
        if is_numpy_namespace(xp) and "numba" in available:
            return "numba"
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


def accuracy_floor(config, image_shape) -> float:
    """The absolute term of the fused engines' accuracy contract on ``D^2``, for images
    ``(H, W, C)``: ``8 n u (f / k2^2 + 1 / k1)`` with ``n`` the window positions times
    channels, ``u`` the unit roundoff and ``f`` the covariance factor (docs/engines.md).

    ``|D2_engine - D2_reference| <= 1e-12 D2_reference + accuracy_floor``.
    """
    h, w, c = image_shape
    ho, wo = config.positions(h, w)
    return 8 * ho * wo * c * UNIT_ROUNDOFF * (config.covariance_factor() / config.k2 ** 2
                                              + 1.0 / config.k1)
