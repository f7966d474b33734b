"""Differentiable kernel objects: values against direct formulas, every gradient against
central finite differences (float64), the protocol's conventions, bad input."""

import itertools

import numpy as np
import pytest
from scipy.spatial.distance import pdist

import ssimref
from ssimref import SSIMConfig
from ssimref.kernels import (MeanSSIMKernel, RBFMixture, SSIMDistanceKernel, SSIMRBFKernel)

from .finite_differences import assert_grad_close, numerical_gradient

CONFIG = SSIMConfig(window="uniform", size=3, data_range=1.0)
GAUSS = SSIMConfig(window="gaussian", size=3, sigma=1.0, stride=2, data_range=1.0,
                   covariance="population")


def rbf_direct(x, y, variances, weights):
    sq = float(np.sum((np.ravel(x) - np.ravel(y)) ** 2))
    return sum(w * np.exp(-sq / (2 * s)) for s, w in zip(variances, weights))


def images(rng, n, shape=(5, 6)):
    return rng.random((n,) + shape)


def ssim_kernels():
    return [SSIMDistanceKernel("eq2", 1, CONFIG), SSIMDistanceKernel("eq1", 2, CONFIG),
            SSIMDistanceKernel("eq1-uncentered", 1, GAUSS), SSIMRBFKernel(0.3, "eq2", CONFIG),
            SSIMRBFKernel(0.7, "eq1", GAUSS), MeanSSIMKernel(CONFIG), MeanSSIMKernel(GAUSS)]


# ------------------------------------------------------------------------- RBF values
def test_rbf_gram_against_direct_formula(rng):
    k = RBFMixture((0.5, 2.0, 7.0), weights=(1.0, 0.3, 2.0))
    X, Y = rng.normal(size=(5, 3)) + 10.0, rng.normal(size=(4, 3)) + 10.0
    K = k.gram(X, Y)
    direct = np.array([[rbf_direct(x, y, k.variances, k.weights) for y in Y] for x in X])
    np.testing.assert_allclose(K, direct, rtol=1e-13)
    Kxx = k.gram(X)
    np.testing.assert_array_equal(np.diag(Kxx), np.full(5, 3.3))
    direct = np.array([[rbf_direct(a, b, k.variances, k.weights) for b in X] for a in X])
    np.testing.assert_allclose(Kxx, direct, rtol=1e-13)
    np.testing.assert_allclose(k.paired(X[:4], Y), np.diag(K[:4]), rtol=1e-13)


def test_rbf_flattens_rows_in_c_order(rng):
    k = RBFMixture((3.0,))
    X, Y = rng.normal(size=(4, 2, 3)), rng.normal(size=(3, 2, 3))
    np.testing.assert_array_equal(k.gram(X, Y), k.gram(X.reshape(4, 6), Y.reshape(3, 6)))
    G = rng.normal(size=(4, 3))
    dX, dY = k.gram_vjp(X, Y, G, wrt_y=True)
    assert dX.shape == X.shape and dY.shape == Y.shape
    flat = k.gram_vjp(X.reshape(4, 6), Y.reshape(3, 6), G, wrt_y=True)
    np.testing.assert_array_equal(dX.reshape(4, 6), flat[0])
    # (n,) is n points of dimension 1
    x = np.array([0.0, 1.0, 3.0])
    np.testing.assert_allclose(k.gram(x), np.exp(-np.subtract.outer(x, x) ** 2 / 6.0))


def test_rbf_from_median_conventions(rng):
    X, Y = rng.normal(size=(30, 4)), rng.normal(size=(20, 4)) + 1.0
    med = np.median(pdist(np.vstack([X, Y])))
    k = RBFMixture.from_median(X, Y)
    assert k.variances == pytest.approx((med**2,), rel=1e-12)
    assert k.median == pytest.approx(med, rel=1e-12)
    # alibi-detect's sigma^2 = median(||.||^2) / 2 equals scale 0.5 here (50 points give
    # an odd number of pairs, so the median of squares is the square of the median)
    alibi_sigma2 = 0.5 * np.median(pdist(np.vstack([X, Y]), "sqeuclidean"))
    alibi = RBFMixture.from_median(X, Y, scales=(0.5,))
    assert alibi.variances[0] == pytest.approx(alibi_sigma2, rel=1e-12)
    mix = RBFMixture.from_median(X, scales=(0.5, 1.0, 2.0))
    med_x = np.median(pdist(X))
    assert mix.variances == pytest.approx((0.5 * med_x**2, med_x**2, 2 * med_x**2))
    assert "median" in mix.describe()
    sub = RBFMixture.from_median(np.vstack([X, Y]), max_points=10, seed=3)
    assert sub.variances[0] > 0
    with pytest.raises(ValueError, match="median distance"):
        RBFMixture.from_median(np.ones((5, 2)))


