"""The MLP's hand-written backprop against central finite differences; optimiser steps
against hand computations; checkpoints without pickles."""

import json
import zipfile

import numpy as np
import pytest

from ssimref.generative.checkpoint import load_checkpoint, make_rng, rng_state, save_checkpoint
from ssimref.generative.mlp import MLP, Dropout, Linear, ReLU, Sigmoid, Tanh
from ssimref.generative.optim import SGD, Adam, make_optimizer

from .finite_differences import assert_grad_close, numerical_gradient

REL = 1e-7


def away_from_zero(rng, shape):
    """Inputs at least 0.05 from the ReLU kink, where finite differences are valid."""
    x = rng.normal(size=shape)
    return np.where(np.abs(x) < 0.05, 0.05 * np.sign(x) + 0.05 * (x == 0), x)


@pytest.mark.parametrize("layer", [Linear(4, 3, "he"), Linear(4, 3, "glorot"), ReLU(),
                                   Sigmoid(), Tanh()], ids=repr)
def test_layer_backward_matches_finite_differences(layer, rng):
    n_in = getattr(layer, "n_in", 4)
    params = {k: v for k, v in layer.init_params(rng).items()}
    params = {k: v + 0.1 * rng.normal(size=v.shape) for k, v in params.items()}
    x = away_from_zero(rng, (5, n_in)) * 2.0
    y, saved = layer.forward(params, x, np, False, None)
    gy = rng.normal(size=y.shape)
    gx, grads = layer.backward(params, saved, gy, np)

    def loss_x(x):
        return np.sum(gy * layer.forward(params, x, np, False, None)[0])

    assert_grad_close(gx, numerical_gradient(loss_x, x), rel=REL)
    for name, value in params.items():
        def loss_p(v, name=name):
            return np.sum(gy * layer.forward({**params, name: v}, x, np, False, None)[0])
        assert_grad_close(grads[name], numerical_gradient(loss_p, value), rel=REL)


def test_sigmoid_is_stable_for_large_inputs():
    x = np.array([[-800.0, -40.0, 0.0, 40.0, 800.0]])
    y, _ = Sigmoid().forward({}, x, np, False, None)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y[0, 1:4], [1 / (1 + np.exp(40.0)), 0.5, 1 / (1 + np.exp(-40.0))],
                               rtol=1e-15)
    assert y[0, 0] == 0.0 and y[0, 4] == 1.0


def test_dropout_forward_backward_use_the_same_mask(rng):
    layer = Dropout(0.3)
    x = rng.normal(size=(200, 50))
    y, scale = layer.forward({}, x, np, True, np.random.default_rng(1))
    kept = y != 0
    # E[mask] = 1 - p; the empirical rate over 10,000 draws is within 4 standard errors.
    assert abs(kept.mean() - 0.7) < 4 * np.sqrt(0.21 / kept.size)
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-15)
    gy = rng.normal(size=y.shape)
    gx, _ = layer.backward({}, scale, gy, np)
    np.testing.assert_array_equal(gx, gy * scale)
    same, _ = layer.forward({}, x, np, False, None)
    assert same is x


@pytest.mark.parametrize("hidden,output", [("relu", "sigmoid"), ("tanh", "linear"),
                                           ("sigmoid", "tanh")])
def test_mlp_backward_matches_finite_differences(hidden, output, rng):
    net = MLP.from_sizes([3, 6, 5, 4], hidden=hidden, output=output, dropout=0.2)
    net.init(np.random.default_rng(3))
    x = away_from_zero(rng, (7, 3))
    gy = rng.normal(size=(7, 4))

    def run(x, training=True):
        # A fresh generator with the same seed: the same dropout masks in every call.
        return net.forward(x, np, training=training, rng=np.random.default_rng(11))

    out, tape = run(x)
    gx, grads = net.backward(tape, gy, np)
    assert sorted(grads) == sorted(net.params)
    assert_grad_close(gx, numerical_gradient(lambda x: np.sum(gy * run(x)[0]), x), rel=1e-6)
    for name in net.params:
        original = net.params[name]

        def loss(v, name=name, original=original):
            net.params[name] = v
            try:
                return np.sum(gy * run(x)[0])
            finally:
                net.params[name] = original
        assert_grad_close(grads[name], numerical_gradient(loss, original), rel=1e-6)
    frozen_gx, frozen = net.backward(tape, gy, np, need_params=False)
    assert frozen == {}
    np.testing.assert_allclose(frozen_gx, gx, rtol=1e-13, atol=1e-15)


def test_mlp_layout_and_initialisation():
    net = MLP.from_sizes([10, 64, 256, 64], hidden="relu", output="sigmoid", input_dropout=0.1)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["Dropout", "Linear", "ReLU", "Linear", "ReLU", "Linear", "Sigmoid"]
    assert [layer.init for layer in net.layers if isinstance(layer, Linear)] == \
        ["he", "he", "glorot"]
    params = net.init(np.random.default_rng(0))
    assert params["layer1.weight"].shape == (10, 64) and params["layer5.bias"].shape == (64,)
    assert params["layer1.weight"].dtype == np.float64
    # He: std sqrt(2 / n_in); Glorot uniform: limit sqrt(6 / (n_in + n_out)).
    assert np.std(params["layer3.weight"]) == pytest.approx(np.sqrt(2 / 64), rel=0.03)
    limit = np.sqrt(6 / (256 + 64))
    w = params["layer5.weight"]
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit
    assert np.all(params["layer1.bias"] == 0)
    again = MLP.from_sizes([10, 64, 256, 64], input_dropout=0.1).init(np.random.default_rng(0))
    assert all(np.array_equal(params[k], again[k]) for k in params)


