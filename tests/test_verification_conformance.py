"""The conformance runner: scikit-image under its own convention, mismatched knobs named,
deliberately wrong implementations diagnosed by name, NaN never matched, knobs accepted
only when cases agree, the cancellation rule, PyTorch peers when installed, the CLI."""

import math
import sys

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import ssimref
from ssimref import SSIMConfig
from ssimref.cli import main
from ssimref.verification.cases import CASE_NAMES, corpus
from ssimref.verification.conformance import candidate_changes, check
from ssimref.verification.conformance.fitting import cancellation_bound
from ssimref.verification.conventions import PRESETS, Convention
from ssimref.verification.peers import Peer, PeerUnavailable, load_peer

skimage_metrics = pytest.importorskip("skimage.metrics")
structural_similarity = skimage_metrics.structural_similarity

SMALL = [n for n in CASE_NAMES if n != "large_downsampling"]
NOT_TRAPS = [n for n in SMALL if n != "large_offset"]


def wang_ssim(x, y, data_range):
    """A module:function target: ssimref's core under Wang et al. 2004."""
    return ssimref.ssim(x, y, SSIMConfig.wang2004(data_range))


def luminance_bug_ssim(x, y, data_range):
    """A deliberately wrong SSIM (uniform 7x7 windows, sample covariance like scikit-image):
    the luminance term uses image 1's window mean for both windows."""
    wx, wy = sliding_window_view(x, (7, 7)), sliding_window_view(y, (7, 7))
    mu_x, mu_y = wx.mean(axis=(-2, -1)), wy.mean(axis=(-2, -1))
    dx, dy = wx - mu_x[..., None, None], wy - mu_y[..., None, None]
    var_x, var_y = (dx * dx).sum(axis=(-2, -1)) / 48, (dy * dy).sum(axis=(-2, -1)) / 48
    cov = (dx * dy).sum(axis=(-2, -1)) / 48
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    luminance = (2 * mu_x * mu_x + c1) / (mu_x * mu_x + mu_x * mu_x + c1)  # the defect
    return float(np.mean(luminance * (2 * cov + c2) / (var_x + var_y + c2)))


def _gaussian_2d(size=11, sigma=1.5):
    g = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma ** 2))
    return np.outer(g, g) / np.outer(g, g).sum()


