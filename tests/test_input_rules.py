"""The input rules hold for every public callable that takes images (tests/image_api.py).

- The data range is inferred only where the dtype is the pixel range (uint8: 255,
  uint16: 65535); every other integer, boolean or float input without ``data_range`` is
  refused with the same error, everywhere (docs/conventions.md, "The data range").
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import ssimref
import ssimref.datasets
import ssimref.engines
import ssimref.kernels
import ssimref.mmd
from ssimref.verification import oracle

from .image_api import IMAGE_API, NOT_IMAGES

PACKAGES = (ssimref, ssimref.kernels, ssimref.mmd, ssimref.datasets, ssimref.engines)
API = sorted(IMAGE_API)
FAST = dict(window="uniform", size=3)  # small windows keep the table fast

INTEGER_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
INFERRED = {"uint8": 255.0, "uint16": 65535.0}


def _stacks(dtype, n=4, side=7, seed=0):
    """Two stacks of ``dtype`` with values 0..100 (any integer dtype holds them)."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random((2, n, side, side)) < 0.5
    return rng.integers(0, 101, (2, n, side, side)).astype(dtype)


def test_the_table_covers_every_public_callable():
    public = set()
    for package in PACKAGES:
        for name in package.__all__:
            obj = getattr(package, name)
            if callable(obj) and not isinstance(obj, (str, tuple, dict)):
                public.add(f"{package.__name__}.{name}")
    in_table = {name.split("[")[0].split("(")[0] for name in IMAGE_API}
    covered = in_table | {".".join(name.split(".")[:3]) for name in in_table} | set(NOT_IMAGES)
    missing = sorted(public - covered)
    assert not missing, f"public callables neither in IMAGE_API nor NOT_IMAGES: {missing}"
    assert not set(NOT_IMAGES) - public, "NOT_IMAGES names something that is not public"


def test_every_entry_runs_on_good_input():
    X, Y = _stacks("float64")
    for name in API:
        outputs = IMAGE_API[name](X, Y, data_range=100.0, **FAST)
        assert outputs and all(np.all(np.isfinite(a)) for a in outputs), name


# ------------------------------------------------------------------ 1. the data range
@pytest.mark.parametrize("name", API)
@pytest.mark.parametrize("dtype", INTEGER_DTYPES + ("bool", "float32", "float64"))
def test_range_is_inferred_only_where_the_dtype_is_the_pixel_range(name, dtype):
    X, Y = _stacks(dtype)
    call = IMAGE_API[name]
    if dtype in INFERRED:
        got = call(X, Y, **FAST)
        given = call(X, Y, data_range=INFERRED[dtype], **FAST)
        for a, b in zip(got, given):
            np.testing.assert_array_equal(a, b)
        return
    with pytest.raises(ValueError, match=f"data_range is required for {dtype} images"):
        call(X, Y, **FAST)


@pytest.mark.parametrize("name", API)
def test_booleans_with_data_range_one_are_zero_one_images(name):
    X, Y = _stacks("bool")
    got = IMAGE_API[name](X, Y, data_range=1, **FAST)
    want = IMAGE_API[name](X.astype(float), Y.astype(float), data_range=1, **FAST)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_mixed_uint8_and_uint16_are_refused():
    x = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="different integer dtypes.*data_range"):
        ssimref.ssim(x, x.astype(np.uint16))


def test_the_issue_example_int64_is_refused_and_right_with_its_range():
    # An int64 image of 8-bit values and its negative: with L = 2^64 - 1 every window
    # would score 1.0; with L = 255 the oracle (loops, independent code) gives -0.968.
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 32))
    y = 255 - x
    with pytest.raises(ValueError, match="data_range is required for int64 images"):
        ssimref.ssim(x, y)
    config = ssimref.SSIMConfig(data_range=255)
    value = ssimref.ssim(x, y, config)
    assert value == pytest.approx(oracle.ssim(x, y, config), abs=1e-12)
    assert value == pytest.approx(-0.9684, abs=5e-5)
    assert ssimref.ssim(x.astype(np.uint8), y.astype(np.uint8)) == value


def test_the_message_names_the_option_and_the_inferred_dtypes():
    with pytest.raises(ValueError) as info:
        ssimref.ssim(np.zeros((8, 8), np.int32), np.zeros((8, 8), np.int32))
    message = str(info.value)
    assert "data_range=1" in message and "uint8 (255)" in message and "uint16 (65535)" in message


def test_uint16_infers_65535_and_matches_the_oracle():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 65536, (2, 9, 9)).astype(np.uint16)
    config = ssimref.SSIMConfig(window="uniform", size=3, data_range=65535)
    assert ssimref.ssim(x, y, window="uniform", size=3) == pytest.approx(
        oracle.ssim(x, y, config), abs=1e-12)


def test_signature_names_in_the_table_are_real():
    # the table calls the public functions by their documented argument names
    for name in ("ssim", "distance_matrix", "paired_distance"):
        assert {"config"} <= set(inspect.signature(getattr(ssimref, name)).parameters)


