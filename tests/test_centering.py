"""Double centring and out-of-sample centring (ssimref.kernels.centering)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from ssimref import distance_matrix
from ssimref.kernels import center_out_of_sample, double_center, ssim_kernel
from ssimref.kernels.centering import check_power

from .strategies import config_and_stack, KINDS


def euclidean(Z, W=None):
    W = Z if W is None else W
    return np.sqrt(((Z[:, None, :] - W[None, :, :]) ** 2).sum(-1))


def bengio_out_of_sample(D_test, D_train, power):
    """Bengio et al. 2004, Eq. (10), written loop by loop:
    K(x, x_i) = a(x, x_i) - 1/n sum_j a(x, x_j) - 1/n sum_k a(x_k, x_i)
                + 1/n^2 sum_jk a(x_j, x_k),  a = -1/2 d^p."""
    m, n = D_test.shape
    a_train = [[-0.5 * D_train[k, i] ** power for i in range(n)] for k in range(n)]
    total = sum(sum(row) for row in a_train) / n**2
    column_mean = [sum(a_train[k][i] for k in range(n)) / n for i in range(n)]
    out = np.empty((m, n))
    for t in range(m):
        a_row = [-0.5 * D_test[t, i] ** power for i in range(n)]
        row_mean = sum(a_row) / n
        for i in range(n):
            out[t, i] = a_row[i] - row_mean - column_mean[i] + total
    return out


@pytest.mark.parametrize("power", [1, 2, 0.5])
def test_double_center_identities(rng, power):
    Z = rng.normal(size=(9, 4))
    D = euclidean(Z)
    K = double_center(D, power=power)
    n = len(Z)
    H = np.eye(n) - np.ones((n, n)) / n
    np.testing.assert_allclose(K, -0.5 * H @ (D ** power) @ H, rtol=0, atol=1e-13)
    assert (K == K.T).all()
    scale = np.abs(K).max()
    assert np.abs(K.sum(axis=0)).max() <= 1e-13 * n * scale
    assert np.abs(K.sum(axis=1)).max() <= 1e-13 * n * scale


def test_power_2_recovers_the_gram_matrix_of_centred_points(rng):
    Z = rng.normal(size=(12, 3)) * np.array([1.0, 3.0, 0.2]) + 5.0
    K = double_center(euclidean(Z), power=2)
    Zc = Z - Z.mean(axis=0)
    np.testing.assert_allclose(K, Zc @ Zc.T, rtol=0, atol=1e-12)
    # rank 3: the points live in R^3
    eig = np.linalg.eigvalsh(K)
    assert np.sum(eig > 1e-9 * eig.max()) == 3


def test_double_center_is_idempotent_on_kernels(rng):
    """Centring an already centred matrix changes nothing (H is a projection)."""
    K = double_center(euclidean(rng.normal(size=(8, 2))))
    n = len(K)
    H = np.eye(n) - np.ones((n, n)) / n
    np.testing.assert_allclose(H @ K @ H, K, atol=1e-13)


@pytest.mark.parametrize("power", [1, 2])
def test_out_of_sample_matches_bengio_formula(rng, power):
    Z = rng.normal(size=(10, 3))
    T = rng.normal(size=(4, 3)) + 0.5
    K_test = center_out_of_sample(euclidean(T, Z), euclidean(Z), power=power)
    np.testing.assert_allclose(K_test, bengio_out_of_sample(euclidean(T, Z), euclidean(Z),
                                                            power), rtol=0, atol=1e-13)


def test_out_of_sample_on_training_points_is_the_training_kernel(rng):
    Z = rng.normal(size=(7, 3))
    D = euclidean(Z)
    np.testing.assert_allclose(center_out_of_sample(D, D), double_center(D), atol=1e-13)


def test_out_of_sample_embedding_equals_mds_for_training_points(rng):
    """With p = 2 and Euclidean data, the out-of-sample kernel of a new point is its inner
    product with the training points after subtracting the training mean, as in classical
    MDS's projection of new points (Gower 1968)."""
    Z = rng.normal(size=(15, 3))
    T = rng.normal(size=(5, 3))
    mean = Z.mean(axis=0)
    expected = (T - mean) @ (Z - mean).T
    np.testing.assert_allclose(center_out_of_sample(euclidean(T, Z), euclidean(Z), power=2),
                               expected, atol=1e-12)


@given(config_and_stack(n_min=3, n_max=6), st.sampled_from(KINDS),
       st.sampled_from([1, 2]))
def test_ssim_kernel_out_of_sample_matches_concatenated_formula(case, kind, power):
    """ssim_kernel(X_test, X_train) equals the formula applied to the distance matrix of
    the concatenated set, computed independently with the pairwise loop."""
    config, stack = case
    train, test = stack[:-2], stack[-2:]
    full = distance_matrix(np.concatenate([train, test]), kind=kind, config=config)
    n = len(train)
    expected = bengio_out_of_sample(full[n:, :n], full[:n, :n], power)
    got = ssim_kernel(test, train, kind=kind, power=power, config=config)
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * scale)


def test_ssim_kernel_uses_squared_distances_without_a_root_for_power_2(rng):
    X = rng.integers(0, 256, size=(6, 10, 10), dtype=np.uint8)
    D2 = distance_matrix(X, kind="eq2", squared=True, window="uniform", size=3)
    n = len(X)
    H = np.eye(n) - np.ones((n, n)) / n
    K = ssim_kernel(X, power=2, window="uniform", size=3)
    np.testing.assert_allclose(K, -0.5 * H @ D2 @ H, atol=1e-13)


def test_double_center_on_every_array_namespace(xp):
    Z = np.random.default_rng(3).normal(size=(6, 2))
    D = xp.asarray(euclidean(Z))
    K = double_center(D)
    from ssimref.backend import to_numpy
    np.testing.assert_allclose(to_numpy(K), double_center(euclidean(Z)), atol=1e-14)


@pytest.mark.parametrize("D, error, match", [
    (np.ones((2, 3)), ValueError, "square"),
    (np.ones(3), ValueError, "2-D"),
    (np.array([[0.0, np.nan], [np.nan, 0.0]]), ValueError, "NaN"),
    (np.array([[0.0, -1.0], [-1.0, 0.0]]), ValueError, "negative"),
    (np.array([[0.0, 1.0], [2.0, 0.0]]), ValueError, "symmetric"),
    (np.array([[0, 1j], [1j, 0]]), TypeError, "real"),
    (np.zeros((0, 0)), ValueError, "empty"),
])
def test_double_center_rejects_bad_distances(D, error, match):
    with pytest.raises(error, match=match):
        double_center(D)


def test_double_center_symmetrises_round_off():
    D = np.array([[0.0, 1.0], [1.0 + 1e-15, 0.0]])
    K = double_center(D)
    assert (K == K.T).all()


@pytest.mark.parametrize("power", [0, -1, 2.5, float("nan"), True])
def test_power_out_of_range(power):
    with pytest.raises(ValueError, match="power"):
        check_power(power)


def test_power_not_a_number():
    with pytest.raises(TypeError, match="power"):
        check_power("one")


def test_out_of_sample_rejects_mismatched_columns(rng):
    D = euclidean(rng.normal(size=(4, 2)))
    with pytest.raises(ValueError, match="one column per training point"):
        center_out_of_sample(np.ones((2, 3)), D)
