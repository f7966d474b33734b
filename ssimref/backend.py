"""The one place that decides which array library computes.

All array code in :mod:`ssimref` is written against the Python array API standard and
gets its namespace from :func:`namespace`. Which engine computes all-pairs tiles is
decided by :func:`choose_engine` (:mod:`ssimref.engines`, re-exported here). NumPy arrays
compute with NumPy, CuPy arrays on the GPU with CuPy, and any other array-API library
(``array_api_strict`` in the tests) with its own namespace, through ``array_api_compat``.

Type aliases
------------
The array API standard has no static type that every library's arrays share, so the
annotations of :mod:`ssimref` use three aliases defined here, once:

``Array``
    An array of any array-API library (``numpy.ndarray``, ``cupy.ndarray``,
    ``array_api_strict`` arrays, ...). To a static type checker it is ``Any``.
``ArrayLike``
    What the public functions accept as input: an ``Array``, or anything
    :func:`numpy.asarray` turns into one (nested lists, scalars), i.e.
    ``Array | numpy.typing.ArrayLike``.
``Namespace``
    An array-API namespace (the module-like object :func:`namespace` returns).

Functions that always return NumPy arrays say so with ``numpy.typing.NDArray``.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import array_api_compat
import numpy as np
import numpy.typing as npt
from array_api_compat import array_namespace, is_array_api_obj, is_cupy_array, is_numpy_array

__all__ = ["Array", "ArrayLike", "Namespace", "namespace", "as_array", "to_numpy",
           "is_numpy_array", "is_numpy_namespace", "is_cupy_namespace", "float_dtype",
           "device_namespace", "DEVICES", "choose_engine", "available_engines", "ENGINES",
           "arrays_for"]

#: An array of any array-API library (``Any`` to a static type checker).
Array: TypeAlias = Any
#: An ``Array`` or anything :func:`numpy.asarray` accepts, ``Array | numpy.typing.ArrayLike``
#: (spelled ``Any``: a union with ``Any`` would make checkers demand NumPy's attributes).
ArrayLike: TypeAlias = Any
#: An array-API namespace, as returned by :func:`namespace`.
Namespace: TypeAlias = Any


def as_array(a: ArrayLike) -> Array:
    """``a`` itself when it is an array of some array library, else ``np.asarray(a)``.

    Parameters
    ----------
    a : array_like
        An array of any array-API library, or a list, tuple or scalar.

    Returns
    -------
    Array
        ``a`` unchanged (no copy, same library), or a new NumPy array.

    See Also
    --------
    namespace : the namespace of the result.
    """
    return a if is_array_api_obj(a) else np.asarray(a)


def namespace(*arrays: Array | None) -> Namespace:
    """The array-API namespace shared by ``arrays`` (``None`` entries are ignored).

    Parameters
    ----------
    *arrays : Array or None
        Arrays of one array library.

    Returns
    -------
    Namespace
        ``array_api_compat``'s namespace for their library (e.g. its NumPy wrapper).

    Raises
    ------
    TypeError
        When the arrays come from different array libraries, or one is not an array.

    See Also
    --------
    as_array : make an array of an array-like first.
    """
    present = [a for a in arrays if a is not None]
    try:
        return array_namespace(*present)
    except TypeError as exc:
        raise TypeError("all image arrays must come from the same array library "
                        f"(got {sorted({type(a).__module__ for a in present})}): {exc}") from None


def is_numpy_namespace(xp: Namespace) -> bool:
    """Whether ``xp`` is NumPy's namespace (NumPy itself or ``array_api_compat``'s
    wrapper).

    Parameters
    ----------
    xp : Namespace

    Returns
    -------
    bool

    See Also
    --------
    is_cupy_namespace
    """
    return bool(array_api_compat.is_numpy_namespace(xp))


def is_cupy_namespace(xp: Namespace) -> bool:
    """Whether ``xp`` is CuPy's namespace (CuPy itself or ``array_api_compat``'s wrapper).

    Parameters
    ----------
    xp : Namespace

    Returns
    -------
    bool

    See Also
    --------
    is_numpy_namespace
    """
    return bool(array_api_compat.is_cupy_namespace(xp))


def float_dtype(xp: Namespace, dtype: Any) -> Any:
    """The floating dtype of namespace ``xp`` that ``dtype`` names.

    Parameters
    ----------
    xp : Namespace
    dtype : None, str or dtype
        ``None`` (float64), ``"float64"``, ``"float32"``, ``"double"``, ``"single"``, or
        a NumPy or namespace dtype of either precision.

    Returns
    -------
    dtype
        ``xp.float64`` or ``xp.float32``.

    Raises
    ------
    TypeError
        For any other dtype (only float32 and float64 are accepted).
    """
    if dtype is None:
        return xp.float64
    name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or str(dtype)
    name = {"double": "float64", "float": "float64", "single": "float32"}.get(name, name)
    if name.endswith("float64"):
        return xp.float64
    if name.endswith("float32"):
        return xp.float32
    raise TypeError(f"dtype must be float64 or float32, got {dtype!r}")


#: Devices accepted by :func:`device_namespace`.
DEVICES = ("cpu", "gpu")


def device_namespace(device: str) -> Namespace:
    """The array namespace that computes on ``device``: NumPy for "cpu", CuPy for "gpu".

    Parameters
    ----------
    device : {"cpu", "gpu"}

    Returns
    -------
    Namespace

    Raises
    ------
    ValueError
        For an unknown device, or "gpu" without CuPy or a CUDA device.

    See Also
    --------
    arrays_for : move host arrays to the device an engine computes on.
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


def to_numpy(a: Array) -> npt.NDArray[Any]:
    """``a`` in host memory as a NumPy array.

    Parameters
    ----------
    a : Array
        An array of any supported library.

    Returns
    -------
    numpy.ndarray
        ``a`` itself for a NumPy array (no copy); a host copy of a CuPy array; other
        libraries' arrays through DLPack (:func:`numpy.from_dlpack`, a copy or a view).
    """
    if is_numpy_array(a):
        return a
    if is_cupy_array(a):
        return a.get()
    return np.from_dlpack(a)


def arrays_for(backend: str, a: Array) -> Array:
    """``a`` on the device ``backend`` computes on, for callers that hold host arrays
    (such as the command line).

    Parameters
    ----------
    backend : str
        An engine name (:data:`ENGINES`).
    a : Array

    Returns
    -------
    Array
        A CuPy copy of ``a`` for "cupy"; ``a`` unchanged otherwise.

    Raises
    ------
    ValueError
        For "cupy" without CuPy or a CUDA device.
    """
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