def test_mlp_runs_on_any_array_api_namespace(xp, rng):
    net = MLP.from_sizes([3, 5, 2], hidden="relu", output="sigmoid")
    host = net.init(np.random.default_rng(0))
    x = rng.normal(size=(4, 3))
    gy = rng.normal(size=(4, 2))
    out, tape = net.forward(x, np)
    gx, grads = net.backward(tape, gy, np)
    net.params = {k: xp.asarray(v) for k, v in host.items()}
    out_x, tape_x = net.forward(xp.asarray(x), xp)
    gx_x, grads_x = net.backward(tape_x, xp.asarray(gy), xp)
    from ssimref.backend import to_numpy
    np.testing.assert_allclose(to_numpy(out_x), out, rtol=1e-14)
    np.testing.assert_allclose(to_numpy(gx_x), gx, rtol=1e-13)
    for k in grads:
        np.testing.assert_allclose(to_numpy(grads_x[k]), grads[k], rtol=1e-13)


def test_bad_layers_are_refused():
    with pytest.raises(ValueError, match="init"):
        Linear(2, 2, init="xavier")
    with pytest.raises(ValueError, match="dropout"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="hidden activation"):
        MLP.from_sizes([2, 3, 1], hidden="linear")
    with pytest.raises(ValueError, match="rng"):
        Dropout(0.5).forward({}, np.ones((2, 2)), np, True, None)


# ------------------------------------------------------------------- optimisers
def test_sgd_momentum_by_hand():
    p = {"w": np.array([1.0, -2.0])}
    opt = SGD(lr=0.1, momentum=0.9)
    g1, g2 = np.array([0.5, 1.0]), np.array([-1.0, 2.0])
    opt.step(p, {"w": g1}, np)
    np.testing.assert_allclose(p["w"], [1.0 - 0.05, -2.0 - 0.1], rtol=1e-15)
    opt.step(p, {"w": g2}, np)
    v2 = 0.9 * g1 + g2  # (-0.55, 2.9)
    np.testing.assert_allclose(p["w"], [0.95 - 0.1 * -0.55, -2.1 - 0.1 * 2.9], rtol=1e-15)
    np.testing.assert_allclose(opt.state["velocity.w"], v2, rtol=1e-15)


def test_adam_by_hand():
    p = {"w": np.array([1.0, -1.0])}
    opt = Adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)
    g1, g2 = np.array([2.0, -0.5]), np.array([1.0, 1.0])
    opt.step(p, {"w": g1}, np)
    # Step 1: m_hat = g, v_hat = g^2, so the update is lr * sign(g) up to eps.
    np.testing.assert_allclose(p["w"], [1.0 - 0.01 * 2 / (2 + 1e-8),
                                        -1.0 + 0.01 * 0.5 / (0.5 + 1e-8)], rtol=1e-15)
    w1 = p["w"].copy()
    opt.step(p, {"w": g2}, np)
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    v = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    np.testing.assert_allclose(p["w"], w1 - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-14)
    assert int(opt.state["t"]) == 2


def test_optimizer_state_round_trip_continues_identically(rng):
    for name in ("adam", "sgd"):
        a = make_optimizer(name, lr=0.05)
        pa = {"w": rng.normal(size=3)}
        grads = [{"w": rng.normal(size=3)} for _ in range(4)]
        for g in grads[:2]:
            a.step(pa, g, np)
        b = make_optimizer(name, lr=0.05)
        b.load_state({k: np.array(v) for k, v in a.state.items()})
        pb = {"w": pa["w"].copy()}
        for g in grads[2:]:
            a.step(pa, g, np)
            b.step(pb, g, np)
        np.testing.assert_array_equal(pa["w"], pb["w"])
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("rmsprop")
    with pytest.raises(ValueError, match="lr"):
        SGD(lr=-1)


# ------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_without_pickles(tmp_path, rng):
    arrays = {"generator.layer0.weight": rng.normal(size=(3, 2)), "optimizer.t": np.asarray(7)}
    gen = np.random.default_rng(5)
    gen.random(3)
    save_checkpoint(tmp_path, 10, arrays, {"rng": rng_state(gen), "phase": "gmmn"})
    save_checkpoint(tmp_path, 20, arrays, {"rng": rng_state(gen), "phase": "gmmn"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json", "ckpt-00000020.npz"]
    with np.load(tmp_path / "ckpt-00000020.npz", allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
    with zipfile.ZipFile(tmp_path / "ckpt-00000020.npz") as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())
    loaded, meta = load_checkpoint(tmp_path)
    assert meta["step"] == 20 and meta["phase"] == "gmmn"
    np.testing.assert_array_equal(loaded["generator.layer0.weight"],
                                  arrays["generator.layer0.weight"])
    json.dumps(meta)
    assert np.array_equal(make_rng(meta["rng"]).random(4), gen.random(4))
    with pytest.raises(TypeError, match="pickles"):
        save_checkpoint(tmp_path, 30, {"bad": np.array([object()])}, {})
    (tmp_path / "ckpt-00000020.npz").write_bytes(b"damaged")
    with pytest.raises(ValueError, match="checksum"):
        load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        load_checkpoint(tmp_path / "missing")
