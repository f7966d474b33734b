"""Every public quantity of the core against the loop-based oracle.

The oracle evaluates the textbook formulas window by window (two-pass means and
covariances), sharing no computation with the vectorised code. Values in [-1, 2] agree to
1e-12; sums over windows to 1e-12 times the number of terms.
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

import ssimref
from ssimref import SSIMConfig
from ssimref.verification import oracle

from .strategies import KINDS, config_and_pair, config_and_stack

TOL = 1e-12


@given(config_and_pair())
def test_components_and_ssim(case):
    config, x, y = case
    s1, s2 = ssimref.ssim_components(x, y, config)
    o1, o2 = oracle.ssim_components(x, y, config)
    assert s1.shape == o1.shape
    np.testing.assert_allclose(s1, o1, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(s2, o2, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(ssimref.ssim_map(x, y, config), oracle.ssim_map(x, y, config),
                               rtol=TOL, atol=TOL)
    assert ssimref.ssim(x, y, config) == pytest.approx(oracle.ssim(x, y, config),
                                                       rel=TOL, abs=TOL)


@given(config_and_pair(), st.sampled_from(KINDS))
def test_distance_maps_and_distances(case, kind):
    config, x, y = case
    sq = oracle.squared_distance_map(x, y, config, kind)
    ours = ssimref.distance_map(x, y, kind, config)
    np.testing.assert_allclose(ours ** 2, sq, rtol=TOL, atol=TOL)
    terms = sq.size
    d2 = ssimref.distance(x, y, kind, config, squared=True)
    assert d2 == pytest.approx(oracle.squared_distance(x, y, config, kind),
                               rel=TOL, abs=TOL * terms)
    assert ssimref.distance(x, y, kind, config) == pytest.approx(np.sqrt(d2), rel=1e-15)


@given(config_and_stack(n_min=1, n_max=4), st.sampled_from(KINDS), st.booleans())
def test_distance_matrix(case, kind, rectangular):
    config, X = case
    Y = X[::-1] + 0.0 if rectangular else None
    D2 = ssimref.distance_matrix(X, Y, kind, config, squared=True)
    expected = oracle.distance_matrix(X, Y, config, kind) ** 2
    terms = np.prod(config.positions(*X.shape[1:3])) * (X.shape[3] if X.ndim == 4 else 1)
    np.testing.assert_allclose(D2, expected, rtol=TOL, atol=TOL * terms)


def test_exact_rational_oracle_agrees_with_float_oracle_and_with_us(rng):
    config = SSIMConfig(window="uniform", size=3, stride=2, data_range=255)
    x = rng.integers(0, 256, (7, 8))
    y = rng.integers(0, 256, (7, 8))
    exact = oracle.squared_distance_map(x, y, config, "eq2", exact=True)
    assert isinstance(exact.flat[0], Fraction)
    approx = oracle.squared_distance_map(x, y, config, "eq2")
    np.testing.assert_allclose(approx, exact.astype(float), rtol=1e-13, atol=1e-15)
    ours = ssimref.distance_map(x.astype(np.uint8), y.astype(np.uint8), "eq2", config) ** 2
    np.testing.assert_allclose(ours, exact.astype(float), rtol=1e-12, atol=1e-14)
    s1, s2 = oracle.ssim_components(x, y, config, exact=True)
    np.testing.assert_allclose(ssimref.ssim_components(x, y, config)[0], s1.astype(float),
                               rtol=1e-13, atol=1e-15)


@st.composite
def near_agreeing_pairs(draw):
    """A uniform-window config with gaps between windows, an image x of multiples of
    L/64, and y = x except for changes of 2^-15..2^-40 of L at some covered pixels and
    arbitrary values at every pixel no window covers (which move the mean of x - y)."""
    size = draw(st.integers(2, 3))
    stride = draw(st.integers(size, size + 2))
    ho, wo = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    height = (ho - 1) * stride + size + draw(st.integers(0, 2))
    width = (wo - 1) * stride + size + draw(st.integers(0, 2))
    config = SSIMConfig(window="uniform", size=size, stride=stride,
                        data_range=draw(st.sampled_from([1.0, 255.0])),
                        covariance=draw(st.sampled_from(["sample", "population", "count"])))
    L = config.data_range
    covered = np.zeros((height, width), bool)
    for p in range(ho):
        for q in range(wo):
            covered[p * stride:p * stride + size, q * stride:q * stride + size] = True
    levels = st.integers(0, 64)
    x = np.array(draw(st.lists(levels, min_size=height * width, max_size=height * width)),
                 dtype=float).reshape(height, width) * (L / 64)
    y = x.copy()
    for i, j in zip(*np.nonzero(covered)):
        if draw(st.booleans()):
            y[i, j] += draw(st.sampled_from([-1, 1])) * 2.0 ** -draw(st.integers(15, 40)) * L
    for i, j in zip(*np.nonzero(~covered)):
        y[i, j] = draw(levels) * (L / 64)
    return config, x, y


@given(near_agreeing_pairs(), st.sampled_from(KINDS))
def test_near_agreeing_windows_against_exact_arithmetic(case, kind):
    """The reference's stated bound (ssimref.moments.reference_rtol) holds relative to the
    exact value, with no absolute floor, where the images nearly agree on every window
    and differ arbitrarily outside them: pixels no window sees do not move the result."""
    from ssimref.moments import reference_rtol
    config, x, y = case
    exact = oracle.squared_distance(np.vectorize(Fraction, otypes=[object])(x),
                                    np.vectorize(Fraction, otypes=[object])(y),
                                    config, kind, exact=True)
    for got in (ssimref.distance(x, y, kind, config, squared=True),
                ssimref.distance_matrix(np.stack([x, y]), kind=kind, config=config,
                                        squared=True, backend="reference")[0, 1]):
        assert abs(Fraction(got) - exact) <= Fraction(reference_rtol(config)) * exact
