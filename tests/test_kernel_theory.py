"""The statements of docs/theory.md about SSIM kernels, checked on numbers.

Metric properties of D, its negative type and the quasi-convexity region are the core's
(tests/test_metric.py); this file checks what the kernels add: positive definiteness of
s1, s2 and SSIM, the MDS / mean-SSIM identity, the energy-distance identity, pooled
centring, characteristic (power 1) versus not (power 2), and why "universal" fails.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from ssimref import SSIMConfig, distance_matrix, ssim_components
from ssimref.kernels import double_center
from ssimref.verification import oracle

from .strategies import KINDS, configs, images

RTOL = 1e-9


def relative_min_eigenvalue(K):
    lam = np.linalg.eigvalsh(K)
    scale = np.abs(lam).max()
    return 0.0 if scale == 0 else lam.min() / scale


def centring(n):
    return np.eye(n) - np.ones((n, n)) / n


@st.composite
def single_windows(draw, n_min=2, n_max=8):
    """A config and n images exactly one window large (one window position)."""
    config = draw(configs())
    n = draw(st.integers(n_min, n_max))
    return config, draw(images((config.size, config.size), config.data_range, n=n))


@given(single_windows())
def test_s1_s2_and_ssim_are_positive_definite_kernels(case):
    """theory.md 'PD kernels': the Gram matrices of s1, s2 and s1 s2 over any set of
    windows are PSD with unit diagonal."""
    config, windows = case
    n = len(windows)
    s1 = np.empty((n, n))
    s2 = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            a, b = ssim_components(windows[i], windows[j], config)
            s1[i, j], s2[i, j] = float(a[0, 0]), float(b[0, 0])
    for gram in (s1, s2, s1 * s2):
        np.testing.assert_allclose(np.diag(gram), 1.0, atol=1e-15)
        assert relative_min_eigenvalue(gram) >= -RTOL


@pytest.mark.parametrize("config", [
    SSIMConfig(window="uniform", size=3, data_range=1.0),
    SSIMConfig(window="gaussian", size=3, sigma=0.8, stride=2, data_range=1.0,
               covariance="population"),
])
@pytest.mark.parametrize("channels", [None, 3])
def test_mds_of_uncentred_eq1_is_the_centred_mean_ssim_gram(rng, config, channels):
    """theory.md 'mean-SSIM Gram': -1/2 H (D∘D) H = 1/2 H S H, S_ij = sum over windows
    of SSIM(x_i, x_j), with S from the loop-based oracle."""
    shape = (5, 7, 6) if channels is None else (5, 7, 6, channels)
    X = rng.uniform(0, 1, size=shape)
    X[3] = np.clip(X[0] + 0.05 * rng.normal(size=shape[1:]), 0, 1)
    n = len(X)
    S = np.array([[oracle.ssim_map(X[i], X[j], config).sum() for j in range(n)]
                  for i in range(n)])
    D = distance_matrix(X, kind="eq1-uncentered", config=config)
    H = centring(n)
    np.testing.assert_allclose(double_center(D, power=2), 0.5 * H @ S @ H, atol=1e-12)


def test_squared_distance_is_half_a_squared_feature_distance(rng):
    """theory.md 'Hilbertian': per window, 1 - SSIM = 1/2 (k(x,x) + k(y,y) - 2 k(x,y))
    with k = SSIM (k(x,x) = 1), so D^2 = 1/2 sum_w ||phi_w(x) - phi_w(y)||^2; likewise
    2 - s1 - s2 with k = s1 and k = s2, and 1 - s2 with k = s2."""
    config = SSIMConfig(window="uniform", size=3, data_range=1.0)
    x, y = rng.uniform(0, 1, size=(2, 6, 6))
    s1, s2 = (np.asarray(v) for v in ssim_components(x, y, config))
    feature = {"eq1": 0.5 * (2 - 2 * s2), "eq2": 0.5 * (2 - 2 * s1) + 0.5 * (2 - 2 * s2),
               "eq1-uncentered": 0.5 * (2 - 2 * s1 * s2)}
    for kind, per_window in feature.items():
        D2 = distance_matrix(np.stack([x, y]), kind=kind, config=config, squared=True)
        assert D2[0, 1] == pytest.approx(per_window.sum(), rel=1e-12)


def pooled_mmd(D, n, power):
    """Biased MMD^2 with the pooled double-centred kernel: s^T K s, s = (1/n, ..., -1/m)."""
    K = double_center(D, power=power)
    m = len(D) - n
    s = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    return float(s @ K @ s)


def energy_distance(D, n, power):
    P = D ** power
    return (2 * P[:n, n:].mean() - P[:n, :n].mean() - P[n:, n:].mean())


@given(st.sampled_from(KINDS), st.sampled_from([1, 2]), st.integers(2, 5),
       st.integers(2, 5), st.integers(0, 2**32 - 1))
def test_pooled_mmd_is_half_the_energy_distance(kind, power, n, m, seed):
    """theory.md 'energy distance': with pooled centring, MMD^2 = s^T K s equals half the
    energy distance 2 E D(X,Y) - E D(X,X') - E D(Y,Y') (V-statistics)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, 6, 6))
    Y = np.clip(rng.uniform(0, 1, size=(m, 6, 6)) * 0.7 + 0.2, 0, 1)
    D = distance_matrix(np.concatenate([X, Y]), kind=kind, data_range=1.0,
                        window="uniform", size=3)
    expected = 0.5 * energy_distance(D, n, power)
    assert pooled_mmd(D, n, power) == pytest.approx(expected, rel=1e-10, abs=1e-13)
    assert expected > 0


