"""Hypothesis strategies for SSIM conventions and images."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ssimref import SSIMConfig
from ssimref.config import COVARIANCES

KINDS = ("eq1", "eq1-uncentered", "eq2")


@st.composite
def configs(draw, max_size=5, max_stride=3, data_range=None):
    """SSIMConfig over both windows, every covariance and a range of strides and ranges."""
    window = draw(st.sampled_from(["uniform", "gaussian"]))
    size = draw(st.sampled_from([3, 5] if window == "gaussian" and max_size >= 5 else
                                [3] if window == "gaussian" else
                                list(range(2, max_size + 1))))
    return SSIMConfig(
        window=window, size=size,
        sigma=draw(st.floats(0.5, 3.0)),
        stride=draw(st.integers(1, max_stride)),
        data_range=data_range if data_range is not None else draw(st.sampled_from([1.0, 255.0])),
        k1=draw(st.sampled_from([0.01, 0.05])),
        k2=draw(st.sampled_from([0.03, 0.1])),
        covariance=draw(st.sampled_from(COVARIANCES)))


@st.composite
def image_shapes(draw, config, extra=5, channels=True):
    """(H, W) or (H, W, C) with H, W >= config.size."""
    h = draw(st.integers(config.size, config.size + extra))
    w = draw(st.integers(config.size, config.size + extra))
    c = draw(st.sampled_from([None, 1, 2, 3])) if channels else None
    return (h, w) if c is None else (h, w, c)


def images(shape, data_range, n=None):
    """Float64 images in [0, data_range] (hypothesis favours edge cases: constants, zeros,
    the range's ends)."""
    full = shape if n is None else (n,) + tuple(shape)
    return hnp.arrays(np.float64, full,
                      elements=st.floats(0.0, data_range, allow_nan=False,
                                         allow_subnormal=False))


@st.composite
def config_and_pair(draw, **kw):
    config = draw(configs(**kw))
    shape = draw(image_shapes(config))
    x = draw(images(shape, config.data_range))
    y = draw(images(shape, config.data_range))
    return config, x, y


@st.composite
def config_and_stack(draw, n_min=2, n_max=5, channels=True, **kw):
    config = draw(configs(**kw))
    shape = draw(image_shapes(config, channels=channels))
    n = draw(st.integers(n_min, n_max))
    return config, draw(images(shape, config.data_range, n=n))
