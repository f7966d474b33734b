"""SSIM distances between matched pairs, with exact gradients: the paper's loss for VAE,
AAE, GAN and LSGAN.

The paper (Section 4 and 5) proposes replacing the l2 terms of these models by the SSIM
distance between a reconstruction and its input, or a real and a generated image:
``L = sum_i D(x_i, y_i)`` or ``sum_i D(x_i, y_i)^2`` with Eq. (1) or Eq. (2). These
functions give that primitive, batched; the gradient follows :mod:`ssimref.gradients`.
"""

from __future__ import annotations

from .config import resolve_config
from .gradients import PairForward, distance_weight
from .pairwise import _bytes_per_pair, default_working_memory
from .validation import check_kind, check_stacks

__all__ = ["paired_distance", "paired_distance_and_grad"]


def _chunks(n, image_shape, config, working_memory, factor):
    if working_memory is None:
        working_memory = default_working_memory()
    size = max(1, int(working_memory * 2**20) // (factor * _bytes_per_pair(image_shape, config)))
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _prepare(X, Y, kind, config, conventions):
    config = resolve_config(config, **conventions)
    check_kind(kind)
    squeeze = getattr(X, "ndim", None) == 3
    xp, X, Y, config = check_stacks(X, Y, config)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"X and Y must hold the same number of images (pairs are (X[i], "
                         f"Y[i])), got {X.shape[0]} and {Y.shape[0]}")
    return xp, X, Y, config, squeeze


def paired_distance(X, Y, kind="eq2", config=None, *, squared=False, working_memory=None,
                    **conventions):
    """SSIM distance of each matched pair ``(X[i], Y[i])``.

    Parameters
    ----------
    X, Y : array_like, shape (n, H, W) or (n, H, W, C)
        Two stacks of the same shape; any array-API array.
    kind : {"eq2", "eq1", "eq1-uncentered"}, default "eq2"
    config : SSIMConfig, optional
        Conventions; keyword overrides as for :func:`ssimref.distance_matrix`.
    squared : bool, default False
        Return ``D^2`` instead of ``D``.
    working_memory : float, optional
        MiB per chunk of pairs (scikit-learn's setting when None).

    Returns
    -------
    array, shape (n,), float64
        ``D(X[i], Y[i])``, equal to ``ssimref.distance(X[i], Y[i], kind, config)``.
    """
    xp, X, Y, config, _ = _prepare(X, Y, kind, config, conventions)
    out = xp.empty((X.shape[0],), dtype=xp.float64)
    for i, i1 in _chunks(X.shape[0], tuple(X.shape[1:]), config, working_memory, 1):
        S = PairForward(xp.astype(X[i:i1, ...], xp.float64),
                        xp.astype(Y[i:i1, ...], xp.float64), kind, config, xp).S
        out[i:i1] = S if squared else xp.sqrt(S)
    return out


def paired_distance_and_grad(X, Y, kind="eq2", config=None, *, squared=False, weights=None,
                             working_memory=None, **conventions):
    """Distances of matched pairs and the gradient of their (weighted) sum.

    Parameters
    ----------
    X, Y, kind, config, squared, working_memory
        As for :func:`paired_distance`.
    weights : array_like, shape (n,), optional
        Cotangent of each pair's value; ones when omitted, so that the gradients are those
        of ``sum_i D(X[i], Y[i])`` (or of ``sum_i D^2``).

    Returns
    -------
    values : array (n,)
        As :func:`paired_distance`.
    dX, dY : arrays shaped like X and Y, float64
        ``d(sum_i weights_i value_i) / dX`` and ``/ dY``. Exact; 0 for a pair whose
        distance is 0 (identical images: a subgradient of ``D``; the gradient of ``D^2``).
    """
    xp, X, Y, config, squeeze = _prepare(X, Y, kind, config, conventions)
    n = X.shape[0]
    if weights is None:
        weights = xp.ones((n,), dtype=xp.float64)
    else:
        weights = xp.astype(xp.asarray(weights), xp.float64)
        if tuple(weights.shape) != (n,):
            raise ValueError(f"weights must have shape ({n},), got {tuple(weights.shape)}")
        if not bool(xp.all(xp.isfinite(weights))):
            raise ValueError("weights contains NaN or Inf")
    values = xp.empty((n,), dtype=xp.float64)
    dX = xp.empty(X.shape, dtype=xp.float64)
    dY = xp.empty(Y.shape, dtype=xp.float64)
    for i, i1 in _chunks(n, tuple(X.shape[1:]), config, working_memory, 3):
        forward = PairForward(xp.astype(X[i:i1, ...], xp.float64),
                              xp.astype(Y[i:i1, ...], xp.float64), kind, config, xp)
        values[i:i1], weight = distance_weight(forward.S, weights[i:i1], squared, xp)
        dX[i:i1, ...], dY[i:i1, ...] = forward.vjp(weight)
    if squeeze:
        dX, dY = dX[..., 0], dY[..., 0]
    return values, dX, dY
