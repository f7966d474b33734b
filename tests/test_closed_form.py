"""The paper's Eq. (1) closed form and the identities between the three distances."""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

import ssimref
from ssimref import SSIMConfig


def _centre_blocks(a, b):
    """Subtract each non-overlapping b x b block's mean."""
    h, w = a.shape
    blocks = a.reshape(h // b, b, w // b, b)
    return (blocks - blocks.mean(axis=(1, 3), keepdims=True)).reshape(h, w)


def _blocks(a, b):
    h, w = a.shape
    return a.reshape(h // b, b, w // b, b).transpose(0, 2, 1, 3).reshape(-1, b * b)


@given(st.integers(2, 5), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["sample", "population"]), st.data())
def test_eq1_closed_form_on_zero_mean_blocks(b, rows, cols, covariance, data):
    L = 255.0
    shape = (rows * b, cols * b)
    elems = st.floats(0, L, allow_nan=False, allow_subnormal=False)
    x = _centre_blocks(data.draw(arrays(np.float64, shape, elements=elems)), b)
    y = _centre_blocks(data.draw(arrays(np.float64, shape, elements=elems)), b)
    config = SSIMConfig(window="uniform", size=b, stride=b, data_range=L,
                        covariance=covariance)
    q = b * b
    c2 = (0.03 * L) ** 2
    c = (q - 1) * c2 if covariance == "sample" else q * c2
    xb, yb = _blocks(x, b), _blocks(y, b)
    per_block = ((xb - yb) ** 2).sum(1) / ((xb ** 2).sum(1) + (yb ** 2).sum(1) + c)
    # Eq. (1): sqrt(1 - SSIM) = ||x - y|| / sqrt(||x||^2 + ||y||^2 + c) on centred windows.
    np.testing.assert_allclose(ssimref.distance_map(x, y, "eq1", config).ravel(),
                               np.sqrt(per_block), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(1 - ssimref.ssim_map(x, y, config).ravel(), per_block,
                               rtol=1e-10, atol=1e-12)
    assert ssimref.distance(x, y, "eq1", config, squared=True) == pytest.approx(
        per_block.sum(), rel=1e-10, abs=1e-12)


@given(st.data())
def test_distance_kinds_relate_through_s1_and_s2(data):
    elems = st.floats(0, 1, allow_nan=False, allow_subnormal=False)
    x = data.draw(arrays(np.float64, (9, 10), elements=elems))
    y = data.draw(arrays(np.float64, (9, 10), elements=elems))
    config = SSIMConfig(data_range=1.0, size=5)
    s1, s2 = ssimref.ssim_components(x, y, config)
    tol = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ssimref.distance_map(x, y, "eq1", config) ** 2, 1 - s2, **tol)
    np.testing.assert_allclose(ssimref.distance_map(x, y, "eq2", config) ** 2, 2 - s1 - s2,
                               **tol)
    np.testing.assert_allclose(ssimref.distance_map(x, y, "eq1-uncentered", config) ** 2,
                               1 - s1 * s2, **tol)
    np.testing.assert_allclose(ssimref.ssim_map(x, y, config), s1 * s2, **tol)
    assert np.all(np.abs(s1) <= 1 + 1e-15) and np.all(np.abs(s2) <= 1 + 1e-15)


def test_identical_images_give_exactly_zero(rng):
    x = rng.random((12, 11, 3)) * 1000 + 1e6  # large offset, float cancellation bait
    for kind in ("eq1", "eq1-uncentered", "eq2"):
        assert ssimref.distance(x, x.copy(), kind, data_range=1000) == 0.0
        assert np.all(ssimref.distance_map(x, x, kind, data_range=1000) == 0.0)
    s1, s2 = ssimref.ssim_components(x, x, data_range=1000)
    assert np.all(s1 == 1.0) and np.all(s2 == 1.0)


def test_large_offset_does_not_cancel(rng):
    # Shifting both images by a constant leaves s2 unchanged; in float64 the naive
    # E[xy] - E[x]E[y] loses about 12 digits at an offset of 1e6 with unit-range data.
    x = rng.random((16, 16))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    _, s2 = ssimref.ssim_components(x, y, data_range=1.0)
    _, s2_shifted = ssimref.ssim_components(x + 1e6, y + 1e6, data_range=1.0)
    np.testing.assert_allclose(s2_shifted, s2, rtol=0, atol=1e-8)


def test_images_equal_on_every_window_are_at_distance_exactly_zero(rng):
    # Stride 3 with 2x2 windows leaves every third row and column outside all windows:
    # images that differ only there are identical as far as SSIM can see.
    config = SSIMConfig(window="uniform", size=2, stride=3, data_range=255)
    x = rng.random((8, 8)) * 255
    y = x.copy()
    y[2::3, :] = rng.random((2, 8)) * 255
    y[:, 2::3] = 7.0
    for kind in ("eq1", "eq1-uncentered", "eq2"):
        assert ssimref.distance(x, y, kind, config) == 0.0
        D = ssimref.distance_matrix(np.stack([x, y, x * 0.5]), kind=kind, config=config)
        assert D[0, 1] == 0.0 and D[0, 2] > 0
        _, dx, dy = ssimref.paired_distance_and_grad(x[None], y[None], kind, config)
        assert np.all(dx == 0) and np.all(dy == 0)
