"""Every bad input raises a ValueError or TypeError that names the argument."""

import numpy as np
import pytest

import ssimref

GOOD = np.zeros((10, 10))
STACK = np.zeros((3, 10, 10))


def _calls():
    """Each public function with otherwise valid arguments, taking (x, y, **kw)."""
    return {
        "ssim_components": lambda x, y, **kw: ssimref.ssim_components(x, y, **kw),
        "ssim_map": lambda x, y, **kw: ssimref.ssim_map(x, y, **kw),
        "ssim": lambda x, y, **kw: ssimref.ssim(x, y, **kw),
        "distance_map": lambda x, y, **kw: ssimref.distance_map(x, y, **kw),
        "distance": lambda x, y, **kw: ssimref.distance(x, y, **kw),
        "distance_matrix": lambda x, y, **kw: ssimref.distance_matrix(x[None], y[None], **kw),
    }


CALLS = _calls()


def _with(value, where):
    a = np.array(GOOD, dtype=float)
    a[where] = value
    return a


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("x, y, kw, error, match", [
    (_with(np.nan, (1, 2)), GOOD, dict(data_range=1), ValueError, "x contains NaN or Inf"),
    (GOOD, _with(np.inf, (0, 0)), dict(data_range=1), ValueError, "y contains NaN or Inf"),
    (GOOD, np.zeros((10, 11)), dict(data_range=1), ValueError, "same shape"),
    (np.zeros((5, 5)), np.zeros((5, 5)), dict(data_range=1, size=7), ValueError, "size=7"),
    (GOOD, GOOD, dict(data_range=1, stride=0), ValueError, "stride"),
    (GOOD, GOOD, dict(data_range=1, size=4), ValueError, "odd"),
    (GOOD, GOOD, dict(data_range=0), ValueError, "data_range"),
    (GOOD, GOOD, dict(data_range=-255), ValueError, "data_range"),
    (GOOD, GOOD, {}, ValueError, "data_range is required"),
    (GOOD.astype(complex), GOOD, dict(data_range=1), TypeError, "real numbers"),
    (GOOD.astype(object), GOOD, dict(data_range=1), TypeError, "real numbers"),
    (GOOD.astype(bool), GOOD, {}, ValueError, "data_range is required for bool"),
    (GOOD.astype(np.int64), GOOD.astype(np.int64), {}, ValueError,
     "data_range is required for int64"),
    (GOOD.astype(np.uint8), GOOD.astype(np.uint16), {}, ValueError, "different integer"),
    # 8-bit values with the range of [0, 1] images: 2 to 250 cannot lie in a range of 1
    ((_with(250, (0, 0)) + 2).astype(np.uint8), GOOD.astype(np.uint8) + 2,
     dict(data_range=1), ValueError,
     "data_range is 1 but the values"),
    (GOOD.astype(np.uint8), _with(250, (3, 3)).astype(np.uint8), dict(data_range=1),
     ValueError, "values of [xX] and [yY] span 0 to 250"),
    (GOOD.astype(bool), _with(1, (3, 3)).astype(np.int16), dict(data_range=0.5),
     ValueError, "values of [xX] and [yY] span 0 to 1"),
    # a data range 1e30 or more times smaller than the values (c1 and c2 would vanish
    # and the window terms overflow): floating images too, and integers of one value
    (_with(2e30, (0, 0)), GOOD, dict(data_range=1), ValueError,
     r"data_range is 1 but the values of [xX] and [yY] reach 2e\+30, 2e\+30 times that"),
    (GOOD, _with(-3e33, (0, 0)), dict(data_range=1e3), ValueError,
     r"reach 3e\+33.*\(e\.g\. data_range=3e\+33\)"),
    (GOOD.astype(np.int64) + 10 ** 18, GOOD.astype(np.int64) + 10 ** 18,
     dict(data_range=1e-13), ValueError, r"reach 1e\+18.*data_range=1e\+18"),
    (GOOD, GOOD, dict(data_range=1, window="box"), ValueError, "window"),
    (GOOD, GOOD, dict(data_range=1, covariance="biased"), ValueError, "covariance"),
    (GOOD, GOOD, dict(data_range=1, win_size=7), TypeError, "win_size"),
    (GOOD, GOOD, dict(data_range=1, dtype="float16"), TypeError, "dtype"),
    (GOOD, GOOD, dict(data_range=1, dtype=int), TypeError, "dtype"),
])
def test_bad_input_is_named(name, x, y, kw, error, match):
    if name == "distance_matrix":
        match = match.replace("x contains", "X contains").replace("y contains", "Y contains")
    with pytest.raises(error, match=match):
        CALLS[name](x, y, **kw)


