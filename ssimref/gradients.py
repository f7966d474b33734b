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

from collections.abc import Sequence

from .backend import Array, Namespace
from .config import SSIMConfig
from .kinds import get_kind
from .moments import difference_moments, shifted_moments, window_sums_transpose
from .similarity import defects

__all__ = ["PairForward", "distance_weight"]


def _reduce_to(g: Array, shape: tuple[int, ...], xp: Namespace) -> Array:
    """Sum ``g`` over the leading axes where ``shape`` has length 1 (undo broadcasting)."""
    axes = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1)
    return xp.sum(g, axis=axes, keepdims=True) if axes else g


class PairForward:
    """Forward pass of ``S`` for broadcastable image arrays, keeping what the backward pass
    needs.

    Parameters
    ----------
    x, y : Array, shape (..., H, W, C), float64
        Leading axes broadcastable (trusted input).
    kind : {"eq1", "eq1-uncentered", "eq2"}
    config : SSIMConfig
        With its data range set.
    xp : Namespace

    Attributes
    ----------
    S : Array, the broadcast leading shape
        Sum over windows and channels of the squared per-window distance.

    See Also
    --------
    distance_weight : the cotangent of ``S`` for ``D`` or ``D^2``.
    ssimref.distance_matrix_vjp, ssimref.paired_distance_and_grad : the public gradients.

    References
    ----------
    The derivation is the module docstring; it differentiates Wang et al., IEEE TIP 13(4),
    2004, Eqs. (14)-(16) (weighted local statistics) through the distances of Ghojogh,
    Karray, Crowley, ICIAR 2020, Eqs. (1) and (2).
    """

    def __init__(self, x: Array, y: Array, kind: str, config: SSIMConfig,
                 xp: Namespace) -> None:
        self.xp, self.config, self.kind = xp, config, kind
        self.x_shape, self.y_shape = tuple(x.shape), tuple(y.shape)
        c1, c2 = config.constants()
        self.x = shifted_moments(x, config, xp)
        self.y = shifted_moments(y, config, xp)
        *self.d, self.agree, self.mu_d = difference_moments(x - y, config, xp)
        self.mu_x = self.x[1] + self.x[3]
        self.mu_y = self.y[1] + self.y[3]
        self.t1, self.t2 = defects(self.mu_x, self.x[2], self.mu_y, self.y[2], self.mu_d,
                                   self.d[2], c1, c2)
        self.inv_a = 1.0 / (self.mu_x * self.mu_x + self.mu_y * self.mu_y + c1)
        self.inv_b = 1.0 / (self.x[2] + self.y[2] + c2)
        self.S = xp.sum(get_kind(kind).squared(self.t1, self.t2), axis=(-3, -2, -1))

    def vjp(self, weight: Array, wrt_y: bool = True) -> tuple[Array, Array | None]:
        """Gradients ``(gx, gy)`` of ``sum(weight * S)``.

        Parameters
        ----------
        weight : Array, shaped like ``S``
            The cotangent of ``S``.
        wrt_y : bool, default True
            Also compute ``gy`` (callers that hold ``y`` fixed skip it).

        Returns
        -------
        gx : Array, shaped like ``x``
        gy : Array, shaped like ``y``, or None without ``wrt_y``
        """
        xp, config = self.xp, self.config
        height, width = self.x_shape[-3], self.x_shape[-2]
        taps, stride, f = config.taps(), config.stride, config.covariance_factor()

        def pixels(moments: Sequence[Array], g_mu: Array, g_var: Array) -> Array:
            z0, m0 = moments[0], moments[1]
            spread = window_sums_transpose(g_mu - (2.0 * f) * g_var * m0, taps, stride,
                                           height, width, xp)
            return spread + (2.0 * f) * z0 * window_sums_transpose(g_var, taps, stride,
                                                                   height, width, xp)

        g1, g2 = get_kind(self.kind).partials(self.t1, self.t2, xp)
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


def distance_weight(S: Array, upstream: Array, squared: bool,
                    xp: Namespace) -> tuple[Array, Array]:
    """The value and the cotangent of ``S = D^2`` for a loss on ``D^2`` or on ``D``.

    Parameters
    ----------
    S : Array
        Squared distances.
    upstream : Array, broadcastable to ``S``
        The cotangent of ``S`` (``squared``) or of ``D = sqrt(S)``.
    squared : bool
    xp : Namespace

    Returns
    -------
    value : Array
        ``S`` (``squared``) or ``D``.
    weight : Array
        The cotangent of ``S``: ``upstream``, or ``upstream / (2 D)`` with the
        subgradient 0 where ``D = 0``.
    """
    if squared:
        return S, upstream
    D = xp.sqrt(S)
    positive = D > 0
    safe = xp.where(positive, D, xp.ones_like(D))
    return D, xp.where(positive, upstream / (2.0 * safe), xp.zeros_like(D))
