"""Every public callable of ssimref that takes images, as one table.

The tests of the input rules (data range, channel axis, masked arrays, scale invariance)
run over :data:`IMAGE_API`, so that a rule holds for the whole public surface rather than
for the functions someone remembered; :data:`NOT_IMAGES` lists, with the reason, every
other public callable of the packages' ``__all__``, and
``tests/test_input_rules.py::test_the_table_covers_every_public_callable`` fails when a
public name is in neither.

Each entry maps a name to ``call(X, Y, **conventions)`` on two stacks ``(n, H, W[, C])``
of the same shape (single-image functions get ``X[0]`` and ``Y[0]``; entries named
"(Y=None)" ignore ``Y``), returning a tuple
of NumPy arrays (values first, then gradients where the callable has them). The
conventions are those of :class:`ssimref.SSIMConfig` plus ``channel_axis``; kernels
take them at construction, statistics through an SSIM kernel.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

import ssimref
from ssimref import kernels as K
from ssimref import mmd as M

N_RESAMPLES = 19  # permutations in mmd_test entries (small: the tests call it often)


def _np(value):
    """The arrays of a result, as a tuple of float64 NumPy arrays."""
    if isinstance(value, tuple):
        return tuple(a for v in value for a in _np(v))
    if dataclasses.is_dataclass(value):
        return (np.asarray([value.statistic, value.pvalue], dtype=float),)
    if value is None:
        return ()
    return (np.asarray(value, dtype=float),)


def _ones(X, Y):
    return np.ones((len(X), len(Y)))


def _grad_weights(X, Y):
    """A cotangent with distinct entries (so no two gradients coincide by symmetry)."""
    n, m = len(X), len(Y)
    return 1.0 + np.arange(n * m, dtype=float).reshape(n, m) / (n * m)


def _conditions(X):
    return np.arange(len(X)) % 2


def _kernel_calls(make):
    """The protocol's methods of one kernel class, each its own entry."""
    return {
        "gram": lambda X, Y, **kw: _np(make(**kw).gram(X, Y)),
        "value_and_vjp": lambda X, Y, **kw: _np(
            make(**kw).value_and_vjp(X, Y, _grad_weights(X, Y), wrt_y=True)),
        "value_and_vjp(Y=None)": lambda X, Y, **kw: _np(
            make(**kw).value_and_vjp(X, None, _grad_weights(X, X))),
        "paired": lambda X, Y, **kw: _np(make(**kw).paired(X, Y)),
        "paired_vjp": lambda X, Y, **kw: _np(
            make(**kw).paired_vjp(X, Y, np.linspace(1.0, 2.0, len(X)))),
    }


