"""Finite-difference gradient checker: accepts right gradients, catches wrong ones."""

import numpy as np
import pytest

import ssimref
from ssimref import SSIMConfig
from ssimref.verification.gradcheck import gradcheck


def _centre(v):
    return v - v.mean()


def eq1_window_loss(x, y, c):
    """Squared Eq. (1) distance of one window: ||P(x - y)||^2 / (||Px||^2 + ||Py||^2 + c)."""
    return float(np.sum(_centre(x - y) ** 2) / (np.sum(_centre(x) ** 2)
                                                + np.sum(_centre(y) ** 2) + c))


def eq1_window_grad(x, y, c):
    num = np.sum(_centre(x - y) ** 2)
    den = np.sum(_centre(x) ** 2) + np.sum(_centre(y) ** 2) + c
    return 2 * _centre(x - y) / den - 2 * num * _centre(x) / den ** 2


@pytest.fixture
def window_pair():
    rng = np.random.default_rng(11)
    return rng.uniform(0, 1, (7, 7)), rng.uniform(0, 1, (7, 7))


def test_right_gradient_of_the_core_eq1_distance_passes(window_pair):
    # One 7x7 uniform window, sample covariance: ssimref's D^2 (eq1) is 1 - s2, which is
    # ||P(x - y)||^2 / (||Px||^2 + ||Py||^2 + (q - 1) c2) (docs/theory.md).
    x, y = window_pair
    cfg = SSIMConfig(window="uniform", size=7, covariance="sample", data_range=1.0)
    c = 48 * (0.03 * 1.0) ** 2
    assert ssimref.distance(x, y, "eq1", cfg, squared=True) == pytest.approx(
        eq1_window_loss(x, y, c), rel=1e-12)
    result = gradcheck(lambda v: ssimref.distance(v, y, "eq1", cfg, squared=True),
                       lambda v: eq1_window_grad(v, y, c), x)
    assert result.passed, str(result)
    assert result.max_abs_error < 1e-9  # central differences: O(h^2) + round-off / h
    assert result.n_checked == 49
    assert "gradient OK" in str(result)


def test_wrong_gradient_is_caught_and_located(window_pair):
    x, y = window_pair
    c = 48 * 0.03 ** 2

    def wrong(v):  # forgets the centring of the denominator's derivative
        num = np.sum(_centre(v - y) ** 2)
        den = np.sum(_centre(v) ** 2) + np.sum(_centre(y) ** 2) + c
        return 2 * _centre(v - y) / den - 2 * num * v / den ** 2
    result = gradcheck(lambda v: eq1_window_loss(v, y, c), wrong, x)
    assert not result.passed
    assert result.max_rel_error > 1e-2
    assert "gradient WRONG" in str(result)
    expected = np.abs(wrong(x) - eq1_window_grad(x, y, c))
    # the worst coordinate reported is where the wrong gradient errs most (relatively)
    assert expected[result.worst_index] > 0.5 * expected.max()


def test_factor_two_error_is_caught(window_pair):
    x, y = window_pair
    c = 48 * 0.03 ** 2
    result = gradcheck(lambda v: eq1_window_loss(v, y, c),
                       lambda v: 0.5 * eq1_window_grad(v, y, c), x)
    assert not result.passed
    assert result.max_rel_error == pytest.approx(0.5, rel=1e-4)


def test_nonfinite_gradient_fails():
    x = np.zeros((2, 3))

    def grad(v):
        g = 2 * v
        g[1, 2] = np.nan
        return g
    result = gradcheck(lambda v: float(np.sum(v ** 2)), grad, x)
    assert not result.passed
    assert result.nonfinite == [(1, 2)]


def test_subset_is_seeded_and_bounded():
    x = np.linspace(0, 1, 1000).reshape(20, 50)
    r1 = gradcheck(lambda v: float(np.sum(np.sin(v))), np.cos, x, max_points=30, seed=3)
    r2 = gradcheck(lambda v: float(np.sum(np.sin(v))), np.cos, x, max_points=30, seed=3)
    assert r1.passed and r1.n_checked == 30 and r1.worst_index == r2.worst_index


def test_input_is_not_modified_and_bad_input_rejected():
    x = np.arange(4.0)
    before = x.copy()
    gradcheck(lambda v: float(np.sum(v ** 2)), lambda v: 2 * v, x)
    np.testing.assert_array_equal(x, before)
    with pytest.raises(ValueError, match="shape"):
        gradcheck(lambda v: 0.0, lambda v: np.zeros(3), x)
    with pytest.raises(ValueError, match="NaN"):
        gradcheck(lambda v: 0.0, lambda v: v, np.array([np.nan]))


def test_torch_autograd_of_a_peer_ssim_loss():
    torch = pytest.importorskip("torch")
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 1, (16, 16)), rng.uniform(0, 1, (16, 16))
    target = torch.from_numpy(y)[None, None]

    def loss_t(v):
        return 1 - pytorch_msssim.ssim(v[None, None], target, data_range=1.0, win_size=5)

    def loss(v):
        return float(loss_t(torch.from_numpy(v)))

    def grad(v):
        t = torch.from_numpy(v.copy()).requires_grad_(True)
        loss_t(t).backward()
        return t.grad.numpy()
    result = gradcheck(loss, grad, x, max_points=25)
    assert result.passed, str(result)
