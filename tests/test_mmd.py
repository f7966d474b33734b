"""MMD^2 estimators: values against direct O(n^2) formulas, the weighted form, the
energy-distance identity, gradients against finite differences, the memory bound."""

import gc
import math
import tracemalloc

import numpy as np
import pytest

import ssimref
from ssimref import SSIMConfig
from ssimref.gmmn import mmd2, mmd2_and_grad
from ssimref.kernels import MeanSSIMKernel, RBFMixture, SSIMDistanceKernel, SSIMRBFKernel

from .finite_differences import assert_grad_close, numerical_gradient
from .test_kernel_objects import rbf_direct

CONFIG = SSIMConfig(window="uniform", size=3, data_range=1.0)
VARIANCES, WEIGHTS = (0.5, 2.0, 9.0), (1.0, 0.5, 2.0)
RBF = RBFMixture(VARIANCES, WEIGHTS)


def direct_kernel(A, B):
    return np.array([[rbf_direct(a, b, VARIANCES, WEIGHTS) for b in B] for a in A])


def direct_mmd(X, Y, estimator):
    """Gretton et al. 2012: Eq. (5) (biased), Lemma 6 (unbiased), Lemma 14 (linear)."""
    n, m = len(X), len(Y)
    if estimator == "linear":
        p = n // 2
        k = lambda a, b: rbf_direct(a, b, VARIANCES, WEIGHTS)  # noqa: E731
        return sum(k(X[2*i], X[2*i+1]) + k(Y[2*i], Y[2*i+1]) - k(X[2*i], Y[2*i+1])
                   - k(X[2*i+1], Y[2*i]) for i in range(p)) / p
    Kxx, Kyy, Kxy = direct_kernel(X, X), direct_kernel(Y, Y), direct_kernel(X, Y)
    if estimator == "biased":
        return Kxx.sum() / n**2 + Kyy.sum() / m**2 - 2 * Kxy.sum() / (n * m)
    off = lambda K: K.sum() - np.trace(K)  # noqa: E731
    return off(Kxx) / (n * (n - 1)) + off(Kyy) / (m * (m - 1)) - 2 * Kxy.sum() / (n * m)


def pooled_weights(n, m, estimator):
    """The pooled weight matrix W of docs/mmd.md ("One weighted form"), built densely."""
    N = n + m
    if estimator == "biased":
        s = np.r_[np.full(n, 1 / n), np.full(m, -1 / m)]
        return np.outer(s, s)
    if estimator == "unbiased":
        W = np.zeros((N, N))
        W[:n, :n] = 1 / (n * (n - 1))
        W[n:, n:] = 1 / (m * (m - 1))
        W[:n, n:] = W[n:, :n] = -1 / (n * m)
        np.fill_diagonal(W, 0.0)
        return W
    W = np.zeros((N, N))
    p = n // 2
    for i in range(p):
        x, x2, y, y2 = 2 * i, 2 * i + 1, n + 2 * i, n + 2 * i + 1
        for a, b, sign in ((x, x2, 1), (y, y2, 1), (x, y2, -1), (x2, y, -1)):
            W[a, b] += sign / (2 * p)
            W[b, a] += sign / (2 * p)
    return W


@pytest.mark.parametrize("estimator", ["biased", "unbiased", "linear"])
@pytest.mark.parametrize("n, m", [(7, 5), (6, 6), (2, 2)])
def test_values_against_direct_formulas(estimator, n, m, rng):
    if estimator == "linear" and n != m:
        n = m
    X, Y = rng.normal(size=(n, 3)) + 5.0, rng.normal(size=(m, 3)) + 5.3
    value = mmd2(X, Y, RBF, estimator)
    assert value == pytest.approx(direct_mmd(X, Y, estimator), rel=1e-11, abs=1e-14)
    # the weighted form of docs/mmd.md over the pooled sample
    Z = np.vstack([X, Y])
    W = pooled_weights(n, m, estimator)
    np.testing.assert_allclose(W.sum(axis=0), 0.0, atol=1e-15)  # zero row/column sums
    assert value == pytest.approx(np.sum(W * direct_kernel(Z, Z)), rel=1e-11, abs=1e-14)
    # tiles of one point give the same value
    assert mmd2(X, Y, RBF, estimator, working_memory=1e-6) == pytest.approx(value, rel=1e-12,
                                                                              abs=1e-15)