def _quiet(fn):
    def call(*args, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", K.IndefiniteKernelWarning)
            return fn(*args, **kw)
    return call


def _ssim_kernel_estimator(X, Y, **kw):
    model = K.SSIMKernel(**kw)
    return _np((model.fit_transform(X), model.transform(Y)))


def _job(run, X, Y, **kw):
    """A resumable job into a temporary .npy, read back (conventions as a config)."""
    import tempfile
    from pathlib import Path
    axis = kw.pop("channel_axis", None)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.npy"
        run(np.concatenate([X, Y]), out, config=ssimref.SSIMConfig(**kw), channel_axis=axis)
        return _np(np.array(ssimref.open_matrix(out)))


def _nystroem_estimator(X, Y, **kw):
    # every training image a landmark: the features span the exact kernel
    model = K.SSIMNystroem(n_components=len(X), random_state=0, **kw)
    return _np((model.fit_transform(X), model.transform(Y)))


def _image_api():
    api = {
        "ssimref.ssim_components": lambda X, Y, **kw: _np(
            ssimref.ssim_components(X[0], Y[0], **kw)),
        "ssimref.ssim_map": lambda X, Y, **kw: _np(ssimref.ssim_map(X[0], Y[0], **kw)),
        "ssimref.ssim": lambda X, Y, **kw: _np(ssimref.ssim(X[0], Y[0], **kw)),
        "ssimref.distance_map": lambda X, Y, **kw: _np(
            ssimref.distance_map(X[0], Y[0], "eq2", **kw)),
        "ssimref.distance": lambda X, Y, **kw: _np(
            ssimref.distance(X[0], Y[0], "eq1-uncentered", **kw)),
        "ssimref.distance_matrix": lambda X, Y, **kw: _np(ssimref.distance_matrix(X, Y, **kw)),
        "ssimref.distance_matrix(Y=None)": lambda X, Y, **kw: _np(
            ssimref.distance_matrix(X, kind="eq1", **kw)),
        "ssimref.distance_matrix_vjp": lambda X, Y, **kw: _np(
            ssimref.distance_matrix_vjp(X, Y, _grad_weights(X, Y), **kw)),
        "ssimref.distance_matrix_vjp(Y=None)": lambda X, Y, **kw: _np(
            ssimref.distance_matrix_vjp(X, None, _grad_weights(X, X), squared=True, **kw)),
        "ssimref.paired_distance": lambda X, Y, **kw: _np(ssimref.paired_distance(X, Y, **kw)),
        "ssimref.paired_distance_and_grad": lambda X, Y, **kw: _np(
            ssimref.paired_distance_and_grad(X, Y, "eq1", **kw)),
        "ssimref.kernels.ssim_kernel(Y=None)": _quiet(lambda X, Y, **kw: _np(
            K.ssim_kernel(X, **kw))),
        "ssimref.kernels.ssim_kernel(Y)": _quiet(lambda X, Y, **kw: _np(
            K.ssim_kernel(Y, X, **kw))),
        "ssimref.kernels.SSIMKernel": _quiet(_ssim_kernel_estimator),
        "ssimref.kernels.SSIMNystroem": _quiet(_nystroem_estimator),
        "ssimref.distance_job": lambda X, Y, **kw: _job(
            lambda *a, **o: ssimref.distance_job(*a, kind="eq2", **o), X, Y, **kw),
        "ssimref.kernel_job": _quiet(lambda X, Y, **kw: _job(
            lambda *a, **o: ssimref.kernel_job(*a, **o), X, Y, **kw)),
        "ssimref.kernels.mean_ssim_kernel": lambda X, Y, **kw: _np(
            K.mean_ssim_kernel(X, Y, **kw)),
        "ssimref.kernels.SSIMRBFKernel.from_median": lambda X, Y, **kw: _np(
            K.SSIMRBFKernel.from_median(X, Y, **kw).gram(X, Y)),
        "ssimref.kernels.make_kernel": lambda X, Y, **kw: _np(
            K.make_kernel("ssim-rbf", X, Y, **kw).gram(X, Y)),
    }
    classes = {"SSIMDistanceKernel": lambda **kw: K.SSIMDistanceKernel("eq2", 1, **kw),
               "SSIMRBFKernel": lambda **kw: K.SSIMRBFKernel(0.05, **kw),
               "MeanSSIMKernel": lambda **kw: K.MeanSSIMKernel(**kw)}
    for name, make in classes.items():
        for method, call in _kernel_calls(make).items():
            api[f"ssimref.kernels.{name}.{method}"] = call

    def kernel(**kw):
        return K.SSIMDistanceKernel("eq2", 1, **kw)

    for estimator in M.ESTIMATORS:
        api[f"ssimref.mmd.mmd2[{estimator}]"] = (
            lambda X, Y, e=estimator, **kw: _np(M.mmd2(X, Y, kernel(**kw), e)))
        api[f"ssimref.mmd.mmd2_and_grad[{estimator}]"] = (
            lambda X, Y, e=estimator, **kw: _np(M.mmd2_and_grad(X, Y, kernel(**kw), e)))
    api["ssimref.mmd.cmmd2"] = lambda X, Y, **kw: _np(
        M.cmmd2(X, Y, _conditions(X), kernel(**kw)))
    api["ssimref.mmd.cmmd2_and_grad"] = lambda X, Y, **kw: _np(
        M.cmmd2_and_grad(X, Y, _conditions(X), kernel(**kw)))
    for estimator in ("unbiased", "biased"):
        api[f"ssimref.mmd.mmd_test[{estimator}]"] = (
            lambda X, Y, e=estimator, **kw: _np(M.mmd_test(
                X, Y, kernel(**kw), n_resamples=N_RESAMPLES, rng=0, estimator=e)))
    return api


#: name -> call(X, Y, **conventions) -> tuple of NumPy arrays.
IMAGE_API = _image_api()

#: Public callables that take no images, and why.
NOT_IMAGES = {
    "ssimref.SSIMConfig": "the conventions themselves",
    "ssimref.load_images": "reads files (tests/test_cli_input.py)",
    "ssimref.ImageSet": "a record of what load_images read",
    "ssimref.open_matrix": "reads a stored matrix",
    "ssimref.kernels.double_center": "takes a distance matrix",
    "ssimref.kernels.center_out_of_sample": "takes distance matrices",
    "ssimref.kernels.ssim_rbf_kernel": "takes a distance matrix",
    "ssimref.kernels.median_heuristic": "takes a distance matrix",
    "ssimref.kernels.psd_report": "takes a kernel matrix",
    "ssimref.kernels.repair_psd": "takes a kernel matrix",
    "ssimref.kernels.PSDReport": "a record",
    "ssimref.kernels.IndefiniteKernelWarning": "a warning class",
    "ssimref.kernels.Kernel": "the protocol's base class (its subclasses are in the table)",
    "ssimref.kernels.RBFMixture": "points of any dimension, no SSIM conventions",
    "ssimref.mmd.cmmd_weights": "takes a Gram matrix of conditions",
    "ssimref.mmd.MMDTestResult": "a record",
    "ssimref.datasets.Dataset": "a record",
    "ssimref.datasets.Splits": "a record",
    "ssimref.datasets.SplitIndices": "a record",
    "ssimref.datasets.load": "loads bundled data",
    "ssimref.datasets.load_splits": "loads bundled data",
    "ssimref.datasets.split_indices": "indices of bundled data",
    "ssimref.datasets.as_unit_float": "rescales a bundled data set",
    "ssimref.datasets.cache_dir": "a path",
    "ssimref.datasets.clear_cache": "removes cached files",
    "ssimref.datasets.CacheWarning": "a warning class",
    "ssimref.engines.Engine": "the engine protocol",
    "ssimref.engines.SlowEngineWarning": "a warning class",
    "ssimref.engines.choose_engine": "names an engine",
    "ssimref.engines.available_engines": "names engines",
    "ssimref.engines.get_engine": "returns an engine",
    "ssimref.engines.register_engine": "registers an engine",
    "ssimref.engines.unregister_engine": "unregisters an engine",
    "ssimref.engines.accuracy_floor": "a bound from a config and a shape",
    "ssimref.engines.vjp_accuracy_floor": "a bound from a config, a shape and weights",
    "ssimref.engines.check_backend": "validates an engine name",
    "ssimref.engines.ElementwiseCotangent": "wraps a cotangent function of a tile",
    "ssimref.engines.distance_block": "the engine protocol's tile call (trusted float64 tiles)",
}
