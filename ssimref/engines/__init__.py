"""Fused all-pairs engines behind ``distance_matrix(..., backend=...)``.

Each engine is a module with the same interface, imported only when chosen (so the
package imports without Numba or CuPy):

``squared_block(Xa, Yb, kind, config, upper=False)``
    ``D^2`` for every pair of two float64 tiles ``(ta, H, W, C)`` and ``(tb, H, W, C)``
    of the engine's array library, as a float64 array ``(ta, tb)``; with ``upper``
    (``Xa is Yb``) each unordered pair is computed once and the block returned is
    exactly symmetric with a zero diagonal.
``bytes_per_pair(image_shape, config)``, ``bytes_per_image(image_shape, config)``
    Working memory of a tile, for sizing tiles to ``working_memory``.
``MAX_TILE_PAIRS``
    Upper bound on the pairs of one tile, so progress and Ctrl-C are never far apart.

Engines: ``"numba"`` (:mod:`ssimref.engines.numba_engine`, CPU) and ``"cupy"``
(:mod:`ssimref.engines.cupy_engine`, CUDA). Which one runs is decided in one place,
:func:`ssimref.backend.choose_engine`. How they work and what accuracy they promise:
docs/engines.md.
"""

from __future__ import annotations

import importlib

__all__ = ["load_engine", "accuracy_floor"]

#: The unit roundoff of float64.
UNIT_ROUNDOFF = 2.0 ** -53

_MODULES = {"numba": "numba_engine", "cupy": "cupy_engine"}


def load_engine(name: str):
    """The module of engine ``name`` ("numba" or "cupy"), imported on first use."""
    return importlib.import_module(f"{__name__}.{_MODULES[name]}")


def accuracy_floor(config, image_shape) -> float:
    """The absolute term of the engines' accuracy contract on ``D^2``, for images
    ``(H, W, C)``: ``8 n u (f / k2^2 + 1 / k1)`` with ``n`` the window positions times
    channels, ``u`` the unit roundoff and ``f`` the covariance factor (docs/engines.md).

    ``|D2_engine - D2_reference| <= 1e-12 D2_reference + accuracy_floor``.
    """
    h, w, c = image_shape
    ho, wo = config.positions(h, w)
    return 8 * ho * wo * c * UNIT_ROUNDOFF * (config.covariance_factor() / config.k2 ** 2
                                              + 1.0 / config.k1)