def test_unbiased_and_biased_relation(rng):
    """MMD_b^2 - MMD_u^2 = (kbar_diag(X) - kbar_off(X)) / n + (kbar_diag(Y) - kbar_off(Y)) / m."""
    X, Y = rng.normal(size=(9, 2)), rng.normal(size=(6, 2)) + 0.4
    n, m = 9, 6
    Kxx, Kyy = direct_kernel(X, X), direct_kernel(Y, Y)
    off = lambda K, k: (K.sum() - np.trace(K)) / (k * (k - 1))  # noqa: E731
    gap = (np.trace(Kxx) / n - off(Kxx, n)) / n + (np.trace(Kyy) / m - off(Kyy, m)) / m
    assert mmd2(X, Y, RBF, "biased") - mmd2(X, Y, RBF, "unbiased") == pytest.approx(gap,
                                                                                    rel=1e-10)


class LinearKernel:
    """k(x, y) = <x, y> through the bare protocol (no base class): MMD_b^2 is
    ||mean(X) - mean(Y)||^2 and its gradient 2 (mean(X) - mean(Y)) / n per row."""

    def gram(self, X, Y=None):
        return X @ (X if Y is None else Y).T

    def gram_vjp(self, X, Y, G, wrt_y=False):
        if Y is None:
            return (G + G.T) @ X
        return (G @ Y, G.T @ X) if wrt_y else G @ Y


def test_duck_typed_kernel_closed_form(rng):
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(5, 3))
    gap = X.mean(axis=0) - Y.mean(axis=0)
    value, dX = mmd2_and_grad(X, Y, LinearKernel(), working_memory=1e-6)
    assert value == pytest.approx(gap @ gap, rel=1e-12)
    np.testing.assert_allclose(dX, np.tile(2 * gap / 8, (8, 1)), rtol=1e-12)
    # the linear estimator through 1 x 1 blocks (no paired methods): h = <x - y, x' - y'>
    X, Y = X[:5], Y
    h = [(X[2*i] - Y[2*i]) @ (X[2*i+1] - Y[2*i+1]) for i in range(2)]
    value, dX = mmd2_and_grad(X, Y, LinearKernel(), "linear")
    assert value == pytest.approx(np.mean(h), rel=1e-12)
    assert_grad_close(dX, numerical_gradient(lambda A: mmd2(A, Y, LinearKernel(), "linear"), X))
    with pytest.raises(TypeError, match="gram"):
        mmd2(X, Y, object())


# ------------------------------------------------------------------------- SSIM kernel
def pairwise_distances(A, B, kind):
    return np.array([[ssimref.distance(a, b, kind, CONFIG) for b in B] for a in A])


@pytest.mark.parametrize("kind", ["eq2", "eq1"])
@pytest.mark.parametrize("power", [1, 2])
def test_energy_distance_identity(kind, power, rng):
    """MMD^2 with -1/2 D^p = half the energy distance 2 E D(X,Y) - E D(X,X') - E D(Y,Y')."""
    X, Y = rng.random((5, 6, 6)), rng.random((4, 6, 6)) * 0.8
    Dxy = pairwise_distances(X, Y, kind) ** power
    Dxx = pairwise_distances(X, X, kind) ** power
    Dyy = pairwise_distances(Y, Y, kind) ** power
    kernel = SSIMDistanceKernel(kind, power, CONFIG)
    energy_v = 2 * Dxy.mean() - Dxx.mean() - Dyy.mean()
    assert mmd2(X, Y, kernel, "biased") == pytest.approx(energy_v / 2, rel=1e-12)
    energy_u = 2 * Dxy.mean() - Dxx.sum() / 20 - Dyy.sum() / 12
    assert mmd2(X, Y, kernel, "unbiased") == pytest.approx(energy_u / 2, rel=1e-12)


