"""The public API: each package's ``__all__`` lists exactly the names a user needs, every
one of them is documented, and the README and docs import from the packages, never from
implementation modules."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

import ssimref

ROOT = Path(ssimref.__file__).resolve().parents[1]

PUBLIC = {
    "ssimref": {
        "SSIMConfig", "ssim_components", "ssim_map", "ssim", "distance_map", "distance",
        "distance_matrix", "distance_matrix_vjp", "paired_distance",
        "paired_distance_and_grad", "load_images", "ImageSet", "distance_job", "kernel_job",
        "open_matrix", "__version__"},
    "ssimref.kernels": {
        "double_center", "center_out_of_sample", "ssim_kernel", "SSIMKernel",
        "ssim_rbf_kernel", "mean_ssim_kernel", "median_heuristic", "psd_report",
        "repair_psd", "PSDReport", "IndefiniteKernelWarning", "Kernel", "RBFMixture",
        "SSIMDistanceKernel", "SSIMRBFKernel", "MeanSSIMKernel", "make_kernel",
        "KERNEL_NAMES", "SSIMNystroem"},
    "ssimref.mmd": {
        "mmd2", "mmd2_and_grad", "ESTIMATORS", "cmmd2", "cmmd2_and_grad", "cmmd_weights",
        "mmd_test", "MMDTestResult"},
    "ssimref.engines": {
        "ENGINES", "Engine", "choose_engine", "check_backend", "available_engines",
        "get_engine", "register_engine", "unregister_engine", "accuracy_floor",
        "vjp_accuracy_floor", "UNIT_ROUNDOFF", "FORWARD_METHODS", "VJP_METHODS",
        "ElementwiseCotangent", "SlowEngineWarning", "distance_block"},
    "ssimref.datasets": {
        "Dataset", "Splits", "SplitIndices", "load", "load_splits", "split_indices",
        "as_unit_float", "cache_dir", "clear_cache", "CacheWarning", "DATASETS", "SPLITS",
        "SPLIT_SEED", "SPLIT_SIZES", "SPLIT_SHA256", "CONTENT_SHA256",
        "CACHE_FORMAT_VERSION", "CACHE_ENV"},
}

# Packages whose names users import (the others are implementation modules).
IMPORTABLE = set(PUBLIC) | {"ssimref.verification", "ssimref.gmmn", "ssimref.generative"}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_all_lists_exactly_the_public_names(package):
    module = importlib.import_module(package)
    assert len(module.__all__) == len(set(module.__all__))
    assert set(module.__all__) == PUBLIC[package]
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert inspect.getdoc(value), f"{package}.{name} has no docstring"


def test_the_public_functions_and_classes_of_a_package_are_exported():
    """Every function or class a package's ``__init__`` holds under a public name is in
    its ``__all__`` (nothing public is reachable only by accident)."""
    for package in PUBLIC:
        module = importlib.import_module(package)
        held = {name for name, value in vars(module).items()
                if not name.startswith("_") and (inspect.isfunction(value)
                                                 or inspect.isclass(value))
                and getattr(value, "__module__", "").startswith("ssimref")}
        if package == "ssimref.datasets":  # a module: its own definitions count
            held = {n for n in held if getattr(module, n).__module__ == package}
        assert held <= set(module.__all__), sorted(held - set(module.__all__))


def _python_in_docs():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for block in re.findall(r"```python\n(.*?)```", text, re.S):
            yield path.name, block
        yield path.name, "\n".join(re.findall(r"`((?:from|import) ssimref[^`]*)`", text))


def test_readme_and_docs_import_from_the_public_packages():
    offences = []
    for name, code in _python_in_docs():
        for module in re.findall(r"^\s*from (ssimref[\w.]*) import", code, re.M):
            if module not in IMPORTABLE:
                offences.append(f"{name}: from {module} import")
        for module in re.findall(r"^\s*import (ssimref[\w.]*)", code, re.M):
            if module not in IMPORTABLE:
                offences.append(f"{name}: import {module}")
    assert not offences, "\n".join(offences)


def test_docstring_examples_import_from_the_public_packages():
    offences = []
    for path in sorted((ROOT / "ssimref").rglob("*.py")):
        if path.relative_to(ROOT / "ssimref").parts[0] in ("verification", "gmmn",
                                                           "generative"):
            continue  # their own packages, documented by their own rules
        for module in re.findall(r">>> from (ssimref[\w.]*) import", path.read_text()):
            if module not in IMPORTABLE:
                offences.append(f"{path.relative_to(ROOT)}: from {module} import")
    assert not offences, "\n".join(offences)
