"""Hand-derived gradients against central finite differences (float64)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import ssimref
from ssimref import SSIMConfig
from ssimref.moments import window_sums, window_sums_transpose

from .finite_differences import assert_grad_close, numerical_gradient
from .strategies import KINDS, configs

@given(st.data())
def test_window_sums_transpose_is_the_adjoint(data):
    config = data.draw(configs(max_size=4))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    h = data.draw(st.integers(config.size, config.size + 6))
    w = data.draw(st.integers(config.size, config.size + 6))
    a = rng.normal(size=(2, h, w, 2))
    forward = window_sums(a, config.taps(), config.stride)
    g = rng.normal(size=forward.shape)
    back = window_sums_transpose(g, config.taps(), config.stride, h, w, np)
    assert np.sum(forward * g) == pytest.approx(np.sum(a * back), rel=1e-12)


@settings(max_examples=12)
@given(configs(max_size=3, data_range=1.0), st.sampled_from(KINDS), st.booleans(),
       st.booleans(), st.integers(0, 2**32 - 1))
def test_distance_matrix_vjp(config, kind, squared, symmetric, seed):
    rng = np.random.default_rng(seed)
    shape = (config.size + 2, config.size + 1)
    X = rng.random((3,) + shape)
    Y = None if symmetric else rng.random((2,) + shape)
    G = rng.normal(size=(3, 3 if symmetric else 2))
    dX, dY = ssimref.distance_matrix_vjp(X, Y, G, kind, config, squared=squared,
                                         working_memory=1e-3)  # one pair per tile

    def loss(X, Y=Y):
        return np.sum(G * ssimref.distance_matrix(X, Y, kind, config, squared=squared))

    assert_grad_close(dX, numerical_gradient(loss, X))
    if symmetric:
        assert dY is None
    else:
        assert_grad_close(dY, numerical_gradient(lambda Y: loss(X, Y), Y))


@pytest.mark.parametrize("kind", KINDS)
def test_vjp_multichannel_and_tile_independence(kind, rng):
    config = SSIMConfig(data_range=255.0, window="gaussian", size=3, stride=2,
                        covariance="population")
    X = rng.random((3, 7, 6, 2)) * 255
    Y = rng.random((4, 7, 6, 2)) * 255
    G = rng.normal(size=(3, 4))
    dX, dY = ssimref.distance_matrix_vjp(X, Y, G, kind, config)
    loss = lambda X, Y: np.sum(G * ssimref.distance_matrix(X, Y, kind, config))  # noqa: E731
    assert_grad_close(dX, numerical_gradient(lambda A: loss(A, Y), X, h=1e-4))
    assert_grad_close(dY, numerical_gradient(lambda B: loss(X, B), Y, h=1e-4))
    tiled = ssimref.distance_matrix_vjp(X, Y, G, kind, config, working_memory=1e-3)
    np.testing.assert_allclose(tiled[0], dX, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(tiled[1], dY, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("squared", [False, True])
def test_identical_images_give_zero_gradient_without_nan(kind, squared, rng):
    config = SSIMConfig(data_range=1.0, size=3)
    x = rng.random((6, 6))
    X = np.stack([x, x, rng.random((6, 6))])
    G = np.ones((3, 3))
    dX, _ = ssimref.distance_matrix_vjp(X, None, G, kind, config, squared=squared)
    assert np.all(np.isfinite(dX))
    # Pair (0, 1) has D = 0 and contributes nothing: the gradient of images 0 and 1 comes
    # from image 2 only, and equals the gradient of the loss without the pair (0, 1).
    G_without = G.copy()
    G_without[0, 1] = G_without[1, 0] = 0
    expected, _ = ssimref.distance_matrix_vjp(X, None, G_without, kind, config, squared=squared)
    np.testing.assert_allclose(dX, expected, rtol=1e-13, atol=1e-16)
    values, dA, dB = ssimref.paired_distance_and_grad(x[None], x[None].copy(), kind, config,
                                                      squared=squared)
    assert values[0] == 0 and np.all(dA == 0) and np.all(dB == 0)


@pytest.mark.parametrize("kind", KINDS)
def test_identical_windows_in_different_images(kind, rng):
    # The images differ only in their right halves: the left windows are identical.
    config = SSIMConfig(data_range=1.0, window="uniform", size=3, stride=3)
    x = rng.random((6, 9))
    y = x.copy()
    y[:, 6:] = rng.random((6, 3))
    loss = lambda a: ssimref.paired_distance(a[None], y[None], kind, config)[0]  # noqa: E731
    _, dx, _ = ssimref.paired_distance_and_grad(x[None], y[None], kind, config)
    assert np.all(np.isfinite(dx))
    assert_grad_close(dx[0], numerical_gradient(loss, x))


@settings(max_examples=10)
@given(configs(max_size=3, data_range=1.0), st.sampled_from(KINDS), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_paired_distance_and_grad(config, kind, squared, seed):
    rng = np.random.default_rng(seed)
    shape = (3, config.size + 2, config.size + 1)
    X, Y, w = rng.random(shape), rng.random(shape), rng.normal(size=3)
    values, dX, dY = ssimref.paired_distance_and_grad(X, Y, kind, config, squared=squared,
                                                      weights=w)
    expected = [ssimref.distance(x, y, kind, config, squared=squared) for x, y in zip(X, Y)]
    np.testing.assert_allclose(values, expected, rtol=1e-13)
    np.testing.assert_allclose(ssimref.paired_distance(X, Y, kind, config, squared=squared),
                               values, rtol=1e-15)

    def loss(A, B):
        return np.sum(w * ssimref.paired_distance(A, B, kind, config, squared=squared))

    assert_grad_close(dX, numerical_gradient(lambda A: loss(A, Y), X))
    assert_grad_close(dY, numerical_gradient(lambda B: loss(X, B), Y))


def test_gradients_on_array_api_strict(rng):
    """Any array-API library runs the reference engine: the same numbers as on NumPy."""
    xps = pytest.importorskip("array_api_strict")
    config = SSIMConfig(data_range=1.0, size=3)
    X, Y, G = rng.random((3, 7, 7)), rng.random((2, 7, 7)), rng.normal(size=(3, 2))
    dX, dY = ssimref.distance_matrix_vjp(xps.asarray(X), xps.asarray(Y), xps.asarray(G),
                                         "eq2", config)
    eX, eY = ssimref.distance_matrix_vjp(X, Y, G, "eq2", config, backend="reference")
    np.testing.assert_allclose(np.from_dlpack(dX), eX, rtol=1e-13)
    values, pX, _ = ssimref.paired_distance_and_grad(xps.asarray(X[:2]), xps.asarray(Y),
                                                     "eq1", config)
    ev, eX2, _ = ssimref.paired_distance_and_grad(X[:2], Y, "eq1", config,
                                                  backend="reference")
    np.testing.assert_allclose(np.from_dlpack(pX), eX2, rtol=1e-13)


@pytest.mark.parametrize("call, match", [
    (lambda X: ssimref.distance_matrix_vjp(X, None, np.ones((2, 2)), data_range=1),
     "G must have shape"),
    (lambda X: ssimref.distance_matrix_vjp(X, None, np.full((3, 3), np.nan), data_range=1),
     "G contains NaN"),
    (lambda X: ssimref.paired_distance(X, X[:2], data_range=1), "same number"),
    (lambda X: ssimref.paired_distance_and_grad(X, X, data_range=1, weights=[1, 2]),
     "weights must have shape"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(np.zeros((3, 8, 8)))
