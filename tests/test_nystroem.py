"""SSIMNystroem: Nystroem features of the SSIM kernel (ssimref.kernels.nystroem).

The exact kernels the features are checked against come from the distance matrix through
double centring and the out-of-sample formula (ssimref.kernels.double_center,
center_out_of_sample, SSIMKernel), independently of the base-point construction.
"""

import importlib
import inspect
import math
import pickle
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score, \
    train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from ssimref import SSIMConfig, distance_matrix
from ssimref.kernels import (SSIMKernel, SSIMNystroem, center_out_of_sample, double_center,
                             ssim_kernel)

from .strategies import KINDS, config_and_stack

nystroem_module = importlib.import_module("ssimref.kernels.nystroem")

SMALL = dict(data_range=1.0, window="uniform", size=3)
DIGITS = dict(data_range=16, window="uniform", size=3)


def relative_error(A, B):
    """Relative Frobenius error of ``A`` against the reference ``B``."""
    return np.linalg.norm(A - B) / np.linalg.norm(B)


class DistanceSpy:
    """Wraps distance_matrix, recording the dtype and length of each first argument."""

    def __init__(self, function):
        self.function, self.calls = function, []

    def __call__(self, X, Y=None, **kw):
        self.calls.append((X.dtype, X.shape[0], None if Y is None else Y.shape[0]))
        return self.function(X, Y, **kw)


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.images, data.data, data.target


@pytest.fixture
def images(rng):
    return rng.uniform(0, 1, size=(14, 8, 7))


@pytest.fixture
def test_images(rng):
    return rng.uniform(0, 1, size=(5, 8, 7))


def nystroem(**kw):
    return SSIMNystroem(**{"random_state": 0, **SMALL, **kw})


# ------------------------------------------------- exactness with every image a landmark
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("power", [1, 2])
@pytest.mark.parametrize("landmarks", ["uniform", "k-means++"])
def test_all_landmarks_give_the_exact_centred_kernel(images, kind, power, landmarks):
    est = nystroem(kind=kind, power=power, landmarks=landmarks, n_components=len(images))
    Phi = est.fit_transform(images)
    D = distance_matrix(images, kind=kind, **SMALL)
    K = double_center(D, power)
    assert relative_error(Phi @ Phi.T, K) <= 1e-10
    assert relative_error(Phi @ Phi.T, ssim_kernel(images, kind=kind, power=power,
                                                   **SMALL)) <= 1e-10
    # the base point's row of W is 0: one eigenvalue exactly 0, the n - 1 others kept
    assert est.rank_ == len(images) - 1
    assert np.sort(est.component_indices_).tolist() == list(range(len(images)))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("power", [1, 2])
def test_all_landmarks_give_the_exact_out_of_sample_kernel(images, test_images, kind, power):
    est = nystroem(kind=kind, power=power, n_components=len(images))
    Phi_train = est.fit_transform(images)
    Phi_test = est.transform(test_images)
    exact = SSIMKernel(kind=kind, power=power, **SMALL).fit(images).transform(test_images)
    assert relative_error(Phi_test @ Phi_train.T, exact) <= 1e-10
    # the same from the distance matrices and the Bengio et al. formula
    D_test = distance_matrix(test_images, images, kind=kind, **SMALL)
    D_train = distance_matrix(images, kind=kind, **SMALL)
    assert relative_error(Phi_test @ Phi_train.T,
                          center_out_of_sample(D_test, D_train, power)) <= 1e-10


@settings(max_examples=25)
@given(config_and_stack(n_min=2, n_max=6), st.sampled_from(KINDS),
       st.sampled_from([0.5, 1, 2]))
def test_all_landmarks_are_exact_on_generated_images(case, kind, power):
    """Any conventions, channels, constant or repeated images (hypothesis favours them):
    the difference is the eigenvalues cut off, at most ``rtol * lambda_max`` each."""
    config, X = case
    est = SSIMNystroem(kind=kind, power=power, config=config, n_components=len(X),
                       random_state=0)
    Phi = est.fit_transform(X)
    K = double_center(distance_matrix(X, kind=kind, config=config), power)
    cut = math.sqrt(len(X)) * est.rtol * max(est.eigenvalues_.max(), 0.0)
    assert np.linalg.norm(Phi @ Phi.T - K) <= 1e-10 * np.linalg.norm(K) + cut + 1e-300


