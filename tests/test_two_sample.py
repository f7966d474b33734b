"""Permutation two-sample test: the batched statistics against mmd2 on relabelled samples,
the p-value rule, calibration under the null, power under an alternative."""

import numpy as np
import pytest
from scipy import stats

from ssimref import SSIMConfig
from ssimref.gmmn import MMDTestResult, mmd2, mmd_test
from ssimref.mmd.two_sample import statistics
from ssimref.kernels import RBFMixture, SSIMDistanceKernel

RBF = RBFMixture((1.0,))


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_batched_statistics_equal_mmd2_of_relabelled_samples(estimator, rng):
    X, Y = rng.normal(size=(7, 2)), rng.normal(size=(5, 2)) + 0.5
    Z = np.vstack([X, Y])
    K = RBF.gram(Z)
    if estimator == "unbiased":
        np.fill_diagonal(K, 0.0)
    A = np.zeros((12, 20))
    for b in range(20):
        A[rng.permutation(12)[:7], b] = 1.0
    T = statistics(K, A, K.sum(), 7, 5, estimator, np)
    for b in range(20):
        a = A[:, b] == 1
        assert T[b] == pytest.approx(mmd2(Z[a], Z[~a], RBF, estimator), rel=1e-10, abs=1e-14)
    result = mmd_test(X, Y, RBF, permutations=10, seed=0, estimator=estimator)
    assert result.statistic == pytest.approx(mmd2(X, Y, RBF, estimator), rel=1e-12)


def test_p_value_rule_and_determinism(rng):
    X, Y = rng.normal(size=(10, 2)), rng.normal(size=(10, 2))
    B = 49
    first = mmd_test(X, Y, RBF, permutations=B, seed=7)
    assert isinstance(first, MMDTestResult)
    assert first.permutations == B and first.seed == 7 and first.estimator == "unbiased"
    count = round(first.p_value * (B + 1))
    assert first.p_value == pytest.approx(count / (B + 1)) and 1 <= count <= B + 1
    for batch in (1, 5, 1000):  # relabellings do not depend on the batch size
        assert mmd_test(X, Y, RBF, permutations=B, seed=7, batch=batch).p_value == \
            first.p_value
    assert "(1 + #{T_b >= T - gamma}) / (B + 1)" in first.convention
    assert "RBF mixture" in first.convention
    # n == m: biased and unbiased statistics order relabellings identically
    assert mmd_test(X, Y, RBF, permutations=B, seed=7, estimator="biased").p_value == \
        first.p_value
    # the smallest p-value a clear difference can get
    far = mmd_test(X, Y + 10.0, RBF, permutations=B, seed=7)
    assert far.p_value == 1 / (B + 1)


def test_null_p_values_are_uniform():
    p_values = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        X, Y = rng.normal(size=(15, 2)), rng.normal(size=(12, 2))
        p_values.append(mmd_test(X, Y, RBF, permutations=99, seed=seed + 1000).p_value)
    assert stats.kstest(p_values, "uniform").pvalue > 0.01
    assert 0.02 <= np.mean(np.array(p_values) <= 0.05) <= 0.09


def test_power_under_a_clear_alternative():
    rejections = 0
    trials = 40
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(100, 2))
        Y = rng.normal(size=(100, 2))
        Y[:, 0] = Y[:, 0] * 2.0  # same mean, different spread
        rejections += mmd_test(X, Y, RBF, permutations=199, seed=seed).p_value <= 0.05
    assert rejections / trials > 0.9


