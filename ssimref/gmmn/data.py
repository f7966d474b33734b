"""Training data of the GMMN runs: the fixed splits of :mod:`ssimref.generative.data`
(scikit-learn's 8x8 digits, the 5,000 28x28 MNIST digits, or a file).

``"digits"``: the 1,797 digits (values 0..16) scaled to [0, 1] and split once, stratified
by label, with a fixed seed that does not depend on any training seed: 1,197 training, 300
validation and 300 test images. Every run and every evaluation sees the same split.
"""

from __future__ import annotations

from ..generative.data import DATASET_NAMES as DATASETS
from ..generative.data import SPLIT_SEED, DigitSplits, load_splits

__all__ = ["DigitSplits", "load_digit_splits", "DATASETS", "SPLIT_SEED"]


def load_digit_splits(dataset="digits") -> DigitSplits:
    """The fixed train / validation / test split of ``dataset``."""
    return load_splits(dataset)
