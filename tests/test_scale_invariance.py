"""Scale invariance: SSIM, its distances, kernels and statistics are unchanged when the
images and the data range are scaled together (c1 = (k1 L)^2 and c2 = (k2 L)^2 scale with
the moments), and gradients with respect to the pixels scale by 1/s.

Every computation divides the images by L once and works in units of the data range
(docs/conventions.md, "Units of the data range"), so

- a power-of-two scale s = 2^k changes no bit of any value (x s / (L s) = x / L exactly),
  and multiplies every gradient by exactly 1/s;
- any scale from 1e-200 to 1e200 gives the same values to 1e-12 (x s and L s are each
  rounded once), with no NaN, overflow or underflow.

Checked over every public callable that takes images (tests/image_api.py), on every
engine (reference, Numba, the CUDA kernel run on the host through an engine plug-in), and
on the issue's example, whose value at scale 1 the loop oracle confirms.
"""

from __future__ import annotations

import numpy as np
import pytest

import ssimref
from ssimref import SSIMConfig
from ssimref.engines import get_engine, register_engine, unregister_engine
from ssimref.verification import oracle

from .image_api import IMAGE_API

API = sorted(IMAGE_API)
FAST = dict(window="uniform", size=3)
POWERS_OF_TWO = (2.0 ** -600, 2.0 ** -37, 2.0 ** 50, 2.0 ** 600)
DECIMAL = (1e-200, 3.7e-7, 1e100, 1e200)


def _stacks(seed=0, n=4, side=7):
    return np.random.default_rng(seed).random((2, n, side, side))


def _is_gradient(a, X):
    return a.shape == X.shape


def _call(name, X, Y, s):
    return IMAGE_API[name](X * s, Y * s, data_range=s, **FAST)


@pytest.mark.parametrize("name", API)
def test_power_of_two_scales_change_no_bit(name):
    X, Y = _stacks()
    base = _call(name, X, Y, 1.0)
    for s in POWERS_OF_TWO:
        got = _call(name, X, Y, s)
        for a, b in zip(got, base):
            if _is_gradient(a, X):
                np.testing.assert_array_equal(a * s, b)  # exactly 1/s
            else:
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", API)
def test_scales_from_1e_minus_200_to_1e200_agree_to_1e_12(name):
    X, Y = _stacks(1)
    base = _call(name, X, Y, 1.0)
    for s in DECIMAL:
        got = _call(name, X, Y, s)
        for a, b in zip(got, base):
            assert np.all(np.isfinite(a)), (name, s)
            if _is_gradient(a, X):
                a = a * s
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.max(np.abs(b)))


@pytest.mark.parametrize("name", API)
def test_uint8_images_are_their_float_values_over_255(name):
    # the data range inferred from uint8 is used like any other: x / 255 in float64, so
    # values are those of the float images x / 255 with L = 1, bit for bit; gradients are
    # 1/255 of theirs (divided tile by tile before they are summed: to rounding)
    X, Y = (255 * _stacks(2)).astype(np.uint8)
    got = IMAGE_API[name](X, Y, **FAST)
    want = IMAGE_API[name](X / 255.0, Y / 255.0, data_range=1.0, **FAST)
    for a, b in zip(got, want):
        if _is_gradient(a, X):
            np.testing.assert_allclose(a, b / 255.0, rtol=1e-14,
                                       atol=1e-14 * np.max(np.abs(b)) / 255.0)
        else:
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- the issue's example
ISSUE_VALUE = -0.0031407327867590


def test_the_issue_example_holds_at_every_scale():
    rng = np.random.default_rng(6)
    x, y = rng.random((2, 16, 16))
    config = SSIMConfig(data_range=1.0)
    assert oracle.ssim(x, y, config) == pytest.approx(ISSUE_VALUE, abs=1e-16)
    scales = [10.0 ** k for k in range(-200, 201, 10)] + [2.0 ** k for k in (-900, -1, 900)]
    for s in scales:
        value = ssimref.ssim(x * s, y * s, data_range=s)
        assert abs(value - ISSUE_VALUE) <= 1e-15, (s, value)
    for s in (2.0 ** -900, 0.5, 2.0 ** 900):
        assert ssimref.ssim(x * s, y * s, data_range=s) == ssimref.ssim(x, y, data_range=1.0)


# ----------------------------------------------------------------------------- engines
class _EmulatedCuda:
    """The CuPy engine's CUDA kernel compiled for the host, as an engine plug-in: the
    public path hands it tiles in units of the data range like any engine."""

    NAME = "test-cuda-on-host"

    @staticmethod
    def squared_block(Xa, Yb, kind, config, *, upper=False):
        from .cuda_host_emulation import emulated_squared_block
        return emulated_squared_block(Xa, Yb, kind, config, upper=upper, threads=8)

    @staticmethod
    def bytes_per_pair(image_shape, config):
        return get_engine("reference").bytes_per_pair(image_shape, config)

    @staticmethod
    def bytes_per_image(image_shape, config):
        return 0

    @staticmethod
    def max_tile_pairs(image_shape, config):
        return 1 << 20


def _engines():
    from ssimref.backend import available_engines
    from . import cuda_host_emulation
    params = [pytest.param("reference", id="reference")]
    params.append(pytest.param("numba", id="numba", marks=pytest.mark.skipif(
        "numba" not in available_engines(), reason="numba is not installed")))
    params.append(pytest.param(_EmulatedCuda.NAME, id="cuda-kernel-on-host",
                               marks=pytest.mark.skipif(
                                   cuda_host_emulation.compiler() is None,
                                   reason="no host C++ compiler to emulate the CUDA kernel")))
    return params


@pytest.fixture
def engine(request):
    name = request.param
    if name == _EmulatedCuda.NAME:
        register_engine(_EmulatedCuda)
        yield name
        unregister_engine(name)
    else:
        yield name


@pytest.mark.parametrize("engine", _engines(), indirect=True)
@pytest.mark.parametrize("window, stride", [("uniform", 1), ("gaussian", 1), ("uniform", 3)])
def test_every_engine_is_scale_invariant(engine, window, stride):
    X = np.random.default_rng(3).random((5, 11, 10, 2))
    config = dict(window=window, size=3, stride=stride, kind="eq1-uncentered",
                  backend=engine)
    base = ssimref.distance_matrix(X, data_range=1.0, **config)
    for s in POWERS_OF_TWO:
        np.testing.assert_array_equal(ssimref.distance_matrix(X * s, data_range=s, **config),
                                      base)
    for s in DECIMAL:
        got = ssimref.distance_matrix(X * s, data_range=s, **config)
        np.testing.assert_allclose(got, base, rtol=1e-12)