def test_ssim_distance_kernel_test(rng):
    config = SSIMConfig(window="uniform", size=3, data_range=1.0)
    kernel = SSIMDistanceKernel("eq2", 1, config)
    smooth = np.cumsum(rng.random((12, 8, 8)), axis=2) / 8
    noisy = rng.random((12, 8, 8))
    assert mmd_test(smooth[:6], smooth[6:], kernel, permutations=99, seed=0).p_value > 0.05
    result = mmd_test(smooth, noisy, kernel, permutations=99, seed=0)
    assert result.p_value == 0.01 and "SSIM distance kernel" in result.convention
    assert result.statistic == pytest.approx(mmd2(smooth, noisy, kernel, "unbiased"),
                                             rel=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(permutations=0), "permutations"),
    (dict(permutations=2.5), "permutations"),
    (dict(n_resamples=0), "n_resamples"),
    (dict(estimator="quadratic"), "estimator"),
    (dict(estimator="linear", permutations=10), "permutations do not apply to the linear"),
    (dict(batch=0), "batch"),
])
def test_bad_input(kwargs, match, rng):
    with pytest.raises(ValueError, match=match):
        mmd_test(rng.normal(size=(4, 2)), rng.normal(size=(4, 2)), RBF, **kwargs)


# ------------------------------------------------------- ties, exact p-values, names
from itertools import combinations  # noqa: E402

from ssimref.kernels import MeanSSIMKernel, SSIMRBFKernel  # noqa: E402
from ssimref.mmd.two_sample import DEFAULT_SEED  # noqa: E402

ISSUE_X, ISSUE_Y = [[0.8], [0.4], [0.5]], [[3.0], [3.8], [3.5]]


def _biased_mmd2_by_hand(Z, a):
    """The biased MMD^2 of the split a / not a of 1-D points, RBF variance 1, written
    out with NumPy alone."""
    x, y = Z[a], Z[~a]

    def k(u, v):
        return np.exp(-(u[:, None] - v[None, :]) ** 2 / 2.0)

    return k(x, x).mean() + k(y, y).mean() - 2.0 * k(x, y).mean()


@pytest.mark.parametrize("estimator", ["unbiased", "biased"])
def test_the_issue_example_is_exact_and_counts_the_swap(estimator):
    # 2 of the C(6, 3) = 20 splits reach the observed statistic: the observed split and
    # its swap, equal in exact arithmetic (MMD^2 is symmetric in its samples), 1 ulp
    # apart in floating point; so p = 2/20 = 0.10, not 1/20 (plus 1 over 21 random draws)
    Z = np.array([v for (v,) in ISSUE_X + ISSUE_Y])
    T = []
    for members in combinations(range(6), 3):
        a = np.zeros(6, bool)
        a[list(members)] = True
        T.append(_biased_mmd2_by_hand(Z, a))
    T = np.array(T)
    top = np.sort(T)[-2:]
    assert top[1] - top[0] <= 1e-15 * top[1] and np.sort(T)[-3] < 0.5 * top[0]
    result = mmd_test(ISSUE_X, ISSUE_Y, RBFMixture((1.0,)), estimator=estimator)
    assert result.pvalue == 0.1 and result.p_value == 0.1
    assert result.exact and result.n_resamples == 20 and result.permutations == 20
    assert "exact over all C(6, 3) = 20" in result.convention


KERNELS = {
    "rbf": lambda: RBFMixture((0.5, 2.0)),
    "ssim-distance-1": lambda: SSIMDistanceKernel("eq2", 1, window="uniform", size=3,
                                                  data_range=1.0),
    "ssim-distance-2": lambda: SSIMDistanceKernel("eq1", 2, window="uniform", size=3,
                                                  data_range=1.0),
    "ssim-rbf": lambda: SSIMRBFKernel(0.3, window="uniform", size=3, data_range=1.0),
    "mean-ssim": lambda: MeanSSIMKernel(window="uniform", size=3, data_range=1.0),
}


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_ties_for_every_kernel_and_estimator(kernel):
    # n = m = 3, all 20 splits enumerated: a split and its swap give the same statistic
    # in exact arithmetic, so the count of splits reaching the observed one is even; and
    # biased and unbiased statistics order splits identically (n = m), so their exact
    # p-values are equal
    rng = np.random.default_rng(11)
    for trial in range(4):
        X, Y = rng.random((2, 3, 6, 6))
        if kernel == "rbf":
            X, Y = X.reshape(3, -1), Y.reshape(3, -1)
        p = {}
        for estimator in ("unbiased", "biased"):
            result = mmd_test(X, Y, KERNELS[kernel](), estimator=estimator)
            assert result.exact and result.n_resamples == 20
            count = round(result.pvalue * 20)
            assert result.pvalue == count / 20 and count % 2 == 0 and count >= 2
            p[estimator] = result.pvalue
        assert p["unbiased"] == p["biased"]


