"""Conditional maximum mean discrepancy (Ren, Li, Luo, Zhu, NIPS 2016) and its gradient.

``n`` conditioning inputs ``c_i`` are shared by the generated outputs ``s_i`` (the
generator was fed ``c_i``) and the data outputs ``d_i``. With the conditioning kernel's
Gram matrix ``K`` (n x n), ``C = (K + lam I)^-1`` and ``M = C K C`` (positive
semi-definite), the estimate is

    CMMD^2 = sum_ij M_ij [l(s_i, s_j) + l(d_i, d_j) - l(s_i, d_j) - l(d_i, s_j)]

with ``l`` the output kernel: the weighted form of :mod:`ssimref.mmd.weighted` with
``W = [[M, -M], [-M, M]]`` over the pooled sample ``[s; d]`` (its rows and columns sum to
zero, so the SSIM distance kernel gives the distance-induced kernel's value exactly).
``M`` comes from one eigendecomposition ``K = Q diag(e) Q^T``:
``M = Q diag(e / (e + lam)^2) Q^T``; no matrix is inverted.

For discrete labels with the delta kernel ``k(c, c') = [c = c']``, ``K`` is block diagonal
with blocks of ones, whose only nonzero eigenvalue is the class size ``n_c``, so
``M = sum_c 1_c 1_c^T / (n_c + lam)^2`` and

    CMMD^2 = sum_c (n_c / (n_c + lam))^2 MMD_b^2(s_c, d_c),

the biased MMD^2 within each class. ``condition_kernel="delta"`` uses this closed form
(no n x n matrix at all); ``tests/test_cmmd.py`` checks it against the general form.

References
----------
Ren, Li, Luo, Zhu, "Conditional generative moment-matching networks", NIPS 2016.
Song, Huang, Smola, Fukumizu, "Hilbert space embeddings of conditional distributions",
ICML 2009.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import numpy.typing as npt

from ..backend import Array, ArrayLike, as_array, namespace, to_numpy
from ..kernels.protocol import bind_kernel
from ..tiling import resolve_working_memory
from ..validation import check_not_masked
from .estimators import sqrt_loss
from .weighted import constant_weights, matrix_weights, weighted_form

__all__ = ["cmmd2", "cmmd2_and_grad", "cmmd_weights"]


def _labels(conditions: ArrayLike, n: int) -> npt.NDArray[np.intp]:
    """Class index of each row, from labels (n,) or one-hot rows (n, k)."""
    check_not_masked(conditions, "conditions")
    c = np.asarray(to_numpy(as_array(conditions)))
    if c.shape[:1] != (n,) or c.ndim > 2:
        raise ValueError(f"conditions must be labels of shape ({n},) or one-hot rows of "
                         f"shape ({n}, k) for the delta kernel, got shape {c.shape}")
    if c.ndim == 2:
        if not (np.all((c == 0) | (c == 1)) and np.all(c.sum(axis=1) == 1)):
            raise ValueError("2-D conditions for the delta kernel must be one-hot rows "
                             "(0/1 entries, exactly one 1 per row); pass labels (n,) "
                             "otherwise, or use a condition kernel object")
        return np.argmax(c, axis=1)
    if c.dtype.kind in "fc" and not np.all(np.isfinite(c)):
        raise ValueError("conditions contains NaN or Inf")
    return np.unique(c, return_inverse=True)[1].reshape(-1)


def cmmd_weights(gram: ArrayLike, lam: float) -> Array:
    """``M = C K C`` with ``C = (K + lam I)^-1``, by eigendecomposition.

    Parameters
    ----------
    gram : array_like, shape (n, n)
        Symmetric positive semi-definite Gram matrix of the conditioning inputs.
    lam : float > 0

    Returns
    -------
    Array, shape (n, n), float64, symmetric PSD
        ``Q diag(e / (e + lam)^2) Q^T``. Eigenvalues within rounding of 0
        (``|e| <= n eps max|e|``) and slightly negative ones (down to ``-1e-8 max|e|``)
        are set to 0, since ``1 / lam^2`` would amplify their rounding noise; more
        negative ones raise ``ValueError`` (the condition kernel is not positive
        semi-definite).

    Raises
    ------
    ValueError
        For a matrix that is not square, holds NaN or Inf, is asymmetric beyond 1e-10 of
        its largest entry, or has an eigenvalue below ``-1e-8`` times the largest.

    See Also
    --------
    cmmd2 : where the weights are used.

    References
    ----------
    Ren, Li, Luo, Zhu, NIPS 2016 (the estimator); Song, Huang, Smola, Fukumizu, ICML
    2009 (``C = (K + lam I)^-1``).
    """
    check_not_masked(gram, "gram")
    K = as_array(gram)
    xp = namespace(K)
    K = xp.astype(K, xp.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"the condition Gram matrix must be square, got {tuple(K.shape)}")
    if not bool(xp.all(xp.isfinite(K))):
        raise ValueError("the condition Gram matrix contains NaN or Inf")
    scale = float(xp.max(xp.abs(K))) if K.shape[0] else 0.0
    if float(xp.max(xp.abs(K - K.T))) > 1e-10 * max(scale, 1e-300):
        raise ValueError("the condition Gram matrix must be symmetric")
    e, Q = xp.linalg.eigh((K + K.T) / 2.0)
    top = float(xp.max(xp.abs(e)))
    if float(xp.min(e)) < -1e-8 * top:
        raise ValueError(f"the condition Gram matrix has eigenvalue {float(xp.min(e)):.3g} "
                         f"(largest {top:.3g}): the condition kernel is not positive "
                         "semi-definite")
    # Eigenvalues within rounding of 0 (n eps max|e|) are set to 0: they carry no
    # information, and e / (e + lam)^2 would amplify their noise by 1 / lam^2.
    noise = K.shape[0] * 2.220446049250313e-16 * top
    e = xp.where(e > noise, e, xp.zeros_like(e))
    M = (Q * (e / ((e + lam) * (e + lam)))[None, :]) @ Q.T
    return (M + M.T) / 2.0


def _cmmd(Y_gen: ArrayLike, Y_data: ArrayLike, conditions: ArrayLike, kernel: Any,
          condition_kernel: Any, lam: Any, grad: bool,
          working_memory: float | None, executor: Any = None) -> tuple[float, Array | None]:
    lam = float(lam) if isinstance(lam, numbers.Real) and not isinstance(lam, bool) else lam
    if not (isinstance(lam, float) and math.isfinite(lam) and lam > 0):
        raise ValueError(f"lam must be a finite number > 0, got {lam!r}")
    working_memory = resolve_working_memory(working_memory)
    x_shape = tuple(as_array(Y_gen).shape)
    if Y_data is None:
        raise ValueError("Y_data (the data outputs) is required")
    xp, Xw, Yw, ops = bind_kernel(kernel, Y_gen, Y_data)
    assert Yw is not None
    n = Xw.shape[0]
    if Yw.shape[0] != n:
        raise ValueError(f"Y_gen and Y_data must have one row per condition (the same n), "
                         f"got {n} and {Yw.shape[0]}")

    if isinstance(condition_kernel, str) and condition_kernel == "delta":
        labels = _labels(conditions, n)
        order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels)
        index = xp.asarray(order)
        Xs, Ys = xp.take(Xw, index, axis=0), xp.take(Yw, index, axis=0)
        value = xp.asarray(0.0, dtype=xp.float64)
        dXs = xp.zeros(Xs.shape, dtype=xp.float64) if grad else None
        start = 0
        for count in counts[counts > 0]:
            stop = start + int(count)
            factor = (count / (count + lam)) ** 2
            inv = 1.0 / (count * count)
            v, g = weighted_form(Xs[start:stop, ...], Ys[start:stop, ...], ops,
                                 constant_weights(inv, False, xp),
                                 constant_weights(-inv, False, xp),
                                 constant_weights(inv, False, xp), grad, working_memory,
                                 xp, executor)
            value = value + factor * v
            if dXs is not None:
                dXs[start:stop, ...] = factor * g
            start = stop
        dX = xp.take(dXs, xp.asarray(np.argsort(order)), axis=0) if grad else None
    else:
        if isinstance(condition_kernel, str):
            if condition_kernel != "precomputed":
                raise ValueError(f"condition_kernel must be 'delta', 'precomputed' or a "
                                 f"kernel object with gram(), got {condition_kernel!r}")
            gram = conditions
        elif hasattr(condition_kernel, "gram"):
            gram = condition_kernel.gram(conditions)
        else:
            raise TypeError("condition_kernel must be 'delta', 'precomputed' or a kernel "
                            "object with gram(C) (e.g. ssimref.kernels.RBFMixture)")
        gram = as_array(gram)
        if tuple(gram.shape) != (n, n):
            raise ValueError(f"the condition Gram matrix must have shape ({n}, {n}), got "
                             f"{tuple(gram.shape)}")
        M = xp.asarray(cmmd_weights(gram, lam))
        value, dX = weighted_form(Xw, Yw, ops, matrix_weights(M), matrix_weights(M, -1.0),
                                  matrix_weights(M), grad, working_memory, xp, executor)
    if dX is not None and x_shape:
        dX = ops.to_input_layout(dX, x_shape, xp)
    return float(value), dX


def cmmd2(Y_gen: ArrayLike, Y_data: ArrayLike, conditions: ArrayLike, kernel: Any,
          condition_kernel: Any = "delta", lam: float = 1e-3, *,
          working_memory: float | None = None, executor: Any = None) -> float:
    """Squared conditional MMD of Ren et al. (2016) between generated and data outputs
    sharing the same conditions.

    Parameters
    ----------
    Y_gen : array_like, shape (n, ...)
        Generated outputs, row ``i`` generated for condition ``i``.
    Y_data : array_like, shape (n, ...)
        Data outputs, row ``i`` observed with condition ``i``.
    conditions : array_like
        ``condition_kernel="delta"``: labels ``(n,)`` (any values) or one-hot rows
        ``(n, k)``. A kernel object: its input, e.g. ``(n, d)``. ``"precomputed"``: the
        ``(n, n)`` Gram matrix of the conditions.
    kernel : ssimref.kernels.Kernel or an object with the same protocol
        Output kernel ``l``.
    condition_kernel : "delta", "precomputed" or a kernel object, default "delta"
        "delta" evaluates the closed form ``sum_c (n_c / (n_c + lam))^2 MMD_b^2`` (module
        docstring); the others the general form with ``M = C K C`` (eigh, no inverse).
    lam : float > 0, default 1e-3
        Ridge ``lambda`` of ``C = (K + lam I)^-1``.
    working_memory : float, optional
        MiB for the tiles, as for :func:`ssimref.mmd.mmd2`. The general form also holds
        ``M`` (n x n).
    executor : optional
        Who runs the tiles, as for :func:`ssimref.mmd.mmd2` (with Dask, ``M`` is sent
        once to every worker).

    Returns
    -------
    float
        ``CMMD^2`` (>= 0 for a positive-definite output kernel and for the SSIM distance
        kernel).

    Raises
    ------
    ValueError
        For a ``lam`` that is not a finite number > 0, ``Y_gen`` and ``Y_data`` with
        different numbers of rows, conditions of the wrong shape (or, for "delta", 2-D
        conditions that are not one-hot), an unknown ``condition_kernel`` name, a
        condition Gram matrix refused by :func:`cmmd_weights`, and the kernel's errors.
    TypeError
        For a ``condition_kernel`` that is neither a name nor an object with ``gram``, or
        a ``kernel`` without the protocol's methods.

    See Also
    --------
    cmmd2_and_grad : with the gradient.
    cmmd_weights : the weights ``M``.
    ssimref.mmd.mmd2 : the unconditional statistic.

    References
    ----------
    Ren, Li, Luo, Zhu, "Conditional generative moment-matching networks", NIPS 2016.
    """
    return _cmmd(Y_gen, Y_data, conditions, kernel, condition_kernel, lam, False,
                 working_memory, executor)[0]


def cmmd2_and_grad(Y_gen: ArrayLike, Y_data: ArrayLike, conditions: ArrayLike, kernel: Any,
                   condition_kernel: Any = "delta", lam: float = 1e-3, *,
                   sqrt: bool = False, working_memory: float | None = None,
                   executor: Any = None) -> tuple[float, Array]:
    """``CMMD^2`` (or ``CMMD`` with ``sqrt=True``) and its gradient with respect to
    ``Y_gen``.

    Parameters
    ----------
    Y_gen, Y_data, conditions, kernel, condition_kernel, lam, working_memory
        As for :func:`cmmd2`; only ``Y_gen`` is differentiated.
    sqrt : bool, default False
        As for :func:`ssimref.mmd.mmd2_and_grad`: value ``sqrt(max(L, 0))``, gradient 0
        where ``L <= 0``.

    Returns
    -------
    value : float
    dY_gen : Array, shaped like Y_gen, float64

    Raises
    ------
    ValueError, TypeError
        As for :func:`cmmd2`.

    See Also
    --------
    cmmd2 : the value alone.
    ssimref.mmd.mmd2_and_grad : the unconditional form.
    """
    value, dX = _cmmd(Y_gen, Y_data, conditions, kernel, condition_kernel, lam, True,
                      working_memory, executor)
    assert dX is not None  # grad=True
    return sqrt_loss(value, dX) if sqrt else (value, dX)
