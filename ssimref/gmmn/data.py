"""Training data for the generative models: scikit-learn's bundled 8x8 digits.

The 1,797 digits (values 0..16) are scaled to [0, 1] and split once, stratified by label,
with a fixed seed that does not depend on any training seed: 1,197 training, 300
validation and 300 test images. Every run and every evaluation sees the same split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DigitSplits", "load_digit_splits", "DATASETS", "SPLIT_SEED"]

DATASETS = ("digits",)
SPLIT_SEED = 2015  # Li, Swersky, Zemel's year; any fixed number would do
N_VALIDATION = 300
N_TEST = 300


@dataclass(frozen=True)
class DigitSplits:
    """Images ``(n, 8, 8)`` float64 in [0, 1] and integer labels, per split."""

    train: np.ndarray
    train_labels: np.ndarray
    validation: np.ndarray
    validation_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray

    @property
    def image_shape(self):
        return tuple(self.train.shape[1:])

    @property
    def n_classes(self):
        return int(self.train_labels.max()) + 1


def load_digit_splits(dataset="digits") -> DigitSplits:
    """The fixed train / validation / test split of ``dataset`` (only "digits")."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float64) / 16.0
    labels = digits.target.astype(np.int64)
    rest, test, rest_labels, test_labels = train_test_split(
        images, labels, test_size=N_TEST, stratify=labels, random_state=SPLIT_SEED)
    train, validation, train_labels, validation_labels = train_test_split(
        rest, rest_labels, test_size=N_VALIDATION, stratify=rest_labels,
        random_state=SPLIT_SEED)
    return DigitSplits(train, train_labels, validation, validation_labels, test, test_labels)
