"""float32 mode: the images are shifted in float64 by their common mean before they are
cast, so an offset costs no accuracy (docs/conventions.md, "float32").

The float64 computation (itself checked against the loop oracle) is the peer; the bound
is float32's rounding of the local variance of data in [0, 1] around its mean,
2^-24 * 0.5^2, relative to c2 = k2^2 = 9e-4 (about 2e-5), with a margin of 10.
"""

import numpy as np
import pytest

import ssimref
from ssimref import datasets

PATCHES = datasets.load("patches", n=12, side=28, seed=0).images.astype(np.float64)
BOUND = 10 * 2.0 ** -24 * 0.25 / 0.03 ** 2


@pytest.mark.parametrize("offset", [0.0, 1e3, 1e8, 1e12])
@pytest.mark.parametrize("window", ["gaussian", "uniform"])
def test_float32_is_as_accurate_at_any_offset(offset, window):
    kw = dict(data_range=255, window=window, size=7)
    for i in range(0, len(PATCHES), 2):
        x, y = PATCHES[i] + offset, PATCHES[i + 1] + offset
        m64 = ssimref.ssim_map(x, y, **kw)
        m32 = ssimref.ssim_map(x, y, dtype="float32", **kw)
        assert m32.dtype == np.float32
        assert np.max(np.abs(m32 - m64)) <= BOUND
        for kind in ("eq1", "eq2"):
            d64 = ssimref.distance(x, y, kind, **kw)
            d32 = ssimref.distance(x, y, kind, dtype="float32", **kw)
            assert abs(d32 - d64) <= BOUND * d64


def test_the_issue_example_offset_1e8():
    # cast before the shift, float32's spacing at 1e8 (8) swallows 8-bit variation;
    # measured 0.29 (maps) before the shift moved into float64
    x, y = PATCHES[0] + 1e8, PATCHES[1] + 1e8
    m64 = ssimref.ssim_map(x, y, data_range=255)
    m32 = ssimref.ssim_map(x, y, data_range=255, dtype="float32")
    assert np.max(np.abs(m32 - m64)) < 2e-4
    # the luminance term still sees the offset: identical offsets, s1 = 1 - tiny
    s1, _ = ssimref.ssim_components(x, y, data_range=255, dtype="float32")
    np.testing.assert_allclose(s1, 1.0, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", np.float32, "float64", np.float64])
def test_out_with_the_same_dtype_asked_for_is_accepted(dtype, tmp_path):
    """``out=`` with ``dtype=`` naming its own dtype (as a string or a NumPy type) fills
    ``out`` with the values of the call without ``out`` (the same bits); a memmap too."""
    X = np.random.default_rng(4).integers(0, 256, (9, 10, 10), dtype=np.uint8)
    want = ssimref.distance_matrix(X, size=3, dtype=dtype)
    out = np.lib.format.open_memmap(tmp_path / "D.npy", mode="w+", dtype=want.dtype,
                                    shape=(9, 9))
    out[...] = np.nan
    got = ssimref.distance_matrix(X, size=3, dtype=dtype, out=out)
    assert got is out
    np.testing.assert_array_equal(np.asarray(out), want)
    other = np.float64 if want.dtype == np.float32 else np.float32
    with pytest.raises(ValueError, match="leave dtype=None"):
        ssimref.distance_matrix(X, size=3, dtype=dtype, out=np.empty((9, 9), other))
