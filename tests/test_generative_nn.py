"""New layers, the reparameterisation, learning-rate schedules and gradient clipping of
ssimref.generative: gradients against central finite differences, schedules and clipping
against hand computations."""

import math

import numpy as np
import pytest

from ssimref.generative.mlp import MLP, LeakyReLU, reparameterize, reparameterize_vjp
from ssimref.generative.optim import Adam, Schedule, clip_grad_norm, global_norm

from .finite_differences import assert_grad_close, numerical_gradient


def test_leaky_relu_backward_matches_finite_differences(rng):
    layer = LeakyReLU(0.2)
    x = rng.normal(size=(5, 4))
    x = np.where(np.abs(x) < 0.05, 0.1, x)  # away from the kink
    y, saved = layer.forward({}, x, np, False, None)
    np.testing.assert_array_equal(y, np.where(x > 0, x, 0.2 * x))
    gy = rng.normal(size=y.shape)
    gx, _ = layer.backward({}, saved, gy, np)
    numeric = numerical_gradient(lambda v: np.sum(gy * layer.forward({}, v, np, False, None)[0]),
                                 x)
    assert_grad_close(gx, numeric, rel=1e-8)
    with pytest.raises(ValueError, match="slope"):
        LeakyReLU(1.0)


def test_leaky_relu_mlp_uses_he_initialisation():
    net = MLP.from_sizes([4, 8, 1], hidden="leaky_relu", output="linear")
    assert [type(layer).__name__ for layer in net.layers] == ["Linear", "LeakyReLU", "Linear"]
    assert [layer.init for layer in net.layers[::2]] == ["he", "glorot"]


def test_reparameterize_vjp_matches_finite_differences(rng):
    mu, logvar, eps = rng.normal(size=(3, 2)), rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    gz = rng.normal(size=(3, 2))
    z, std = reparameterize(mu, logvar, eps, np)
    np.testing.assert_allclose(z, mu + np.exp(logvar / 2) * eps, rtol=1e-15)
    g_mu, g_logvar = reparameterize_vjp(gz, std, eps)

    def f_mu(m):
        return np.sum(gz * reparameterize(m, logvar, eps, np)[0])

    def f_lv(v):
        return np.sum(gz * reparameterize(mu, v, eps, np)[0])
    assert_grad_close(g_mu, numerical_gradient(f_mu, mu), rel=1e-8)
    assert_grad_close(g_logvar, numerical_gradient(f_lv, logvar), rel=1e-8)


def test_schedules_by_hand():
    const = Schedule("constant", total=10, warmup=2)
    assert [const.factor(t) for t in range(4)] == [0.5, 1.0, 1.0, 1.0]
    cos = Schedule("cosine", total=10, final=0.1)
    assert cos.factor(0) == 1.0 and cos.factor(10) == pytest.approx(0.1, abs=1e-15)
    assert cos.factor(5) == pytest.approx(0.1 + 0.9 * 0.5, rel=1e-15)
    assert cos.factor(50) == cos.factor(10)  # stays at `final` past the end
    lin = Schedule("linear", total=4, final=0.0)
    assert [lin.factor(t) for t in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    step = Schedule("step", step_size=3, gamma=0.5)
    assert [step.factor(t) for t in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    with pytest.raises(ValueError, match="schedule"):
        Schedule("exponential")
    with pytest.raises(ValueError, match="final"):
        Schedule("cosine", final=2.0)


def test_clip_grad_norm_by_hand():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert global_norm(grads, np) == 5.0
    clipped, norm = clip_grad_norm(grads, 2.5, np)
    assert norm == 5.0
    np.testing.assert_allclose(clipped["a"], [1.5, 0.0], rtol=1e-15)
    np.testing.assert_allclose(clipped["b"], [[2.0]], rtol=1e-15)
    assert grads["a"][0] == 3.0  # input untouched
    same, _ = clip_grad_norm(grads, 10.0, np)
    assert same["a"] is grads["a"]
    off, _ = clip_grad_norm(grads, None, np)
    assert off["b"] is grads["b"]


def test_optimizer_step_takes_a_scheduled_learning_rate():
    a, b = Adam(lr=0.1), Adam(lr=0.05)
    pa, pb = {"w": np.array([1.0])}, {"w": np.array([1.0])}
    a.step(pa, {"w": np.array([2.0])}, np, lr=0.05)
    b.step(pb, {"w": np.array([2.0])}, np)
    np.testing.assert_array_equal(pa["w"], pb["w"])
    assert math.isclose(pa["w"][0], 1.0 - 0.05 * 2.0 / (2.0 + 1e-8), rel_tol=1e-15)