def test_the_base_point_does_not_matter(images, test_images):
    """The same landmark set in another order (another base point) gives the same
    centred kernel, in and out of sample (derivation, step 4)."""
    m = 6
    first = nystroem(n_components=m).fit(images)
    chosen = first.component_indices_
    # reorder the training set so that the same draw picks the same images, rotated
    order = np.arange(len(images))
    order[chosen] = np.roll(chosen, -1)
    second = nystroem(n_components=m).fit(images[order])
    assert sorted(order[second.component_indices_]) == sorted(chosen)
    assert order[second.component_indices_[0]] != chosen[0]
    for X in (images, test_images):
        A, B = first.transform(X), second.transform(X)
        np.testing.assert_allclose(A @ A.T, B @ B.T, rtol=0,
                                   atol=1e-12 * np.abs(A @ A.T).max())


# ----------------------------------------------------------------- approximation
def test_error_decreases_with_nested_landmarks_on_digits(digits):
    """With one random_state the uniform draws are nested (prefixes of one permutation);
    the residual ``K - Phi Phi^T`` is the Gram matrix of the part of the centred
    embedding outside the landmarks' span, PSD and decreasing in the Loewner order as the
    span grows, so its Frobenius norm decreases; with every image a landmark it is 0."""
    X = digits[0][:300]
    K = ssim_kernel(X, **DIGITS)
    errors, previous = [], None
    for m in (10, 30, 100, 200, 300):
        est = SSIMNystroem(n_components=m, random_state=1, **DIGITS)
        Phi = est.fit_transform(X)
        if previous is not None:
            assert est.component_indices_[:len(previous)].tolist() == previous
        previous = est.component_indices_.tolist()
        residual = K - Phi @ Phi.T
        lam = np.linalg.eigvalsh(residual)
        assert lam.min() >= -1e-10 * np.abs(K).max()
        errors.append(relative_error(Phi @ Phi.T, K))
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[0] > 0.3 and errors[-1] <= 1e-10, errors


def test_kmeans_plusplus_recovers_a_kernel_of_few_distinct_images(rng):
    """Five distinct images, each four times: k-means++ never draws a copy of a landmark
    (its weight D^p is 0), so five landmarks span everything and the kernel is exact;
    asking for more than five draws the rest uniformly among the copies."""
    distinct = rng.uniform(0, 1, size=(5, 8, 8))
    X = np.repeat(distinct, 4, axis=0)[rng.permutation(20)]
    K = double_center(distance_matrix(X, **SMALL))
    for m in (5, 8):
        est = nystroem(landmarks="k-means++", n_components=m)
        Phi = est.fit_transform(X)
        picked = est.components_[:5].reshape(5, -1)
        assert len(np.unique(picked, axis=0)) == 5
        assert len(set(est.component_indices_.tolist())) == m
        assert relative_error(Phi @ Phi.T, K) <= 1e-10
        assert est.rank_ == 4


def _seeding_probabilities(rho, m, current=True):
    """Probability of each set of ``m`` landmarks under k-means++ seeding with weights
    ``min_l rho(x, l)`` over the landmarks so far (``current=False``: the first landmark's
    distances only, i.e. weights not brought up to date), by enumerating the orders."""
    import itertools
    n = len(rho)
    sets = {}
    for order in itertools.permutations(range(n), m):
        p = 1.0 / n
        for k in range(1, m):
            chosen = list(order[:k])
            w = rho[:, chosen].min(axis=1) if current else rho[:, order[0]].copy()
            w[chosen] = 0.0
            p *= w[order[k]] / w.sum()
        key = frozenset(order)
        sets[key] = sets.get(key, 0.0) + p
    return sets


def test_kmeans_plusplus_draws_with_probability_proportional_to_d_power_p(rng):
    """Five images, one a near-copy of another; three landmarks. Each next landmark is
    drawn with probability ``min_l D^p(x, l) / sum_y min_l D^p(y, l)``: a chi-square test
    on 600 seeded draws accepts the resulting distribution of landmark sets (enumerated
    over all orders) and rejects the one of weights never brought up to date (the first
    landmark's distances only), which draws the near-copy pair far more often."""
    base = rng.uniform(0, 1, size=(4, 8, 8))
    near = np.clip(base[0] + rng.normal(0, 0.02, size=(8, 8)), 0, 1)
    X = np.concatenate([base, near[None]])
    rho = distance_matrix(X, **SMALL)
    counts = {}
    for seed in range(600):
        est = SSIMNystroem(n_components=3, landmarks="k-means++", random_state=seed,
                           backend="reference", **SMALL).fit(X)
        key = frozenset(est.component_indices_.tolist())
        counts[key] = counts.get(key, 0) + 1

    def p_value(probabilities):
        keys = sorted(probabilities, key=sorted)
        observed = np.array([counts.get(k, 0) for k in keys])
        expected = 600 * np.array([probabilities[k] for k in keys])
        return stats.chisquare(observed, expected).pvalue

    assert sum(counts.values()) == 600
    assert p_value(_seeding_probabilities(rho, 3)) > 1e-3
    assert p_value(_seeding_probabilities(rho, 3, current=False)) < 1e-6


