"""Positive semidefiniteness: SSIM kernels are PSD; indefinite matrices are detected and
repaired (ssimref.kernels.psd)."""

import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

from ssimref import distance_matrix
from ssimref.kernels import (IndefiniteKernelWarning, mean_ssim_kernel, psd_report,
                             repair_psd, ssim_kernel, ssim_rbf_kernel)
from ssimref.kernels.psd import repair

from .strategies import KINDS, config_and_stack

PSD_RTOL = 1e-9


def relative_min_eigenvalue(K):
    lam = np.linalg.eigvalsh(K)
    scale = np.abs(lam).max()
    return 0.0 if scale == 0 else lam.min() / scale


@given(config_and_stack(n_min=2, n_max=8), st.sampled_from(KINDS),
       st.sampled_from([1, 2, 0.5]))
def test_ssim_kernels_are_psd(case, kind, power):
    config, stack = case
    K = ssim_kernel(stack, kind=kind, power=power, config=config)
    assert relative_min_eigenvalue(K) >= -PSD_RTOL
    assert psd_report(K).is_psd


def test_images_equal_on_every_window_have_distance_zero():
    # Column 3 lies outside the only window: the oracle's distance is exactly 0, and a
    # round-off residue of 1e-15 would become D = 3e-8 after the square root.
    from ssimref import SSIMConfig
    config = SSIMConfig(window="gaussian", size=3, sigma=1.0, stride=2, data_range=1.0)
    X = np.ones((3, 3, 4))
    X[0, 0, 3], X[2, 0, 3] = 0.25, 0.0   # column 3 lies outside the only window
    D2 = distance_matrix(X, kind="eq1", config=config, squared=True)
    assert (D2 == 0).all()


@given(config_and_stack(n_min=2, n_max=8))
def test_mean_ssim_kernel_is_psd(case):
    config, stack = case
    S = mean_ssim_kernel(stack, config=config)
    assert relative_min_eigenvalue(S) >= -PSD_RTOL


@given(config_and_stack(n_min=2, n_max=8), st.sampled_from(KINDS),
       st.floats(0.01, 10.0))
def test_gaussian_of_ssim_distance_is_psd(case, kind, gamma):
    config, stack = case
    K = ssim_rbf_kernel(distance_matrix(stack, kind=kind, config=config), gamma=gamma)
    assert relative_min_eigenvalue(K) >= -PSD_RTOL


def known_spectrum(rng, eigenvalues):
    n = len(eigenvalues)
    U, _ = np.linalg.qr(rng.normal(size=(n, n)))
    K = (U * np.asarray(eigenvalues)) @ U.T
    return (K + K.T) / 2, U


def test_report_of_a_known_indefinite_matrix(rng):
    K, _ = known_spectrum(rng, [3.0, 1.0, 0.0, -0.5])
    report = psd_report(K)
    assert report.verdict == "indefinite" and not report.is_psd
    assert report.min_eigenvalue == pytest.approx(-0.5, abs=1e-12)
    assert report.max_eigenvalue == pytest.approx(3.0, abs=1e-12)
    assert report.relative_min == pytest.approx(-0.5 / 3.0, abs=1e-12)
    assert report.negative_mass == pytest.approx(0.5 / 4.5, abs=1e-12)
    assert "indefinite" in str(report)


def test_report_verdicts(rng):
    K, _ = known_spectrum(rng, [2.0, 1.0, 0.5])
    assert psd_report(K).verdict in ("psd", "psd within round-off")
    assert psd_report(np.diag([2.0, 1.0])).verdict == "psd"
    K, _ = known_spectrum(rng, [2.0, 1.0, -1e-14])
    assert psd_report(K).verdict == "psd within round-off"
    assert psd_report(K, tol=0).verdict == "indefinite"
    assert psd_report(np.zeros((3, 3))).verdict == "psd"


def test_a_non_hilbertian_distance_gives_an_indefinite_kernel():
    """Squared L1 distances of a square's corners and centre are not of negative type:
    classical MDS on them gives an eigenvalue -1 (the SSIM distances' Hilbert embedding
    is what rules this out for SSIM kernels)."""
    corners = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5]])
    L1 = np.abs(corners[:, None, :] - corners[None, :, :]).sum(-1)
    n = len(corners)
    H = np.eye(n) - np.ones((n, n)) / n
    K = -0.5 * H @ (L1 ** 2) @ H
    report = psd_report(K)
    assert report.verdict == "indefinite"
    assert report.min_eigenvalue == pytest.approx(-1.0, abs=1e-12)


@pytest.mark.parametrize("method, expected", [
    ("clip", [0.0, 0.0, 1.0, 3.0]),
    ("flip", [0.0, 0.5, 1.0, 3.0]),
    ("shift", [0.0, 0.5, 1.5, 3.5]),
])
def test_each_repair_gives_a_psd_matrix_with_the_stated_spectrum(rng, method, expected):
    K, U = known_spectrum(rng, [3.0, 1.0, 0.0, -0.5])
    fixed = repair_psd(K, method)
    assert (fixed == fixed.T).all()
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(fixed)), expected, atol=1e-12)
    assert relative_min_eigenvalue(fixed) >= -1e-12
    assert psd_report(fixed).is_psd


def test_clip_is_the_nearest_psd_matrix_among_samples(rng):
    """Higham 1988: clipping gives the Frobenius-nearest PSD matrix; no random PSD matrix
    near it does better."""
    K, _ = known_spectrum(rng, [2.0, 1.0, -0.3, -0.7])
    clipped = repair_psd(K, "clip")
    best = np.linalg.norm(K - clipped)
    for _ in range(200):
        E = rng.normal(scale=0.05, size=K.shape)
        candidate = repair_psd(clipped + (E + E.T) / 2, "clip")
        assert np.linalg.norm(K - candidate) >= best - 1e-12


@pytest.mark.parametrize("method", ["clip", "flip", "shift"])
def test_repair_maps_test_rows_consistently(rng, method):
    """The right map P of a repair sends the training kernel to its repaired version
    (K P = K_psd); 'shift' only touches the diagonal, so test rows are left alone."""
    K, _ = known_spectrum(rng, [3.0, 1.0, 0.2, -0.5])
    fixed, P = repair(K, method)
    if method == "shift":
        assert P is None
        np.testing.assert_allclose(fixed - K, 0.5 * np.eye(4), atol=1e-12)
    else:
        np.testing.assert_allclose(K @ P, fixed, atol=1e-12)


def test_repair_leaves_psd_matrices_alone(rng):
    K, _ = known_spectrum(rng, [3.0, 1.0, 0.5])
    for method in ("clip", "flip"):
        np.testing.assert_allclose(repair_psd(K, method), K, atol=1e-13)
    assert (repair_psd(K, "shift") == K).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="method must be one of"):
        repair_psd(np.eye(2), "abs")
    with pytest.raises(ValueError, match="symmetric"):
        psd_report(np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="tol"):
        psd_report(np.eye(2), tol=-1)
    with pytest.raises(ValueError, match="square"):
        repair_psd(np.ones((2, 3)))


def test_the_warning_is_not_a_runtime_warning():
    """pytest turns RuntimeWarning into errors here; users filter this one by its class."""
    assert issubclass(IndefiniteKernelWarning, UserWarning)
    assert not issubclass(IndefiniteKernelWarning, RuntimeWarning)
    with pytest.warns(IndefiniteKernelWarning):
        warnings.warn("x", IndefiniteKernelWarning)
