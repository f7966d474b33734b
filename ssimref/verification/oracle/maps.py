"""SSIM, its components and its distances, window by window (ssimref's own conventions).

For every valid window position (every ``stride``-th from the top-left pixel) and channel,
with the weights ``w`` and normalisation ``f`` of :mod:`.windows`::

    mu_x = sum_k w_k x_k
    sigma_x^2 = f * sum_k w_k (x_k - mu_x)^2
    sigma_xy  = f * sum_k w_k (x_k - mu_x)(y_k - mu_y)
    s1 = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1),  c1 = (k1 L)^2
    s2 = (2 sigma_xy + c2) / (sigma_x^2 + sigma_y^2 + c2),  c2 = (k2 L)^2

Squared per-window distances are ``1 - s2`` (eq1), ``1 - s1 s2`` (eq1-uncentered) and
``2 - s1 - s2`` (eq2); ``D^2`` is their sum over windows and channels. Everything is a
loop over Python numbers; with ``exact=True`` (uniform windows) pixel values, ``k1``,
``k2`` and ``L`` are read as exact decimals and the results are exact rationals (a square
root is taken only by :func:`distance`).
"""

from __future__ import annotations

import math

import numpy as np

from .windows import covariance_factor, number, window_weights

__all__ = ["image_lists", "ssim_components", "ssim_map", "ssim", "squared_distance_map",
           "distance_map", "squared_distance", "distance", "distance_matrix"]


def image_lists(a, num):
    """An image as nested lists [row][col][channel] of numbers, plus 'was 2-D'."""
    a = np.asarray(a)
    two_d = a.ndim == 2
    if two_d:
        a = a[:, :, None]
    return [[[num(v) for v in pixel] for pixel in row] for row in a.tolist()], two_d


def _constants(config, num):
    if config.data_range is None:
        raise ValueError("the oracle needs an explicit data_range in its config")
    L = num(config.data_range)
    return (num(config.k1) * L) ** 2, (num(config.k2) * L) ** 2


def _window_pairs(x, y, config, exact):
    """Yield (row, col, channel, s1, s2) for every valid window of two nested-list images."""
    num = number(exact)
    w = window_weights(config, exact)
    f = covariance_factor(config, w)
    c1, c2 = _constants(config, num)
    size, stride = config.size, config.stride
    height, width, channels = len(x), len(x[0]), len(x[0][0])
    for r in range(0, height - size + 1, stride):
        for c in range(0, width - size + 1, stride):
            for ch in range(channels):
                xs = [(w[i][j], x[r + i][c + j][ch]) for i in range(size) for j in range(size)]
                ys = [y[r + i][c + j][ch] for i in range(size) for j in range(size)]
                mu_x = sum(wk * xk for wk, xk in xs)
                mu_y = sum(wk * yk for (wk, _), yk in zip(xs, ys))
                var_x = f * sum(wk * (xk - mu_x) ** 2 for wk, xk in xs)
                var_y = f * sum(wk * (yk - mu_y) ** 2 for (wk, _), yk in zip(xs, ys))
                cov = f * sum(wk * (xk - mu_x) * (yk - mu_y) for (wk, xk), yk in zip(xs, ys))
                s1 = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)
                s2 = (2 * cov + c2) / (var_x + var_y + c2)
                yield r // stride, c // stride, ch, s1, s2


def _maps(x, y, config, exact, value):
    """Apply ``value(s1, s2)`` to every window; an object array (Ho, Wo[, C])."""
    num = number(exact)
    xi, two_d = image_lists(x, num)
    yi, _ = image_lists(y, num)
    if np.shape(x) != np.shape(y):
        raise ValueError("x and y must have the same shape")
    ho = (len(xi) - config.size) // config.stride + 1
    wo = (len(xi[0]) - config.size) // config.stride + 1
    out = np.empty((ho, wo, len(xi[0][0])), dtype=object)
    for r, c, ch, s1, s2 in _window_pairs(xi, yi, config, exact):
        out[r, c, ch] = value(s1, s2)
    out = out[:, :, 0] if two_d else out
    return out if exact else out.astype(np.float64)


def ssim_components(x, y, config, exact=False):
    """``(s1, s2)`` maps, shape (Ho, Wo) or (Ho, Wo, C)."""
    return (_maps(x, y, config, exact, lambda s1, s2: s1),
            _maps(x, y, config, exact, lambda s1, s2: s2))


def ssim_map(x, y, config, exact=False):
    """SSIM map ``s1 * s2``."""
    return _maps(x, y, config, exact, lambda s1, s2: s1 * s2)


def ssim(x, y, config, exact=False):
    """Mean of the SSIM map over windows and channels."""
    values = ssim_map(x, y, config, exact).ravel().tolist()
    return sum(values) / len(values) if exact else math.fsum(values) / len(values)


_SQUARED = {
    "eq1": lambda s1, s2: 1 - s2,
    "eq1-uncentered": lambda s1, s2: 1 - s1 * s2,
    "eq2": lambda s1, s2: 2 - s1 - s2,
}


def squared_distance_map(x, y, config, kind, exact=False):
    """Squared per-window distances of ``kind``."""
    return _maps(x, y, config, exact, _SQUARED[kind])


def distance_map(x, y, config, kind, exact=False):
    """Per-window distances (float)."""
    sq = squared_distance_map(x, y, config, kind, exact)
    return np.sqrt(np.maximum(sq.astype(np.float64), 0.0))


def squared_distance(x, y, config, kind, exact=False):
    """``D^2``: sum of squared per-window distances over windows and channels."""
    values = squared_distance_map(x, y, config, kind, exact).ravel().tolist()
    return sum(values) if exact else math.fsum(values)


def distance(x, y, config, kind):
    """``D = sqrt(D^2)``."""
    return math.sqrt(max(float(squared_distance(x, y, config, kind)), 0.0))


def distance_matrix(X, Y, config, kind):
    """``D(i, j)`` for every pair of images of two stacks, one pair at a time."""
    Y = X if Y is None else Y
    return np.array([[distance(xi, yj, config, kind) for yj in Y] for xi in X])
