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

from .strategies import KINDS, config_and_stack


def _centred_gram(D):
    n = D.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return -0.5 * H @ D @ H


def _assert_psd(K, rel=1e-9):
    eig = np.linalg.eigvalsh((K + K.T) / 2)
    assert eig.min() >= -rel * max(eig.max(), 1e-300) - 1e-12, (eig.min(), eig.max())


@given(config_and_stack(n_min=3, n_max=7), st.sampled_from(KINDS))
def test_metric_axioms_and_negative_type(case, kind):
    config, X = case
    D = ssimref.distance_matrix(X, kind=kind, config=config)
    assert np.all(D >= 0)
    assert np.array_equal(D, D.T)
    assert np.all(np.diag(D) == 0)
    slack = 1e-9 * max(D.max(), 1.0)
    # Triangle inequality for every triple: D[i, k] <= D[i, j] + D[j, k].
    assert np.all(D[:, None, :] <= D[:, :, None] + D[None, :, :] + slack)
    _assert_psd(_centred_gram(D))
    _assert_psd(_centred_gram(D * D))


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