def test_separate_centring_makes_the_mmd_vanish(rng):
    """theory.md 'pooled centring': centring K_XX, K_YY, K_XY separately gives blocks whose
    every row and column sums to 0, so mean(K_XX) + mean(K_YY) - 2 mean(K_XY) = 0 for any
    two samples; pooled centring does not."""
    X = rng.uniform(0, 1, size=(6, 7, 7))
    Y = np.clip(0.3 * rng.uniform(0, 1, size=(5, 7, 7)) + 0.6, 0, 1)  # very different
    conv = dict(kind="eq2", data_range=1.0, window="uniform", size=3)
    D = distance_matrix(np.concatenate([X, Y]), **conv)
    n, m = len(X), len(Y)
    K_xx = double_center(D[:n, :n])
    K_yy = double_center(D[n:, n:])
    K_xy = -0.5 * centring(n) @ D[:n, n:] @ centring(m)
    separate = K_xx.mean() + K_yy.mean() - 2 * K_xy.mean()
    assert abs(separate) < 1e-14
    assert pooled_mmd(D, n, power=1) > 0.1


@pytest.mark.parametrize("kind", KINDS)
def test_power_2_sees_only_per_window_marginals_power_1_does_not(rng, kind):
    """theory.md 'characteristic': with non-overlapping windows, X = {[a|a], [b|b]} and
    Y = {[a|b], [b|a]} have the same blocks at every position but are different sets. The
    power-2 kernel (a sum over windows) gives MMD = 0; the power-1 kernel separates them,
    MMD^2 = (2 - sqrt 2) d(a, b) / 2."""
    config = SSIMConfig(window="uniform", size=3, stride=3, data_range=1.0)
    a, b = rng.uniform(0, 1, size=(2, 3, 3))
    X = np.stack([np.hstack([a, a]), np.hstack([b, b])])
    Y = np.stack([np.hstack([a, b]), np.hstack([b, a])])
    D = distance_matrix(np.concatenate([X, Y]), kind=kind, config=config)
    d_ab = distance_matrix(np.stack([a, b]), kind=kind, config=config)[0, 1]
    assert d_ab > 0.1
    assert abs(pooled_mmd(D, 2, power=2)) < 1e-14
    assert pooled_mmd(D, 2, power=1) == pytest.approx((2 - np.sqrt(2)) * d_ab / 2,
                                                      rel=1e-12)


def test_distance_induced_kernel_vanishes_at_its_base_point_and_centres_to_the_ssim_kernel(
        rng):
    """theory.md 'universal': k_z0(z, z') = 1/2 [D(z, z0) + D(z', z0) - D(z, z')] is 0 at
    z = z0, so no function of its RKHS is nonzero there (it cannot approximate constants);
    double-centred over a sample it is -1/2 H D H whatever z0."""
    X = rng.uniform(0, 1, size=(7, 6, 6))
    D = distance_matrix(X, kind="eq2", data_range=1.0, window="uniform", size=3)
    H = centring(len(X))
    for z0 in (0, 4):
        k = 0.5 * (D[:, [z0]] + D[[z0], :] - D)
        assert (k[z0, :] == 0).all() and (k[:, z0] == 0).all()
        np.testing.assert_allclose(H @ k @ H, double_center(D), atol=1e-13)


def test_the_centred_gram_matrix_is_singular_on_distinct_images(rng):
    """theory.md 'universal': a universal kernel's Gram matrix on distinct points is
    strictly positive definite; -1/2 H D H always has the constant vector in its null
    space."""
    X = rng.uniform(0, 1, size=(8, 6, 6))
    K = double_center(distance_matrix(X, kind="eq2", data_range=1.0, window="uniform",
                                      size=3))
    assert np.abs(K @ np.ones(len(X))).max() < 1e-13 * np.abs(K).max() * len(X)
    lam = np.linalg.eigvalsh(K)
    assert abs(lam[0]) < 1e-12 * lam[-1] and lam[1] > 1e-6 * lam[-1]
