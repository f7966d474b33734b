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
from ssimref.verification.conformance import evaluate_map
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
    return out


def _evaluator_cases(names):
    for case in corpus(large=False, names=names):
        for conv in _knob_conventions():
            flat = np.ptp(case.x) == 0 and np.ptp(case.y) == 0
            if conv.data_range == "dynamic" and flat:
                continue  # 0/0: c1 = c2 = 0 on flat images (the evaluator gives NaN)
            yield case, conv


@pytest.mark.parametrize("case,conv", list(_evaluator_cases(
    ["random_pair", "odd_size", "multichannel", "narrow_range", "tiny"])))
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
