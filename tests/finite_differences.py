"""Central finite differences: the independent check of every hand-derived gradient."""

import numpy as np


def numerical_gradient(f, X, h=1e-6):
    """Gradient of the scalar ``f`` at ``X`` by central differences, one entry at a time
    (error O(h^2) plus round-off O(eps |f| / h))."""
    g = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        E = np.zeros_like(X)
        E[idx] = h
        g[idx] = (f(X + E) - f(X - E)) / (2 * h)
    return g


def assert_grad_close(analytic, numeric, rel=1e-6):
    """Largest deviation at most ``rel`` times the largest numerical gradient entry."""
    scale = max(np.abs(numeric).max(), 1e-12)
    error = np.abs(np.asarray(analytic) - numeric).max()
    assert error <= rel * scale, error / scale
