"""Exact gradients of SSIM distances, derived by hand (no autograd).

For one pair, ``S = D^2 = sum_p g(t1_p, t2_p)`` over window positions ``p`` (and channels),
with ``t1 = mu_d^2 / A``, ``A = mu_x^2 + mu_y^2 + c1`` and ``t2 = v_d / B``,
``B = v_x + v_y + c2`` (``d = x - y``; see :mod:`ssimref.similarity`), and
``g = t2`` (eq1), ``t1 + t2`` (eq2) or ``t1 + t2 - t1 t2`` (eq1-uncentered).

Chain rule, window by window::

    dS/dmu_d = g1 2 mu_d / A            dS/dv_d = g2 / B
    dS/dmu_x = -g1 t1 2 mu_x / A        dS/dv_x = -g2 t2 / B      (likewise for y)

with ``g1 = dg/dt1``, ``g2 = dg/dt2``. A local mean ``mu(p) = sum_k w_k z(p + k)`` sends its
cotangent ``G_mu`` back to pixel ``j`` as ``T(G_mu)(j)``, where ``T`` is the adjoint window
sum (:func:`ssimref.moments.window_sums_transpose`); a local variance
``v(p) = f sum_k w_k (z(p + k) - mu(p))^2`` sends ``G_v`` back as
``2 f [z(j) T(G_v)(j) - T(G_v mu)(j)]`` (because ``sum_k w_k (z - mu) = 0``). Both are
evaluated on mean-shifted data, like the forward pass. ``d = x - y`` adds its pixel
gradient to ``x`` and subtracts it from ``y``.

For ``D = sqrt(S)``, ``dD = dS / (2 D)``; where ``D = 0`` (identical images) the gradient
is defined as 0, a valid subgradient of the non-negative ``D`` at its minimum. ``S`` itself
is smooth and its gradient there is exactly 0.
"""

from __future__ import annotations

import math

from .config import resolve_config
from .moments import difference_moments, shifted_moments, window_sums_transpose
from .pairwise import _bytes_per_pair, default_working_memory
from .similarity import defects
from .distances import squared_window_distance
from .validation import check_kind, check_stacks

__all__ = ["PairForward", "distance_matrix_vjp", "distance_weight"]


def _partials(t1, t2, kind, xp):
    """``(dg/dt1, dg/dt2)`` of the squared per-window distance ``g``."""
    if kind == "eq1":
        return xp.zeros_like(t1), xp.ones_like(t2)
    if kind == "eq2":
        return xp.ones_like(t1), xp.ones_like(t2)
    return 1.0 - t2, 1.0 - t1


def _reduce_to(g, shape, xp):
    """Sum ``g`` over the leading axes where ``shape`` has length 1 (undo broadcasting)."""
    axes = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1)
    return xp.sum(g, axis=axes, keepdims=True) if axes else g


class PairForward:
    """Forward pass of ``S`` for broadcastable image arrays, keeping what the backward pass
    needs.

    Parameters
    ----------
    x, y : arrays (..., H, W, C), float64, leading axes broadcastable (trusted)

    Attributes
    ----------
    S : array, broadcast leading shape
        Sum over windows and channels of the squared per-window distance.
    """

    def __init__(self, x, y, kind, config, xp):
        self.xp, self.config, self.kind = xp, config, kind
        self.x_shape, self.y_shape = tuple(x.shape), tuple(y.shape)
        c1, c2 = config.constants()
        self.x = shifted_moments(x, config, xp)
        self.y = shifted_moments(y, config, xp)
        *self.d, self.agree = difference_moments(x - y, config, xp)
        self.mu_x = self.x[1] + self.x[3]
        self.mu_y = self.y[1] + self.y[3]
        self.mu_d = self.d[1] + self.d[3]
        self.t1, self.t2 = defects(self.mu_x, self.x[2], self.mu_y, self.y[2], self.mu_d,
                                   self.d[2], c1, c2)
        self.inv_a = 1.0 / (self.mu_x * self.mu_x + self.mu_y * self.mu_y + c1)
        self.inv_b = 1.0 / (self.x[2] + self.y[2] + c2)
        self.S = xp.sum(squared_window_distance(self.t1, self.t2, kind), axis=(-3, -2, -1))

    def vjp(self, weight, wrt_y=True):
        """Gradients ``(gx, gy)`` of ``sum(weight * S)``, shaped like ``x`` and ``y``
        (``gy`` is None when ``wrt_y`` is false: callers that hold ``y`` fixed skip it)."""
        xp, config = self.xp, self.config
        height, width = self.x_shape[-3], self.x_shape[-2]
        taps, stride, f = config.taps(), config.stride, config.covariance_factor()

        def pixels(moments, g_mu, g_var):
            z0, m0 = moments[0], moments[1]
            spread = window_sums_transpose(g_mu - (2.0 * f) * g_var * m0, taps, stride,
                                           height, width, xp)
            return spread + (2.0 * f) * z0 * window_sums_transpose(g_var, taps, stride,
                                                                   height, width, xp)

        g1, g2 = _partials(self.t1, self.t2, self.kind, xp)
        w = weight[..., None, None, None]
        g_t1 = w * g1 * self.inv_a
        g_t2 = w * g2 * self.inv_b
        g_var = -g_t2 * self.t2
        # In windows where the images agree every derivative is exactly 0; the spread of
        # g_t2 through the shifted difference would leave round-off there.
        g_d = pixels(self.d, 2.0 * g_t1 * self.mu_d,
                     xp.where(self.agree, xp.zeros_like(g_t2), g_t2))
        m_shape_x, m_shape_y = self.x[1].shape, self.y[1].shape
        gx = _reduce_to(g_d, self.x_shape, xp) + pixels(
            self.x, _reduce_to(-2.0 * g_t1 * self.t1 * self.mu_x, m_shape_x, xp),
            _reduce_to(g_var, m_shape_x, xp))
        if not wrt_y:
            return gx, None
        gy = pixels(self.y, _reduce_to(-2.0 * g_t1 * self.t1 * self.mu_y, m_shape_y, xp),
                    _reduce_to(g_var, m_shape_y, xp)) - _reduce_to(g_d, self.y_shape, xp)
        return gx, gy