@pytest.mark.parametrize("dtype", ["int64", "int16", "uint32", "bool", "float32"])
@pytest.mark.parametrize("command", ["distance", "kernel", "mmd"])
def test_the_command_line_applies_the_same_rule(command, dtype, tmp_path, capsys):
    from ssimref.cli import main
    X, _ = _stacks(dtype)
    path = tmp_path / "images.npy"
    np.save(path, X)
    out = tmp_path / "out.npy"
    argv = {"distance": ["distance", str(path), "-o", str(out)],
            "kernel": ["kernel", str(path), "-o", str(out)],
            "mmd": ["mmd", str(path), str(path), "--json", str(tmp_path / "out.json")]}
    assert main(argv[command] + ["--window", "uniform", "--size", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--data-range is required for {dtype} images" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.npy"]  # nothing written
    if dtype == "bool":  # and with its range, booleans are fine
        assert main(argv[command] + ["--window", "uniform", "--size", "3",
                                     "--data-range", "1"]) == 0


# ------------------------------------------------------------ 7. presets carry no range
PRESETS = {"paper": ssimref.SSIMConfig.paper, "wang2004": ssimref.SSIMConfig.wang2004,
           "skimage": ssimref.SSIMConfig.skimage,
           "skimage-gaussian": lambda **kw: ssimref.SSIMConfig.skimage(
               gaussian_weights=True, **kw)}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_leave_the_range_to_the_usual_inference(preset):
    rng = np.random.default_rng(3)
    x, y = rng.random((2, 16, 16))
    make = PRESETS[preset]
    assert make().data_range is None
    with pytest.raises(ValueError, match="data_range is required for float64"):
        ssimref.ssim(x, y, make())
    # with the range given, the preset is the config it names, checked by the oracle
    config = make(data_range=1.0)
    assert ssimref.ssim(x, y, config) == pytest.approx(oracle.ssim(x, y, config), abs=1e-12)
    # uint8 images: 255, as for SSIMConfig()
    u, v = (255 * x).astype(np.uint8), (255 * y).astype(np.uint8)
    assert ssimref.ssim(u, v, make()) == ssimref.ssim(u, v, make(data_range=255))


def test_wang2004_on_unit_float_images_is_not_scored_with_255():
    # the issue's case: [0, 1] images under L = 255 score near 1 (c1, c2 swamp the
    # moments); with L = 1 the oracle's value is far from it
    rng = np.random.default_rng(4)
    x, y = rng.random((2, 40, 40))
    right = ssimref.ssim(x, y, ssimref.SSIMConfig.wang2004(1.0))
    wrong = ssimref.ssim(x, y, ssimref.SSIMConfig.wang2004(255.0))
    assert wrong > 0.99 and abs(right) < 0.1
    assert right == pytest.approx(oracle.ssim(x, y, ssimref.SSIMConfig.wang2004(1.0)),
                                  abs=1e-12)


# ------------------------------------------------------------ 3. masked arrays refused
@pytest.mark.parametrize("name, which", [(name, which) for name in API for which in "XY"
                                         if which == "X" or "(Y=None)" not in name])
def test_masked_arrays_are_refused(name, which):
    X, Y = _stacks("float64")
    masked = np.ma.array(Y if which == "Y" else X, mask=(Y if which == "Y" else X) > 90)
    args = (X, masked) if which == "Y" else (masked, Y)
    with pytest.raises(TypeError, match=r"is a masked array.*[Ff]ill them.*or drop them"):
        IMAGE_API[name](*args, data_range=100.0, **FAST)


def test_the_issue_example_masked_array():
    rng = np.random.default_rng(5)
    x, y = rng.random((2, 16, 16))
    with pytest.raises(TypeError, match=r"^y is a masked array"):
        ssimref.ssim(x, np.ma.array(y, mask=y > 0.9), data_range=1.0)
    # an all-False mask is still refused: the rule is about the type, not the mask
    with pytest.raises(TypeError, match="masked array"):
        ssimref.ssim(np.ma.array(x), y, data_range=1.0)


@pytest.mark.parametrize("call", [
    lambda m: ssimref.kernels.double_center(m),
    lambda m: ssimref.kernels.median_heuristic(m),
    lambda m: ssimref.kernels.psd_report(m),
    lambda m: ssimref.kernels.RBFMixture().gram(m),
    lambda m: ssimref.mmd.cmmd_weights(m, 1e-3),
    lambda m: ssimref.distance_matrix_vjp(np.zeros((3, 7, 7)), None, m, data_range=1),
    lambda m: ssimref.kernels.SSIMDistanceKernel(data_range=1).gram_vjp(
        np.zeros((3, 7, 7)), None, m),
])
def test_masked_matrices_and_weights_are_refused(call):
    m = np.ma.array(np.eye(3), mask=np.eye(3) > 0)
    with pytest.raises(TypeError, match="masked array"):
        call(m)


# ------------------------------------------------------------------ 2. the channel axis
def _channels_last(outputs):
    """Outputs of a channel-first call in the channels-last layout: gradients (n, C, H, W)
    and maps (C, Ho, Wo) have their channels third from the end."""
    return tuple(np.moveaxis(a, -3, -1) if a.ndim >= 3 else a for a in outputs)


@pytest.mark.parametrize("name", API)
@pytest.mark.parametrize("channels", [2, 5])
def test_channel_axis_equals_the_transpose(name, channels):
    # (n, C, H, W) with channel_axis=-3 (1 for stacks, 0 for single images) is the
    # channels-last stack it transposes to: same values, gradients in the input's layout
    rng = np.random.default_rng(channels)
    first = rng.random((2, 4, channels, 7, 8))
    last = np.moveaxis(first, 2, -1)
    call = IMAGE_API[name]
    got = call(first[0], first[1], channel_axis=-3, data_range=1.0, **FAST)
    want = call(np.ascontiguousarray(last[0]), np.ascontiguousarray(last[1]),
                data_range=1.0, **FAST, **({"channel_axis": -1} if channels > 4 else {}))
    assert len(got) == len(want)
    for a, b in zip(_channels_last(got), want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", API)
def test_channel_first_data_without_channel_axis_is_refused(name):
    # the issue's case: (n, 3, H, W) read channels-last would be n images of 3xH pixels
    # with W channels; more than 4 channels is refused with the fix named
    X = np.random.default_rng(7).random((2, 4, 3, 9, 9))
    fix = "channel_axis=0" if name.split("[")[0].split("(")[0] in SINGLE else "channel_axis=1"
    with pytest.raises(ValueError, match=f"more than 4 channels.*{fix}"):
        IMAGE_API[name](X[0], X[1], data_range=1.0, **FAST)


SINGLE = {"ssimref.ssim_components", "ssimref.ssim_map", "ssimref.ssim",
          "ssimref.distance_map", "ssimref.distance"}


def test_the_issue_example_channel_first_stack():
    X = np.random.default_rng(8).random((10, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(10, 3, 32, 32\).*10 images of 3x32 pixels with "
                                         r"32 channels.*channel_axis=1.*transpose"):
        ssimref.distance_matrix(X, data_range=1.0)
    D = ssimref.distance_matrix(X, data_range=1.0, channel_axis=1)
    np.testing.assert_allclose(D, ssimref.distance_matrix(
        np.ascontiguousarray(X.transpose(0, 2, 3, 1)), data_range=1.0), rtol=1e-12)


@pytest.mark.parametrize("call, error, match", [
    (lambda X: ssimref.distance_matrix(X[:, 0], data_range=1, channel_axis=1), ValueError,
     "needs X with a channel axis"),
    (lambda X: ssimref.distance_matrix(X, data_range=1, channel_axis=0), ValueError,
     "image index"),
    (lambda X: ssimref.distance_matrix(X, data_range=1, channel_axis=4), ValueError,
     "out of range"),
    (lambda X: ssimref.distance_matrix(X, data_range=1, channel_axis=1.0), TypeError,
     "channel_axis must be an integer"),
    (lambda X: ssimref.ssim(X[0, 0], X[1, 0], data_range=1, channel_axis=0), ValueError,
     "needs x with a channel axis"),
    (lambda X: ssimref.kernels.SSIMDistanceKernel(data_range=1, channel_axis=0), ValueError,
     "image index"),
])
def test_bad_channel_axis(call, error, match):
    X = np.zeros((2, 3, 8, 8))
    with pytest.raises(error, match=match):
        call(X)


def test_the_window_advice_names_the_layout():
    # a window larger than the images read channels-last mentions channel_axis, so that
    # the advice "use a smaller size" does not lead into the wrong reading
    with pytest.raises(ValueError, match=r"size=7 is larger.*3x3 pixels.*channel_axis"):
        ssimref.distance_matrix(np.zeros((2, 3, 3, 3)), data_range=1)


def test_command_line_channel_axis(tmp_path, capsys):
    from ssimref.cli import main
    X = np.random.default_rng(9).integers(0, 256, (5, 3, 9, 9)).astype(np.uint8)
    path, out = tmp_path / "X.npy", tmp_path / "D.npy"
    np.save(path, X)
    assert main(["distance", str(path), "-o", str(out), "--window", "uniform",
                 "--size", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "channel" in err[0] and not out.exists()
    assert main(["distance", str(path), "-o", str(out), "--window", "uniform", "--size", "3",
                 "--channel-axis", "1"]) == 0
    np.testing.assert_array_equal(np.load(out), ssimref.distance_matrix(
        np.ascontiguousarray(X.transpose(0, 2, 3, 1)), window="uniform", size=3))


# ------------------------------------------- array-likes: lists give what arrays give
@pytest.mark.parametrize("name", API)
def test_nested_lists_give_what_arrays_give(name):
    # gradients come back shaped like the input (no extra axis for list inputs), values
    # bit for bit those of the arrays
    X, Y = _stacks("float64")
    got = IMAGE_API[name](X.tolist(), Y.tolist(), data_range=100.0, **FAST)
    want = IMAGE_API[name](X, Y, data_range=100.0, **FAST)
    assert [a.shape for a in got] == [b.shape for b in want]
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
