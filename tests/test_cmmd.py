"""Conditional MMD: the general form against a direct formula, the one-hot closed form
against the general form, gradients against finite differences."""

import math

import numpy as np
import pytest

from ssimref import SSIMConfig
from ssimref.gmmn import cmmd2, cmmd2_and_grad, cmmd_weights, mmd2
from ssimref.kernels import RBFMixture, SSIMDistanceKernel

from .finite_differences import assert_grad_close, numerical_gradient

CONFIG = SSIMConfig(window="uniform", size=3, data_range=1.0)
RBF = RBFMixture((0.8, 4.0))


def direct_cmmd(S, Dd, Kc, kernel, lam):
    """Ren et al. 2016 with an explicit inverse (fine in a test oracle)."""
    C = np.linalg.inv(Kc + lam * np.eye(len(Kc)))
    M = C @ Kc @ C
    L = kernel.gram(S, S) + kernel.gram(Dd, Dd) - kernel.gram(S, Dd) - kernel.gram(Dd, S)
    return float(np.sum(M * L))


def delta_gram(labels):
    return (labels[:, None] == labels[None, :]).astype(float)


@pytest.fixture
def problem(rng):
    labels = np.array([0, 2, 1, 0, 2, 2, 0, 1, 2])
    S = rng.normal(size=(9, 3))
    Dd = rng.normal(size=(9, 3)) + 0.3 * labels[:, None]
    return labels, S, Dd


def test_general_form_against_direct_formula(problem, rng):
    labels, S, Dd = problem
    conditions = rng.normal(size=(9, 2))
    cond_kernel = RBFMixture((1.5,))
    for lam in (1e-3, 0.5):
        value = cmmd2(S, Dd, conditions, RBF, cond_kernel, lam)
        want = direct_cmmd(S, Dd, cond_kernel.gram(conditions), RBF, lam)
        assert value == pytest.approx(want, rel=1e-9)
        assert value == pytest.approx(
            cmmd2(S, Dd, cond_kernel.gram(conditions), RBF, "precomputed", lam), rel=1e-13)


@pytest.mark.parametrize("lam", [1e-3, 0.1, 2.0])
def test_one_hot_closed_form_equals_general_form(problem, lam):
    labels, S, Dd = problem
    closed = cmmd2(S, Dd, labels, RBF, "delta", lam)
    general = cmmd2(S, Dd, delta_gram(labels), RBF, "precomputed", lam)
    assert closed == pytest.approx(general, rel=1e-10)
    assert closed == pytest.approx(direct_cmmd(S, Dd, delta_gram(labels), RBF, lam),
                                   rel=1e-8)
    per_class = sum((np.sum(labels == c) / (np.sum(labels == c) + lam)) ** 2
                    * mmd2(S[labels == c], Dd[labels == c], RBF, "biased") for c in range(3))
    assert closed == pytest.approx(per_class, rel=1e-12)
    one_hot = np.eye(3)[labels]
    assert cmmd2(S, Dd, one_hot, RBF, "delta", lam) == closed
    names = np.array(["cat", "dog", "bird"])[labels]
    assert cmmd2(S, Dd, names, RBF, "delta", lam) == pytest.approx(closed, rel=1e-14)
    g_closed = cmmd2_and_grad(S, Dd, labels, RBF, "delta", lam)[1]
    g_general = cmmd2_and_grad(S, Dd, delta_gram(labels), RBF, "precomputed", lam)[1]
    np.testing.assert_allclose(g_closed, g_general, rtol=1e-8, atol=1e-12)


def test_ssim_distance_kernel_closed_and_general_forms(rng):
    labels = np.array([1, 0, 1, 1, 0])
    S, Dd = rng.random((5, 6, 6)), rng.random((5, 6, 6)) ** 2
    kernel = SSIMDistanceKernel("eq2", 1, CONFIG)
    closed, g1 = cmmd2_and_grad(S, Dd, labels, kernel, lam=0.01)
    general, g2 = cmmd2_and_grad(S, Dd, delta_gram(labels), kernel, "precomputed", lam=0.01)
    assert closed == pytest.approx(general, rel=1e-10) and closed > 0
    np.testing.assert_allclose(g1, g2, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("sqrt", [False, True])
@pytest.mark.parametrize("which", ["delta", "rbf", "ssim"])
def test_gradient_against_finite_differences(problem, which, sqrt, rng):
    labels, S, Dd = problem
    kernel, conditions, cond = RBF, labels, "delta"
    if which == "rbf":
        conditions, cond = rng.normal(size=(9, 2)), RBFMixture((2.0,))
    if which == "ssim":
        S, Dd = rng.random((9, 5, 5)), rng.random((9, 5, 5)) ** 2
        kernel = SSIMDistanceKernel("eq1", 1, CONFIG)
    value, dS = cmmd2_and_grad(S, Dd, conditions, kernel, cond, 0.05, sqrt=sqrt,
                               working_memory=1e-5)
    f = lambda A: cmmd2(A, Dd, conditions, kernel, cond, 0.05)  # noqa: E731
    assert f(S) > 0
    if sqrt:
        assert value == pytest.approx(math.sqrt(f(S)), rel=1e-12)
        g = lambda A: math.sqrt(f(A))  # noqa: E731
    else:
        g = f
    assert dS.shape == S.shape
    assert_grad_close(dS, numerical_gradient(g, S))


def test_cmmd_weights_is_c_k_c(rng):
    A = rng.normal(size=(6, 3))
    K = A @ A.T  # rank 3: exact zero eigenvalues
    M = cmmd_weights(K, 0.2)
    C = np.linalg.inv(K + 0.2 * np.eye(6))
    np.testing.assert_allclose(M, C @ K @ C, rtol=1e-10, atol=1e-13)
    assert np.array_equal(M, M.T)
    with pytest.raises(ValueError, match="positive"):
        cmmd_weights(-K, 0.2)
    with pytest.raises(ValueError, match="symmetric"):
        cmmd_weights(K + np.triu(np.ones((6, 6)), 1), 0.2)


def test_bad_input(problem):
    labels, S, Dd = problem
    for lam in (0, -1.0, float("inf"), "a"):
        with pytest.raises(ValueError, match="lam"):
            cmmd2(S, Dd, labels, RBF, lam=lam)
    with pytest.raises(ValueError, match="one row per condition"):
        cmmd2(S, Dd[:5], labels, RBF)
    with pytest.raises(ValueError, match="labels"):
        cmmd2(S, Dd, labels[:4], RBF)
    with pytest.raises(ValueError, match="one-hot"):
        cmmd2(S, Dd, np.ones((9, 3)), RBF)
    with pytest.raises(ValueError, match="condition_kernel"):
        cmmd2(S, Dd, labels, RBF, "gaussian")
    with pytest.raises(TypeError, match="condition_kernel"):
        cmmd2(S, Dd, labels, RBF, 3)
    with pytest.raises(ValueError, match="shape"):
        cmmd2(S, Dd, np.eye(4), RBF, "precomputed")
