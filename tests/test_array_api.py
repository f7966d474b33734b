"""The core on every array library: NumPy, array_api_strict (a strict stand-in that fails
on NumPy-only calls) and CuPy where a device exists. Results equal NumPy's."""

import numpy as np
import pytest

import ssimref
from ssimref.backend import to_numpy

KINDS = ("eq1", "eq1-uncentered", "eq2")


@pytest.fixture
def images(rng):
    return rng.random((5, 13, 12, 2)) * 255


def test_components_maps_and_scalars(xp, images):
    x, y = images[0], images[1]
    X, Y = xp.asarray(x), xp.asarray(y)
    kw = dict(data_range=255.0, window="gaussian", size=5, stride=2)
    for ours, ref in zip(ssimref.ssim_components(X, Y, **kw), ssimref.ssim_components(x, y, **kw)):
        np.testing.assert_allclose(to_numpy(ours), ref, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(to_numpy(ssimref.ssim_map(X, Y, **kw)),
                               ssimref.ssim_map(x, y, **kw), rtol=1e-14, atol=1e-15)
    assert ssimref.ssim(X, Y, **kw) == pytest.approx(ssimref.ssim(x, y, **kw), rel=1e-14)
    for kind in KINDS:
        np.testing.assert_allclose(to_numpy(ssimref.distance_map(X, Y, kind, **kw)),
                                   ssimref.distance_map(x, y, kind, **kw), rtol=1e-13)
        assert ssimref.distance(X, Y, kind, **kw) == pytest.approx(
            ssimref.distance(x, y, kind, **kw), rel=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_distance_matrix(xp, images, kind):
    kw = dict(data_range=255.0, window="uniform", size=4, kind=kind)
    ref = ssimref.distance_matrix(images, backend="reference", **kw)
    D = ssimref.distance_matrix(xp.asarray(images), backend="reference", working_memory=0.01,
                                **kw)
    assert type(D) is type(xp.asarray(images))
    np.testing.assert_allclose(to_numpy(D), ref, rtol=1e-14, atol=1e-14)
    # A NumPy out receives results computed on another array library.
    out = np.empty((5, 3), np.float32)
    ssimref.distance_matrix(xp.asarray(images), xp.asarray(images[:3]), out=out, **kw)
    np.testing.assert_allclose(out, ref[:, :3], rtol=1e-6)


def test_integer_images(xp, rng):
    x = rng.integers(0, 256, (9, 9), dtype=np.uint8)
    y = rng.integers(0, 256, (9, 9), dtype=np.uint8)
    assert ssimref.ssim(xp.asarray(x), xp.asarray(y)) == pytest.approx(
        ssimref.ssim(x.astype(float), y.astype(float), data_range=255), rel=1e-14)
