"""Agreement with scikit-image's structural_similarity under matched conventions.

scikit-image filters with reflected borders and crops (win_size - 1) / 2 pixels before
averaging, so the interior of its full map is exactly our map of 'valid' windows.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from ssimref import SSIMConfig, ssim, ssim_map

skm = pytest.importorskip("skimage.metrics")


def _skimage(x, y, data_range, win_size=None, gaussian=False, sample=True, channels=False):
    kw = dict(data_range=data_range, full=True, gaussian_weights=gaussian,
              use_sample_covariance=sample)
    if win_size is not None:
        kw["win_size"] = win_size
    if channels:
        kw["channel_axis"] = -1
    mean, full = skm.structural_similarity(x, y, **kw)
    pad = ((11 if gaussian else (win_size or 7)) - 1) // 2
    return mean, full[pad:full.shape[0] - pad, pad:full.shape[1] - pad]


CASES = [
    # (our conventions, scikit-image keywords)
    (dict(window="uniform", size=7, covariance="sample"), dict(win_size=7)),
    (dict(window="uniform", size=7, covariance="population"), dict(win_size=7, sample=False)),
    (dict(window="uniform", size=5, covariance="sample"), dict(win_size=5)),
    (dict(window="uniform", size=9, covariance="population"), dict(win_size=9, sample=False)),
    (dict(window="gaussian", size=11, sigma=1.5, covariance="count"), dict(gaussian=True)),
    (dict(window="gaussian", size=11, sigma=1.5, covariance="population"),
     dict(gaussian=True, sample=False)),
]


@pytest.mark.parametrize("ours, theirs", CASES)
@pytest.mark.parametrize("data_range", [1.0, 255.0])
@pytest.mark.parametrize("channels", [False, True])
def test_maps_and_means_agree(ours, theirs, data_range, channels, rng):
    shape = (23, 30, 3) if channels else (23, 30)
    x = rng.random(shape) * data_range
    y = np.clip(x + rng.normal(0, 0.2 * data_range, shape), 0, data_range)
    mean, full = _skimage(x, y, data_range, channels=channels, **theirs)
    ours_map = ssim_map(x, y, data_range=data_range, **ours)
    assert ours_map.shape == full.shape
    np.testing.assert_allclose(ours_map, full, rtol=0, atol=1e-10)
    assert ssim(x, y, data_range=data_range, **ours) == pytest.approx(mean, abs=1e-10)


def test_presets_match_skimage_defaults(rng):
    x = rng.integers(0, 256, (40, 33), dtype=np.uint8)
    y = rng.integers(0, 256, (40, 33), dtype=np.uint8)
    # uint8: both infer data_range 255 from the dtype.
    assert ssim(x, y, SSIMConfig.skimage()) == pytest.approx(
        skm.structural_similarity(x, y), abs=1e-10)
    assert ssim(x, y, SSIMConfig.skimage(gaussian_weights=True)) == pytest.approx(
        skm.structural_similarity(x, y, gaussian_weights=True), abs=1e-10)


@given(data=st.data())
def test_agreement_on_generated_images(data):
    h = data.draw(st.integers(7, 16))
    w = data.draw(st.integers(7, 16))
    from hypothesis.extra.numpy import arrays
    elems = st.floats(0, 1, allow_nan=False, allow_subnormal=False)
    x = data.draw(arrays(np.float64, (h, w), elements=elems))
    y = data.draw(arrays(np.float64, (h, w), elements=elems))
    mean, full = _skimage(x, y, 1.0)
    np.testing.assert_allclose(ssim_map(x, y, SSIMConfig.skimage(1.0)), full, atol=1e-10)
    assert ssim(x, y, SSIMConfig.skimage(1.0)) == pytest.approx(mean, abs=1e-10)