class BasePointKernel:
    """The distance-induced kernel k0(x, y) = 1/2 [D(x, z0) + D(y, z0) - D(x, y)]
    (Sejdinovic et al. 2013), from ssimref.distance in loops."""

    def __init__(self, z0, kind):
        self.z0, self.kind = z0, kind

    def gram(self, X, Y=None):
        Y = X if Y is None else Y
        dx = np.array([ssimref.distance(x, self.z0, self.kind, CONFIG) for x in X[..., 0]])
        dy = np.array([ssimref.distance(y, self.z0, self.kind, CONFIG) for y in Y[..., 0]])
        return 0.5 * (dx[:, None] + dy[None, :] - pairwise_distances(X[..., 0], Y[..., 0],
                                                                      self.kind))

    def gram_vjp(self, X, Y, G, wrt_y=False):  # pragma: no cover - values only here
        raise NotImplementedError

    def prepare(self, X, Y=None):
        return X[..., None], (None if Y is None else Y[..., None]), self


@pytest.mark.parametrize("estimator", ["biased", "unbiased", "linear"])
def test_distance_kernel_equals_distance_induced_kernel_for_any_base_point(estimator, rng):
    X, Y = rng.random((4, 5, 5)), rng.random((4, 5, 5)) ** 2
    value = mmd2(X, Y, SSIMDistanceKernel("eq2", 1, CONFIG), estimator)
    for z0 in (np.zeros((5, 5)), rng.random((5, 5)), X[0]):
        assert mmd2(X, Y, BasePointKernel(z0, "eq2"), estimator) == pytest.approx(
            value, rel=1e-12, abs=1e-15)


def test_pooled_centring_and_the_separate_centring_pitfall(rng):
    X, Y = rng.random((5, 5, 5)), rng.random((4, 5, 5)) ** 2
    n, m = 5, 4
    D = pairwise_distances(np.vstack([X, Y]), np.vstack([X, Y]), "eq2")
    H = np.eye(9) - 1 / 9
    W = pooled_weights(n, m, "biased")
    value = mmd2(X, Y, SSIMDistanceKernel("eq2", 1, CONFIG))
    # the paper's pooled kernel -1/2 H D H gives the same MMD
    assert np.sum(W * (-0.5 * H @ D @ H)) == pytest.approx(value, rel=1e-12)
    # centring the blocks separately makes it identically zero
    c = lambda K: K - K.mean(0) - K.mean(1)[:, None] + K.mean()  # noqa: E731
    blocks = (c(D[:n, :n]).mean() + c(D[n:, n:]).mean() - 2 * c(D[:n, n:]).mean())
    assert abs(blocks) < 1e-14 and value > 1e-3


# ------------------------------------------------------------------------- gradients
def kernels_for_gradients():
    return [RBFMixture((0.7, 3.0), (1.0, 0.5)), SSIMDistanceKernel("eq2", 1, CONFIG),
            SSIMDistanceKernel("eq1", 2, CONFIG), SSIMRBFKernel(0.05, "eq1-uncentered", CONFIG),
            MeanSSIMKernel(CONFIG)]


@pytest.mark.parametrize("kernel", kernels_for_gradients(), ids=repr)
@pytest.mark.parametrize("estimator", ["biased", "unbiased", "linear"])
@pytest.mark.parametrize("sqrt", [False, True])
def test_gradient_against_finite_differences(kernel, estimator, sqrt, rng):
    if isinstance(kernel, RBFMixture):
        X, Y = 0.6 * rng.normal(size=(4, 3)), 0.6 * rng.normal(size=(4, 3)) + 1.5
    else:
        X, Y = rng.random((4, 5, 5)), 0.3 * rng.random((4, 5, 5)) ** 2
    value, dX = mmd2_and_grad(X, Y, kernel, estimator, sqrt=sqrt, working_memory=1e-5)
    raw = mmd2(X, Y, kernel, estimator)
    assert raw > 0, "choose samples where MMD^2 > 0 so that sqrt is differentiable"
    assert value == pytest.approx(math.sqrt(raw) if sqrt else raw, rel=1e-12)
    f = (lambda A: math.sqrt(mmd2(A, Y, kernel, estimator))) if sqrt else \
        (lambda A: mmd2(A, Y, kernel, estimator))
    assert dX.shape == X.shape
    assert_grad_close(dX, numerical_gradient(f, X))
    # one tile and many tiles agree
    v1, d1 = mmd2_and_grad(X, Y, kernel, estimator, sqrt=sqrt)
    assert v1 == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(d1, dX, rtol=1e-10, atol=1e-14 * np.abs(dX).max())