def test_kmeans_plusplus_reuses_its_seeding_distances_when_they_fit(digits, monkeypatch):
    """Seeding computes D^p from every image to every landmark; when that (n, m) matrix
    fits half of working_memory, the training features come from it (no further
    distances) and equal features recomputed by transform."""
    X = digits[0][:200]
    spy = DistanceSpy(nystroem_module.distance_matrix)
    monkeypatch.setattr(nystroem_module, "distance_matrix", spy)
    est = SSIMNystroem(n_components=12, landmarks="k-means++", random_state=0, **DIGITS)
    Phi = est.fit_transform(X)
    # seeding: a pass for the first landmark, proposals among themselves, a pass for
    # the other 11, then W; no pass for the features
    assert [cols for _, _, cols in spy.calls] == [1, None, 11, None]
    np.testing.assert_allclose(est.transform(X), Phi, rtol=0, atol=1e-12 * np.abs(Phi).max())


def test_kmeans_plusplus_recomputes_distances_that_do_not_fit(images, monkeypatch):
    kept = nystroem(landmarks="k-means++", n_components=5, backend="reference")
    expected = kept.fit_transform(images)
    spy = DistanceSpy(nystroem_module.distance_matrix)
    monkeypatch.setattr(nystroem_module, "distance_matrix", spy)
    # 14 x 5 float64 = 560 bytes > half of 0.001 MiB
    est = nystroem(landmarks="k-means++", n_components=5, backend="reference",
                   working_memory=0.001)
    Phi = est.fit_transform(images)
    np.testing.assert_array_equal(est.component_indices_, kept.component_indices_)
    assert sum(rows for _, rows, cols in spy.calls if cols == 5) == len(images)
    np.testing.assert_allclose(Phi, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


# ------------------------------------------------------------------ scikit-learn
@pytest.fixture(scope="module")
def digits_split(digits):
    _, flat, y = digits
    return train_test_split(flat, y, test_size=0.3, stratify=y, random_state=0)


@pytest.mark.parametrize("make_classifier, floor", [
    # Measured on this split (1257 train / 540 test, random_state 0, 3x3 uniform windows,
    # eq2, 300 uniform landmarks, random_state 0): 0.9778, 0.9741, 0.9741; asserted with
    # a margin of about 1.5%. The exact kernel's SVC reaches 0.9889.
    (lambda: LinearSVC(), 0.96),
    (lambda: SGDClassifier(random_state=0), 0.955),
    (lambda: make_pipeline(PCA(50, random_state=0), LinearSVC()), 0.955),
])
def test_pipelines_on_digits_reach_the_measured_accuracy(digits_split, make_classifier,
                                                         floor):
    X_train, X_test, y_train, y_test = digits_split
    model = make_pipeline(SSIMNystroem(n_components=300, random_state=0, image_shape=(8, 8),
                                       **DIGITS), make_classifier())
    model.fit(X_train, y_train)
    assert model.predict(X_test).shape == y_test.shape
    assert model.score(X_test, y_test) >= floor
    copy = clone(model)
    assert copy.get_params()["ssimnystroem__n_components"] == 300
    assert not hasattr(copy.steps[0][1], "normalization_")


def test_pca_on_all_landmark_features_is_kernel_pca(images):
    """PCA of the features (centred) is the eigendecomposition of Phi Phi^T: with every
    image a landmark, the classical-scaling coordinates of the exact kernel."""
    pipe = make_pipeline(nystroem(n_components=len(images)), PCA(n_components=2))
    Z = pipe.fit_transform(images)
    lam, U = np.linalg.eigh(ssim_kernel(images, **SMALL))
    expected = U[:, ::-1][:, :2] * np.sqrt(lam[::-1][:2])
    np.testing.assert_allclose(np.abs(Z), np.abs(expected), atol=1e-10)


def test_grid_search_over_n_components(digits):
    images, _, y = digits
    X, y = images[:150], y[:150]
    pipe = make_pipeline(SSIMNystroem(random_state=0, **DIGITS), LinearSVC())
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(pipe, {"ssimnystroem__n_components": [20, 60]}, cv=cv).fit(X, y)
    assert search.best_params_["ssimnystroem__n_components"] in (20, 60)
    manual = cross_val_score(make_pipeline(SSIMNystroem(n_components=60, random_state=0,
                                                        **DIGITS), LinearSVC()), X, y, cv=cv)
    row = [i for i, p in enumerate(search.cv_results_["params"])
           if p == {"ssimnystroem__n_components": 60}][0]
    assert search.cv_results_["mean_test_score"][row] == pytest.approx(manual.mean(),
                                                                       abs=1e-12)


def test_clone_get_params_set_params(images):
    est = nystroem(kind="eq1", power=2, config=SSIMConfig(stride=2), n_components=5,
                   landmarks="k-means++", image_shape=(8, 7))
    params = est.get_params()
    assert params["kind"] == "eq1" and params["n_components"] == 5 and params["size"] == 3
    assert params["config"] == SSIMConfig(stride=2)
    copy = clone(est)
    assert copy.get_params() == params and copy is not est
    copy.set_params(n_components=7, kind="eq2")
    assert copy.n_components == 7 and est.n_components == 5
    np.testing.assert_array_equal(
        copy.fit_transform(images),
        nystroem(kind="eq2", power=2, config=SSIMConfig(stride=2), n_components=7,
                 landmarks="k-means++").fit_transform(images))


def test_config_fields_override_the_config(images):
    via_config = SSIMNystroem(n_components=5, random_state=0,
                              config=SSIMConfig(window="uniform", size=5, data_range=1.0))
    via_fields = SSIMNystroem(n_components=5, random_state=0, config=SSIMConfig(size=7),
                              window="uniform", size=5, data_range=1.0)
    np.testing.assert_array_equal(via_config.fit_transform(images),
                                  via_fields.fit_transform(images))
    assert via_fields.config_ == SSIMConfig(window="uniform", size=5, data_range=1.0)


def test_feature_names_out(images):
    est = nystroem(n_components=4).fit(images)
    assert list(est.get_feature_names_out()) == [f"ssimnystroem{i}" for i in range(4)]


def test_pickle_round_trip_in_memory(images):
    """Process-based parallelism (GridSearchCV(n_jobs=...)) pickles estimators."""
    est = nystroem(n_components=5).fit(images)
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.transform(images[:3]), est.transform(images[:3]))


