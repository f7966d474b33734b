"""Training data of the GMMN runs: the fixed splits of :mod:`ssimref.generative.data`
(scikit-learn's 8x8 digits, the 5,000 28x28 MNIST digits, or a file), scaled to [0, 1].

``"digits"``: the 1,797 digits (values 0..16) divided by 16 and split once, stratified by
label, with a fixed seed that does not depend on any training seed: 1,197 training, 300
validation and 300 test images. Every run and every evaluation sees the same split: the
fixed split of :mod:`ssimref.datasets` (``split_indices("digits")``).
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from ..generative.data import DATASET_NAMES as DATASETS
from ..generative.data import SPLIT_SEED, DigitSplits, load_splits

__all__ = ["DigitSplits", "load_digit_splits", "DATASETS", "SPLIT_SEED"]


def load_digit_splits(dataset="digits") -> DigitSplits:
    """The fixed train / validation / test split of ``dataset``, images in [0, 1], as
    writable arrays of their own (:func:`ssimref.generative.data.load_splits` shares
    read-only ones).

    Raises
    ------
    ValueError
        An unknown ``dataset``.

    See Also
    --------
    ssimref.datasets.load_splits : the split with the images in their stored range.
    """
    splits = load_splits(dataset)
    return DigitSplits(**{f.name: (np.array(getattr(splits, f.name))
                                   if isinstance(getattr(splits, f.name), np.ndarray)
                                   else getattr(splits, f.name))
                          for f in fields(DigitSplits)})
