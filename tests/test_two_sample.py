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
    assert "(1 + #{T_b >= T}) / (B + 1)" in first.convention
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
    (dict(estimator="linear"), "estimator"),
    (dict(batch=0), "batch"),
])
def test_bad_input(kwargs, match, rng):
    with pytest.raises(ValueError, match=match):
        mmd_test(rng.normal(size=(4, 2)), rng.normal(size=(4, 2)), RBF, **kwargs)