def test_transform_of_the_training_set_equals_fit_transform(images):
    est = nystroem(n_components=6)
    Phi = est.fit_transform(images)
    np.testing.assert_allclose(est.transform(images), Phi, rtol=0,
                               atol=1e-13 * np.abs(Phi).max())
    np.testing.assert_allclose(Phi.mean(axis=0), 0, atol=1e-13 * np.abs(Phi).max())
    refit = nystroem(n_components=6).fit(images)
    np.testing.assert_allclose(refit.mean_, est.mean_, rtol=0, atol=1e-14)


def test_refitting_is_idempotent(images, rng):
    est = nystroem(n_components=5)
    first = est.fit_transform(images)
    est.fit(rng.uniform(0, 1, size=(7, 8, 7)))
    np.testing.assert_array_equal(est.fit_transform(images), first)


def test_subset_and_order_invariance_of_transform(images, rng):
    est = nystroem(n_components=6).fit(images)
    test = rng.uniform(0, 1, size=(6, 8, 7))
    full = est.transform(test)
    one_by_one = np.vstack([est.transform(test[i:i + 1]) for i in range(len(test))])
    np.testing.assert_allclose(one_by_one, full, atol=1e-14)
    order = rng.permutation(len(test))
    np.testing.assert_allclose(est.transform(test[order]), full[order], atol=1e-14)


def test_one_image_gives_zero_features(images):
    est = nystroem(n_components=1)
    np.testing.assert_array_equal(est.fit_transform(images[:1]), np.zeros((1, 1)))
    np.testing.assert_array_equal(est.transform(images[1:3]), np.zeros((2, 1)))


