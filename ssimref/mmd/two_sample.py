"""Kernel two-sample test: MMD^2 with a permutation p-value, all permutations from one
pooled kernel matrix.

With the pooled sample ``Z = [X; Y]`` (``N = n + m`` points) and ``K`` its kernel matrix,
a relabelling is a column ``a`` of 0/1 indicators (``n`` ones: "in X") and the statistic is

    T(a) = cxx a^T K' a + cyy b^T K' b - 2 cxy a^T K' b,     b = 1 - a

(biased: ``K' = K``, ``cxx = 1/n^2``, ``cyy = 1/m^2``, ``cxy = 1/(n m)``, which is
``s^T K s`` with the signed weights ``s = a/n - b/m``; unbiased: ``K'`` is ``K`` with its
diagonal set to 0, ``cxx = 1/(n(n-1))``, ``cyy = 1/(m(m-1))``). A batch of relabellings
``A`` (N x B) costs one product ``P = K' A``: with ``r = 1^T P`` and ``t = 1^T K' 1``,
``a^T K' a = sum(P o A, axis=0)``, ``a^T K' b = r - a^T K' a`` and
``b^T K' b = t - 2 r + a^T K' a``.

p-value: ``p = (1 + #{b : T_b >= T}) / (B + 1)`` over ``B`` uniformly random
relabellings, which is exactly valid (never below its level under exchangeability).

References
----------
Gretton, Borgwardt, Rasch, Schoelkopf, Smola, "A kernel two-sample test", JMLR 13, 2012.
Phipson, Smyth, "Permutation p-values should never be zero", Stat. Appl. Genet. Mol.
Biol. 9(1), 2010.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..backend import Array, ArrayLike, Namespace
from ..kernels.protocol import bind_kernel
from ..tiling import resolve_working_memory, rows_per_batch
from .estimators import check_estimator, check_sizes

__all__ = ["mmd_test", "MMDTestResult", "statistics"]


@dataclass(frozen=True)
class MMDTestResult:
    """Outcome of :func:`mmd_test`.

    Attributes
    ----------
    statistic : float
        The MMD^2 estimate on the observed labelling (equal to
        ``ssimref.mmd.mmd2(X, Y, kernel, estimator)``).
    p_value : float
        ``(1 + #{b : T_b >= statistic}) / (permutations + 1)``.
    permutations : int
    estimator : str
    seed : int or None
    convention : str
        The statistic, p-value rule and kernel in words.

    See Also
    --------
    mmd_test
    """

    statistic: float
    p_value: float
    permutations: int
    estimator: str
    seed: int | None
    convention: str


def statistics(Kp: Array, A: Array, r_total: Array, n: int, m: int, estimator: str,
               xp: Namespace) -> Array:
    """The statistic ``T`` for each column of an indicator matrix (module docstring).

    Parameters
    ----------
    Kp : Array, shape (N, N)
        ``K'``: the pooled kernel matrix, with a zero diagonal for "unbiased".
    A : Array, shape (N, B)
        0/1 columns, ``n`` ones each ("in X").
    r_total : Array, 0-d
        ``1^T K' 1``.
    n, m : int
        Sample sizes, ``n + m = N``.
    estimator : {"biased", "unbiased"}
    xp : Namespace

    Returns
    -------
    Array, shape (B,)
    """
    P = Kp @ A
    s_xx = xp.sum(P * A, axis=0)
    r = xp.sum(P, axis=0)
    s_xy = r - s_xx
    s_yy = r_total - 2.0 * r + s_xx
    if estimator == "biased":
        cxx, cyy = 1.0 / (n * n), 1.0 / (m * m)
    else:
        cxx, cyy = 1.0 / (n * (n - 1)), 1.0 / (m * (m - 1))
    return cxx * s_xx + cyy * s_yy - (2.0 / (n * m)) * s_xy


def mmd_test(X: ArrayLike, Y: ArrayLike, kernel: Any, permutations: int = 1000,
             seed: int | None = None, *,
             estimator: Literal["unbiased", "biased"] = "unbiased",
             batch: int | None = None, working_memory: float | None = None) -> MMDTestResult:
    """Permutation two-sample test with the MMD^2 statistic.

    Parameters
    ----------
    X : array_like, shape (n, ...)
    Y : array_like, shape (m, ...)
        The two samples, as the kernel takes them (see :func:`ssimref.mmd.mmd2`).
    kernel : ssimref.kernels.Kernel or an object with the same protocol
    permutations : int >= 1, default 1000
        Number ``B`` of random relabellings of the pooled sample.
    seed : int, optional
        Seed of the relabellings (NumPy ``default_rng``); None draws fresh entropy.
    estimator : {"unbiased", "biased"}, default "unbiased"
        Statistic (for ``n = m`` both give the same p-value).
    batch : int, optional
        Relabellings per matrix product; by default as many as fit ``working_memory``.
    working_memory : float, optional
        MiB for a batch (scikit-learn's setting when None). The pooled kernel matrix,
        ``8 (n + m)^2`` bytes, is held once on top of it.

    Returns
    -------
    MMDTestResult

    Raises
    ------
    ValueError
        For an estimator other than "unbiased" or "biased", ``Y`` None, ``permutations``
        or ``batch`` that is not an integer >= 1, sample sizes the estimator cannot use,
        a non-positive ``working_memory``, and the kernel's errors for invalid points.
    TypeError
        For a ``kernel`` without the protocol's methods.

    See Also
    --------
    ssimref.mmd.mmd2 : the statistic alone.
    MMDTestResult : the fields.

    References
    ----------
    Gretton et al., JMLR 13, 2012 (the statistic); Phipson, Smyth, Stat. Appl. Genet.
    Mol. Biol. 9(1), 2010 (the ``(1 + #) / (B + 1)`` p-value).

    Examples
    --------
    >>> import numpy as np
    >>> from ssimref.mmd import mmd_test
    >>> from ssimref.kernels import RBFMixture
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + 1.5
    >>> result = mmd_test(X, Y, RBFMixture((1.0,)), permutations=99, seed=1)
    >>> result.p_value
    0.01
    """
    check_estimator(estimator, ("unbiased", "biased"))
    if isinstance(permutations, bool) or not isinstance(permutations, (int, np.integer)) \
            or permutations < 1:
        raise ValueError(f"permutations must be an integer >= 1, got {permutations!r}")
    permutations = int(permutations)
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, (int, np.integer))
                              or batch < 1):
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    working_memory = resolve_working_memory(working_memory)
    if Y is None:
        raise ValueError("Y (the second sample) is required")
    xp, Xw, Yw, ops = bind_kernel(kernel, X, Y)
    assert Yw is not None
    n, m = Xw.shape[0], Yw.shape[0]
    check_sizes(estimator, n, m)
    N = n + m
    K = ops.gram(xp.concat([Xw, Yw], axis=0), None)
    if estimator == "unbiased":
        eye = xp.arange(N)[:, None] == xp.arange(N)[None, :]
        K = xp.where(eye, xp.zeros_like(K), K)
    r_total = xp.sum(K)
    if batch is None:  # the indicator batch, its product with K and two temporaries
        batch = rows_per_batch(8 * 4 * N, working_memory, permutations)

    observed = np.zeros((N, 1))
    observed[:n] = 1.0
    statistic = float(statistics(K, xp.asarray(observed), r_total, n, m, estimator, xp)[0])
    rng = np.random.default_rng(seed)
    exceed = 0
    done = 0
    while done < permutations:
        b = min(batch, permutations - done)
        members = rng.permuted(np.tile(np.arange(N), (b, 1)), axis=1)[:, :n]
        A = np.zeros((N, b))
        A[members, np.arange(b)[:, None]] = 1.0
        T = statistics(K, xp.asarray(A), r_total, n, m, estimator, xp)
        exceed += int(xp.sum(xp.astype(T >= statistic, xp.int64)))
        done += b
    p_value = (1 + exceed) / (permutations + 1)
    describe = getattr(kernel, "describe", None)
    convention = (
        f"statistic: {estimator} MMD^2 (Gretton et al. 2012; 'MMD^2', not its square "
        f"root); p = (1 + #{{T_b >= T}}) / (B + 1) over B = {permutations} random "
        f"relabellings of the pooled sample (n = {n}, m = {m}), seed {seed}; kernel: "
        + (describe() if callable(describe) else repr(kernel)))
    return MMDTestResult(statistic, p_value, permutations, estimator, seed, convention)