# ------------------------------------------------------------------------- SSIM values
@pytest.mark.parametrize("kind", ["eq1", "eq1-uncentered", "eq2"])
@pytest.mark.parametrize("power", [1, 2])
def test_ssim_distance_kernel_is_minus_half_distance_power(kind, power, rng):
    X, Y = images(rng, 4), images(rng, 3)
    k = SSIMDistanceKernel(kind, power, CONFIG)
    D = np.array([[ssimref.distance(x, y, kind, CONFIG) for y in Y] for x in X])
    np.testing.assert_allclose(k.gram(X, Y), -0.5 * D**power, rtol=1e-12)
    Dxx = ssimref.distance_matrix(X, kind=kind, config=CONFIG)
    np.testing.assert_allclose(k.gram(X), -0.5 * Dxx**power, rtol=1e-14)
    np.testing.assert_allclose(k.paired(X[:3], Y), -0.5 * np.diag(D) ** power, rtol=1e-12)


def test_ssim_rbf_kernel_values(rng):
    X, Y = images(rng, 4), images(rng, 3)
    k = SSIMRBFKernel(0.4, "eq2", CONFIG)
    D2 = ssimref.distance_matrix(X, Y, "eq2", CONFIG, squared=True)
    np.testing.assert_allclose(k.gram(X, Y), np.exp(-0.4 * D2), rtol=1e-13)
    assert np.all(np.diag(k.gram(X)) == 1.0)


def test_ssim_rbf_from_median(rng):
    X, Y = images(rng, 6), images(rng, 5)
    D = ssimref.distance_matrix(np.vstack([X, Y]), kind="eq1", config=CONFIG)
    med = np.median(D[np.triu_indices(11, 1)])
    k = SSIMRBFKernel.from_median(X, Y, "eq1", CONFIG, scale=2.0)
    assert k.gamma == pytest.approx(1 / (4 * med**2), rel=1e-12)
    assert "median" in k.describe()


def test_mean_ssim_kernel_is_mean_ssim(rng):
    X, Y = images(rng, 3, (6, 7, 2)), images(rng, 2, (6, 7, 2))
    for config in (CONFIG, GAUSS):
        k = MeanSSIMKernel(config)
        direct = np.array([[ssimref.ssim(x, y, config) for y in Y] for x in X])
        np.testing.assert_allclose(k.gram(X, Y), direct, rtol=1e-12)
        np.testing.assert_allclose(np.diag(k.gram(X)), 1.0, rtol=0, atol=0)


def test_integer_images_infer_data_range(rng):
    X = rng.integers(0, 256, (3, 7, 7), dtype=np.uint8)
    k = SSIMDistanceKernel("eq2", window="uniform", size=3)
    D = ssimref.distance_matrix(X, kind="eq2", window="uniform", size=3)
    np.testing.assert_allclose(k.gram(X), -0.5 * D)
    with pytest.raises(ValueError, match="data_range"):
        k.gram(X.astype(float))


# ------------------------------------------------------------------------- gradients
def all_kernels():
    return [RBFMixture((0.7, 3.0), (1.0, 0.5))] + ssim_kernels()


def sample(kernel, rng, n):
    return rng.normal(size=(n, 3)) if isinstance(kernel, RBFMixture) else images(rng, n)


@pytest.mark.parametrize("kernel", all_kernels(), ids=repr)
def test_gram_vjp_against_finite_differences(kernel, rng):
    X, Y = sample(kernel, rng, 3), sample(kernel, rng, 2)
    G = rng.normal(size=(3, 2))
    dX, dY = kernel.gram_vjp(X, Y, G, wrt_y=True)
    loss = lambda A, B: np.sum(G * kernel.gram(A, B))  # noqa: E731
    assert_grad_close(dX, numerical_gradient(lambda A: loss(A, Y), X))
    assert_grad_close(dY, numerical_gradient(lambda B: loss(X, B), Y))
    # without dY the Numba engine runs the pairs the other way round (X on its lanes):
    # the same gradient up to rounding
    np.testing.assert_allclose(kernel.gram_vjp(X, Y, G), dX, rtol=0,
                               atol=1e-13 * np.abs(dX).max())
    # Y = None: both roles, G not symmetric
    Gs = rng.normal(size=(3, 3))
    K, dXs = kernel.value_and_vjp(X, None, Gs)
    np.testing.assert_allclose(K, kernel.gram(X), rtol=1e-14)
    assert_grad_close(dXs, numerical_gradient(lambda A: np.sum(Gs * kernel.gram(A)), X))


@pytest.mark.parametrize("kernel", all_kernels(), ids=repr)
def test_paired_vjp_against_finite_differences(kernel, rng):
    X, Y = sample(kernel, rng, 3), sample(kernel, rng, 3)
    g = rng.normal(size=3)
    dX, dY = kernel.paired_vjp(X, Y, g)
    loss = lambda A, B: np.sum(g * kernel.paired(A, B))  # noqa: E731
    assert_grad_close(dX, numerical_gradient(lambda A: loss(A, Y), X))
    assert_grad_close(dY, numerical_gradient(lambda B: loss(X, B), Y))