def test_flat_rows_with_image_shape_equal_image_stacks(images):
    flat = images.reshape(len(images), -1)
    Phi = nystroem(n_components=5).fit_transform(images)
    est = nystroem(n_components=5, image_shape=(8, 7))
    np.testing.assert_array_equal(est.fit_transform(flat), Phi)
    assert est.n_features_in_ == 56 and est.image_shape_ == (8, 7)
    np.testing.assert_array_equal(est.transform(flat[:3]), est.transform(images[:3]))


def test_multichannel_images(rng):
    rgb = rng.uniform(0, 1, size=(6, 6, 6, 3))
    est = nystroem(n_components=6)
    Phi = est.fit_transform(rgb)
    assert relative_error(Phi @ Phi.T, ssim_kernel(rgb, **SMALL)) <= 1e-10
    np.testing.assert_array_equal(nystroem(n_components=6, image_shape=(6, 6, 3))
                                  .fit_transform(rgb.reshape(6, -1)), Phi)


def test_integer_images_take_their_range_from_the_training_dtype(rng):
    X = rng.integers(0, 256, size=(6, 8, 8), dtype=np.uint8)
    est = SSIMNystroem(n_components=6, random_state=0, window="uniform", size=3)
    Phi = est.fit_transform(X)
    assert est.config_.data_range == 255 and est.components_.dtype == np.uint8
    assert relative_error(Phi @ Phi.T, ssim_kernel(X, window="uniform", size=3)) <= 1e-10
    np.testing.assert_array_equal(est.transform(X.astype(np.int64)), est.transform(X))


def test_input_is_not_modified(images):
    before = images.copy()
    est = nystroem(n_components=5)
    est.fit_transform(images)
    est.transform(images)
    np.testing.assert_array_equal(images, before)


# ------------------------------------------------------------------- large inputs
@pytest.fixture(scope="module")
def patches():
    return np.random.default_rng(7).integers(0, 256, size=(2000, 8, 8), dtype=np.uint8)


#: 2,000 8x8 images against 20 landmarks in batches of 0.25 MiB / (3 x 8 x 20 bytes)
#: = 546 rows: four batches.
BATCHED = dict(n_components=20, random_state=0, window="uniform", size=3)


