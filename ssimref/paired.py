"""SSIM distances between matched pairs, with exact gradients: the paper's loss for VAE,
AAE, GAN and LSGAN.

The paper (Section 4 and 5) proposes replacing the l2 terms of these models by the SSIM
distance between a reconstruction and its input, or a real and a generated image:
``L = sum_i D(x_i, y_i)`` or ``sum_i D(x_i, y_i)^2`` with Eq. (1) or Eq. (2). These
functions give that primitive, batched; the gradient follows :mod:`ssimref.gradients`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .backend import Array, ArrayLike, Namespace, as_array, namespace
from .config import SSIMConfig, resolve_config
from .kinds import KindName
from .engines import check_backend, choose_engine, get_engine
from .gradients import distance_weight
from .moments import in_range_units
from .tiling import resolve_working_memory, row_batches
from .validation import (channels_back, check_channel_axis, check_kind, check_not_masked,
                         check_stacks)

__all__ = ["paired_distance", "paired_distance_and_grad", "paired_value_and_vjp"]


def paired_value_and_vjp(
        X: Array, Y: Array, kind: str, config: SSIMConfig,
        cotangent: Callable[[Array, slice], tuple[Array, Array | None]], *, grad: bool,
        working_memory: float | None = None,
        backend: str = "auto") -> tuple[Array, Array | None, Array | None]:
    """The one loop over matched pairs ``(X[i], Y[i])``, in row batches that fit
    ``working_memory``.

    Trusted input, validated by the public callers.

    Parameters
    ----------
    X, Y : Array, shape (n, H, W, C)
        One array library; converted to float64 in units of the data range batch by
        batch (:func:`ssimref.moments.in_range_units`), their gradients divided by it.
    kind : {"eq1", "eq1-uncentered", "eq2"}
    config : SSIMConfig
        With its data range set.
    cotangent : callable
        ``cotangent(S, rows) -> (value, w)`` maps a batch's ``S = D^2`` and its row slice
        to the values kept and the cotangent ``w`` of ``S`` (None without ``grad``).
    grad : bool
        Compute the gradients.
    working_memory : float, optional
        MiB per batch (scikit-learn's setting when None).
    backend : str, default "auto"
        The engine (:func:`ssimref.engines.choose_engine`, with ``vjp=True``).

    Returns
    -------
    values : Array, shape (n,), float64
    dX, dY : Array, shaped like X and Y, or None without ``grad``
        The gradients of ``sum_i w_i S_i``.

    Raises
    ------
    ValueError
        For a ``backend`` that is unknown, cannot run on these arrays or computes no
        gradients.

    See Also
    --------
    ssimref.pairwise.pairwise_value_and_vjp : the loop over all pairs.
    """
    xp = namespace(X)
    engine = get_engine(choose_engine(backend, xp, vjp=True))
    image_shape = tuple(X.shape[1:])
    n = X.shape[0]
    # a matched pair is one pair and two images of a tile
    per_pair = (engine.vjp_bytes_per_pair(image_shape, config)
                + 2 * engine.vjp_bytes_per_image(image_shape, config) if grad
                else engine.bytes_per_pair(image_shape, config)
                + 2 * engine.bytes_per_image(image_shape, config))
    values = xp.empty((n,), dtype=xp.float64)
    dX = xp.empty(X.shape, dtype=xp.float64) if grad else None
    dY = xp.empty(Y.shape, dtype=xp.float64) if grad else None
    units, L = config.in_range_units(), config.data_range
    assert L is not None  # set at the public edge
    for rows in row_batches(n, per_pair, resolve_working_memory(working_memory)):
        values[rows], gx, gy = engine.paired_value_and_vjp(
            in_range_units(X[rows, ...], config, xp), in_range_units(Y[rows, ...], config, xp),
            kind, units, lambda S: cotangent(S, rows))
        if dX is not None and dY is not None and gx is not None and gy is not None:
            # gradients in units of the data range, then d/dx = (1/L) d/du
            dX[rows, ...], dY[rows, ...] = gx / L, gy / L
    return values, dX, dY


def _prepare(X: ArrayLike, Y: ArrayLike, kind: str, config: SSIMConfig | None,
             channel_axis: Any, conventions: dict[str, Any],
             ) -> tuple[Namespace, Array, Array, SSIMConfig, bool]:
    config = resolve_config(config, **conventions)
    check_kind(kind)
    squeeze = channel_axis is None and as_array(X).ndim == 3
    xp, X, Y, config = check_stacks(X, Y, config, channel_axis=channel_axis)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"X and Y must hold the same number of images (pairs are (X[i], "
                         f"Y[i])), got {X.shape[0]} and {Y.shape[0]}")
    return xp, X, Y, config, squeeze


def paired_distance(X: ArrayLike, Y: ArrayLike, kind: KindName = "eq2",
                    config: SSIMConfig | None = None, *, squared: bool = False,
                    working_memory: float | None = None, backend: str = "auto",
                    channel_axis: int | None = None,
                    **conventions: Any) -> Array:
    """SSIM distance of each matched pair ``(X[i], Y[i])``.

    Parameters
    ----------
    X, Y : array_like, shape (n, H, W) or (n, H, W, C)
        Two stacks of the same shape, channels last unless ``channel_axis`` says
        otherwise; any array-API array.
    kind : {"eq2", "eq1", "eq1-uncentered"}, default "eq2"
    config : SSIMConfig, optional
        Conventions; keyword overrides as for :func:`ssimref.distance_matrix`.
    squared : bool, default False
        Return ``D^2`` instead of ``D``.
    working_memory : float, optional
        MiB per chunk of pairs (scikit-learn's setting when None).
    backend : {"auto", "reference", "numba", "cupy"}, default "auto"
        Engine for the pairs, chosen as for :func:`ssimref.distance_matrix` (the fused
        engines follow the accuracy contracts of docs/engines.md).
    channel_axis : int, optional
        As for :func:`ssimref.distance_matrix` (1 for ``(n, C, H, W)`` stacks).
    **conventions
        Fields of :class:`SSIMConfig` overriding ``config``.

    Returns
    -------
    Array, shape (n,), float64
        ``D(X[i], Y[i])``, equal to ``ssimref.distance(X[i], Y[i], kind, config)``.

    Raises
    ------
    ValueError
        For stacks of different lengths; and the errors of
        :func:`ssimref.distance_matrix`.
    TypeError
        As for :func:`ssimref.distance_matrix`.

    See Also
    --------
    paired_distance_and_grad : with the gradient.
    ssimref.distance : one pair.

    References
    ----------
    Ghojogh, Karray, Crowley, ICIAR 2020, Sections 4 and 5 (the SSIM distance as the loss
    of VAEs, AAEs, GANs and LSGANs).
    """
    check_backend(backend)
    xp, X, Y, config, _ = _prepare(X, Y, kind, config, channel_axis, conventions)
    values, _, _ = paired_value_and_vjp(
        X, Y, kind, config, lambda S, rows: (S if squared else xp.sqrt(S), None),
        grad=False, working_memory=resolve_working_memory(working_memory), backend=backend)
    return values


def paired_distance_and_grad(X: ArrayLike, Y: ArrayLike, kind: KindName = "eq2",
                             config: SSIMConfig | None = None, *, squared: bool = False,
                             weights: ArrayLike | None = None,
                             working_memory: float | None = None, backend: str = "auto",
                             channel_axis: int | None = None,
                             **conventions: Any) -> tuple[Array, Array, Array]:
    """Distances of matched pairs and the gradient of their (weighted) sum.

    Parameters
    ----------
    X, Y, kind, config, squared, working_memory, backend, channel_axis
        As for :func:`paired_distance` (the gradients keep the input's layout).
    weights : array_like, shape (n,), optional
        Cotangent of each pair's value; ones when omitted, so that the gradients are those
        of ``sum_i D(X[i], Y[i])`` (or of ``sum_i D^2``).

    Returns
    -------
    values : Array, shape (n,)
        As :func:`paired_distance`.
    dX, dY : Array, shaped like X and Y, float64
        ``d(sum_i weights_i value_i) / dX`` and ``/ dY``. Exact; 0 for a pair whose
        distance is 0 (identical images: a subgradient of ``D``; the gradient of ``D^2``).

    Raises
    ------
    ValueError
        For ``weights`` of the wrong shape or with NaN or Inf; and the errors of
        :func:`paired_distance`.
    TypeError
        As for :func:`paired_distance`.

    See Also
    --------
    paired_distance : the values alone.
    ssimref.distance_matrix_vjp : the gradient over all pairs.
    ssimref.gradients : the derivation.
    """
    check_backend(backend)
    xp, X, Y, config, squeeze = _prepare(X, Y, kind, config, channel_axis, conventions)
    working_memory = resolve_working_memory(working_memory)
    n = X.shape[0]
    if weights is None:
        w = xp.ones((n,), dtype=xp.float64)
    else:
        check_not_masked(weights, "weights")
        w = xp.astype(xp.asarray(weights), xp.float64)
        if tuple(w.shape) != (n,):
            raise ValueError(f"weights must have shape ({n},), got {tuple(w.shape)}")
        if not bool(xp.all(xp.isfinite(w))):
            raise ValueError("weights contains NaN or Inf")
    values, dX, dY = paired_value_and_vjp(
        X, Y, kind, config, lambda S, rows: distance_weight(S, w[rows], squared, xp),
        grad=True, working_memory=working_memory, backend=backend)
    assert dX is not None and dY is not None  # grad=True
    if squeeze:
        dX, dY = dX[..., 0], dY[..., 0]
    axis = None if channel_axis is None else check_channel_axis(channel_axis, 4, True)
    return values, channels_back(dX, axis, xp), channels_back(dY, axis, xp)