def distance_weight(S, upstream, squared, xp):
    """Cotangent of ``S`` from the cotangent of ``S`` (squared) or of ``D = sqrt(S)``,
    with the subgradient 0 where ``D = 0``. Returns ``(value, weight)``."""
    if squared:
        return S, upstream
    D = xp.sqrt(S)
    positive = D > 0
    safe = xp.where(positive, D, xp.ones_like(D))
    return D, xp.where(positive, upstream / (2.0 * safe), xp.zeros_like(D))


def distance_matrix_vjp(X, Y, G, kind="eq2", config=None, *, squared=False,
                        working_memory=None, **conventions):
    """Gradient of ``sum_ij G_ij D_ij`` (or of ``sum_ij G_ij D_ij^2``) with respect to the
    images, where ``D = distance_matrix(X, Y, kind, config)``.

    Parameters
    ----------
    X : array_like, shape (n, H, W) or (n, H, W, C)
    Y : array_like, shape (m, H, W) or (m, H, W, C), or None
        ``None`` means ``Y = X``: the gradient then counts both roles of each image,
        ``dX_i = sum_j (G_ij + G_ji) dD(x_i, x_j)/dx_i``.
    G : array_like, shape (n, m) or (n, n)
        Weights (the cotangent of the distance matrix).
    kind : {"eq2", "eq1", "eq1-uncentered"}
    config : SSIMConfig, optional
        Conventions; keyword overrides as for :func:`ssimref.distance_matrix`.
    squared : bool, default False
        Differentiate ``sum G_ij D_ij^2`` instead.
    working_memory : float, optional
        MiB for tiles (scikit-learn's setting when None).

    Returns
    -------
    dX : array shaped like X, float64
    dY : array shaped like Y, float64, or None when Y is None

    Notes
    -----
    Exact (module docstring), computed tile by tile with the memory of a few forward
    tiles. Where ``D_ij = 0`` the pair contributes 0 (subgradient); no NaN or Inf arises
    from identical images or identical windows.
    """
    config = resolve_config(config, **conventions)
    check_kind(kind)
    squeeze = getattr(X, "ndim", None) == 3
    xp, X, Y, config = check_stacks(X, Y, config)
    n = X.shape[0]
    Yw = X if Y is None else Y
    m = Yw.shape[0]
    G = xp.asarray(G)
    if tuple(G.shape) != (n, m):
        raise ValueError(f"G must have shape {(n, m)} (the distance matrix's), got "
                         f"{tuple(G.shape)}")
    G = xp.astype(G, xp.float64)
    if not bool(xp.all(xp.isfinite(G))):
        raise ValueError("G contains NaN or Inf")
    if Y is None:
        G = G + G.T  # each unordered pair once, both roles at once
    if working_memory is None:
        working_memory = default_working_memory()
    pairs = max(1, int(working_memory * 2**20) // (3 * _bytes_per_pair(tuple(X.shape[1:]),
                                                                       config)))
    side = max(1, min(n, math.isqrt(pairs)))
    tb = side if Y is None else max(1, min(m, pairs // side))

    dX = xp.zeros(X.shape, dtype=xp.float64)
    dY = dX if Y is None else xp.zeros(Y.shape, dtype=xp.float64)
    for i in range(0, n, side):
        i1 = min(i + side, n)
        Xa = xp.astype(X[i:i1, ...], xp.float64)
        for j in range(i if Y is None else 0, m, tb):
            j1 = min(j + tb, m)
            Yb = xp.astype(Yw[j:j1, ...], xp.float64)
            Gt = G[i:i1, j:j1]
            if Y is None and i == j:  # upper triangle only; the diagonal has D = 0
                rows = xp.arange(i1 - i)[:, None]
                cols = xp.arange(j1 - j)[None, :]
                Gt = xp.where(rows < cols, Gt, xp.zeros_like(Gt))
            forward = PairForward(Xa[:, None, ...], Yb[None, :, ...], kind, config, xp)
            _, weight = distance_weight(forward.S, Gt, squared, xp)
            gx, gy = forward.vjp(weight)
            dX[i:i1, ...] += gx[:, 0, ...]
            dY[j:j1, ...] += gy[0, ...]
    if squeeze:
        dX = dX[..., 0]
        dY = dY if Y is None else dY[..., 0]
    return dX, (None if Y is None else dY)