def test_batches_stay_uint8_and_agree_with_one_batch(patches, monkeypatch, tmp_path):
    expected = SSIMNystroem(**BATCHED).fit_transform(patches)
    spy = DistanceSpy(nystroem_module.distance_matrix)
    monkeypatch.setattr(nystroem_module, "distance_matrix", spy)
    est = SSIMNystroem(**BATCHED, working_memory=0.5)
    path = tmp_path / "x.npy"
    np.save(path, patches)
    X = np.load(path, mmap_mode="r")
    Phi = est.fit_transform(X)
    batches = [rows for _, rows, cols in spy.calls if cols == 20]
    assert batches == [546, 546, 546, 362]
    assert all(dtype == np.uint8 for dtype, _, _ in spy.calls)
    np.testing.assert_allclose(Phi, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    np.testing.assert_allclose(est.transform(X), expected, rtol=0,
                               atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_features_stream_into_a_memmap(patches, tmp_path, dtype):
    expected = SSIMNystroem(**BATCHED).fit_transform(patches)
    est = SSIMNystroem(**BATCHED, working_memory=0.5)
    out = np.lib.format.open_memmap(tmp_path / "phi.npy", mode="w+", dtype=dtype,
                                    shape=(len(patches), 20))
    assert est.fit_transform(patches, out=out) is out
    out.flush()
    stored = np.load(tmp_path / "phi.npy")
    # float32: two roundings of values of the centred features' scale
    tol = 4 * np.finfo(dtype).eps * np.abs(expected).max() if dtype == np.float32 \
        else 1e-12 * np.abs(expected).max()
    np.testing.assert_allclose(stored, expected, rtol=0, atol=tol)
    test_out = np.zeros((100, 20), dtype=dtype)
    assert est.transform(patches[:100], out=test_out) is test_out
    np.testing.assert_allclose(test_out, expected[:100], rtol=0, atol=tol)


def test_transform_holds_no_float_copy_of_the_images(rng):
    """6,000 uint8 images of 24x24 (3.3 MiB; a float64 copy would be 26 MiB) against 8
    landmarks with working_memory 4 MiB: NumPy's traced peak stays within it."""
    X = rng.integers(0, 256, size=(6000, 24, 24), dtype=np.uint8)
    est = SSIMNystroem(n_components=8, random_state=0, window="uniform", size=7,
                       working_memory=4).fit(X[:50])
    out = np.empty((len(X), 8), dtype=np.float32)
    est.transform(X[:10], out=out[:10])            # warm-up
    tracemalloc.start()
    try:
        est.transform(X, out=out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 4 * 2**20, peak


# ---------------------------------------------------------------------- bad input
def _no_distances(*args, **kw):
    raise AssertionError("a distance was computed before the input was checked")


@pytest.mark.parametrize("make, error, match", [
    (lambda X: (nystroem(n_components=15), X), ValueError, "larger than the 14 training"),
    (lambda X: (nystroem(n_components=0), X), ValueError, "n_components must be an integer"),
    (lambda X: (nystroem(n_components=2.5), X), ValueError, "n_components must be an int"),
    (lambda X: (nystroem(power=3), X), ValueError, "power must be in"),
    (lambda X: (nystroem(power=0), X), ValueError, "power must be in"),
    (lambda X: (nystroem(power="one"), X), TypeError, "power must be a number"),
    (lambda X: (nystroem(kind="eq3"), X), ValueError, "kind must be one of"),
    (lambda X: (nystroem(landmarks="kmeans"), X), ValueError, "landmarks must be one of"),
    (lambda X: (nystroem(backend="gpu"), X), ValueError, "backend must be one of"),
    (lambda X: (nystroem(rtol=-1), X), ValueError, "rtol must be"),
    (lambda X: (nystroem(working_memory=0), X), ValueError, "working_memory must be"),
    (lambda X: (SSIMNystroem(n_components=3), X), ValueError, "data_range is required"),
    (lambda X: (nystroem(size=9), X), ValueError, "larger than the images"),
    (lambda X: (nystroem(), X.reshape(len(X), -1)), ValueError, "needs image_shape"),
    (lambda X: (nystroem(image_shape=(7, 8)), X), ValueError, "image_shape"),
    (lambda X: (nystroem(image_shape=(8, 8)), X.reshape(len(X), -1)), ValueError,
     "56 features"),
    (lambda X: (nystroem(image_shape=8), X), ValueError, "image_shape must be"),
    (lambda X: (nystroem(), X[:, :, :, None, None]), ValueError, "must have shape"),
    (lambda X: (nystroem(data_range=None), X > 0.5), ValueError,
     "data_range is required for bool"),
    (lambda X: (nystroem(config={"size": 3}), X), TypeError, "config must be"),
    (lambda X: (nystroem(window="box"), X), ValueError, "window must be one of"),
])
def test_bad_parameters_and_inputs_raise_before_any_distance(images, monkeypatch, make,
                                                             error, match):
    monkeypatch.setattr(nystroem_module, "distance_matrix", _no_distances)
    est, X = make(images)
    with pytest.raises(error, match=match):
        est.fit(X)


@pytest.mark.parametrize("out, error, match", [
    (np.zeros((14, 4)), ValueError, r"shape \(14, 5\)"),
    (np.zeros((14, 5), dtype=np.int64), TypeError, "float64 or float32"),
    ([[0.0] * 5] * 14, TypeError, "NumPy array"),
])
def test_bad_out_raises_before_any_distance(images, monkeypatch, out, error, match):
    monkeypatch.setattr(nystroem_module, "distance_matrix", _no_distances)
    with pytest.raises(error, match=match):
        nystroem(n_components=5).fit_transform(images, out=out)


def test_transform_checks_images_and_out_before_any_distance(images, monkeypatch):
    est = nystroem(n_components=5).fit(images)
    with pytest.raises(NotFittedError):
        nystroem().transform(images)
    monkeypatch.setattr(nystroem_module, "distance_matrix", _no_distances)
    with pytest.raises(ValueError, match="fitted on images of shape"):
        est.transform(images[:, :7, :])
    with pytest.raises(ValueError, match="expecting 56 features"):
        est.transform(images[:, :7, :].reshape(14, -1))
    with pytest.raises(ValueError, match="NaN|infinity"):
        est.transform(np.full((1, 8, 7), np.nan))
    readonly = np.zeros((14, 5))
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        est.transform(images, out=readonly)
    with pytest.raises(ValueError, match=r"shape \(3, 5\)"):
        est.transform(images[:3], out=np.zeros((3, 6)))


# ------------------------------------------------- scikit-learn's own checks
#: Checks whose generated data are rows of 1, 2, 3, 5 or 10 features: SSIMNystroem reads
#: each row as an image of ``image_shape`` (here 2x2, the smallest image a window fits),
#: so these fail at the feature count before testing anything else. The property each
#: one checks is tested above on image data, by the test named after the reason.
_FEATURE_COUNT = "rows of {} features are not 2x2 images; covered by {}"
EXPECTED_FAILED_CHECKS = {
    "check_fit_score_takes_y": _FEATURE_COUNT.format(3, "test_clone_get_params_set_params"),
    "check_estimators_overwrite_params": _FEATURE_COUNT.format(
        2, "test_clone_get_params_set_params"),
    "check_dont_overwrite_parameters": _FEATURE_COUNT.format(
        3, "test_clone_get_params_set_params"),
    "check_estimators_fit_returns_self": _FEATURE_COUNT.format(
        2, "test_refitting_is_idempotent"),
    "check_readonly_memmap_input": _FEATURE_COUNT.format(
        2, "test_batches_stay_uint8_and_agree_with_one_batch"),
    "check_estimators_dtypes": _FEATURE_COUNT.format(
        5, "test_integer_images_take_their_range_from_the_training_dtype"),
    "check_dtype_object": _FEATURE_COUNT.format(
        10, "test_bad_parameters_and_inputs_raise_before_any_distance"),
    "check_pipeline_consistency": _FEATURE_COUNT.format(
        3, "test_transform_of_the_training_set_equals_fit_transform"),
    "check_estimators_nan_inf": _FEATURE_COUNT.format(
        3, "test_transform_checks_images_and_out_before_any_distance"),
    "check_estimators_pickle": _FEATURE_COUNT.format(3, "test_pickle_round_trip_in_memory"),
    "check_f_contiguous_array_estimator": _FEATURE_COUNT.format(
        3, "test_flat_rows_with_image_shape_equal_image_stacks"),
    "check_transformer_data_not_an_array": _FEATURE_COUNT.format(
        3, "test_flat_rows_with_image_shape_equal_image_stacks"),
    "check_transformer_general": _FEATURE_COUNT.format(
        3, "test_transform_of_the_training_set_equals_fit_transform"),
    "check_transformer_preserve_dtypes": _FEATURE_COUNT.format(
        3, "test_features_stream_into_a_memmap"),
    "check_methods_sample_order_invariance": _FEATURE_COUNT.format(
        3, "test_subset_and_order_invariance_of_transform"),
    "check_methods_subset_invariance": _FEATURE_COUNT.format(
        3, "test_subset_and_order_invariance_of_transform"),
    "check_fit2d_1sample": _FEATURE_COUNT.format(10, "test_one_image_gives_zero_features"),
    "check_fit2d_1feature": _FEATURE_COUNT.format(
        1, "test_transform_checks_images_and_out_before_any_distance"),
    "check_dict_unchanged": _FEATURE_COUNT.format(3, "test_input_is_not_modified"),
    "check_fit_idempotent": _FEATURE_COUNT.format(2, "test_refitting_is_idempotent"),
    "check_fit_check_is_fitted": _FEATURE_COUNT.format(
        2, "test_transform_checks_images_and_out_before_any_distance"),
    "check_n_features_in": _FEATURE_COUNT.format(
        2, "test_flat_rows_with_image_shape_equal_image_stacks"),
    "check_fit2d_predict1d": _FEATURE_COUNT.format(
        3, "test_transform_checks_images_and_out_before_any_distance"),
}


_CHECK_OPTIONS = inspect.signature(parametrize_with_checks).parameters

if "expected_failed_checks" in _CHECK_OPTIONS:
    # strict where scikit-learn allows it (>= 1.8): a check that starts passing fails
    @parametrize_with_checks(
        [SSIMNystroem(n_components=2, random_state=0, image_shape=(2, 2), data_range=1.0,
                      window="uniform", size=2)],
        expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
        **({"xfail_strict": True} if "xfail_strict" in _CHECK_OPTIONS else {}))
    def test_sklearn_estimator_checks(estimator, check):
        check(estimator)
else:  # scikit-learn < 1.6 cannot mark expected failures
    @pytest.mark.skip(reason="scikit-learn >= 1.6 needed for expected_failed_checks")
    def test_sklearn_estimator_checks():
        pass
