"""The conformance runner: scikit-image under its own convention, mismatched knobs named,
a deliberately wrong implementation diagnosed, PyTorch peers when installed, the CLI."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import ssimref
from ssimref import SSIMConfig
from ssimref.cli import main
from ssimref.verification.cases import CASE_NAMES, corpus
from ssimref.verification.conformance import candidate_changes, check
from ssimref.verification.conventions import PRESETS, Convention
from ssimref.verification.peers import PeerUnavailable, load_peer

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
    assert result.diagnosis.changes == []
    assert result.diagnosis.unexplained[0][0] == "large_offset"
    assert "cancellation" in result.diagnosis.unexplained[0][1]


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
    def gaussian(x, y, data_range):
        return structural_similarity(x, y, data_range=data_range, gaussian_weights=True)
    result = check(gaussian, "skimage", cases=NOT_TRAPS)
    assert set(result.diagnosis.knobs) == {"window", "covariance"}
    fitted = result.diagnosis.convention
    assert (fitted.window, fitted.size, fitted.covariance) == ("gaussian", 11, "count")
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
    assert result.diagnosis.residual < 1e-12
    assert "image 1's mean" in str(result.diagnosis)
    # identical images cannot reveal it; a luminance difference does
    assert next(c for c in result.cases if c.name == "identical").passed
    assert not next(c for c in result.cases if c.name == "constant_images").passed


def test_core_conforms_as_a_module_function_target():
    result = check("tests.test_verification_conformance:wang_ssim", cases=SMALL)
    assert result.passed, str(result)
    assert max(c.error for c in result.cases if c.name != "float32_input") < 1e-12


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


def test_candidate_changes_are_single_and_distinct():
    base = PRESETS["skimage"]
    seen = set()
    for knob, conv in candidate_changes(base):
        differing = [k for k in ("window", "size", "sigma", "covariance", "data_range",
                                 "border", "downsample", "luminance")
                     if getattr(conv, k) != getattr(base, k)]
        assert differing and set(differing) <= {"window", "size"} | {knob}
        assert conv.canonical() not in seen and conv.canonical() != base.canonical()
        seen.add(conv.canonical())


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


def test_pytorch_msssim_conforms_up_to_its_float32_window():
    peer = _peer("pytorch_msssim")
    cases = [n for n in NOT_TRAPS if n != "uint8_overflow"]
    assert check(peer, cases=cases, tolerance=1e-5).passed
    strict = check(peer, cases=cases)
    assert strict.diagnosis.typical_error > 1e-9  # its window is built in float32


def test_kornia_border_is_named():
    peer = _peer("kornia")
    cases = ["random_pair", "odd_size", "narrow_range", "tiny", "multichannel"]
    assert check(peer, cases=cases).passed
    result = check(peer, "wang2004", cases=cases)
    assert result.diagnosis.knobs == ["border"]
    assert result.diagnosis.convention.border == "same-reflect"


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
