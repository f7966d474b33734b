"""Maximum mean discrepancy: the biased, unbiased and linear-time estimators of MMD^2 and
their gradients with respect to the generated sample, through one weighted form.

With the pooled sample ``Z = [X; Y]`` (``X`` generated, ``n`` points; ``Y`` data, ``m``
points) every estimator is

    L = sum_ij W_ij k(z_i, z_j),     dL/dz_i = 2 sum_j W_ij d1k(z_i, z_j)   (W symmetric)

with a weight matrix ``W`` whose rows and columns sum to zero:

- biased (V-statistic): ``W_XX = 1/n^2``, ``W_YY = 1/m^2``, ``W_XY = -1/(n m)``, i.e.
  ``W = s s^T`` with ``s_i = 1/n`` on ``X`` and ``-1/m`` on ``Y``;
- unbiased (U-statistic, Gretton et al. 2012, Lemma 6): ``W_XX = 1/(n (n-1))`` and
  ``W_YY = 1/(m (m-1))`` off the diagonal, 0 on it, ``W_XY = -1/(n m)``;
- linear (Gretton et al. 2012, Lemma 14; ``n = m``): with ``p = floor(n/2)`` quadruples
  ``(x_2i, x_2i+1, y_2i, y_2i+1)`` (0-based), ``L = (1/p) sum_i h_i`` with
  ``h_i = k(x_2i, x_2i+1) + k(y_2i, y_2i+1) - k(x_2i, y_2i+1) - k(x_2i+1, y_2i)``: a
  sparse ``W`` with entries ``+-1/(2p)``.

The dense estimators are evaluated block by block by :func:`ssimref.mmd.weighted.weighted_form`,
each weight tile built on the fly (constants, with a zero diagonal for the unbiased
estimator); no ``n x n``, ``n x m`` or ``(n + m) x (n + m)`` matrix exists at any time.

Memory: see :mod:`ssimref.mmd.weighted` (the tiles fit ``working_memory``).

References
----------
Gretton, Borgwardt, Rasch, Schoelkopf, Smola, "A kernel two-sample test", JMLR 13, 2012.
Li, Swersky, Zemel, "Generative moment matching networks", ICML 2015.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

from ..backend import Array, ArrayLike, Namespace, as_array
from ..kernels.protocol import BoundKernel, bind_kernel
from ..tiling import resolve_working_memory
from .weighted import WeightTiles, constant_weights, weighted_form

__all__ = ["mmd2", "mmd2_and_grad", "ESTIMATORS", "EstimatorName", "check_estimator",
           "check_sizes", "sqrt_loss", "dense_weights"]

#: The estimator names.
EstimatorName: TypeAlias = Literal["biased", "unbiased", "linear"]
ESTIMATORS: tuple[EstimatorName, ...] = ("biased", "unbiased", "linear")


def check_estimator(estimator: Any, allowed: Sequence[str] = ESTIMATORS) -> EstimatorName:
    """``estimator`` itself when it is one of ``allowed``.

    Parameters
    ----------
    estimator : Any
    allowed : sequence of str, default ESTIMATORS

    Returns
    -------
    {"biased", "unbiased", "linear"}

    Raises
    ------
    ValueError
        Otherwise; the message says what each estimator is.
    """
    if estimator not in allowed:
        raise ValueError(f"estimator must be one of {allowed}, got {estimator!r}: 'biased' "
                         "is the V-statistic s^T K s (>= 0, the GMMN loss of Li et al.), "
                         "'unbiased' the U-statistic (may be negative), 'linear' the "
                         "linear-time estimator (n == m)")
    return estimator


def dense_weights(estimator: str, n: int, m: int,
                  xp: Namespace) -> tuple[WeightTiles, WeightTiles, WeightTiles]:
    """The weight tiles of the biased or unbiased estimator (module docstring).

    Parameters
    ----------
    estimator : {"biased", "unbiased"}
    n, m : int
        Sample sizes.
    xp : Namespace

    Returns
    -------
    Wxx, Wxy, Wyy : callable
        Tile makers for :func:`ssimref.mmd.weighted.weighted_form`.
    """
    if estimator == "biased":
        return (constant_weights(1.0 / (n * n), False, xp),
                constant_weights(-1.0 / (n * m), False, xp),
                constant_weights(1.0 / (m * m), False, xp))
    return (constant_weights(1.0 / (n * (n - 1)), True, xp),
            constant_weights(-1.0 / (n * m), False, xp),
            constant_weights(1.0 / (m * (m - 1)), True, xp))


def _linear(X: Array, Y: Array, ops: BoundKernel, grad: bool,
            xp: Namespace) -> tuple[Array, Array | None]:
    """Linear-time estimator (module docstring) and its gradient with respect to X."""
    p = X.shape[0] // 2
    top = 2 * p
    xe, xo = X[0:top:2, ...], X[1:top:2, ...]
    ye, yo = Y[0:top:2, ...], Y[1:top:2, ...]
    c = 1.0 / p
    plus = xp.full((p,), c, dtype=xp.float64) if grad else None
    minus = xp.full((p,), -c, dtype=xp.float64) if grad else None
    v_xx, ge, go = ops.paired_value_and_vjp(xe, xo, plus)
    v_yy, _, _ = ops.paired_value_and_vjp(ye, yo, None)
    v_xy, ge2, _ = ops.paired_value_and_vjp(xe, yo, minus)
    v_yx, go2, _ = ops.paired_value_and_vjp(xo, ye, minus)
    value = c * xp.sum(v_xx + v_yy - v_xy - v_yx)
    if ge is None or go is None or ge2 is None or go2 is None:  # not grad
        return value, None
    dX = xp.zeros(X.shape, dtype=xp.float64)
    dX[0:top:2, ...] += ge + ge2
    dX[1:top:2, ...] += go + go2
    return value, dX


def check_sizes(estimator: str, n: int, m: int) -> None:
    """Refuse sample sizes the estimator cannot use.

    Parameters
    ----------
    estimator : {"biased", "unbiased", "linear"}
    n, m : int
        Sample sizes.

    Raises
    ------
    ValueError
        "unbiased" with fewer than 2 points in a sample; "linear" with ``n != m`` or
        fewer than 2 points.
    """
    if estimator == "unbiased" and (n < 2 or m < 2):
        raise ValueError(f"the unbiased estimator needs at least 2 points in each sample, "
                         f"got n={n}, m={m}")
    if estimator == "linear":
        if n != m:
            raise ValueError(f"the linear estimator needs samples of equal size (Gretton et "
                             f"al. 2012, Lemma 14), got n={n}, m={m}; subsample the larger")
        if n < 2:
            raise ValueError("the linear estimator needs at least 2 points per sample")


def _mmd(X: ArrayLike, Y: ArrayLike, kernel: Any, estimator: str, grad: bool,
         working_memory: float | None, executor: Any = None) -> tuple[float, Array | None]:
    check_estimator(estimator)
    if Y is None:
        raise ValueError("Y (the data sample) is required")
    working_memory = resolve_working_memory(working_memory)
    x_shape = tuple(as_array(X).shape)
    xp, Xw, Yw, ops = bind_kernel(kernel, X, Y)
    assert Yw is not None  # Y was given
    n, m = Xw.shape[0], Yw.shape[0]
    check_sizes(estimator, n, m)
    if estimator == "linear":
        value, dX = _linear(Xw, Yw, ops, grad, xp)
    else:
        wxx, wxy, wyy = dense_weights(estimator, n, m, xp)
        value, dX = weighted_form(Xw, Yw, ops, wxx, wxy, wyy, grad, working_memory, xp,
                                  executor)
    if dX is not None and x_shape:
        dX = ops.to_input_layout(dX, x_shape, xp)
    return float(value), dX


def mmd2(X: ArrayLike, Y: ArrayLike, kernel: Any, estimator: EstimatorName = "biased", *,
         working_memory: float | None = None, executor: Any = None) -> float:
    """Estimate of the squared maximum mean discrepancy between two samples.

    Parameters
    ----------
    X : array_like, shape (n, ...)
        First sample (the generated one, for a GMMN). Points as the kernel takes them:
        ``(n, d)`` (or ``(n, ...)`` flattened per row) for :class:`~ssimref.kernels.RBFMixture`,
        image stacks ``(n, H, W[, C])`` for the SSIM kernels.
    Y : array_like, shape (m, ...)
        Second sample (the data).
    kernel : ssimref.kernels.Kernel or an object with the same protocol
    estimator : {"biased", "unbiased", "linear"}, default "biased"
        See the module docstring. "biased" is ``>= 0`` for a positive-definite kernel (and
        for :class:`~ssimref.kernels.SSIMDistanceKernel`); "unbiased" may be negative;
        "linear" needs ``n == m`` and uses ``floor(n/2)`` quadruples.
    working_memory : float, optional
        MiB for the tiles (scikit-learn's ``working_memory`` when None); see the module
        docstring for the bound.
    executor : None, "serial", "dask", dask.distributed.Client or executor, optional
        Who runs the tiles of the dense estimators (:func:`ssimref.executor.get_executor`):
        this process by default; with Dask each tile is a task on a worker (the samples
        and the kernel are sent once to every worker) and the tiles' sums come back in
        the plan's order, so the value is the serial one bit for bit. The linear
        estimator (O(n)) always runs here.

    Returns
    -------
    float
        The estimate of ``MMD^2`` (not its square root; see :func:`mmd2_and_grad` with
        ``sqrt=True`` for the GMMN loss ``MMD``).

    Raises
    ------
    ValueError
        For an unknown ``estimator``, ``Y`` None, sample sizes the estimator cannot use,
        a non-positive ``working_memory``, and the kernel's errors for invalid points.
    TypeError
        For a ``kernel`` without the protocol's methods.

    See Also
    --------
    mmd2_and_grad : with the gradient.
    ssimref.mmd.mmd_test : with a permutation p-value.
    ssimref.mmd.cmmd2 : the conditional form.

    References
    ----------
    Gretton et al., JMLR 13, 2012: Lemma 6 (the unbiased U-statistic; the biased
    V-statistic keeps the diagonal terms), Lemma 14 (linear).

    Examples
    --------
    >>> import numpy as np
    >>> from ssimref.mmd import mmd2
    >>> from ssimref.kernels import RBFMixture
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(50, 2)), rng.normal(size=(60, 2)) + 3.0
    >>> mmd2(X, Y, RBFMixture((1.0,))) > 0.5
    True
    """
    return _mmd(X, Y, kernel, estimator, False, working_memory, executor)[0]


def mmd2_and_grad(X: ArrayLike, Y: ArrayLike, kernel: Any,
                  estimator: EstimatorName = "biased", *, sqrt: bool = False,
                  working_memory: float | None = None,
                  executor: Any = None) -> tuple[float, Array]:
    """``MMD^2`` (or ``MMD``) and its gradient with respect to the first sample.

    Parameters
    ----------
    X, Y, kernel, estimator, working_memory, executor
        As for :func:`mmd2` (with Dask, the gradient rows of each tile come back too). Only ``X`` (the generated sample) is differentiated.
    sqrt : bool, default False
        Return ``sqrt(max(L, 0))`` (Li et al.'s GMMN loss with the biased estimator) and its
        gradient ``dL / (2 sqrt(L))``; where ``L <= 0`` (possible for the unbiased
        estimator) the value is 0 and the gradient is defined as 0: finite, no NaN.

    Returns
    -------
    value : float
    dX : Array, shaped like X, float64, in X's array library
        Exact (hand-derived, no autograd), computed tile by tile with the memory bound of
        the module docstring.

    Raises
    ------
    ValueError, TypeError
        As for :func:`mmd2`.

    See Also
    --------
    mmd2 : the value alone.
    ssimref.mmd.cmmd2_and_grad : the conditional form.

    References
    ----------
    Li, Swersky, Zemel, ICML 2015 (the GMMN loss ``sqrt(MMD_b^2)``).
    """
    value, dX = _mmd(X, Y, kernel, estimator, True, working_memory, executor)
    assert dX is not None  # grad=True
    return sqrt_loss(value, dX) if sqrt else (value, dX)


def sqrt_loss(value: float, grad: Array) -> tuple[float, Array]:
    """The loss ``sqrt(max(L, 0))`` and its gradient from ``L`` and ``dL``.

    Parameters
    ----------
    value : float
        ``L``, an estimate of ``MMD^2`` (which can be 0 or, unbiased, negative).
    grad : Array
        ``dL``.

    Returns
    -------
    root : float
        ``sqrt(max(L, 0))``.
    grad : Array
        ``dL / (2 sqrt(L))``, and 0 where ``L <= 0`` (the root has no finite derivative
        there and the loss is at its floor).
    """
    if value > 0:
        root = math.sqrt(value)
        return root, grad * (0.5 / root)
    return 0.0, grad * 0.0
