"""Mean-SSIM Gram matrix, Gaussian of the SSIM distance, median heuristic."""

import math

import numpy as np
import pytest

from ssimref import SSIMConfig, distance_matrix
from ssimref.kernels import mean_ssim_kernel, median_heuristic, ssim_rbf_kernel
from ssimref.verification import oracle

CONFIGS = [
    SSIMConfig(window="uniform", size=3, data_range=1.0),
    SSIMConfig(window="gaussian", size=5, sigma=1.2, stride=2, data_range=1.0,
               covariance="population"),
]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("channels", [None, 2])
def test_mean_ssim_kernel_equals_the_oracle_mean_ssim(rng, config, channels):
    shape = (4, 9, 8) if channels is None else (4, 9, 8, channels)
    X = rng.uniform(0, 1, size=shape)
    X[1] = 0.5 * X[0] + 0.3          # a related pair, SSIM well above 0
    Y = rng.uniform(0, 1, size=(2, *shape[1:]))
    S = mean_ssim_kernel(X, config=config)
    for i in range(len(X)):
        for j in range(len(X)):
            assert S[i, j] == pytest.approx(oracle.ssim(X[i], X[j], config), abs=1e-12)
    assert (S == S.T).all() and (np.diag(S) == 1.0).all()
    S_xy = mean_ssim_kernel(X, Y, config=config)
    assert S_xy.shape == (4, 2)
    assert S_xy[2, 1] == pytest.approx(oracle.ssim(X[2], Y[1], config), abs=1e-12)


def test_mean_ssim_kernel_on_integer_images(rng):
    X = rng.integers(0, 256, size=(3, 10, 10), dtype=np.uint8)
    config = SSIMConfig(window="uniform", size=5, data_range=255.0)
    S = mean_ssim_kernel(X, window="uniform", size=5)
    assert S[0, 2] == pytest.approx(oracle.ssim(X[0], X[2], config), abs=1e-12)


def test_rbf_kernel_closed_form():
    D = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    K = ssim_rbf_kernel(D, gamma=0.25)
    np.testing.assert_allclose(K, np.exp(-0.25 * D ** 2), rtol=1e-15)
    assert (np.diag(K) == 1.0).all()


def test_rbf_kernel_default_bandwidth_is_the_median_heuristic(rng):
    D = distance_matrix(rng.uniform(0, 1, size=(7, 6, 6)), data_range=1.0, window="uniform",
                        size=3)
    sigma = median_heuristic(D)
    K = ssim_rbf_kernel(D)
    # a pair at distance sigma has kernel value exp(-1/2) under gamma = 1 / (2 sigma^2)
    np.testing.assert_allclose(K, np.exp(-D ** 2 / (2 * sigma ** 2)), rtol=1e-14)
    iu = np.triu_indices(7, 1)
    assert np.sum(K[iu] > math.exp(-0.5)) == np.sum(D[iu] < sigma)


def test_median_heuristic_conventions():
    D = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 4.0], [2.0, 4.0, 0.0]])
    assert median_heuristic(D) == 2.0                     # median of {1, 2, 4}; no zeros
    D4 = np.array([[0, 1, 2, 3], [1, 0, 5, 6], [2, 5, 0, 7], [3, 6, 7, 0]], dtype=float)
    assert median_heuristic(D4) == 4.0                    # {1, 2, 3, 5, 6, 7}: (3 + 5) / 2
    assert median_heuristic(np.array([[1.0, 3.0, 8.0]])) == 3.0   # rectangular: all entries


@pytest.mark.parametrize("call, error, match", [
    (lambda: median_heuristic(np.zeros((3, 3))), ValueError, "median pairwise distance is 0"),
    (lambda: median_heuristic(np.zeros((1, 1))), ValueError, "at least 2"),
    (lambda: ssim_rbf_kernel(np.ones((2, 2)) - np.eye(2), gamma=0), ValueError, "gamma"),
    (lambda: ssim_rbf_kernel(np.ones((2, 2)) - np.eye(2), gamma="a"), TypeError, "gamma"),
    (lambda: ssim_rbf_kernel(-np.ones((2, 2)), gamma=1), ValueError, "negative"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
