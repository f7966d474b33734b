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

p-value (the rules of SciPy's ``permutation_test``, "greater"):

- ties: a relabelling counts when ``T_b >= T - gamma``, ``gamma = 100 eps S``, where
  ``eps`` is float64's machine epsilon and ``S = sum_ij |W_ij| |K'_ij|`` the statistic's
  scale (the sum of the magnitudes of the terms it adds: the same formula with every
  coefficient and kernel value made positive). Relabellings equal in exact arithmetic
  (a labelling and its swap when ``n = m``, duplicate points) differ by a few ulps of
  ``S`` in floating point and must count alike. SciPy takes ``gamma = 100 eps |T|``;
  MMD^2 is a difference of kernel means, so ``|T|`` can be far below the rounding of its
  terms, and ``S`` is the scale that rounding is relative to;
- exact: when the distinct relabellings, ``C(N, n)``, are no more than the ``B`` asked
  for, all of them are enumerated (the observed one included) and
  ``p = #{T_b >= T - gamma} / C(N, n)``, exact;
- otherwise ``p = (1 + #{b : T_b >= T - gamma}) / (B + 1)`` over ``B`` uniformly random
  relabellings, which is exactly valid (never below its level under exchangeability).

The linear-time estimator has its own test, with no permutations and no pooled kernel
matrix (Gretton et al. 2012, Corollary 16 and Section 6): its ``p = floor(n/2)`` terms
``h_i`` are independent, so ``sqrt(p) (MMD_l^2 - MMD^2)`` is asymptotically normal with
variance ``var(h)``; with ``s`` the sample standard deviation of the ``h_i`` (``ddof=1``)
the statistic ``z = sqrt(p) MMD_l^2 / s`` is referred to the standard normal:
``p-value = 1 - Phi(z)`` (one-sided: large MMD^2 is evidence against ``P = Q``). When
every ``h_i`` is equal (``s = 0``) the p-value is 1 if ``MMD_l^2 <= 0`` and 0 otherwise.

References
----------
Gretton, Borgwardt, Rasch, Schoelkopf, Smola, "A kernel two-sample test", JMLR 13, 2012.
Phipson, Smyth, "Permutation p-values should never be zero", Stat. Appl. Genet. Mol.
Biol. 9(1), 2010.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..backend import Array, ArrayLike, Namespace
from ..kernels.protocol import bind_kernel
from ..tiling import resolve_working_memory, rows_per_batch
from .estimators import check_estimator, check_sizes

__all__ = ["mmd_test", "MMDTestResult", "statistics", "DEFAULT_SEED", "TIE_ULPS"]


#: The seed of the relabellings when none is given (recorded in every result).
DEFAULT_SEED = 0
#: Ties: relabellings within ``TIE_ULPS`` machine epsilons of the statistic's scale count.
TIE_ULPS = 100


@dataclass(frozen=True)
class MMDTestResult:
    """Outcome of :func:`mmd_test`, with SciPy's names (``statistic``, ``pvalue``,
    ``n_resamples``) and ours as aliases (``p_value``, ``permutations``, ``seed``).

    Attributes
    ----------
    statistic : float
        The MMD^2 estimate on the observed labelling (equal to
        ``ssimref.mmd.mmd2(X, Y, kernel, estimator)``).
    pvalue : float
        ``#{T_b >= T - gamma} / C(N, n)`` over every relabelling when ``exact``, else
        ``(1 + #{T_b >= T - gamma}) / (n_resamples + 1)`` (module docstring).
    n_resamples : int
        Relabellings evaluated: ``C(N, n)`` when ``exact``, else the number asked for.
    estimator : str
    seed : int or None
        The seed of the random relabellings (``DEFAULT_SEED`` unless given; None when a
        ``numpy.random.Generator`` was passed, or when ``exact``: no randomness).
    exact : bool
        Every distinct relabelling was enumerated.
    tie_tolerance : float
        ``gamma``: relabellings with ``T_b >= T - gamma`` counted.
    convention : str
        The statistic, p-value rule and kernel (with the data range actually used) in
        words.
    method : str
        "permutation" (random relabellings), "exact" (every relabelling) or
        "asymptotic normal" (the linear estimator's test; ``n_resamples`` is then 0).
    rule : str
        How the p-value was computed, in words (part of ``convention``).
    kernel : str
        The kernel with its conventions, the data range included as actually used (part
        of ``convention``).

    See Also
    --------
    mmd_test
    """

    statistic: float
    pvalue: float
    n_resamples: int
    estimator: str
    seed: int | None
    exact: bool
    tie_tolerance: float
    convention: str
    method: str = "permutation"
    rule: str = ""
    kernel: str = ""

    @property
    def p_value(self) -> float:
        """Alias of :attr:`pvalue`."""
        return self.pvalue

    @property
    def permutations(self) -> int:
        """Alias of :attr:`n_resamples`."""
        return self.n_resamples


def statistics(Kp: Array, A: Array, r_total: Array, n: int, m: int, estimator: str,
               xp: Namespace, *, magnitude: bool = False) -> Array:
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
    magnitude : bool, default False
        The scale ``S`` instead (``Kp`` then holds ``|K'|``): the cross term added, not
        subtracted.

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
    cross = (2.0 if magnitude else -2.0) / (n * m)
    return cxx * s_xx + cyy * s_yy + cross * s_xy


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _alias(scipy_value: Any, ours: Any, scipy_name: str, our_name: str, default: Any) -> Any:
    if scipy_value is not None and ours is not None:
        raise TypeError(f"pass {scipy_name} or its alias {our_name}, not both")
    if scipy_value is not None:
        return scipy_value
    return default if ours is None else ours


def _relabellings(N: int, n: int, count: int, batch: int, exact: bool,
                  rng: np.random.Generator) -> Iterator[npt.NDArray[np.float64]]:
    """Indicator matrices (N, b) of the relabellings, batch by batch: every combination
    in lexicographic order when ``exact``, else ``count`` uniform random ones."""
    if exact:
        combos = itertools.combinations(range(N), n)
        while True:
            chunk = list(itertools.islice(combos, batch))
            if not chunk:
                return
            A = np.zeros((N, len(chunk)))
            A[np.asarray(chunk).T, np.arange(len(chunk))] = 1.0
            yield A
    done = 0
    while done < count:
        b = min(batch, count - done)
        members = rng.permuted(np.tile(np.arange(N), (b, 1)), axis=1)[:, :n]
        A = np.zeros((N, b))
        A[members, np.arange(b)[:, None]] = 1.0
        done += b
        yield A


def mmd_test(X: ArrayLike, Y: ArrayLike, kernel: Any, n_resamples: int | None = None,
             rng: int | np.random.Generator | None = None, *,
             estimator: Literal["unbiased", "biased", "linear"] = "unbiased",
             batch: int | None = None, working_memory: float | None = None,
             permutations: int | None = None, seed: int | None = None) -> MMDTestResult:
    """Permutation two-sample test with the MMD^2 statistic.

    Parameters
    ----------
    X : array_like, shape (n, ...)
    Y : array_like, shape (m, ...)
        The two samples, as the kernel takes them (see :func:`ssimref.mmd.mmd2`).
    kernel : ssimref.kernels.Kernel or an object with the same protocol
    n_resamples : int >= 1, default 1000
        Number ``B`` of random relabellings of the pooled sample (SciPy's name;
        ``permutations`` is an alias). When ``C(n + m, n) <= B`` every distinct
        relabelling is enumerated instead and the p-value is exact.
    rng : int or numpy.random.Generator, default DEFAULT_SEED (0)
        Seed (or generator) of the relabellings (SciPy's name; ``seed`` is an alias). A
        fixed default makes results reproducible; the seed is recorded in the result.
        Pass ``numpy.random.default_rng()`` for fresh entropy.
    estimator : {"unbiased", "biased", "linear"}, default "unbiased"
        Statistic. For ``n = m`` "unbiased" and "biased" order the relabellings
        identically (each is an increasing affine function of the within-sample kernel
        sums), so they give the same p-value. "linear" (``n = m``) uses its asymptotic
        normal test instead of permutations (module docstring): ``n_resamples``, ``rng``
        and ``batch`` do not apply and are refused.
    batch : int, optional
        Relabellings per matrix product; by default as many as fit ``working_memory``.
    working_memory : float, optional
        MiB for a batch (scikit-learn's setting when None). The pooled kernel matrix,
        ``8 (n + m)^2`` bytes, is held once on top of it.
    permutations, seed
        Aliases of ``n_resamples`` and ``rng`` (give one name of each pair).

    Returns
    -------
    MMDTestResult

    Raises
    ------
    ValueError
        For an estimator other than "unbiased", "biased" or "linear", ``Y`` None,
        ``n_resamples``, ``rng`` or ``batch`` with "linear", ``n_resamples``
        or ``batch`` that is not an integer >= 1, sample sizes the estimator cannot use,
        a non-positive ``working_memory``, and the kernel's errors for invalid points.
    TypeError
        For a ``kernel`` without the protocol's methods, an argument given under both of
        its names, or an ``rng`` that is neither an integer nor a Generator.

    See Also
    --------
    ssimref.mmd.mmd2 : the statistic alone.
    MMDTestResult : the fields.

    Notes
    -----
    The tie and exact-test rules are those of SciPy's ``scipy.stats.permutation_test``
    but for the tie scale. Ties: ``T_b >= T - gamma`` with ``gamma = 100 eps S`` and ``S`` the sum of the
    magnitudes of the statistic's terms (module docstring; SciPy uses ``|T|``, too small
    for a difference of kernel means). Exact test when ``C(N, n) <= n_resamples``:
    ``p = #{T_b >= T - gamma} / C(N, n)``; otherwise ``(1 + #) / (B + 1)``.

    References
    ----------
    Gretton et al., JMLR 13, 2012 (the statistic); Phipson, Smyth, Stat. Appl. Genet.
    Mol. Biol. 9(1), 2010 (the ``(1 + #) / (B + 1)`` p-value).

    Examples
    --------
    >>> import numpy as np
    >>> from ssimref.mmd import mmd_test
    >>> from ssimref.kernels import RBFMixture
    >>> X, Y = [[0.8], [0.4], [0.5]], [[3.0], [3.8], [3.5]]
    >>> result = mmd_test(X, Y, RBFMixture((1.0,)))
    >>> result.pvalue, result.exact, result.n_resamples
    (0.1, True, 20)
    """
    check_estimator(estimator, ("unbiased", "biased", "linear"))
    if estimator == "linear":
        given = [name for name, value in [("n_resamples", n_resamples), ("rng", rng),
                                          ("batch", batch), ("permutations", permutations),
                                          ("seed", seed)] if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} do not apply to the linear estimator, "
                             "whose test is asymptotic normal (no permutations); leave "
                             "them out, or use estimator='unbiased' for a permutation test")
        return _linear_test(X, Y, kernel)
    B = _count(_alias(n_resamples, permutations, "n_resamples", "permutations", 1000),
               "permutations" if permutations is not None else "n_resamples")
    rng = _alias(rng, seed, "rng", "seed", DEFAULT_SEED)
    if isinstance(rng, np.random.Generator):
        generator, recorded = rng, None
    elif isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        generator, recorded = np.random.default_rng(int(rng)), int(rng)
    else:
        raise TypeError(f"rng must be an integer seed or a numpy.random.Generator, got "
                        f"{rng!r}")
    if batch is not None:
        batch = _count(batch, "batch")
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
    distinct = math.comb(N, n)
    exact = distinct <= B
    count = distinct if exact else B
    if batch is None:  # the indicator batch, its product with K and two temporaries
        batch = rows_per_batch(8 * 4 * N, working_memory, count)

    observed = np.zeros((N, 1))
    observed[:n] = 1.0
    statistic = float(statistics(K, xp.asarray(observed), r_total, n, m, estimator, xp)[0])
    magnitudes = xp.abs(K)
    scale = float(statistics(magnitudes, xp.asarray(observed), xp.sum(magnitudes), n, m,
                             estimator, xp, magnitude=True)[0])
    gamma = TIE_ULPS * float(np.finfo(np.float64).eps) * scale
    reach = 0
    for A in _relabellings(N, n, count, batch, exact, generator):
        T = statistics(K, xp.asarray(A), r_total, n, m, estimator, xp)
        reach += int(xp.sum(xp.astype(T >= statistic - gamma, xp.int64)))
    pvalue = reach / distinct if exact else (1 + reach) / (B + 1)
    described = _describe(ops.kernel)  # with the data range actually used
    if exact:
        rule = (f"p = #{{T_b >= T - gamma}} / C(N, n), exact over all C({N}, {n}) = "
                f"{distinct} relabellings of the pooled sample (n = {n}, m = {m})")
    else:
        rule = (f"p = (1 + #{{T_b >= T - gamma}}) / (B + 1) over B = {B} random "
                f"relabellings of the pooled sample (n = {n}, m = {m}), seed "
                + ("a caller's Generator" if recorded is None else str(recorded)))
    convention = (
        f"statistic: {estimator} MMD^2 (Gretton et al. 2012; 'MMD^2', not its square "
        f"root); {rule}; ties: gamma = {TIE_ULPS} eps S = {gamma:.3g}, S the sum of the "
        f"magnitudes of the statistic's terms; kernel: {described}")
    return MMDTestResult(statistic, pvalue, count, estimator, None if exact else recorded,
                         exact, gamma, convention, "exact" if exact else "permutation",
                         rule, described)


def _describe(kernel: Any) -> str:
    describe = getattr(kernel, "describe", None)
    return describe() if callable(describe) else repr(kernel)


def _linear_test(X: ArrayLike, Y: ArrayLike, kernel: Any) -> MMDTestResult:
    """The linear estimator's asymptotic normal test (module docstring)."""
    from scipy.special import ndtr

    if Y is None:
        raise ValueError("Y (the second sample) is required")
    xp, Xw, Yw, ops = bind_kernel(kernel, X, Y)
    assert Yw is not None
    n, m = Xw.shape[0], Yw.shape[0]
    check_sizes("linear", n, m)
    p = n // 2
    if p < 2:
        raise ValueError(f"the linear estimator's test needs at least 2 quadruples (n = m "
                         f">= 4) to estimate its variance, got n = m = {n}")
    top = 2 * p
    xe, xo, ye, yo = Xw[0:top:2, ...], Xw[1:top:2, ...], Yw[0:top:2, ...], Yw[1:top:2, ...]
    h = (ops.paired_value_and_vjp(xe, xo, None)[0] + ops.paired_value_and_vjp(ye, yo, None)[0]
         - ops.paired_value_and_vjp(xe, yo, None)[0]
         - ops.paired_value_and_vjp(xo, ye, None)[0])
    h = np.asarray(h, dtype=np.float64)
    statistic = float(np.mean(h))
    s = float(np.std(h, ddof=1))
    if s > 0:
        z = math.sqrt(p) * statistic / s
        pvalue = float(ndtr(-z))  # 1 - Phi(z), without cancellation for large z
        rule = (f"p = 1 - Phi(z), z = sqrt(p) MMD_l^2 / s = {z:.6g}, asymptotic normal test "
                f"of the linear estimator (Gretton et al. 2012, Corollary 16) over its p = "
                f"{p} independent terms h_i, s their standard deviation (ddof=1)")
    else:
        pvalue = 1.0 if statistic <= 0 else 0.0
        rule = f"all p = {p} terms h_i equal (s = 0): p = 1 when MMD_l^2 <= 0, else 0"
    described = _describe(ops.kernel)
    convention = (f"statistic: linear MMD^2 (Gretton et al. 2012, Lemma 14; 'MMD^2', not its "
                  f"square root; n = m = {n}); {rule}; kernel: {described}")
    return MMDTestResult(statistic, pvalue, 0, "linear", None, False, 0.0, convention,
                         "asymptotic normal", rule, described)