def _one_pass_ssim(x, y, data_range, w, eps=0.0):
    """SSIM over valid windows with weights ``w`` as implementations compute it:
    sigma^2 = E_w[x^2] - E_w[x]^2, and eps added to the product of the denominators."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    wx, wy = (sliding_window_view(a, w.shape) for a in (x, y))

    def mean(v):
        return np.einsum("...ij,ij->...", v, w)
    mu_x, mu_y = mean(wx), mean(wy)
    var_x, var_y = mean(wx * wx) - mu_x ** 2, mean(wy * wy) - mu_y ** 2
    cov = mean(wx * wy) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    return float(np.mean(num / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2) + eps)))


def eps_ssim(x, y, data_range):
    """A deliberately wrong Wang 2004: eps = 1e-10 added to the denominator."""
    return _one_pass_ssim(x, y, data_range, _gaussian_2d(), eps=1e-10)


def rounded_window_ssim(x, y, data_range):
    """A deliberately wrong Wang 2004: the window rounded to 6 decimals (sum 1 - 2e-6)."""
    return _one_pass_ssim(x, y, data_range, np.round(_gaussian_2d(), 6))


def float32_window_ssim(x, y, data_range):
    """A deliberately wrong Wang 2004: the 1-D window computed and normalised in float32
    (offsets, exp and sum rounded to float32), used in float64 arithmetic."""
    c = np.arange(11, dtype=np.float32) - np.float32(5)
    t = (c * c) / np.float32(4.5)
    e = np.array([math.exp(-float(v)) for v in t], dtype=np.float32)
    g = (e / np.float32(math.fsum(e.tolist()))).astype(np.float32).astype(np.float64)
    return _one_pass_ssim(x, y, data_range, np.outer(g, g))


def long_filter_ssim(x, y, data_range):
    """A deliberately wrong Wang 2004: the 11-tap Gaussian filters the whole image
    (scipy.ndimage, mode 'reflect') and the map is cropped by 3 pixels, not 5."""
    from scipy.ndimage import gaussian_filter

    def f(a):
        return gaussian_filter(a, 1.5, truncate=3.5, mode="reflect")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    mu_x, mu_y = f(x), f(y)
    var_x, var_y = f(x * x) - mu_x ** 2, f(y * y) - mu_y ** 2
    cov = f(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)
         / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2)))
    return float(np.mean(s[3:-3, 3:-3]))


# ------------------------------------------------------------------------ scikit-image
def test_skimage_passes_under_its_own_convention():
    result = check("skimage", cases=NOT_TRAPS)
    assert result.passed, str(result)
    assert result.diagnosis.verdict == "conforms"
    assert max(c.error for c in result.cases if c.name != "float32_input") < 1e-12


def test_skimage_full_corpus_fails_only_the_cancellation_trap():
    result = check("skimage")
    failing = [c.name for c in result.cases if not c.passed]
    assert failing == ["large_offset"]
    large = next(c for c in result.cases if c.name == "large_offset")
    assert 1e-5 < large.error < 1e-2  # E[x^2] - E[x]^2 at an offset of 1e8
    d = result.diagnosis
    assert d.changes == [] and d.unexplained == [] and d.verdict == "numerical"
    assert [name for name, _, _ in d.numerical] == ["large_offset"]
    assert "cancellation bound" in str(d)


def test_mismatched_data_range_is_named():
    def fixed_range(x, y, data_range):
        return structural_similarity(x, y, data_range=1.0)  # ignores the caller's range
    result = check(fixed_range, "skimage", cases=NOT_TRAPS)
    assert not result.passed
    assert result.diagnosis.knobs == ["data_range"]
    assert result.diagnosis.convention.data_range == 1.0
    assert result.diagnosis.verdict == "convention"
    # cases whose range is 1 agree: the fixed 1.0 only shows where L = 255
    assert next(c for c in result.cases if c.name == "unit_range").passed


def test_mismatched_window_is_named():
    def window5(x, y, data_range):
        return structural_similarity(x, y, data_range=data_range, win_size=5)
    result = check(window5, "skimage", cases=NOT_TRAPS)
    assert result.diagnosis.knobs == ["window"]
    fitted = result.diagnosis.convention
    assert (fitted.window, fitted.size) == ("uniform", 5)
    assert "uniform 5x5" in str(result.diagnosis)


def test_gaussian_weights_are_named_with_their_covariance():
    # scikit-image's use_sample_covariance is w^2 / (w^2 - 1) whatever the weights ("count",
    # equal to "sample" for its uniform window): with gaussian_weights only the window changes
    def gaussian(x, y, data_range):
        return structural_similarity(x, y, data_range=data_range, gaussian_weights=True)
    result = check(gaussian, "skimage", cases=NOT_TRAPS)
    assert result.diagnosis.knobs == ["window"]
    fitted = result.diagnosis.convention
    assert (fitted.window, fitted.size, fitted.covariance) == ("gaussian", 11, "count")
    assert check(gaussian, "wang2004", cases=NOT_TRAPS).diagnosis.knobs == ["covariance"]
    # and under the right preset it conforms
    assert check(gaussian, "skimage-gaussian", cases=NOT_TRAPS).passed


def test_population_covariance_is_named():
    def population(x, y, data_range):
        return structural_similarity(x, y, data_range=data_range, use_sample_covariance=False)
    result = check(population, "skimage", cases=NOT_TRAPS)
    assert result.diagnosis.knobs == ["covariance"]
    assert result.diagnosis.convention.covariance == "population"


def test_luminance_defect_fails_and_is_named():
    result = check(luminance_bug_ssim, "skimage", cases=SMALL)
    assert not result.passed
    assert result.diagnosis.knobs == ["luminance"]
    assert result.diagnosis.verdict == "convention"
    assert result.diagnosis.residual < 1e-8  # float32_input arrives as float32
    assert "image 1's mean" in str(result.diagnosis)
    # identical images cannot reveal it; a luminance difference does
    assert next(c for c in result.cases if c.name == "identical").passed
    assert not next(c for c in result.cases if c.name == "constant_images").passed


@pytest.mark.parametrize("fn,cases,knob,fitted", [
    (eps_ssim, ["random_pair", "unit_range", "black_half_range", "constant_images"], "eps",
     {"eps": 1e-10}),
    (rounded_window_ssim, ["random_pair", "constant_images", "narrow_range", "odd_size"],
     "weights", {"weights": "round6"}),
    (float32_window_ssim, ["random_pair", "constant_images", "narrow_range", "odd_size"],
     "weights", {"weights": "float32"}),
    (long_filter_ssim, ["random_pair", "odd_size", "tiny", "correlated_pair"], "filter",
     {"size": 11, "border": "same-symmetric", "crop": 3}),
], ids=["eps", "round6", "float32", "filter"])
def test_new_knobs_are_named(fn, cases, knob, fitted):
    result = check(fn, "wang2004", cases=cases)
    assert not result.passed
    d = result.diagnosis
    assert d.knobs == [knob] and d.verdict == "convention", str(d)
    for name, value in fitted.items():
        assert getattr(d.convention, name) == value
    assert d.residual < 1e-9
    assert check(fn, d.convention, cases=cases).passed


def test_scikit_image_long_filter_is_named():
    def gaussian7(x, y, data_range):
        return structural_similarity(x, y, data_range=data_range, gaussian_weights=True,
                                     win_size=7)
    result = check(gaussian7, "skimage", cases=NOT_TRAPS)
    d = result.diagnosis
    assert d.knobs == ["filter"] and d.verdict == "convention"
    fitted = d.convention
    assert (fitted.window, fitted.size, fitted.sigma, fitted.border, fitted.crop,
            fitted.covariance) == ("gaussian", 11, 1.5, "same-symmetric", 3, "count")
    assert "cropped by 3 pixels" in str(d)
    assert max(c.error for c in check(gaussian7, fitted, cases=NOT_TRAPS).cases
               if c.name != "float32_input") < 1e-12


def test_core_conforms_as_a_module_function_target():
    result = check("tests.test_verification_conformance:wang_ssim", cases=SMALL)
    assert result.passed, str(result)
    assert max(c.error for c in result.cases if c.name != "float32_input") < 1e-12


_DTYPE_CODE = {np.uint8: 0.25, np.float32: 0.5, np.float64: 0.75}


def dtype_probe(x, y, data_range):
    """Returns a code for what it received: 0.25 uint8, 0.5 float32, 0.75 float64, plus
    0.01 for a Fortran-ordered and 0.02 for a strided (non-contiguous) array."""
    layout = 0.0 if x.flags.c_contiguous else 0.01 if x.flags.f_contiguous else 0.02
    assert x.flags.writeable and y.dtype == x.dtype
    return _DTYPE_CODE[x.dtype.type] + layout


def test_module_function_targets_get_each_cases_own_arrays():
    cases = ["uint8_overflow", "float32_input", "fortran_order", "non_contiguous",
             "multichannel", "random_pair"]
    result = check("tests.test_verification_conformance:dtype_probe", cases=cases, fit=False)
    rows = {c.name: c for c in result.cases}
    received = {name: rows[name].value for name in cases}
    assert received == pytest.approx({"uint8_overflow": 0.25, "float32_input": 0.5,
                                      "fortran_order": 0.76, "non_contiguous": 0.77,
                                      "multichannel": 0.77, "random_pair": 0.75})
    labels = {name: rows[name].passed_as for name in cases}
    assert labels == {"uint8_overflow": "24x24 uint8", "float32_input": "24x24 float32",
                      "fortran_order": "24x24 float64 F-order",
                      "non_contiguous": "24x20 float64 strided",
                      "multichannel": "20x22 float64 strided, per channel (x3)",
                      "random_pair": "24x24 float64"}
    assert "passed as" in result.table() and "24x24 uint8" in result.table()
    # a plain callable is called the same way; a Peer may ask for float64 copies
    assert check(dtype_probe, cases=["uint8_overflow"], fit=False).cases[0].value == 0.25
    peer = Peer("probe", dtype_probe, PRESETS["wang2004"], native=False)
    row = check(peer, cases=["uint8_overflow"], fit=False).cases[0]
    assert row.value == 0.75 and row.passed_as == "24x24 float64"


def test_module_function_target_in_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "my_ssim_target.py").write_text(
        "from skimage.metrics import structural_similarity\n"
        "def fn(x, y, data_range):\n"
        "    return structural_similarity(x, y, data_range=data_range)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = list(sys.path)
    try:
        assert check("my_ssim_target:fn", "skimage", cases=["random_pair"]).passed
        assert sys.path == before
        assert main(["verify", "my_ssim_target:fn", "--convention", "skimage", "--cases",
                     "odd_size"]) == 0
        assert sys.path == before
    finally:
        sys.modules.pop("my_ssim_target", None)
    with pytest.raises(PeerUnavailable, match="no_such_module_here"):
        check("no_such_module_here:fn")


def test_exceptions_are_reported_per_case():
    def no_negatives(x, y, data_range):
        if min(x.min(), y.min()) < 0:
            raise ValueError("negative pixels")
        return wang_ssim(x, y, data_range)
    result = check(no_negatives, cases=["random_pair", "negated"])
    rows = {c.name: c for c in result.cases}
    assert rows["random_pair"].passed
    assert rows["negated"].value is None and not rows["negated"].passed
    assert "ValueError: negative pixels" in rows["negated"].message
    assert "ERROR" in result.table()


def test_nan_answers_fail():
    result = check(lambda x, y, data_range: float("nan"), cases=["random_pair"], fit=False)
    assert not result.passed


def test_nan_is_reported_as_nan_and_never_fitted():
    result = check(lambda x, y, data_range: float("nan"), cases=SMALL)
    assert not result.passed
    assert all(c.status == "NaN" and not c.passed for c in result.cases)
    d = result.diagnosis
    assert d.verdict == "no data" and d.changes == []
    text = str(result)
    assert f"returned NaN on {len(SMALL)}/{len(SMALL)} cases" in text
    assert "inf" not in result.table() and "conforms" not in text


def nan_on_flat(x, y, data_range):
    """scikit-image, but NaN when both images are flat (an implementation without c1, c2)."""
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        return float("nan")
    return structural_similarity(x, y, data_range=data_range)


FLAT = ["constant_images", "zero_images", "black_half_range"]


def test_nan_on_some_cases_is_never_a_match():
    result = check(nan_on_flat, "skimage", cases=NOT_TRAPS)
    assert not result.passed
    rows = {c.name: c for c in result.cases}
    assert [n for n in NOT_TRAPS if rows[n].status == "NaN"] == FLAT
    d = result.diagnosis
    assert d.verdict == "conforms" and d.changes == []  # over the finite answers
    assert f"returned NaN on 3/{len(NOT_TRAPS)} cases ({', '.join(FLAT)})" in str(d)
    # a stated convention whose oracle is NaN on the flat cases too (dynamic range: 0/0)
    # still fails them, and the fit is made on the finite answers only
    stated = PRESETS["skimage"].replace(data_range="dynamic")
    result = check(nan_on_flat, stated, cases=NOT_TRAPS)
    rows = {c.name: c for c in result.cases}
    assert all(not rows[n].passed and rows[n].status == "NaN" for n in FLAT)
    assert np.isnan(rows["zero_images"].expected)
    assert result.diagnosis.knobs == ["data_range"]
    assert result.diagnosis.convention.data_range is None


def test_inf_is_reported_as_inf():
    def inf_on_zero(x, y, data_range):
        return math.inf if not x.any() else wang_ssim(x, y, data_range)
    result = check(inf_on_zero, cases=["random_pair", "zero_images", "odd_size"])
    assert [c.status for c in result.cases] == ["pass", "Inf", "pass"]
    assert "returned Inf on 1/3 cases (zero_images)" in str(result.diagnosis)


# ------------------------------------------------------- accepting a knob, unexplained
def offset_ssim(x, y, data_range):
    """scikit-image plus 1e-3: a defect that no convention explains."""
    return structural_similarity(x, y, data_range=data_range) + 1e-3


def test_what_no_knob_explains_is_unexplained_with_its_errors():
    cases = ["random_pair", "identical", "zero_images", "unit_range", "odd_size"]
    result = check(offset_ssim, "skimage", cases=cases)
    d = result.diagnosis
    assert d.changes == [] and d.verdict == "unexplained" and d.numerical == []
    assert [name for name, _ in d.unexplained] == cases
    for _, err in d.unexplained:  # scikit-image agrees with the oracle to 1e-12
        assert err == pytest.approx(1e-3, abs=1e-9)
    assert "unexplained: random_pair: difference 1.00e-03" in str(d)


def k2_ssim(x, y, data_range):
    """scikit-image with K2 = 0.032 instead of 0.03: the constants are not a fitted knob."""
    return structural_similarity(x, y, data_range=data_range, K2=0.032)


def test_a_knob_that_only_lowers_errors_is_not_accepted():
    result = check(k2_ssim, "skimage", cases=NOT_TRAPS)
    d = result.diagnosis
    assert d.changes == [] and d.verdict == "unexplained"
    assert d.convention == PRESETS["skimage"]
    # population covariance lowers the largest error (the old runner accepted it) but
    # makes no failing case agree
    stated = {c.name: c for c in result.cases}
    population = check(k2_ssim, PRESETS["skimage"].replace(covariance="population"),
                       cases=NOT_TRAPS, fit=False)
    assert max(c.error for c in population.cases) < max(c.error for c in result.cases)
    assert {c.name for c in population.cases if c.passed} <= \
        {n for n, c in stated.items() if c.passed}


def narrow_defect(x, y, data_range):
    """scikit-image, but 1e-3 off when the content lies within 100..140."""
    value = structural_similarity(x, y, data_range=data_range)
    return value + 1e-3 if np.ptp(x) > 0 and 100 <= x.min() and x.max() <= 140 else value


def test_cancellation_is_named_only_when_everything_else_agrees():
    result = check(narrow_defect, "skimage", cases=SMALL)
    d = result.diagnosis
    assert d.numerical == [] and d.verdict == "unexplained"
    assert [name for name, _ in d.unexplained] == ["narrow_range", "large_offset"]
    assert "cancellation" not in str(d)


def test_cancellation_bound():
    skimage = PRESETS["skimage"]
    cases = {c.name: c for c in corpus(names=["random_pair", "large_offset", "uint8_overflow"])}
    # 4 n u max(x^2) / c2 with n = 576 pixels, c2 = (0.03 * 255)^2
    c2 = (0.03 * 255) ** 2
    peak = float(max(cases["large_offset"].x.max(), cases["large_offset"].y.max())) ** 2
    assert cancellation_bound(cases["large_offset"], skimage) == pytest.approx(
        4 * 576 * 2.0 ** -53 * peak / c2, rel=1e-12)
    assert cancellation_bound(cases["large_offset"], skimage) > 1
    assert cancellation_bound(cases["random_pair"], skimage) < 1e-9
    assert cancellation_bound(cases["uint8_overflow"], skimage) == pytest.approx(
        4 * 576 * 2.0 ** -24 * 255 ** 2 / c2, rel=1e-12)


def test_candidate_changes_are_single_and_distinct():
    base = PRESETS["skimage"]
    seen = set()
    fields = ("window", "size", "sigma", "covariance", "data_range", "border", "crop",
              "downsample", "luminance", "eps", "weights")
    knobs = set()
    for knob, conv in candidate_changes(base):
        differing = {k for k in fields if getattr(conv, k) != getattr(base, k)}
        allowed = {"filter": {"window", "size", "border", "crop"},
                   "window": {"window", "size"}, "border": {"border", "crop"}}
        assert differing and differing <= allowed.get(knob, {knob})
        assert conv.canonical() not in seen and conv.canonical() != base.canonical()
        seen.add(conv.canonical())
        knobs.add(knob)
    assert knobs == {"window", "covariance", "data_range", "border", "filter", "downsample",
                     "luminance", "eps", "weights"}
    # the filter moves of a valid 7x7 window: Gaussian filters of 9, 11 (scipy at truncate
    # 3.5) and 13 (truncate 4) taps, every padding, cropped by 3
    filters = [c for k, c in candidate_changes(base) if k == "filter"]
    assert sorted({c.size for c in filters}) == [9, 11, 13]
    assert {c.crop for c in filters} == {3} and len(filters) == 12


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown convention"):
        check(wang_ssim, "matlab")
    with pytest.raises(ValueError, match="unknown case"):
        check(wang_ssim, cases=["no_such_case"])
    with pytest.raises(ValueError, match="unknown library"):
        check("opencv")
    with pytest.raises(ValueError, match="border"):
        Convention(border="same-wrap")
    with pytest.raises(ValueError, match="tolerance"):
        check(wang_ssim, tolerance=0)


# ---------------------------------------------------------------------- PyTorch peers
def _peer(name):
    pytest.importorskip("torch")
    try:
        return load_peer(name, hide_torchvision=True)
    except PeerUnavailable as exc:
        pytest.skip(str(exc))


def test_pytorch_msssim_float32_window_is_named():
    peer = _peer("pytorch_msssim")
    cases = ["random_pair", "constant_images", "narrow_range", "large_offset", "odd_size",
             "uint8_overflow"]
    result = check(peer, cases=cases)
    d = result.diagnosis
    assert d.knobs == ["weights"] and d.convention.weights == "float32"
    assert "float32" in str(d)
    # its window cast to the input's dtype: every uint8 weight is 0, SSIM 1 for any pair
    assert [name for name, _ in d.unexplained] == ["uint8_overflow"]
    assert next(c for c in result.cases if c.name == "uint8_overflow").value == 1.0
    assert check(peer, PRESETS["pytorch_msssim"].replace(weights="float32"),
                 cases=cases[:-1]).passed


def test_kornia_border_and_eps_are_named():
    peer = _peer("kornia")
    cases = ["random_pair", "odd_size", "narrow_range", "tiny", "multichannel",
             "black_half_range"]
    assert check(peer, cases=cases).passed  # its preset has eps = 1e-12
    result = check(peer, "wang2004", cases=cases)
    assert sorted(result.diagnosis.knobs) == ["border", "eps"]
    assert result.diagnosis.convention.border == "same-reflect"
    assert result.diagnosis.convention.eps == 1e-12
    black = next(c for c in result.cases if c.name == "black_half_range")
    c1c2 = (0.005 ** 2) * (0.015 ** 2)
    assert black.value == pytest.approx(c1c2 / (c1c2 + 1e-12), rel=1e-12)


def test_piq_downsampling_is_named():
    peer = _peer("piq")
    cases = ["random_pair", "odd_size", "large_downsampling"]
    assert check(peer, cases=cases).passed
    result = check(peer, "wang2004", cases=cases)
    assert result.diagnosis.knobs == ["downsample"]
    assert result.diagnosis.convention.downsample == "avgpool"


def test_torchmetrics_conforms_to_reflect_padding():
    peer = _peer("torchmetrics")
    cases = ["random_pair", "odd_size", "tiny", "multichannel", "narrow_range"]
    assert check(peer, cases=cases).passed


# -------------------------------------------------------------------------------- CLI
def test_cli_verify_passes_and_fails(capsys):
    assert main(["verify", "tests.test_verification_conformance:wang_ssim",
                 "--cases", "random_pair,odd_size"]) == 0
    out = capsys.readouterr().out
    assert "random_pair" in out and "pass" in out and "conforms" in out
    assert main(["verify", "tests.test_verification_conformance:luminance_bug_ssim",
                 "--convention", "skimage", "--cases",
                 "random_pair,constant_images,correlated_pair"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "luminance" in out


def test_cli_verify_errors(capsys):
    assert main(["verify", "no_such_module_xyz:fn"]) == 2
    assert "ssimref: error:" in capsys.readouterr().err
    assert main(["verify", "skimage", "--convention", "matlab"]) == 2
    assert main(["verify", "skimage", "--cases", "nope"]) == 2


def test_cli_lists_cases(capsys):
    assert main(["verify", "--list-cases"]) == 0
    assert capsys.readouterr().out.split() == list(CASE_NAMES)