def test_sqrt_at_nonpositive_value_is_finite(rng):
    X = rng.normal(size=(6, 2))
    value, dX = mmd2_and_grad(X, X.copy(), RBF, "unbiased", sqrt=True)
    assert mmd2(X, X.copy(), RBF, "unbiased") < 0
    assert value == 0.0 and np.all(dX == 0.0)
    value, dX = mmd2_and_grad(X, X.copy(), RBF, "biased", sqrt=True)  # exactly 0 or tiny
    assert np.all(np.isfinite(dX))


def test_array_api_strict(rng):
    xps = pytest.importorskip("array_api_strict")
    X, Y = rng.normal(size=(5, 2)), rng.normal(size=(4, 2))
    for estimator in ("biased", "unbiased"):
        v, d = mmd2_and_grad(xps.asarray(X), xps.asarray(Y), RBF, estimator,
                             working_memory=1e-5)
        v_ref, d_ref = mmd2_and_grad(X, Y, RBF, estimator)
        assert v == pytest.approx(v_ref, rel=1e-12)
        np.testing.assert_allclose(np.asarray(d), d_ref, rtol=1e-11)
    v, d = mmd2_and_grad(xps.asarray(X[:4]), xps.asarray(Y), RBF, "linear")
    assert v == pytest.approx(mmd2(X[:4], Y, RBF, "linear"), rel=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda X, Y: mmd2(X, Y, RBF, "mean"), "estimator"),
    (lambda X, Y: mmd2(X[:1], Y, RBF, "unbiased"), "at least 2"),
    (lambda X, Y: mmd2(X, Y[:3], RBF, "linear"), "equal size"),
    (lambda X, Y: mmd2(X[:1], Y[:1], RBF, "linear"), "at least 2"),
    (lambda X, Y: mmd2(X, None, RBF), "Y"),
    (lambda X, Y: mmd2(X, Y, RBF, working_memory=0), "working_memory"),
    (lambda X, Y: mmd2(X, Y[:, :1], RBF), "dimension"),
])
def test_bad_input(call, match, rng):
    with pytest.raises(ValueError, match=match):
        call(rng.normal(size=(4, 2)), rng.normal(size=(4, 2)))


# ------------------------------------------------------------------------- memory
def memory_bound(n, m, d, working_memory):
    """The bound of ssimref.mmd.weighted: working_memory MiB + 8 (2n + m + 6t) d bytes."""
    per_pair = RBFMixture.bytes_per_pair + 24
    t = math.isqrt(int(working_memory * 2**20) // per_pair)
    return working_memory * 2**20 + 8 * (2 * n + m + 6 * t) * d


def peak_memory(n, d, working_memory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    Y = rng.normal(size=(n, d)) + 0.1
    kernel = RBFMixture((64.0, 128.0))
    gc.collect()
    tracemalloc.start()
    try:
        value, dX = mmd2_and_grad(X, Y, kernel, "unbiased", working_memory=working_memory)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.isfinite(value) and dX.shape == (n, d)
    return peak


def test_memory_bound_4000():
    peak = peak_memory(4000, 64, 16)
    bound = memory_bound(4000, 4000, 64, 16)
    full = 8 * 8000**2
    assert peak <= bound, (peak / 2**20, bound / 2**20)
    assert peak < full / 10  # far below one pooled kernel matrix (488 MiB)


@pytest.mark.slow
def test_memory_bound_20000():
    peak = peak_memory(20000, 64, 64)
    bound = memory_bound(20000, 20000, 64, 64)
    assert peak <= bound, (peak / 2**20, bound / 2**20)  # vs 11.9 GiB for the full matrix
