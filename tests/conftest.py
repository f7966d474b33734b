"""Shared fixtures: array namespaces to run the core on, hypothesis profiles."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "thorough", deadline=None, max_examples=400,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def cupy_with_device():
    """CuPy when it imports and sees a CUDA device, else None."""
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy
    except Exception:  # ImportError, CUDARuntimeError without a driver, ...
        return None
    return None


def _namespaces():
    params = [pytest.param("numpy", id="numpy"),
              pytest.param("array_api_strict", id="array_api_strict")]
    params.append(pytest.param("cupy", id="cupy", marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(cupy_with_device() is None, reason="CuPy or a CUDA device missing")]))
    return params


@pytest.fixture(params=_namespaces())
def xp(request):
    """An array namespace the array-API core must run on."""
    if request.param == "numpy":
        return np
    if request.param == "array_api_strict":
        return pytest.importorskip("array_api_strict")
    return cupy_with_device()


@pytest.fixture
def rng():
    return np.random.default_rng(20201)
