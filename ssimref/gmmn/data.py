"""Training data for the generative models: scikit-learn's bundled 8x8 digits.

The 1,797 digits (values 0..16) are scaled to [0, 1] and split once, stratified by label,
with a fixed seed that does not depend on any training seed: 1,197 training, 300
validation and 300 test images. Every run and every evaluation sees the same split: the
fixed split of :mod:`ssimref.datasets` (``split_indices("digits")``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import datasets
from ..datasets import SPLIT_SEED

__all__ = ["DigitSplits", "load_digit_splits", "DATASETS", "SPLIT_SEED"]

DATASETS = ("digits",)
N_VALIDATION = datasets.SPLIT_SIZES["digits"][1]
N_TEST = datasets.SPLIT_SIZES["digits"][2]


@dataclass(frozen=True)
class DigitSplits:
    """Images ``(n, 8, 8)`` float64 in [0, 1] and integer labels, per split (writable
    arrays of their own)."""

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
    """The fixed train / validation / test split of ``dataset`` (only "digits"), images
    divided by the data range 16.

    Raises
    ------
    ValueError
        ``dataset`` other than "digits".

    See Also
    --------
    ssimref.datasets.load_splits : the split with the images in their stored range.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    splits = datasets.load_splits(dataset)
    parts = []
    for part in (splits.train, splits.validation, splits.test):
        parts += [datasets.as_unit_float(part), np.array(part.labels, dtype=np.int64)]
    return DigitSplits(*parts)
