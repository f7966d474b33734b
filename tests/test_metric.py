"""Metric properties, negative type and quasi-convexity (docs/theory.md, sections 3, 4
and 10).

D is a Hilbertian (pseudo)metric for every kind: 1 - s1, 1 - s2 and 1 - s1 s2 are halves
of squared feature-space distances because s1, s2 and s1 s2 are positive-definite kernels
with unit diagonal. Hence the triangle inequality, and -1/2 H D H and -1/2 H (D o D) H are
positive semi-definite.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

import ssimref
from ssimref import SSIMConfig
from ssimref.moments import reference_rtol

from .strategies import KINDS, config_and_stack


def _centred_gram(D):
    n = D.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return -0.5 * H @ D @ H


def _frobenius(M):
    """||M||_F without underflow: np.linalg.norm squares the entries, and entries below
    1e-154 (distances of images that differ by 1e-95) square to 0."""
    top = np.abs(M).max()
    return 0.0 if top == 0 else top * np.linalg.norm(M / top)


def _assert_psd(K, slack):
    eig = np.linalg.eigvalsh((K + K.T) / 2)
    assert eig.min() >= -slack, (eig.min(), eig.max(), slack)


@given(config_and_stack(n_min=3, n_max=7), st.sampled_from(KINDS))
def test_metric_axioms_and_negative_type(case, kind):
    """On the reference, whose D^2 has relative error at most rho = reference_rtol
    (ssimref.moments: each window's variance keeps 33 bits or is recomputed two-pass from
    its own pixels): D is off by at most rho/2 relative, so the triangle inequality holds
    within rho/2 (D_ij + D_jk + D_ik), and -1/2 H D H moves by at most
    ||H dD H||_2 / 2 <= rho/4 ||D||_F (rho/2 ||D o D||_F for the squares)."""
    config, X = case
    D = ssimref.distance_matrix(X, kind=kind, config=config, backend="reference")
    rho = reference_rtol(config)
    assert np.all(D >= 0)
    assert np.array_equal(D, D.T)
    assert np.all(np.diag(D) == 0)
    # Triangle inequality for every triple: D[i, k] <= D[i, j] + D[j, k].
    left, right = D[:, None, :], D[:, :, None] + D[None, :, :]
    assert np.all(left <= right + rho / 2 * (left + right) + 1e-300)
    _assert_psd(_centred_gram(D), rho / 4 * _frobenius(D) + 1e-300)
    _assert_psd(_centred_gram(D * D), rho / 2 * _frobenius(D * D) + 1e-300)


def test_far_off_pixels_do_not_move_near_agreeing_windows():
    # Images 1 and 2 agree on the one window (2x2, stride 2) and differ only in the
    # column no window covers; image 0 differs from both by 5.96e-8 in one pixel of the
    # window. So D(0, 1) = D(0, 2) exactly, and the triangle inequality
    # D(0, 1) <= D(0, 2) + D(2, 1) = D(0, 2) is tight. A global shift by the mean of the
    # difference image (moved by the 12s) used to cancel the window's variance to 0.
    a = 5.96e-8
    X = np.array([[[a, 0, 0], [0, 0, 0]], [[0, 0, 12], [0, 0, 12]], [[0, 0, 0], [0, 0, 0]]])
    for kind in KINDS:
        for backend in ("reference", "auto"):
            D = ssimref.distance_matrix(X, kind=kind, window="uniform", size=2, stride=2,
                                        data_range=255, backend=backend)
            assert D[1, 2] == 0.0
            assert D[0, 1] == D[0, 2] > 0
    # the closed form: eq1 on one window, d = [a, 0, 0, 0] / 255 against y = 0:
    # var_d = var_x = f a^2 3/16 / 255^2 (f = 4/3), t2 = var_d / (var_d + c2)
    var = (4 / 3) * (3 / 16) * (a / 255) ** 2
    D = ssimref.distance_matrix(X, kind="eq1", window="uniform", size=2, stride=2,
                                data_range=255)
    assert D[0, 1] == pytest.approx(np.sqrt(var / (var + 0.03 ** 2)), rel=1e-12)


def test_eq1_ignores_window_means_so_it_is_a_pseudometric(rng):
    # Adding a constant to every pixel leaves every centred window unchanged.
    x = rng.random((10, 10))
    config = SSIMConfig(data_range=1.0, window="uniform", size=5)
    assert ssimref.distance(x, x + 0.3, "eq1", config) == pytest.approx(0.0, abs=1e-7)
    assert ssimref.distance(x, x + 0.3, "eq2", config) > 0.1


# --------------------------------------------------------------- quasi-convexity
# For fixed zero-mean y, f(x) = d_eq1(x, y)^2 = ||x - y||^2 / (||x||^2 + ||y||^2 + c) on one
# window with uniform weights and sample covariance (c = (q - 1) c2). Its sublevel sets are
# balls below level 1 and the half-space {x . y >= -c/2} at level 1, so f is quasi-convex on
# that half-space; above level 1 its sublevel sets are complements of balls.

SIDE = 3
CONFIG = SSIMConfig(window="uniform", size=SIDE, data_range=1.0, covariance="sample")
C = (SIDE * SIDE - 1) * (0.03 * 1.0) ** 2


def _f(x, y):
    return ssimref.distance(x.reshape(SIDE, SIDE), y.reshape(SIDE, SIDE), "eq1", CONFIG,
                            squared=True)


def _zero_mean(v):
    return v - v.mean()


vectors = arrays(np.float64, SIDE * SIDE,
                 elements=st.floats(-1, 1, allow_nan=False, allow_subnormal=False))


@given(vectors, vectors, vectors, st.floats(0, 1))
def test_quasi_convex_inside_half_space(y, x1, x2, lam):
    y, x1, x2 = map(_zero_mean, (y, x1, x2))
    # Move x1, x2 into the half-space {x . y >= -c/2} along y when they are outside it.
    yy = y @ y
    for x in (x1, x2):
        if x @ y < -C / 2 and yy > 0:
            x += y * ((-C / 2 - x @ y) / yy + 0.1)
    assert x1 @ y >= -C / 2 - 1e-12 and x2 @ y >= -C / 2 - 1e-12
    mid = lam * x1 + (1 - lam) * x2
    assert _f(mid, y) <= max(_f(x1, y), _f(x2, y)) + 1e-12


def test_not_quasi_convex_outside_half_space(rng):
    # On the level set f = 3/2 lies the sphere of centre -2y and radius^2 3(||y||^2 - c);
    # two antipodal points on it have f = 3/2 but their midpoint -2y has
    # f = 9||y||^2 / (5||y||^2 + c) > 3/2 whenever ||y||^2 > c.
    y = _zero_mean(rng.normal(size=SIDE * SIDE))
    u = _zero_mean(rng.normal(size=SIDE * SIDE))
    u -= (u @ y) / (y @ y) * y
    u /= np.linalg.norm(u)
    r = np.sqrt(3 * (y @ y - C))
    x1, x2 = -2 * y + r * u, -2 * y - r * u
    mid = (x1 + x2) / 2
    assert x1 @ y < -C / 2 and x2 @ y < -C / 2          # both outside the half-space
    assert _f(x1, y) == pytest.approx(1.5, rel=1e-12)
    assert _f(x2, y) == pytest.approx(1.5, rel=1e-12)
    assert _f(mid, y) > max(_f(x1, y), _f(x2, y)) + 0.1  # the counterexample


def test_negative_type_of_distances_whose_squares_underflow_a_plain_norm():
    """A case hypothesis found: one pixel of 4.35e-95 against two zero images. D is
    7.25e-94 off the zero pair, D o D about 5e-187, whose plain Frobenius norm squares to
    0; the slack of the PSD check must still scale with the matrix."""
    config = SSIMConfig(window="uniform", size=2, data_range=1.0)
    X = np.zeros((3, 2, 2))
    X[0, 0, 0] = 4.35018162e-95
    D = ssimref.distance_matrix(X, kind="eq1", config=config, backend="reference")
    assert np.linalg.norm(D * D) == 0.0 and _frobenius(D * D) > 0
    rho = reference_rtol(config)
    _assert_psd(_centred_gram(D * D), rho / 2 * _frobenius(D * D) + 1e-300)