@pytest.mark.parametrize("estimator", ["unbiased", "biased"])
def test_exact_p_values_equal_scipys_permutation_test(estimator):
    # a peer: scipy.stats.permutation_test enumerates all C(9, 4) = 126 splits too, with
    # the statistic written out from the samples
    from ssimref.mmd import mmd2
    rng = np.random.default_rng(12)
    for trial in range(3):
        X, Y = rng.normal(size=(4, 2)), rng.normal(size=(5, 2)) + 0.7 * trial

        def statistic(i, j):
            Z = np.vstack([X, Y])
            return mmd2(Z[i.astype(int)], Z[j.astype(int)], RBF, estimator)

        peer = stats.permutation_test((np.arange(4.0), np.arange(4.0, 9.0)), statistic,
                                      permutation_type="independent", vectorized=False,
                                      n_resamples=10 ** 6, alternative="greater")
        result = mmd_test(X, Y, RBF, estimator=estimator)
        assert result.exact and result.n_resamples == 126
        assert result.pvalue == peer.pvalue


def test_biased_and_unbiased_agree_for_equal_sizes_with_random_relabellings():
    # the docs' claim, tested exactly: same relabellings (same seed), same p-value
    rng = np.random.default_rng(13)
    for trial in range(6):
        X, Y = rng.normal(size=(9, 3)), rng.normal(size=(9, 3)) + 0.2 * trial
        for kernel in (RBF, RBFMixture((0.2, 1.0, 5.0))):
            p = {e: mmd_test(X, Y, kernel, n_resamples=99, rng=trial, estimator=e)
                 for e in ("unbiased", "biased")}
            assert not p["biased"].exact
            assert p["unbiased"].pvalue == p["biased"].pvalue


def test_scipy_names_with_ours_as_aliases(rng):
    X, Y = rng.normal(size=(8, 2)), rng.normal(size=(8, 2))
    ours = mmd_test(X, Y, RBF, permutations=30, seed=5)
    scipy_names = mmd_test(X, Y, RBF, n_resamples=30, rng=5)
    positional = mmd_test(X, Y, RBF, 30, 5)
    assert ours == scipy_names == positional
    assert ours.n_resamples == ours.permutations == 30 and ours.pvalue == ours.p_value
    with pytest.raises(TypeError, match="n_resamples or its alias permutations"):
        mmd_test(X, Y, RBF, n_resamples=30, permutations=30)
    with pytest.raises(TypeError, match="rng or its alias seed"):
        mmd_test(X, Y, RBF, rng=1, seed=1)
    with pytest.raises(TypeError, match="rng must be"):
        mmd_test(X, Y, RBF, rng=1.5)


def test_a_fixed_default_seed_is_recorded(rng):
    X, Y = rng.normal(size=(8, 2)), rng.normal(size=(8, 2))
    first, second = mmd_test(X, Y, RBF, 50), mmd_test(X, Y, RBF, 50)
    assert first == second and first.seed == DEFAULT_SEED == 0
    assert f"seed {DEFAULT_SEED}" in first.convention
    assert first == mmd_test(X, Y, RBF, 50, rng=0)
    fresh = mmd_test(X, Y, RBF, 50, rng=np.random.default_rng(1))
    assert fresh.seed is None and "a caller's Generator" in fresh.convention