@pytest.mark.parametrize("power", [1, 2])
def test_ssim_distance_kernel_vjp_is_minus_half_distance_matrix_vjp(power, rng):
    X, Y = images(rng, 4, (6, 6, 2)), images(rng, 3, (6, 6, 2))
    G = rng.normal(size=(4, 3))
    k = SSIMDistanceKernel("eq2", power, GAUSS)
    dX, dY = k.gram_vjp(X, Y, G, wrt_y=True)
    rX, rY = ssimref.distance_matrix_vjp(X, Y, G, "eq2", GAUSS, squared=power == 2)
    np.testing.assert_allclose(dX, -0.5 * rX, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dY, -0.5 * rY, rtol=1e-12, atol=1e-15)
    Gs = rng.normal(size=(4, 4))
    rX, _ = ssimref.distance_matrix_vjp(X, None, Gs, "eq2", GAUSS, squared=power == 2)
    np.testing.assert_allclose(k.gram_vjp(X, None, Gs), -0.5 * rX, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kernel", ssim_kernels()[:4], ids=repr)
def test_ssim_tiles_do_not_change_results(kernel, rng):
    X, Y = images(rng, 5), images(rng, 4)
    G = rng.normal(size=(5, 4))
    tiny = type(kernel).__new__(type(kernel))
    tiny.__dict__.update(kernel.__dict__, working_memory=1e-3)  # one pair per tile
    for Ya, Ga in ((Y, G), (None, rng.normal(size=(5, 5)))):
        K, dX = kernel.value_and_vjp(X, Ya, Ga)
        Kt, dXt = tiny.value_and_vjp(X, Ya, Ga)
        np.testing.assert_allclose(Kt, K, rtol=1e-14)
        np.testing.assert_allclose(dXt, dX, rtol=1e-12, atol=1e-15)


def test_identical_images_give_finite_gradients(rng):
    X = images(rng, 3)
    X[1] = X[0]
    Y = X.copy()
    for kernel in ssim_kernels():
        dX, dY = kernel.gram_vjp(X, Y, np.ones((3, 3)), wrt_y=True)
        assert np.all(np.isfinite(dX)) and np.all(np.isfinite(dY))
        assert np.all(np.isfinite(kernel.gram_vjp(X, None, np.ones((3, 3)))))
        assert np.all(np.isfinite(kernel.paired_vjp(X, Y, np.ones(3))[0]))


def test_array_api_strict_rbf(rng):
    xps = pytest.importorskip("array_api_strict")
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(3, 3))
    G = rng.normal(size=(4, 3))
    k = RBFMixture((1.0, 2.0))
    K, dX, dY = k.value_and_vjp(xps.asarray(X), xps.asarray(Y), xps.asarray(G), wrt_y=True)
    ref = k.value_and_vjp(X, Y, G, wrt_y=True)
    for got, want in zip((K, dX, dY), ref):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-13)


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("make, match", [
    (lambda: RBFMixture(()), "at least one"),
    (lambda: RBFMixture((1.0, -2.0)), "variances"),
    (lambda: RBFMixture((1.0, 2.0), (1.0,)), "one entry per variance"),
    (lambda: RBFMixture((1.0,), (0.0,)), "weights"),
    (lambda: SSIMDistanceKernel(power=3), "power"),
    (lambda: SSIMDistanceKernel(kind="eq3"), "kind"),
    (lambda: SSIMRBFKernel(0.0), "gamma"),
    (lambda: SSIMRBFKernel(float("nan")), "gamma"),
    (lambda: MeanSSIMKernel(window="box"), "window"),
])
def test_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs(rng):
    k = RBFMixture()
    X = rng.normal(size=(3, 2))
    for bad, match in [(np.array([[np.nan, 0.0]]), "NaN"), (np.empty((0, 2)), "empty"),
                       (np.array(1.0), "scalar")]:
        with pytest.raises(ValueError, match=match):
            k.gram(bad)
    with pytest.raises(TypeError, match="complex"):
        k.gram(X + 1j)
    with pytest.raises(ValueError, match="dimension"):
        k.gram(X, rng.normal(size=(2, 3)))
    with pytest.raises(ValueError, match="shape"):
        k.gram_vjp(X, X, np.ones((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        k.gram_vjp(X, X, np.full((3, 3), np.inf))
    with pytest.raises(ValueError, match="wrt_y"):
        k.gram_vjp(X, None, np.ones((3, 3)), wrt_y=True)
    with pytest.raises(ValueError, match="same number of rows"):
        k.paired(X, X[:2])
    s = SSIMDistanceKernel(config=CONFIG)
    with pytest.raises(ValueError, match="same shape"):
        s.gram(images(rng, 2), images(rng, 2, (6, 6)))


def test_kernels_are_listed_with_their_conventions():
    for kernel in itertools.chain(all_kernels(), [RBFMixture()]):
        text = kernel.describe()
        assert "k =" in text
        if not isinstance(kernel, RBFMixture):
            assert "data_range 1" in text and "window" in text
