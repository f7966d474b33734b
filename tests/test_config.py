"""SSIMConfig: presets, derived values, overrides."""

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

import ssimref
from ssimref import SSIMConfig
from ssimref.config import resolve_config


def test_defaults_are_the_documented_ones():
    cfg = SSIMConfig()
    assert (cfg.window, cfg.size, cfg.sigma, cfg.stride, cfg.data_range, cfg.k1, cfg.k2,
            cfg.covariance) == ("gaussian", 7, 1.5, 1, None, 0.01, 0.03, "sample")


def test_presets():
    assert SSIMConfig.paper(255).covariance == "sample"
    w = SSIMConfig.wang2004()
    assert (w.window, w.size, w.sigma, w.covariance, w.data_range) == \
        ("gaussian", 11, 1.5, "population", None)
    s = SSIMConfig.skimage(1.0)
    assert (s.window, s.size, s.covariance) == ("uniform", 7, "sample")
    g = SSIMConfig.skimage(1.0, gaussian_weights=True)
    assert (g.window, g.size, g.sigma, g.covariance) == ("gaussian", 11, 1.5, "count")


def test_gaussian_taps_match_scipy_filter_weights():
    # scipy.ndimage's Gaussian with truncate 3.5 and sigma 1.5 has 11 taps: the impulse
    # response of gaussian_filter1d is the normalised weight vector.
    impulse = np.zeros(11)
    impulse[5] = 1.0
    expected = gaussian_filter1d(impulse, 1.5, truncate=3.5, mode="constant")
    np.testing.assert_allclose(SSIMConfig(size=11).taps(), expected, rtol=1e-14, atol=1e-17)


@pytest.mark.parametrize("size", [2, 3, 7, 8])
def test_uniform_sample_factor_is_q_over_q_minus_1(size):
    cfg = SSIMConfig(window="uniform", size=size)
    q = size * size
    assert cfg.covariance_factor() == pytest.approx(q / (q - 1), rel=1e-15)


def test_gaussian_sample_factor_is_unbiased_for_normalised_weights():
    cfg = SSIMConfig(window="gaussian", size=11, sigma=1.5)
    w = np.outer(cfg.taps(), cfg.taps())
    assert cfg.covariance_factor() == pytest.approx(1 / (1 - (w ** 2).sum()), rel=1e-14)
    # For iid pixels of variance v, E[sum w (x - mu_w)^2] = v (1 - sum w^2): the factor
    # 1 / (1 - sum w^2) makes the estimate unbiased; 1.0367 for the 11-tap Gaussian.
    assert cfg.covariance_factor() == pytest.approx(1.0367, abs=1e-4)
    assert SSIMConfig(window="gaussian", size=11, covariance="count").covariance_factor() == \
        pytest.approx(121 / 120)
    assert SSIMConfig(covariance="population").covariance_factor() == 1.0


def test_constants_and_positions():
    cfg = SSIMConfig(data_range=255, size=7, stride=2)
    c1, c2 = cfg.constants()
    assert c1 == pytest.approx((0.01 * 255) ** 2) and c2 == pytest.approx((0.03 * 255) ** 2)
    assert cfg.positions(28, 20) == ((28 - 7) // 2 + 1, (20 - 7) // 2 + 1)
    assert cfg.q == 49


def test_resolve_config_overrides_and_keeps_none_as_unset():
    base = SSIMConfig.wang2004()
    cfg = resolve_config(base, size=None, stride=2, data_range=1)
    assert cfg.size == 11 and cfg.stride == 2 and cfg.data_range == 1.0
    assert resolve_config(None) == SSIMConfig()
    assert resolve_config(base, size=9.0).size == 9


@pytest.mark.parametrize("bad, match", [
    (dict(window="box"), "window"),
    (dict(covariance="unbiased"), "covariance"),
    (dict(size=1), "size"),
    (dict(size=6), "odd"),
    (dict(window="uniform", size=2.5), "size"),
    (dict(stride=0), "stride"),
    (dict(sigma=0.0), "sigma"),
    (dict(sigma=math.inf), "sigma"),
    (dict(k1=-0.01), "k1"),
    (dict(k2=0), "k2"),
    (dict(data_range=0), "data_range"),
    (dict(data_range=-1.0), "data_range"),
    (dict(data_range=math.nan), "data_range"),
    (dict(data_range="255"), "data_range"),
])
def test_bad_conventions_are_rejected_by_name(bad, match):
    with pytest.raises(ValueError, match=match):
        SSIMConfig(**bad)


def test_unknown_override_and_wrong_config_type():
    with pytest.raises(TypeError, match="win_size"):
        resolve_config(None, win_size=7)
    with pytest.raises(TypeError, match="config"):
        resolve_config({"size": 7})


# --------------------------------------------- the sample-covariance factor, tiny sigma
def _factor_in_60_digits(size, sigma):
    """1 / (1 - sum w^2) of the 2-D Gaussian window, in 60-digit decimal arithmetic from
    the exact binary sigma: the naive formula, made harmless by the precision."""
    from decimal import Decimal, localcontext
    with localcontext() as ctx:
        ctx.prec = 60
        r, s = Decimal(size - 1) / 2, Decimal(sigma)
        e = [(-((Decimal(k) - r) ** 2) / (2 * s * s)).exp() for k in range(size)]
        total = sum(e)
        S = sum((v / total) ** 2 for v in e)
        return 1 / (1 - S * S)


@pytest.mark.parametrize("size", [3, 5, 7, 11, 15])
@pytest.mark.parametrize("sigma", [0.18, 0.2, 0.25, 0.3, 0.5, 1.0, 1.5, 3.5, 10.0, 1e3])
def test_sample_factor_has_no_cancellation(size, sigma):
    from decimal import Decimal
    f = SSIMConfig(size=size, sigma=sigma).covariance_factor()
    exact = _factor_in_60_digits(size, sigma)
    assert abs(Decimal(f) - exact) <= Decimal(1e-14) * exact
    # a huge sigma is the uniform window: q / (q - 1)
    if sigma == 1e3:
        assert f == pytest.approx(size * size / (size * size - 1.0), rel=1e-6)


@pytest.mark.parametrize("sigma", [0.1, 0.17, 1e-3, 1e-300])
@pytest.mark.parametrize("size", [3, 7, 11])
def test_one_pixel_windows_are_refused_at_construction(size, sigma):
    # the SSIMConfig(sigma=0.1): 1 - sum w^2 rounded to 0 and ssim raised a bare
    # ZeroDivisionError; the factor (1e20 and more) would only amplify round-off
    with pytest.raises(ValueError, match=r"sigma=.*covariance='sample'.*1/\(1 - sum w\^2\)"):
        SSIMConfig(size=size, sigma=sigma)
    with pytest.raises(ValueError, match="sigma"):
        ssimref.ssim(np.zeros((16, 16)), np.zeros((16, 16)), data_range=1, size=size,
                     sigma=sigma)
    # the other normalisations have no such factor: the window is legal there
    for covariance in ("population", "count"):
        config = SSIMConfig(size=size, sigma=sigma, covariance=covariance)
        assert np.isfinite(ssimref.ssim(np.eye(16), np.ones((16, 16)), config,
                                        data_range=1))


def test_the_accepted_bound_is_stated():
    from ssimref.config import MAX_COVARIANCE_FACTOR
    assert SSIMConfig(sigma=0.18).covariance_factor() <= MAX_COVARIANCE_FACTOR == 1e6
