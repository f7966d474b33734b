"""Mixtures of Gaussian RBF kernels on flattened points, with hand-derived gradients
(Li, Swersky, Zemel, ICML 2015), implementing the protocol of
:mod:`ssimref.kernels.protocol`."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..backend import Array, ArrayLike, Namespace, as_array, namespace, to_numpy
from ..validation import check_dtype, check_not_masked, check_positive
from .protocol import Kernel

__all__ = ["RBFMixture"]


def _points(a: ArrayLike, name: str) -> Array:
    """Validate a point set and return it as a float64 (n, d) array."""
    check_not_masked(a, name)
    a = as_array(a)
    xp = namespace(a)
    check_dtype(a, name, xp)
    if a.ndim == 0:
        raise ValueError(f"{name} must be an array of points (n, d) or (n, ...), got a "
                         "scalar")
    if math.prod(a.shape) == 0:
        raise ValueError(f"{name} is empty (shape {tuple(a.shape)}); pass at least one "
                         "point of at least one dimension")
    a = xp.reshape(xp.astype(a, xp.float64), (a.shape[0], -1))
    if not bool(xp.all(xp.isfinite(a))):
        raise ValueError(f"{name} contains NaN or Inf")
    return a


def _squared_euclidean(X: Array, Y: Array | None,
                       xp: Namespace) -> tuple[Array, Array, Array]:
    """``||x_i - y_j||^2`` by the Gram identity on shifted data (the shift, the mean of
    the second block, removes most of the cancellation), clipped at 0; exactly 0 on the
    diagonal when ``Y`` is None. Returns ``(sq, Xc, Yc)`` with the shifted blocks."""
    symmetric = Y is None
    shift = xp.mean(X if symmetric else Y, axis=0)
    Xc = X - shift
    Yc = Xc if symmetric else Y - shift
    sq = Xc @ Yc.T
    sq *= -2.0
    xn = xp.sum(Xc * Xc, axis=1)
    sq += xn[:, None]
    sq += (xn if symmetric else xp.sum(Yc * Yc, axis=1))[None, :]
    sq = xp.clip(sq, min=0.0)
    if symmetric:
        eye = xp.arange(sq.shape[0])[:, None] == xp.arange(sq.shape[0])[None, :]
        sq = xp.where(eye, xp.zeros_like(sq), sq)
    return sq, Xc, Yc


class RBFMixture(Kernel):
    """Mixture of Gaussian RBF kernels with the bandwidth given as a variance.

    ``k(x, y) = sum_s w_s exp(-||x - y||^2 / (2 s))``

    Parameters
    ----------
    variances : sequence of float > 0, default (2, 5, 10, 20, 40, 80)
        The ``s`` of each component: a variance (squared length scale), as in Li, Swersky
        and Zemel's GMMN code for MNIST in [0, 1].
    weights : sequence of float > 0, optional
        ``w_s``; ones when omitted (a sum of kernels, as in Li et al., not a mean).

    Raises
    ------
    ValueError
        For an empty ``variances``, entries that are not finite numbers > 0, or
        ``weights`` of another length.

    See Also
    --------
    from_median : variances from the median heuristic.
    ssimref.kernels.SSIMRBFKernel : the Gaussian of the SSIM distance instead.

    Notes
    -----
    Points are rows of ``(n, d)`` arrays; ``(n, d1, d2, ...)`` is flattened per row in C
    order (an image stack ``(n, H, W[, C])`` gives ``n`` points of dimension ``H W C``);
    ``(n,)`` is ``n`` points of dimension 1. Gradients come back in the input's shape.

    With ``A = G o sum_s (w_s / s) K_s`` (element-wise), the gradient of
    ``sum_ij G_ij k(x_i, y_j)`` is ``dX = A Y - diag(A 1) X`` and
    ``dY = A^T X - diag(A^T 1) Y``, because ``d/dx exp(-||x-y||^2/(2s)) = k_s (y - x)/s``.
    Squared distances use the Gram identity on data shifted by a common vector (the
    kernel is translation invariant), clipped at 0.

    References
    ----------
    Li, Swersky, Zemel, "Generative moment matching networks", ICML 2015.
    Gretton, Borgwardt, Rasch, Schoelkopf, Smola, "A kernel two-sample test", JMLR 13, 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from ssimref.kernels import RBFMixture
    >>> k = RBFMixture(variances=(1.0,))
    >>> K = k.gram(np.array([[0.0], [1.0]]))
    >>> bool(np.allclose(K, [[1, np.exp(-0.5)], [np.exp(-0.5), 1]]))
    True
    """

    bytes_per_pair = 64  # about 8 float64 arrays of a block's size at the peak

    def __init__(self, variances: Sequence[float] = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0),
                 weights: Sequence[float] | None = None) -> None:
        variances = tuple(check_positive(s, "variances entry") for s in variances)
        if not variances:
            raise ValueError("variances must hold at least one value > 0")
        if weights is None:
            weights = (1.0,) * len(variances)
        weights = tuple(check_positive(w, "weights entry") for w in weights)
        if len(weights) != len(variances):
            raise ValueError(f"weights must have one entry per variance ({len(variances)}), "
                             f"got {len(weights)}")
        self.variances: tuple[float, ...] = variances
        self.weights: tuple[float, ...] = weights
        self.median: float | None = None

    @classmethod
    def from_median(cls, X: ArrayLike, Y: ArrayLike | None = None,
                    scales: Sequence[float] = (1.0,), weights: Sequence[float] | None = None,
                    max_points: int = 2000, seed: int = 0) -> RBFMixture:
        """Mixture with variances ``s_k = scales_k * med^2``, ``med`` the median heuristic.

        ``med`` is the median of ``||z_i - z_j||`` over distinct pairs ``i < j`` of the
        pooled sample ``Z = [X; Y]`` (a random subset of ``max_points`` points, drawn with
        ``seed``, when larger). With ``scales=(1,)`` this is Gretton et al.'s (2012)
        convention: Gaussian width ``sigma = med``, ``k = exp(-||x-y||^2 / (2 med^2))``,
        the same as hyppo (``gamma = 1 / (2 med^2)``). alibi-detect's ``sigma_median``
        uses ``sigma^2 = median(||z_i - z_j||^2) / 2``, i.e. ``scales=(0.5,)`` here
        (``sigma`` smaller by ``sqrt(2)``, the variance by a factor 2); libraries also
        differ on averaging the two middle values (NumPy's median, used here) or taking
        the lower one.

        Parameters
        ----------
        X : array_like, shape (n, ...)
        Y : array_like, shape (m, ...), optional
            Pooled with ``X`` for the median.
        scales : sequence of float > 0, default (1.0,)
            One variance ``scales_k * med^2`` per entry.
        weights : sequence of float > 0, optional
            As for the constructor.
        max_points : int, default 2000
            Largest pooled sample the median is taken over.
        seed : int, default 0
            Seed of the subsample (NumPy ``default_rng``).

        Returns
        -------
        RBFMixture
            With ``median`` set to ``med``.

        Raises
        ------
        ValueError
            When all sampled points coincide (median 0), for fewer than two points, for
            ``X`` and ``Y`` of different dimensions, invalid points or scales.
        """
        import numpy as np

        Z = _points(X, "X")
        if Y is not None:
            Yp = _points(Y, "Y")
            if Yp.shape[1] != Z.shape[1]:
                raise ValueError(f"X and Y must have the same dimension, got {Z.shape[1]} "
                                 f"and {Yp.shape[1]}")
            Z = namespace(Z).concat([Z, Yp], axis=0)
        Z = to_numpy(Z)
        if Z.shape[0] < 2:
            raise ValueError("the median heuristic needs at least two points")
        if Z.shape[0] > max_points:
            Z = Z[np.random.default_rng(seed).choice(Z.shape[0], max_points, replace=False)]
        sq, _, _ = _squared_euclidean(Z, None, np)
        med = float(np.median(np.sqrt(sq[np.triu_indices(Z.shape[0], k=1)])))
        if not med > 0:
            raise ValueError("the median distance between the points is 0 (most points "
                             "coincide); give the variances explicitly")
        kernel = cls(tuple(check_positive(c, "scales entry") * med * med for c in scales),
                     weights)
        kernel.median = med
        return kernel

    def __repr__(self) -> str:
        return f"RBFMixture(variances={self.variances}, weights={self.weights})"

    def describe(self) -> str:
        """The mixture, its variances and weights (and the median convention) in words.

        Returns
        -------
        str
        """
        text = ("RBF mixture k = sum_s w_s exp(-||x - y||^2 / (2 s)), s (variances) = "
                + ", ".join(f"{s:.6g}" for s in self.variances)
                + ", w = " + ", ".join(f"{w:g}" for w in self.weights))
        if self.median is not None:
            text += (f"; s = scale * med^2 with med = {self.median:.6g} the median of "
                     "||z_i - z_j|| over distinct pairs of the pooled sample (Gretton et al. "
                     "2012, hyppo; alibi-detect's sigma is sqrt(2) smaller)")
        return text

    def prepare(self, X: ArrayLike,
                Y: ArrayLike | None = None) -> tuple[Array, Array | None, RBFMixture]:
        """``X`` (and ``Y``) as float64 ``(n, d)`` arrays.

        Parameters
        ----------
        X : array_like, shape (n, ...)
            Flattened per row in C order.
        Y : array_like, shape (m, ...), optional

        Returns
        -------
        X, Y : Array, shape (n, d) and (m, d), float64
            ``Y`` None when not given.
        kernel : RBFMixture
            ``self``.

        Raises
        ------
        ValueError
            For scalars, empty arrays, NaN or Inf, or ``X`` and ``Y`` of different
            dimensions.
        TypeError
            For boolean or non-real dtypes, or arrays of different libraries.
        """
        Xw = _points(X, "X")
        Yw = None if Y is None else _points(Y, "Y")
        if Yw is not None:
            namespace(Xw, Yw)
            if Yw.shape[1] != Xw.shape[1]:
                raise ValueError(f"X and Y must have the same dimension per point, got "
                                 f"{Xw.shape[1]} and {Yw.shape[1]}")
        return Xw, Yw, self

    def _mixture(self, sq: Array, xp: Namespace, grad: bool) -> tuple[Array, Array | None]:
        """``K = sum_s w_s K_s`` and, when ``grad``, ``B = sum_s (w_s / s) K_s``."""
        K = B = None
        for s, w in zip(self.variances, self.weights):
            Ks = xp.exp(sq * (-0.5 / s))
            if w != 1.0:
                Ks *= w
            if K is None:
                K = Ks if not grad else Ks * 1.0
            else:
                K += Ks
            if grad:
                Ks *= 1.0 / s
                if B is None:
                    B = Ks
                else:
                    B += Ks
        return K, B

    def _gram(self, X: Array, Y: Array | None) -> Array:
        xp = namespace(X)
        sq, _, _ = _squared_euclidean(X, Y, xp)
        return self._mixture(sq, xp, grad=False)[0]

    def _value_and_vjp(self, X: Array, Y: Array | None, G: Array,
                       wrt_y: bool) -> tuple[Array, Array, Array | None]:
        xp = namespace(X)
        sq, Xc, Yc = _squared_euclidean(X, Y, xp)
        K, B = self._mixture(sq, xp, grad=True)
        del sq
        B *= G
        if Y is None:
            B = B + B.T
            dX = B @ Xc - xp.sum(B, axis=1)[:, None] * Xc
            return K, dX, None
        dX = B @ Yc - xp.sum(B, axis=1)[:, None] * Xc
        dY = (B.T @ Xc - xp.sum(B, axis=0)[:, None] * Yc) if wrt_y else None
        return K, dX, dY

    def _paired_value_and_vjp(self, X: Array, Y: Array,
                              g: Array | None) -> tuple[Array, Array | None, Array | None]:
        xp = namespace(X)
        diff = X - Y
        sq = xp.sum(diff * diff, axis=1)
        K, B = self._mixture(sq, xp, grad=g is not None)
        if g is None:
            return K, None, None
        dX = -(g * B)[:, None] * diff
        return K, dX, -dX