@pytest.mark.parametrize("name", ["distance_map", "distance", "distance_matrix"])
def test_unknown_kind(name):
    with pytest.raises(ValueError, match="kind must be one of"):
        CALLS[name](GOOD, GOOD, data_range=1, kind="eq3")


@pytest.mark.parametrize("bad, match", [
    (np.zeros((0, 10)), "empty"),
    (np.zeros(10), "2 or 3 dimensions"),
    (np.zeros((2, 10, 10, 3)), "2 or 3 dimensions"),
])
def test_image_shapes(bad, match):
    with pytest.raises(ValueError, match=match):
        ssimref.ssim(bad, bad, data_range=1)


@pytest.mark.parametrize("kw, error, match", [
    (dict(X=np.zeros((10, 10))), ValueError, "X must have 3 or 4 dimensions"),
    (dict(X=np.zeros((0, 10, 10))), ValueError, "X is empty"),
    (dict(X=STACK, Y=np.zeros((2, 10, 9))), ValueError, "same shape"),
    (dict(X=STACK, out=np.zeros((3, 2))), ValueError, "out must have shape"),
    (dict(X=STACK, out=np.zeros((3, 3), dtype=int)), TypeError, "out must be a float"),
    (dict(X=STACK, out=np.zeros((3, 3)), dtype="float32"), ValueError, "dtype"),
    (dict(X=STACK, working_memory=0), ValueError, "working_memory"),
    (dict(X=STACK, backend="fortran"), ValueError, "backend"),
])
def test_distance_matrix_arguments(kw, error, match):
    with pytest.raises(error, match=match):
        ssimref.distance_matrix(data_range=1, **kw)


def test_read_only_out():
    out = np.zeros((3, 3))
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        ssimref.distance_matrix(STACK, data_range=1, out=out)


def test_mixed_array_libraries():
    xps = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match="same array library"):
        ssimref.ssim(xps.asarray(GOOD), GOOD, data_range=1)


def test_no_silent_nan_on_constant_and_zero_images():
    zeros = np.zeros((8, 8))
    for kind in ("eq1", "eq1-uncentered", "eq2"):
        assert ssimref.distance(zeros, zeros, kind, data_range=1) == 0.0
        d = ssimref.distance(zeros, np.full((8, 8), 1.0), kind, data_range=1)
        assert np.isfinite(d)


def test_integer_values_within_their_range_are_accepted():
    """The span check refuses only a range narrower than the values: 8-bit values spanning
    exactly 255 with data_range=255, 0/1 masks with data_range=1, and floating images that
    overshoot their range (checked only against MAX_MAGNITUDE times it,
    tests/test_engines.py) give the formula's values."""
    x = np.zeros((8, 8), np.uint8)
    x[::2] = 255
    assert ssimref.ssim(x, x, data_range=255) == 1.0
    m = np.eye(8, dtype=bool)
    assert ssimref.ssim(m, m, data_range=1) == 1.0
    # an exact value: two constant images c1 = 0.01^2, mean SSIM = (2 a b + c1)/(a^2 + b^2 + c1)
    a, b = np.full((8, 8), 3.0), np.full((8, 8), -2.0)
    c1 = 0.01 ** 2
    expected = (2 * 3 * -2 + c1) / (9 + 4 + c1)
    assert ssimref.ssim(a, b, data_range=1, size=7) == pytest.approx(expected, rel=1e-12)


def test_an_image_set_passed_as_images_says_to_pass_its_images():
    """``load_images`` returns an ImageSet; passing it whole (an object array to NumPy)
    is refused with the fix: its ``.images`` and its ``.data_range``."""
    images = ssimref.load_images("digits")
    with pytest.raises(TypeError, match=r"pass its \.images, with data_range=its "
                                        r"\.data_range"):
        ssimref.distance_matrix(images)
    D = ssimref.distance_matrix(images.images[:3], data_range=images.data_range, size=3)
    assert D.shape == (3, 3)
