"""The oracle's extensions: exact vs float modes, convention variants against hand
computations and NumPy, kernels, MMD^2 and CMMD^2 against closed forms."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ssimref import SSIMConfig
from ssimref.verification import oracle
from ssimref.verification.cases import corpus
from ssimref.verification.conformance import evaluate, evaluate_map
from ssimref.verification.conventions import Convention, PRESETS, downsample_factor

F = Fraction


# ------------------------------------------------------------------ exact vs float modes
@settings(max_examples=15)
@given(st.data())
def test_exact_mode_agrees_with_float_mode(data):
    size = data.draw(st.integers(2, 4))
    stride = data.draw(st.integers(1, 2))
    shape = (data.draw(st.integers(size, size + 3)), data.draw(st.integers(size, size + 3)))
    ints = hnp.arrays(np.int64, shape, elements=st.integers(0, 255))
    x, y = data.draw(ints).astype(np.float64), data.draw(ints).astype(np.float64)
    config = SSIMConfig(window="uniform", size=size, stride=stride, data_range=255.0,
                        covariance=data.draw(st.sampled_from(["sample", "population"])))
    exact = oracle.ssim_map(x, y, config, exact=True)
    assert all(isinstance(v, Fraction) for v in exact.ravel())
    np.testing.assert_allclose(oracle.ssim_map(x, y, config), exact.astype(np.float64),
                               rtol=1e-12, atol=1e-14)
    for kind in ("eq1", "eq2", "eq1-uncentered"):
        assert math.isclose(oracle.squared_distance(x, y, config, kind),
                            float(oracle.squared_distance(x, y, config, kind, exact=True)),
                            rel_tol=1e-12, abs_tol=1e-13)


@pytest.mark.parametrize("name", ["uniform-valid", "uniform-reflect", "luminance"])
def test_variant_exact_mode_agrees_with_float_mode(name):
    case = corpus(names=["odd_size"])[0]
    x, y = case.x[:9, :8], case.y[:9, :8]
    conv = {"uniform-valid": Convention(window="uniform", size=3),
            "uniform-reflect": Convention(window="uniform", size=4, border="same-symmetric",
                                          covariance="sample"),
            "luminance": Convention(window="uniform", size=3, luminance="first",
                                    data_range="dynamic")}[name]
    exact = oracle.variant_ssim(x, y, conv, 255, exact=True)
    assert isinstance(exact, Fraction)
    assert math.isclose(oracle.variant_ssim(x, y, conv, 255), float(exact), rel_tol=1e-13)


def test_exact_values_are_the_textbook_rationals():
    # One 2x2 uniform window, hand computation: x = [0, 2, 4, 6], y = [1, 1, 1, 1], L = 8.
    x = np.array([[0.0, 2.0], [4.0, 6.0]])
    y = np.ones((2, 2))
    config = SSIMConfig(window="uniform", size=2, data_range=8.0, covariance="population")
    s1, s2 = oracle.ssim_components(x, y, config, exact=True)
    c1, c2 = F(8, 100) ** 2, F(24, 100) ** 2
    mu_x, mu_y, var_x = F(3), F(1), F(9 + 1 + 1 + 9, 4)
    assert s1[0, 0] == (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)
    assert s2[0, 0] == c2 / (var_x + c2)


# --------------------------------------------------------------- padding, downsampling
@pytest.mark.parametrize("mode", ["reflect", "symmetric", "constant", "edge"])
@pytest.mark.parametrize("pad", [1, 2, 5])
def test_pad_image_matches_numpy(mode, pad):
    # pad 5 exceeds both sides: the reflections repeat (np.pad does so too)
    a = np.arange(4 * 3 * 2, dtype=np.float64).reshape(4, 3, 2)
    lists = oracle.pad_image(a.tolist(), pad, mode, 0.0)
    np.testing.assert_array_equal(np.array(lists),
                                  np.pad(a, ((pad, pad), (pad, pad), (0, 0)), mode=mode))


def test_padding_hand_examples():
    row = [[[1], [2], [3], [4]]]
    padded = oracle.pad_image(row, 2, "reflect")[2]
    assert [p[0] for p in padded] == [3, 2, 1, 2, 3, 4, 3, 2]
    padded = oracle.pad_image(row, 2, "symmetric")[2]
    assert [p[0] for p in padded] == [2, 1, 1, 2, 3, 4, 4, 3]
    padded = oracle.pad_image(row, 2, "edge")[2]
    assert [p[0] for p in padded] == [1, 1, 1, 2, 3, 4, 4, 4]
    padded = oracle.pad_image(row, 1, "constant")[1]
    assert [p[0] for p in padded] == [0, 1, 2, 3, 4, 0]


def _column(values):
    return [[[v]] for v in values]


def test_downsampling_hand_examples():
    # A single column: f = 2, ssim.m averages pixels i, i+1 (lead 0) at i = 0, 2, 4 and
    # mirrors the last one (symmetric): [1,2,3,4,5] -> [1.5, 3.5, 5]. avg_pool: [1.5, 3.5].
    img = [[[v] for _ in range(2)] for v in [1, 2, 3, 4, 5]]
    out = oracle.downsample_image(img, "ssim.m", 2)
    assert [r[0][0] for r in out] == [1.5, 3.5, 5.0]
    out = oracle.downsample_image(img, "avgpool", 2)
    assert [r[0][0] for r in out] == [1.5, 3.5]
    # f = 3: lead 1, output pixel 0 averages pixels -1, 0, 1 = (1 + 1 + 2) / 3 (symmetric).
    img = [[[v] for _ in range(3)] for v in [1, 2, 3, 4, 5, 6, 7]]
    out = oracle.downsample_image(img, "ssim.m", 3)
    assert [r[0][0] for r in out] == pytest.approx([4 / 3, 4.0, 20 / 3])
    out = oracle.downsample_image(img, "avgpool", 3)
    assert [r[0][0] for r in out] == [2.0, 5.0]


def test_downsampling_factor_rules():
    assert downsample_factor(383, 500, "ssim.m") == 1
    assert downsample_factor(384, 500, "ssim.m") == 2  # 1.5 rounds up in both
    assert downsample_factor(384, 500, "avgpool") == 2
    assert downsample_factor(640, 640, "ssim.m") == 3  # MATLAB: 2.5 -> 3
    assert downsample_factor(640, 640, "avgpool") == 2  # Python: 2.5 -> 2
    assert downsample_factor(5000, 5000, "none") == 1


@pytest.mark.parametrize("method", ["ssim.m", "avgpool"])
@pytest.mark.parametrize("factor", [2, 3])
def test_evaluator_downsampling_matches_oracle_loops(method, factor):
    from ssimref.verification.conformance.evaluator import downsample
    a = np.random.default_rng(3).integers(0, 9, size=(11, 13, 2)).astype(np.float64)
    np.testing.assert_allclose(downsample(a, method, factor),
                               np.array(oracle.downsample_image(a.tolist(), method, factor)),
                               rtol=1e-15, atol=1e-15)


# ------------------------------------------------------------------ convention variants
def test_variant_of_a_config_is_the_plain_oracle():
    case = corpus(names=["odd_size"])[0]
    for config in (SSIMConfig.wang2004(255.0), SSIMConfig.skimage(255.0),
                   SSIMConfig(window="gaussian", size=5, covariance="count", data_range=255.0)):
        assert oracle.variant_ssim(case.x, case.y, Convention.from_config(config)) == \
            pytest.approx(oracle.ssim(case.x, case.y, config), rel=1e-14)


def test_luminance_defect_makes_s1_one():
    case = corpus(names=["random_pair"])[0]
    conv = Convention(window="uniform", size=5, covariance="sample", luminance="first")
    config = SSIMConfig(window="uniform", size=5, covariance="sample", data_range=255.0)
    _, s2 = oracle.ssim_components(case.x, case.y, config)
    np.testing.assert_allclose(oracle.variant_ssim_map(case.x, case.y, conv, 255.0), s2,
                               rtol=1e-14)


def test_fixed_and_dynamic_data_range():
    case = corpus(names=["narrow_range"])[0]
    conv = Convention(window="uniform", size=5, data_range="dynamic")
    L = max(np.ptp(case.x), np.ptp(case.y))
    assert L == 40
    assert oracle.variant_ssim(case.x, case.y, conv, 255.0) == pytest.approx(
        oracle.variant_ssim(case.x, case.y, conv.replace(data_range=None), L), rel=1e-15)
    assert oracle.variant_ssim(case.x, case.y, conv.replace(data_range=1.0), 255.0) == \
        pytest.approx(oracle.variant_ssim(case.x, case.y, conv.replace(data_range=None), 1.0),
                      rel=1e-15)


def test_same_border_keeps_the_image_size():
    case = corpus(names=["odd_size"])[0]
    for border in ("same-reflect", "same-symmetric", "same-constant", "same-edge"):
        m = oracle.variant_ssim_map(case.x, case.y, Convention(size=5, border=border), 255.0)
        assert m.shape == case.x.shape


def _knob_conventions():
    """One convention per knob value, around Wang 2004."""
    base = PRESETS["wang2004"]
    out = [base, PRESETS["skimage"], PRESETS["skimage-gaussian"], PRESETS["paper"],
           base.replace(window="uniform", size=4), base.replace(sigma=0.8, size=5)]
    out += [base.replace(size=5, border=b) for b in
            ("same-reflect", "same-symmetric", "same-constant", "same-edge")]
    out += [base.replace(size=5, covariance=c) for c in ("sample", "count")]
    out += [base.replace(size=5, data_range=L) for L in (1.0, "dynamic")]
    out += [base.replace(size=5, luminance="first"), base.replace(size=3, k1=0.05, k2=0.1)]
    out += [base.replace(size=5, border="same-symmetric", crop=1, covariance="count"),
            base.replace(size=3, window="uniform", border="same-reflect", crop=1),
            base.replace(size=3, eps=1e-6), base.replace(size=3, weights="float32"),
            base.replace(size=3, weights="round3", covariance="sample")]
    return out


def _evaluator_cases(names):
    for case in corpus(large=False, names=names):
        for conv in _knob_conventions():
            flat = np.ptp(case.x) == 0 and np.ptp(case.y) == 0
            if conv.data_range == "dynamic" and flat:
                continue  # 0/0: c1 = c2 = 0 on flat images (the evaluator gives NaN)
            yield case, conv


@pytest.mark.parametrize("case,conv", list(_evaluator_cases(
    ["random_pair", "odd_size", "multichannel", "narrow_range", "tiny", "black_half_range"])))
def test_evaluator_matches_loop_oracle(case, conv):
    fast = evaluate_map(case.x, case.y, conv, case.data_range)
    slow = oracle.variant_ssim_map(case.x, case.y, conv, case.data_range)
    fast = fast[:, :, 0] if slow.ndim == 2 else fast
    np.testing.assert_allclose(fast, slow, rtol=1e-11, atol=1e-13)


@pytest.mark.slow
def test_evaluator_matches_loop_oracle_on_every_small_case():
    for case, conv in _evaluator_cases(None):
        fast = evaluate_map(case.x, case.y, conv, case.data_range)
        slow = oracle.variant_ssim_map(case.x, case.y, conv, case.data_range)
        fast = fast[:, :, 0] if slow.ndim == 2 else fast
        np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-12,
                                   err_msg=f"{case.name} {conv}")


# ------------------------------------------------------------------- kernels, MMD, CMMD
def test_double_centred_kernel_closed_form():
    D = [[0, 3, 4, 7], [3, 0, 5, 2], [4, 5, 0, 6], [7, 2, 6, 0]]
    for power in (1, 2):
        K = oracle.double_centred_kernel(D, power)
        P = [[F(v) ** power for v in row] for row in D]
        n = len(D)
        row = [sum(r) / n for r in P]
        grand = sum(row) / n
        for i in range(n):
            for j in range(n):
                # -1/2 (D_ij - mean_i - mean_j + grand mean), D symmetric
                assert K[i][j] == -F(1, 2) * (P[i][j] - row[i] - row[j] + grand)
        assert all(sum(r) == 0 for r in K)  # centred rows


def test_mmd2_linear_kernel_closed_form():
    # k(a, b) = a b: biased MMD^2 = (mean X - mean Y)^2.
    X, Y = [F(0), F(1), F(2)], [F(3), F(5)]
    assert oracle.mmd2(X, Y, lambda a, b: a * b) == (F(1) - F(4)) ** 2
    # Unbiased by hand: off-diagonal sums (sum x)^2 - sum x^2 = 9 - 5 = 4 over 3*2,
    # (8)^2 - 34 = 30 over 2*1, cross 2 * 3 * 8 / 6 = 8.
    assert oracle.mmd2(X, Y, lambda a, b: a * b, unbiased=True) == F(4, 6) + 15 - 8


def test_unbiased_mmd2_can_be_negative():
    X = Y = [F(0), F(1)]
    assert oracle.mmd2(X, Y, lambda a, b: a * b) == 0
    assert oracle.mmd2(X, Y, lambda a, b: a * b, unbiased=True) == F(-1, 2)


def test_mmd2_with_distance_induced_kernel_is_half_the_energy_distance():
    X, Y = [0, 1, 5], [2, 7]
    pooled = X + Y
    D = [[F(abs(a - b)) for b in pooled] for a in pooled]
    K = oracle.double_centred_kernel(D, power=1)
    mmd = oracle.mmd2_from_kernel_matrix(K, len(X))

    def mean_dist(A, B):
        return F(sum(abs(a - b) for a in A for b in B), len(A) * len(B))
    energy = 2 * mean_dist(X, Y) - mean_dist(X, X) - mean_dist(Y, Y)
    assert mmd == energy / 2


def test_mmd2_from_kernel_matrix_checks_sizes():
    K = [[1.0, 0.5], [0.5, 1.0]]
    with pytest.raises(ValueError, match="at least 2"):
        oracle.mmd2_from_kernel_matrix(K, 1, unbiased=True)
    assert oracle.mmd2_from_kernel_matrix(K, 1) == pytest.approx(1.0)


def test_solve_exact_and_float():
    A = [[F(4), F(1), F(2)], [F(1), F(3), F(0)], [F(2), F(0), F(5)]]
    B = [[F(1), F(0)], [F(2), F(1)], [F(3), F(7)]]
    X = oracle.solve(A, B)
    assert [[sum(A[i][k] * X[k][j] for k in range(3)) for j in range(2)]
            for i in range(3)] == B
    rng = np.random.default_rng(0)
    Af, Bf = rng.normal(size=(5, 5)), rng.normal(size=(5, 3))
    np.testing.assert_allclose(oracle.solve(Af.tolist(), Bf.tolist()),
                               np.linalg.solve(Af, Bf), rtol=1e-10)
    with pytest.raises(ValueError, match="singular"):
        oracle.solve([[F(1), F(2)], [F(2), F(4)]], [[F(1)], [F(1)]])


def test_cmmd2_single_point_by_hand():
    # n = 1: M = k / (k + lambda)^2; CMMD^2 = M (l(s,s) + l(d,d) - 2 l(s,d)).
    k, lam = F(3), F(1, 2)
    ls, ld, lsd = F(5), F(2), F(1)
    assert oracle.cmmd2([[k]], [[ls]], [[ld]], [[lsd]], lam) == \
        k / (k + lam) ** 2 * (ls + ld - 2 * lsd)


def test_cmmd2_one_hot_delta_kernel_closed_form():
    # Delta kernel on labels: CMMD^2 = sum_c (n_c / (n_c + lambda))^2 MMD_b^2(class c).
    labels = [0, 0, 1, 1, 1]
    generated = [F(1), F(2), F(0), F(4), F(3)]
    data = [F(2), F(2), F(1), F(1), F(6)]
    lam = F(1, 3)

    def out(a, b):
        return a * b + (a - b) ** 2 / 7  # any kernel-like function is fine for the identity
    value = oracle.cmmd2_from_samples(labels, generated, data,
                                      lambda a, b: F(int(a == b)), out, lam)
    expected = 0
    for c in (0, 1):
        idx = [i for i, lab in enumerate(labels) if lab == c]
        n_c = len(idx)
        mmd_c = oracle.mmd2([generated[i] for i in idx], [data[i] for i in idx], out)
        expected += (F(n_c) / (n_c + lam)) ** 2 * mmd_c
    assert value == expected


def test_cmmd2_float_matches_numpy_formula():
    rng = np.random.default_rng(7)
    n = 6
    inputs, s, d = rng.normal(size=(n, 2)), rng.normal(size=(n, 3)), rng.normal(size=(n, 3))

    def rbf(a, b):
        return math.exp(-float(np.sum((np.asarray(a) - np.asarray(b)) ** 2)) / 2)
    value = oracle.cmmd2_from_samples(list(inputs), list(s), list(d), rbf, rbf, 0.1)
    K = np.array([[rbf(a, b) for b in inputs] for a in inputs])
    C = np.linalg.solve(K + 0.1 * np.eye(n), np.eye(n))
    M = C @ K @ C
    Lss = np.array([[rbf(a, b) for b in s] for a in s])
    Ldd = np.array([[rbf(a, b) for b in d] for a in d])
    Lsd = np.array([[rbf(a, b) for b in d] for a in s])
    assert value == pytest.approx(float(np.sum(M * (Lss + Ldd - Lsd - Lsd.T))), rel=1e-9)
    assert value >= 0


# ------------------------------------------------- a filter longer than the cropped border
@pytest.mark.parametrize("name,win_size,sigma", [("odd_size", 7, 1.5), ("random_pair", 5, 1.0),
                                                 ("multichannel", 7, 1.5)])
def test_long_filter_with_crop_is_scikit_image_gaussian_weights(name, win_size, sigma):
    # structural_similarity(gaussian_weights=True, win_size=w) filters with
    # 2 int(3.5 sigma + 0.5) + 1 taps (scipy.ndimage, mode 'reflect' = NumPy 'symmetric'),
    # normalises covariances by w^2 / (w^2 - 1) and averages the map cropped by (w - 1) // 2.
    skimage_metrics = pytest.importorskip("skimage.metrics")
    case = corpus(names=[name])[0]
    taps = 2 * int(3.5 * sigma + 0.5) + 1
    assert taps > win_size
    conv = Convention(window="gaussian", size=taps, sigma=sigma, covariance="count",
                      border="same-symmetric", crop=(win_size - 1) // 2)
    assert conv.count == win_size ** 2
    expected = skimage_metrics.structural_similarity(
        case.x, case.y, data_range=case.data_range, gaussian_weights=True, sigma=sigma,
        win_size=win_size, channel_axis=-1 if case.channels > 1 else None)
    assert oracle.variant_ssim(case.x, case.y, conv, case.data_range) == \
        pytest.approx(expected, rel=1e-12, abs=1e-15)
    # the map is the 'same' map with its border cropped (same covariance factor: population)
    pop = conv.replace(covariance="population")
    k = conv.crop
    full = oracle.variant_ssim_map(case.x, case.y, pop.replace(crop=0), case.data_range)
    assert full.shape[:2] == case.x.shape[:2]
    np.testing.assert_array_equal(oracle.variant_ssim_map(case.x, case.y, pop, case.data_range),
                                  full[k:-k, k:-k])


# ------------------------------------------------------------- eps in the denominator
@pytest.mark.parametrize("conv", [Convention(window="uniform", size=3, eps=1e-12),
                                  Convention(size=11, eps=1e-12, weights="float32",
                                             border="same-reflect")])
def test_eps_on_black_images_closed_form(conv):
    # kornia: ssim = num1 num2 / (den1 den2 + eps), eps added once to the product of the
    # two denominators. On two black images num_i = den_i = c_i, so SSIM = c1 c2 / (c1 c2 + eps)
    # exactly (not c1/(c1 + eps) * c2/(c2 + eps), which would be 1 - 4.4e-8 here).
    zeros = np.zeros((12, 12))
    value = oracle.variant_ssim(zeros, zeros, conv, 0.5, exact=True)
    c1, c2, eps = (F("0.01") / 2) ** 2, (F("0.03") / 2) ** 2, F("1e-12")
    assert value == c1 * c2 / (c1 * c2 + eps)
    assert float(value) == pytest.approx(0.9998222538215429, rel=1e-15)
    assert oracle.variant_ssim(zeros, zeros, conv.replace(eps=0.0), 0.5, exact=True) == 1


def test_eps_matches_kornia_on_black_images():
    torch = pytest.importorskip("torch")
    kornia_metrics = pytest.importorskip("kornia.metrics")
    zeros = torch.zeros((1, 1, 12, 12), dtype=torch.float64)
    value = float(kornia_metrics.ssim(zeros, zeros, 11, max_val=0.5).mean())
    c1c2 = (0.005 ** 2) * (0.015 ** 2)
    assert value == pytest.approx(c1c2 / (c1c2 + 1e-12), rel=1e-14)
    conv = Convention(border="same-reflect", eps=1e-12)
    assert oracle.variant_ssim(np.zeros((12, 12)), np.zeros((12, 12)), conv, 0.5) == \
        pytest.approx(value, rel=1e-14)


# ---------------------------------------------------- window weights rounded or float32
def _numpy_gaussian(size, sigma):
    g = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma ** 2))
    w = np.outer(g, g)
    return w / w.sum()


def test_rounded_weights_sum_to_one_minus_2e_6():
    conv = Convention(weights="round6")
    w = oracle.window_weights(conv, exact=True)
    expected = np.round(_numpy_gaussian(11, 1.5) * 1e6).astype(np.int64)
    assert [[v * 10 ** 6 for v in row] for row in w] == expected.tolist()
    assert oracle.weight_sum(conv, w) == 1 - F(2, 10 ** 6)
    assert oracle.weight_sum(conv.replace(weights="float64"),
                             oracle.window_weights(conv.replace(weights="float64"))) == 1


def test_float32_weights_are_pytorch_msssims_window():
    pytest.importorskip("torch")
    ssim_module = pytest.importorskip("pytorch_msssim.ssim")
    for size, sigma in [(11, 1.5), (7, 1.5), (9, 1.0)]:
        conv = Convention(size=size, sigma=sigma, weights="float32")
        g = ssim_module._fspecial_gauss_1d(size, sigma).ravel().tolist()
        w = oracle.window_weights(conv, exact=True)
        assert w == [[F(a) * F(b) for b in g] for a in g]
    total = sum(F(v) for v in ssim_module._fspecial_gauss_1d(11, 1.5).ravel().tolist())
    assert float(1 - total) == pytest.approx(3.07e-8, rel=0.01)


@pytest.mark.parametrize("weights", ["round6", "round3", "float32"])
def test_unnormalised_weights_on_flat_images_closed_form(weights):
    # Flat images a and b, weights summing to S: mu = S a, sum w x^2 - mu^2 = S (1 - S) a^2,
    # likewise the covariance S (1 - S) a b (what implementations compute from such weights).
    conv = Convention(size=7, weights=weights)
    S = oracle.weight_sum(conv, oracle.window_weights(conv, exact=True))
    assert S != 1
    a, b, L = F(100), F(150), F(255)
    c1, c2 = (F("0.01") * L) ** 2, (F("0.03") * L) ** 2
    expected = ((2 * S * S * a * b + c1) / (S * S * (a * a + b * b) + c1)
                * (2 * S * (1 - S) * a * b + c2) / (S * (1 - S) * (a * a + b * b) + c2))
    x, y = np.full((9, 8), 100.0), np.full((9, 8), 150.0)
    assert oracle.variant_ssim(x, y, conv, 255.0, exact=True) == expected
    assert evaluate(x, y, conv, 255.0) == pytest.approx(float(expected), rel=1e-13)


def test_new_knobs_are_checked():
    with pytest.raises(ValueError, match="crop"):
        Convention(crop=2)  # valid windows have no border to crop
    with pytest.raises(ValueError, match="crop"):
        Convention(border="same-edge", crop=-1)
    with pytest.raises(ValueError, match="eps"):
        Convention(eps=-1e-12)
    for bad in ("round0", "round16", "float16"):
        with pytest.raises(ValueError, match="weights"):
            Convention(weights=bad)
    with pytest.raises(ValueError, match="crop"):
        oracle.variant_ssim_map(np.zeros((6, 6)), np.zeros((6, 6)),
                                Convention(size=3, border="same-edge", crop=3), 1.0)


def test_oracle_imports_nothing_from_the_fast_code():
    # the oracle may use the standard library, NumPy, its own modules and the conventions
    # record of the verification package, nothing else of ssimref
    import ast
    from pathlib import Path
    allowed = {"__future__", "math", "fractions", "dataclasses", "numpy"}
    for path in Path(oracle.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert {a.name.split(".")[0] for a in node.names} <= allowed, path
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    assert node.module.split(".")[0] in allowed, (path, node.module)
                else:
                    assert node.level == 1 or (node.level == 2
                                               and node.module == "conventions"), \
                        (path, node.module)
