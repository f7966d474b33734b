"""Window weights and the covariance normalisation of the oracle.

The weights are built here from the fields of a configuration (``window``, ``size``,
``sigma`` and, for a :class:`~ssimref.verification.conventions.Convention`, ``weights``),
never taken from :mod:`ssimref`::

    gaussian: w_ij = g_i g_j / sum(g g^T),  g_k = exp(-(k - r)^2 / (2 sigma^2)),  r = (size - 1) / 2
    uniform:  w_ij = 1 / size^2

They are returned as a list of lists of Python numbers, :class:`fractions.Fraction` in
exact mode. Other implementations' weights (the ``weights`` knob):

- "float32" (pytorch-msssim): ``t_k = (k - r)^2`` and ``t_k / (2 sigma^2)`` in float32,
  ``e_k`` = ``exp(-t_k)`` rounded to float32, ``g_k = e_k / sum(e)`` with the sum and the
  quotient each rounded to float32; ``w_ij = g_i g_j`` (exact: a product of two float32
  numbers fits a float64). A uniform window has ``g_k = 1 / size`` in float32.
- "round<d>": the float64 weights rounded to ``d`` decimals (an exact decimal each).

Both are exact binary or decimal numbers, so exact mode accepts them for Gaussian windows
too; the float64 Gaussian weights are irrational and exact mode refuses them.

The covariance normalisation ``f`` multiplies the weighted sums of centred products:
1 ("population"), ``1 / (1 - sum w^2)`` ("sample") or ``q / (q - 1)`` ("count", whatever
the weights; ``q = size^2``, or ``(2 crop + 1)^2`` for a convention that crops its map).
"""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np

__all__ = ["number", "window_weights", "weight_sum", "covariance_factor"]


def number(exact):
    """The converter of input values: exact decimals as Fractions, or floats."""
    return (lambda v: Fraction(str(v))) if exact else float


def _decimals(kind):
    if kind.startswith("round") and kind[5:].isdigit():
        return int(kind[5:])
    raise ValueError(f"unknown window weights {kind!r}")


def _float32_1d(config):
    """pytorch-msssim's 1-D window: every step rounded to float32 (module docstring)."""
    size = config.size
    if config.window == "uniform":
        return [float(np.float32(1.0 / size))] * size
    r = (size - 1) / 2.0
    two_s2 = np.float32(2.0 * config.sigma ** 2)
    t = [float(np.float32(np.float32((k - r) ** 2) / two_s2)) for k in range(size)]
    e = [float(np.float32(math.exp(-tk))) for tk in t]
    total = float(np.float32(math.fsum(e)))
    return [float(np.float32(ek / total)) for ek in e]


def window_weights(config, exact=False):
    """2-D window weights as a list of lists (summing to 1 unless the ``weights`` knob
    says otherwise)."""
    kind = getattr(config, "weights", "float64")
    size = config.size
    if kind == "float32":
        g = _float32_1d(config)
        if exact:
            g = [Fraction(v) for v in g]
        return [[gi * gj for gj in g] for gi in g]
    if kind != "float64":
        d = _decimals(kind)
        w = window_weights(replace(config, weights="float64"))
        scaled = [[round(v * 10 ** d) for v in row] for row in w]
        if exact:
            return [[Fraction(n, 10 ** d) for n in row] for row in scaled]
        return [[float(Fraction(n, 10 ** d)) for n in row] for row in scaled]
    if config.window == "uniform":
        one = Fraction(1, size * size) if exact else 1.0 / (size * size)
        return [[one] * size for _ in range(size)]
    if exact:
        raise ValueError("exact arithmetic needs a uniform window, or Gaussian weights held "
                         "in float32 or rounded (float64 Gaussian weights are irrational)")
    r = (size - 1) / 2.0
    raw = [[math.exp(-((i - r) ** 2 + (j - r) ** 2) / (2.0 * config.sigma ** 2))
            for j in range(size)] for i in range(size)]
    total = math.fsum(v for row in raw for v in row)
    return [[v / total for v in row] for row in raw]


def weight_sum(config, weights):
    """``S = sum w``, taken as exactly 1 for float64 weights (they are normalised; their
    computed sum differs from 1 by round-off only), else summed exactly."""
    if getattr(config, "weights", "float64") == "float64":
        return 1
    values = [v for row in weights for v in row]
    if isinstance(values[0], Fraction):
        return sum(values)
    return float(sum(Fraction(v) for v in values))


def covariance_factor(config, weights):
    """The normalisation ``f`` of weighted (co)variance sums."""
    crop = getattr(config, "crop", 0)
    q = (2 * crop + 1) ** 2 if crop else config.size * config.size
    if config.covariance == "population":
        return 1
    if config.covariance == "count":
        return Fraction(q, q - 1) if isinstance(weights[0][0], Fraction) else q / (q - 1)
    sum_w2 = sum(w * w for row in weights for w in row)
    return 1 / (1 - sum_w2)
