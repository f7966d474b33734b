"""Window weights and the covariance normalisation of the oracle.

The weights are built here from the fields of a configuration (``window``, ``size``,
``sigma``), never taken from :mod:`ssimref`::

    gaussian: w_ij = g_i g_j / sum(g g^T),  g_k = exp(-(k - r)^2 / (2 sigma^2)),  r = (size - 1) / 2
    uniform:  w_ij = 1 / size^2

and returned as a list of lists of Python numbers (:class:`fractions.Fraction` in exact
mode, uniform windows only: Gaussian weights are irrational).

The covariance normalisation ``f`` multiplies the weighted sums of centred products:
1 ("population"), ``1 / (1 - sum w^2)`` ("sample") or ``q / (q - 1)`` with ``q = size^2``
("count", whatever the weights).
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = ["number", "window_weights", "covariance_factor"]


def number(exact):
    """The converter of input values: exact decimals as Fractions, or floats."""
    return (lambda v: Fraction(str(v))) if exact else float


def window_weights(config, exact=False):
    """2-D window weights as a list of lists, summing to 1."""
    size = config.size
    if config.window == "uniform":
        one = Fraction(1, size * size) if exact else 1.0 / (size * size)
        return [[one] * size for _ in range(size)]
    if exact:
        raise ValueError("exact arithmetic needs a uniform window (Gaussian weights are "
                         "irrational)")
    r = (size - 1) / 2.0
    raw = [[math.exp(-((i - r) ** 2 + (j - r) ** 2) / (2.0 * config.sigma ** 2))
            for j in range(size)] for i in range(size)]
    total = math.fsum(v for row in raw for v in row)
    return [[v / total for v in row] for row in raw]


def covariance_factor(config, weights):
    """The normalisation ``f`` of weighted (co)variance sums."""
    q = config.size * config.size
    if config.covariance == "population":
        return 1
    if config.covariance == "count":
        return Fraction(q, q - 1) if isinstance(weights[0][0], Fraction) else q / (q - 1)
    sum_w2 = sum(w * w for row in weights for w in row)
    return 1 / (1 - sum_w2)
