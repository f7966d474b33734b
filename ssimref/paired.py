"""SSIM distances between matched pairs, with exact gradients: the paper's loss for VAE,
AAE, GAN and LSGAN.

The paper (Section 4 and 5) proposes replacing the l2 terms of these models by the SSIM
distance between a reconstruction and its input, or a real and a generated image:
``L = sum_i D(x_i, y_i)`` or ``sum_i D(x_i, y_i)^2`` with Eq. (1) or Eq. (2). These
functions give that primitive, batched; the gradient follows :mod:`ssimref.gradients`.
"""

from __future__ import annotations

from .backend import as_array, namespace
from .config import resolve_config
from .engines import get_engine
from .gradients import distance_weight
from .tiling import resolve_working_memory, row_batches
from .validation import check_kind, check_stacks

__all__ = ["paired_distance", "paired_distance_and_grad", "paired_value_and_vjp"]


def paired_value_and_vjp(X, Y, kind, config, cotangent, *, grad, working_memory=None):
    """The one loop over matched pairs ``(X[i], Y[i])``, in row batches that fit
    ``working_memory``.

    Trusted inputs: stacks (n, H, W, C) of one array library (converted to float64 batch
    by batch), ``config`` with its data range. ``cotangent(S, rows) -> (value, w)`` maps a
    batch's ``S = D^2`` and its row slice to the values kept and the cotangent ``w`` of
    ``S`` (None without ``grad``). Returns ``(values (n,), dX, dY)`` with the gradients of
    ``sum_i w_i S_i`` (None without ``grad``).
    """
    xp = namespace(X)
    engine = get_engine("reference")
    image_shape = tuple(X.shape[1:])
    n = X.shape[0]
    per_pair = (engine.vjp_bytes_per_pair(image_shape, config) if grad
                else engine.bytes_per_pair(image_shape, config))
    values = xp.empty((n,), dtype=xp.float64)
    dX = xp.empty(X.shape, dtype=xp.float64) if grad else None
    dY = xp.empty(Y.shape, dtype=xp.float64) if grad else None
    for rows in row_batches(n, per_pair, resolve_working_memory(working_memory)):
        values[rows], gx, gy = engine.paired_value_and_vjp(
            xp.astype(X[rows, ...], xp.float64), xp.astype(Y[rows, ...], xp.float64), kind,
            config, lambda S: cotangent(S, rows))
        if grad:
            dX[rows, ...], dY[rows, ...] = gx, gy
    return values, dX, dY


def _prepare(X, Y, kind, config, conventions):
    config = resolve_config(config, **conventions)
    check_kind(kind)
    squeeze = as_array(X).ndim == 3
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
    values, _, _ = paired_value_and_vjp(
        X, Y, kind, config, lambda S, rows: (S if squared else xp.sqrt(S), None),
        grad=False, working_memory=resolve_working_memory(working_memory))
    return values


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
    working_memory = resolve_working_memory(working_memory)
    n = X.shape[0]
    if weights is None:
        weights = xp.ones((n,), dtype=xp.float64)
    else:
        weights = xp.astype(xp.asarray(weights), xp.float64)
        if tuple(weights.shape) != (n,):
            raise ValueError(f"weights must have shape ({n},), got {tuple(weights.shape)}")
        if not bool(xp.all(xp.isfinite(weights))):
            raise ValueError("weights contains NaN or Inf")
    values, dX, dY = paired_value_and_vjp(
        X, Y, kind, config, lambda S, rows: distance_weight(S, weights[rows], squared, xp),
        grad=True, working_memory=working_memory)
    if squeeze:
        dX, dY = dX[..., 0], dY[..., 0]
    return values, dX, dY
