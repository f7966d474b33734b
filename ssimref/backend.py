"""The one place that decides which array library computes.

All array code in :mod:`ssimref` is written against the Python array API standard and
gets its namespace from :func:`namespace`. Which engine computes all-pairs tiles is
decided by :func:`choose_engine` (:mod:`ssimref.engines`, re-exported here). NumPy arrays compute with NumPy, CuPy arrays
on the GPU with CuPy, and any other array-API library (``array_api_strict`` in the tests)
with its own namespace, through ``array_api_compat``.
"""

from __future__ import annotations

import numpy as np
import array_api_compat
from array_api_compat import array_namespace, is_array_api_obj, is_cupy_array, is_numpy_array

__all__ = ["namespace", "as_array", "to_numpy", "is_numpy_array", "is_numpy_namespace",
           "is_cupy_namespace", "float_dtype", "device_namespace", "DEVICES", "choose_engine",
           "available_engines", "ENGINES", "arrays_for"]


def as_array(a):
    """Return ``a`` itself when it is an array of some array library, else ``np.asarray(a)``
    (lists, tuples, scalars)."""
    return a if is_array_api_obj(a) else np.asarray(a)


def namespace(*arrays):
    """The array-API namespace shared by ``arrays`` (``None`` entries are ignored).

    Raises
    ------
    TypeError
        When the arrays come from different array libraries.
    """
    present = [a for a in arrays if a is not None]
    try:
        return array_namespace(*present)
    except TypeError as exc:
        raise TypeError("all image arrays must come from the same array library "
                        f"(got {sorted({type(a).__module__ for a in present})}): {exc}") from None


def is_numpy_namespace(xp) -> bool:
    return array_api_compat.is_numpy_namespace(xp)


def is_cupy_namespace(xp) -> bool:
    return array_api_compat.is_cupy_namespace(xp)


def float_dtype(xp, dtype):
    """Map ``None`` / ``"float64"`` / ``"float32"`` / a NumPy or namespace dtype to the
    namespace's floating dtype. Only float32 and float64 are accepted."""
    if dtype is None:
        return xp.float64
    name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or str(dtype)
    name = {"double": "float64", "float": "float64", "single": "float32"}.get(name, name)
    if name.endswith("float64"):
        return xp.float64
    if name.endswith("float32"):
        return xp.float32
    raise TypeError(f"dtype must be float64 or float32, got {dtype!r}")


DEVICES = ("cpu", "gpu")


def device_namespace(device: str):
    """The array namespace that computes on ``device``: NumPy for "cpu", CuPy for "gpu".

    Raises
    ------
    ValueError
        For an unknown device, or "gpu" without CuPy or a CUDA device.
    """
    if device == "cpu":
        return namespace(np.empty(0))
    if device != "gpu":
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
    except Exception as exc:  # ImportError, or CUDA errors without a driver or device
        raise ValueError(f"device 'gpu' needs CuPy and a CUDA device ({exc}); install the "
                         "'gpu' extra (cupy-cuda12x) or use device 'cpu'") from None
    return namespace(cupy.empty(0))


def to_numpy(a) -> np.ndarray:
    """Copy an array of any supported library to host memory as a NumPy array."""
    if is_numpy_array(a):
        return a
    if is_cupy_array(a):
        return a.get()
    return np.from_dlpack(a)


def arrays_for(backend: str, a):
    """``a`` on the device ``backend`` computes on: a CuPy array for "cupy", unchanged
    otherwise. For callers that hold host arrays, such as the command line."""
    if backend != "cupy":
        return a
    if "cupy" not in available_engines():
        raise ValueError("backend 'cupy' is not available here: it needs CuPy (the 'gpu' "
                         "extra) and a CUDA device")
    import cupy
    return cupy.asarray(a)


# Engine choice lives with the engines (one place); re-exported here, where callers that
# hold arrays look for it.
from .engines import ENGINES, available_engines, choose_engine  # noqa: E402
