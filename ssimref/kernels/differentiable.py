"""Kernel objects with hand-derived gradients, for MMD, conditional MMD and GMMN training.

A kernel here is an object that :mod:`ssimref.gmmn` (and users) can evaluate on blocks of
points and differentiate without autograd. The protocol (the base class :class:`Kernel`;
any object with the same methods works, duck typing is allowed):

- ``gram(X, Y=None) -> K`` of shape (n, m), ``K_ij = k(x_i, y_j)``; ``Y=None`` means ``Y = X``.
- ``gram_vjp(X, Y, G, wrt_y=False) -> dX`` (or ``(dX, dY)`` when ``wrt_y``): the gradient
  of ``L = sum_ij G_ij k(x_i, y_j)``. With ``Y=None``, ``Y = X`` and both roles of each
  point are counted: ``dX_i = sum_j G_ij d1k(x_i, x_j) + G_ji d2k(x_j, x_i)``, the same
  convention as :func:`ssimref.distance_matrix_vjp`.
- ``value_and_vjp(X, Y, G, wrt_y=False) -> (K, dX)`` or ``(K, dX, dY)``: both in one pass,
  so a tile's kernel values are computed once.
- ``paired(X, Y) -> k(x_i, y_i)`` and ``paired_vjp(X, Y, g) -> (dX, dY)``, the gradient of
  ``sum_i g_i k(x_i, y_i)`` (used by the linear-time MMD estimator).
- ``prepare(X, Y=None) -> (X, Y, kernel)`` (optional): validate once at the public edge,
  convert to float64 arrays in the kernel's working layout and return a kernel whose
  conventions are resolved (e.g. the SSIM data range inferred from integer data). Callers
  that loop over tiles (:mod:`ssimref.gmmn`) call it once, then work on the prepared arrays.

Built-in kernels:

- :class:`RBFMixture`: ``k = sum_s w_s exp(-||x - y||^2 / (2 s))``, ``s`` a variance
  (Li, Swersky, Zemel, ICML 2015).
- :class:`SSIMDistanceKernel`: ``k = -1/2 D^p`` with ``D`` the SSIM distance, the paper's
  kernel (Ghojogh et al., ICIAR 2020) in the form that MMD needs.
- :class:`SSIMRBFKernel`: ``k = exp(-gamma D^2)``.
- :class:`MeanSSIMKernel`: ``k = mean over windows of SSIM``.

Point sets for :class:`RBFMixture` are arrays ``(n, d1, d2, ...)``: each row is one point
of dimension ``d1 d2 ...``, flattened in C (row-major) order, so an image stack
``(n, H, W[, C])`` is ``n`` points of dimension ``H W C``; a 1-D array ``(n,)`` is ``n``
points of dimension 1. Gradients come back in the input's shape. The SSIM kernels take
image stacks ``(n, H, W)`` or ``(n, H, W, C)`` as :func:`ssimref.distance_matrix` does.
"""

from __future__ import annotations

import copy
import math

from ..backend import as_array, namespace, to_numpy
from ..config import resolve_config
from ..gradients import PairForward, distance_weight
from ..paired import _chunks
from ..pairwise import (_bytes_per_pair, _symmetrise_diagonal_block, default_working_memory,
                        distance_matrix)
from ..validation import _check_dtype, check_kind, check_stacks
from .alternatives import median_heuristic

__all__ = ["Kernel", "RBFMixture", "SSIMDistanceKernel", "SSIMRBFKernel", "MeanSSIMKernel",
           "bind_kernel"]

_MIB = 2**20


# ----------------------------------------------------------------------------- helpers
def _check_positive(value, name):
    try:
        ok = math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_matrix(G, shape, name, xp):
    G = xp.asarray(G)
    if tuple(G.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(G.shape)}")
    G = xp.astype(G, xp.float64)
    if not bool(xp.all(xp.isfinite(G))):
        raise ValueError(f"{name} contains NaN or Inf")
    return G


def _restore(d, shape, xp):
    """A gradient computed in the working layout, reshaped like the caller's input."""
    return d if d is None or tuple(d.shape) == tuple(shape) else xp.reshape(d, shape)


def _tile_mask_upper(G, xp):
    """``G`` with its diagonal and lower triangle set to 0 (each unordered pair once)."""
    rows = xp.arange(G.shape[0])[:, None]
    cols = xp.arange(G.shape[1])[None, :]
    return xp.where(rows < cols, G, xp.zeros_like(G))


# ----------------------------------------------------------------------------- protocol
class Kernel:
    """Base class of the differentiable kernels (see the module docstring for the protocol).

    Subclasses implement :meth:`prepare` and the trusted methods ``_gram``,
    ``_value_and_vjp`` and (optionally, for speed) ``_paired_value_and_vjp``, which take
    prepared float64 arrays and skip validation. The public methods validate, call them
    and reshape gradients like the inputs.

    Attributes
    ----------
    bytes_per_pair : int
        Peak working bytes per ``(i, j)`` pair of a block handed to ``value_and_vjp``;
        callers that tile (:mod:`ssimref.gmmn`) size their blocks with it.
    """

    bytes_per_pair = 64

    def prepare(self, X, Y=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:
        return repr(self)

    # -- public, validating
    def gram(self, X, Y=None):
        """Kernel matrix ``K_ij = k(x_i, y_j)``, shape (n, m) (or (n, n) when Y is None)."""
        Xw, Yw, kernel = self.prepare(X, Y)
        return kernel._gram(Xw, Yw)

    def value_and_vjp(self, X, Y, G, wrt_y=False):
        """``K`` and the gradient of ``sum_ij G_ij K_ij``.

        Returns ``(K, dX)``, or ``(K, dX, dY)`` when ``wrt_y``. With ``Y=None`` both roles
        of each point are in ``dX`` and ``wrt_y`` must be False.
        """
        if wrt_y and Y is None:
            raise ValueError("wrt_y=True needs an explicit Y; with Y=None the gradient "
                             "already counts both roles of each point in dX")
        x_shape = tuple(as_array(X).shape)
        y_shape = None if Y is None else tuple(as_array(Y).shape)
        Xw, Yw, kernel = self.prepare(X, Y)
        xp = namespace(Xw)
        m = Xw.shape[0] if Yw is None else Yw.shape[0]
        G = _check_matrix(G, (Xw.shape[0], m), "G", xp)
        K, dX, dY = kernel._value_and_vjp(Xw, Yw, G, wrt_y)
        dX = _restore(dX, x_shape, xp)
        return (K, dX, _restore(dY, y_shape, xp)) if wrt_y else (K, dX)

    def gram_vjp(self, X, Y, G, wrt_y=False):
        """Gradient of ``sum_ij G_ij k(x_i, y_j)``: ``dX`` shaped like X, or ``(dX, dY)``
        when ``wrt_y``. ``Y=None``: ``Y = X``, both roles counted in ``dX``."""
        out = self.value_and_vjp(X, Y, G, wrt_y)
        return out[1:] if wrt_y else out[1]

    def paired(self, X, Y):
        """``k(x_i, y_i)`` for matched rows, shape (n,)."""
        Xw, Yw, kernel = self._prepare_pairs(X, Y)
        return kernel._paired_value_and_vjp(Xw, Yw, None)[0]

    def paired_vjp(self, X, Y, g):
        """Gradients ``(dX, dY)`` of ``sum_i g_i k(x_i, y_i)``, shaped like X and Y."""
        x_shape, y_shape = tuple(as_array(X).shape), tuple(as_array(Y).shape)
        Xw, Yw, kernel = self._prepare_pairs(X, Y)
        xp = namespace(Xw)
        g = _check_matrix(g, (Xw.shape[0],), "g", xp)
        _, dX, dY = kernel._paired_value_and_vjp(Xw, Yw, g)
        return _restore(dX, x_shape, xp), _restore(dY, y_shape, xp)

    def _prepare_pairs(self, X, Y):
        Xw, Yw, kernel = self.prepare(X, Y)
        if Yw is None or Xw.shape[0] != Yw.shape[0]:
            raise ValueError("paired kernels need X and Y with the same number of rows "
                             "(pairs are (X[i], Y[i]))")
        return Xw, Yw, kernel

    # -- trusted defaults (slow; built-ins override)
    def _gram(self, X, Y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _value_and_vjp(self, X, Y, G, wrt_y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _paired_value_and_vjp(self, X, Y, g):
        """Default: one 1 x 1 block per pair. Returns ``(values, dX, dY)`` (gradients
        None when ``g`` is None)."""
        xp = namespace(X)
        n = X.shape[0]
        values = xp.empty((n,), dtype=xp.float64)
        dX = None if g is None else xp.zeros(X.shape, dtype=xp.float64)
        dY = None if g is None else xp.zeros(Y.shape, dtype=xp.float64)
        for i in range(n):
            if g is None:
                values[i] = self._gram(X[i:i + 1, ...], Y[i:i + 1, ...])[0, 0]
                continue
            K, gx, gy = self._value_and_vjp(X[i:i + 1, ...], Y[i:i + 1, ...],
                                            xp.reshape(g[i:i + 1], (1, 1)), True)
            values[i] = K[0, 0]
            dX[i:i + 1, ...], dY[i:i + 1, ...] = gx, gy
        return values, dX, dY


class _Ops:
    """The trusted operations of a prepared kernel, for callers that loop over tiles.
    Built-in kernels use their unvalidated internals; other objects their public methods."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.trusted = isinstance(kernel, Kernel)
        self.bytes_per_pair = int(getattr(kernel, "bytes_per_pair", 64))

    def _gram(self, X, Y):  # for the 1 x 1 fallback of paired_value_and_vjp
        return self.gram(X, Y)

    def _value_and_vjp(self, X, Y, G, wrt_y):
        return self.value_and_vjp(X, Y, G, wrt_y)

    def gram(self, X, Y):
        return self.kernel._gram(X, Y) if self.trusted else self.kernel.gram(X, Y)

    def value_and_vjp(self, X, Y, G, wrt_y=False):
        """Always ``(K, dX, dY)``, ``dY`` None unless ``wrt_y``."""
        k = self.kernel
        if self.trusted:
            return k._value_and_vjp(X, Y, G, wrt_y)
        if hasattr(k, "value_and_vjp"):
            out = k.value_and_vjp(X, Y, G, wrt_y=wrt_y)
        else:
            grads = k.gram_vjp(X, Y, G, wrt_y=wrt_y)
            out = (k.gram(X, Y),) + (tuple(grads) if wrt_y else (grads,))
        return (out[0], out[1], out[2] if wrt_y else None)

    def paired_value_and_vjp(self, X, Y, g):
        k = self.kernel
        if self.trusted:
            return k._paired_value_and_vjp(X, Y, g)
        if not hasattr(k, "paired"):  # 1 x 1 blocks through gram and gram_vjp
            return Kernel._paired_value_and_vjp(self, X, Y, g)
        values = k.paired(X, Y)
        if g is None:
            return values, None, None
        dX, dY = k.paired_vjp(X, Y, g)
        return values, dX, dY


def bind_kernel(kernel, X, Y=None):
    """Validate ``X`` (and ``Y``) once for ``kernel``.

    Returns ``(xp, X, Y, ops)``: the array namespace, the prepared float64 arrays (``Y``
    None when not given) and an object whose ``gram``, ``value_and_vjp`` (always
    ``(K, dX, dY)``) and ``paired_value_and_vjp`` work on prepared arrays without
    re-validating. Objects without ``prepare`` get their inputs as float64 arrays.
    """
    if not (hasattr(kernel, "gram") and (hasattr(kernel, "gram_vjp")
                                         or hasattr(kernel, "value_and_vjp"))):
        raise TypeError("kernel must provide gram(X, Y) and gram_vjp(X, Y, G, wrt_y) (see "
                        "ssimref.kernels.Kernel), e.g. ssimref.kernels.RBFMixture() or "
                        f"SSIMDistanceKernel(); got {type(kernel).__name__}")
    if hasattr(kernel, "prepare"):
        X, Y, kernel = kernel.prepare(X, Y)
    else:
        X = as_array(X)
        xp = namespace(X, None if Y is None else as_array(Y))
        X = xp.astype(X, xp.float64)
        Y = None if Y is None else xp.astype(xp.asarray(Y), xp.float64)
    return namespace(X, Y), X, Y, _Ops(kernel)


# ----------------------------------------------------------------------------- RBF
def _points(a, name):
    """Validate a point set and return it as a float64 (n, d) array."""
    a = as_array(a)
    xp = namespace(a)
    _check_dtype(a, name, xp)
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


def _squared_euclidean(X, Y, xp):
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

    def __init__(self, variances=(2.0, 5.0, 10.0, 20.0, 40.0, 80.0), weights=None):
        variances = tuple(_check_positive(s, "variances entry") for s in variances)
        if not variances:
            raise ValueError("variances must hold at least one value > 0")
        if weights is None:
            weights = (1.0,) * len(variances)
        weights = tuple(_check_positive(w, "weights entry") for w in weights)
        if len(weights) != len(variances):
            raise ValueError(f"weights must have one entry per variance ({len(variances)}), "
                             f"got {len(weights)}")
        self.variances, self.weights = variances, weights
        self.median = None

    @classmethod
    def from_median(cls, X, Y=None, scales=(1.0,), weights=None, max_points=2000, seed=0):
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

        Raises
        ------
        ValueError
            When all sampled points coincide (median 0).
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
        kernel = cls(tuple(_check_positive(c, "scales entry") * med * med for c in scales),
                     weights)
        kernel.median = med
        return kernel

    def __repr__(self):
        return f"RBFMixture(variances={self.variances}, weights={self.weights})"

    def describe(self):
        text = ("RBF mixture k = sum_s w_s exp(-||x - y||^2 / (2 s)), s (variances) = "
                + ", ".join(f"{s:.6g}" for s in self.variances)
                + ", w = " + ", ".join(f"{w:g}" for w in self.weights))
        if self.median is not None:
            text += (f"; s = scale * med^2 with med = {self.median:.6g} the median of "
                     "||z_i - z_j|| over distinct pairs of the pooled sample (Gretton et al. "
                     "2012, hyppo; alibi-detect's sigma is sqrt(2) smaller)")
        return text

    def prepare(self, X, Y=None):
        Xw = _points(X, "X")
        Yw = None if Y is None else _points(Y, "Y")
        if Yw is not None:
            namespace(Xw, Yw)
            if Yw.shape[1] != Xw.shape[1]:
                raise ValueError(f"X and Y must have the same dimension per point, got "
                                 f"{Xw.shape[1]} and {Yw.shape[1]}")
        return Xw, Yw, self

    def _mixture(self, sq, xp, grad):
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

    def _gram(self, X, Y):
        xp = namespace(X)
        sq, _, _ = _squared_euclidean(X, Y, xp)
        return self._mixture(sq, xp, grad=False)[0]

    def _value_and_vjp(self, X, Y, G, wrt_y):
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

    def _paired_value_and_vjp(self, X, Y, g):
        xp = namespace(X)
        diff = X - Y
        sq = xp.sum(diff * diff, axis=1)
        K, B = self._mixture(sq, xp, grad=g is not None)
        if g is None:
            return K, None, None
        dX = -(g * B)[:, None] * diff
        return K, dX, -dX


# ----------------------------------------------------------------------------- SSIM
class _SSIMKernel(Kernel):
    """Kernels ``k = h(S)`` of the squared SSIM distance ``S = D^2``: value and gradient
    in one forward pass per tile of pairs (:class:`ssimref.gradients.PairForward`)."""

    # Blocks handed to value_and_vjp cost their K and G tiles and a product; the SSIM
    # work inside is tiled separately to ``working_memory``.
    bytes_per_pair = 32

    def __init__(self, kind, config, working_memory, conventions):
        self.kind = check_kind(kind)
        self.config = resolve_config(config, **conventions)
        if working_memory is not None:
            _check_positive(working_memory, "working_memory")
        self.working_memory = working_memory

    def _of_squared(self, S, upstream, image_shape, xp):  # pragma: no cover - abstract
        """``(h(S), upstream * h'(S))`` (the second None when upstream is None)."""
        raise NotImplementedError

    def _conventions(self):
        from ..cli import describe
        config = self.config
        if config.data_range is None:
            return "SSIM config " + repr(config)
        return f"SSIM distance kind {self.kind}; {describe(config)}"

    def prepare(self, X, Y=None):
        xp, X4, Y4, config = check_stacks(X, Y, self.config)
        X4 = xp.astype(X4, xp.float64)
        Y4 = None if Y4 is None else xp.astype(Y4, xp.float64)
        bound = self
        if config != self.config:
            bound = copy.copy(self)
            bound.config = config
        return X4, Y4, bound

    def _memory(self):
        return default_working_memory() if self.working_memory is None else self.working_memory

    def _gram(self, X, Y):
        xp = namespace(X)
        S = distance_matrix(X, Y, self.kind, self.config, squared=True,
                            working_memory=self._memory())
        return self._of_squared(S, None, tuple(X.shape[1:]), xp)[0]

    def _value_and_vjp(self, X, Y, G, wrt_y):
        xp = namespace(X)
        symmetric = Y is None
        Yw = X if symmetric else Y
        n, m = X.shape[0], Yw.shape[0]
        image_shape = tuple(X.shape[1:])
        pairs = max(1, int(self._memory() * _MIB)
                    // (3 * _bytes_per_pair(image_shape, self.config)))
        side = max(1, min(n, math.isqrt(pairs)))
        tb = side if symmetric else max(1, min(m, pairs // side))
        if symmetric:
            G = G + G.T  # each unordered pair once, both roles at once
        K = xp.empty((n, m), dtype=xp.float64)
        dX = xp.zeros(X.shape, dtype=xp.float64)
        dY = dX if symmetric else (xp.zeros(Y.shape, dtype=xp.float64) if wrt_y else None)
        for i in range(0, n, side):
            i1 = min(i + side, n)
            for j in range(i if symmetric else 0, m, tb):
                j1 = min(j + tb, m)
                diagonal = symmetric and i == j
                forward = PairForward(X[i:i1, None, ...], Yw[None, j:j1, ...], self.kind,
                                      self.config, xp)
                S = _symmetrise_diagonal_block(forward.S, xp) if diagonal else forward.S
                Gt = G[i:i1, j:j1]
                if diagonal:
                    Gt = _tile_mask_upper(Gt, xp)
                value, weight = self._of_squared(S, Gt, image_shape, xp)
                K[i:i1, j:j1] = value
                if symmetric and not diagonal:
                    K[j:j1, i:i1] = value.T
                gx, gy = forward.vjp(weight, wrt_y=dY is not None)
                dX[i:i1, ...] += gx[:, 0, ...]
                if dY is not None:
                    dY[j:j1, ...] += gy[0, ...]
        return K, dX, (None if symmetric else dY)

    def _paired_value_and_vjp(self, X, Y, g):
        xp = namespace(X)
        n = X.shape[0]
        image_shape = tuple(X.shape[1:])
        values = xp.empty((n,), dtype=xp.float64)
        dX = None if g is None else xp.empty(X.shape, dtype=xp.float64)
        dY = None if g is None else xp.empty(Y.shape, dtype=xp.float64)
        for i, i1 in _chunks(n, image_shape, self.config, self._memory(), 3):
            forward = PairForward(X[i:i1, ...], Y[i:i1, ...], self.kind, self.config, xp)
            value, weight = self._of_squared(forward.S, None if g is None else g[i:i1],
                                             image_shape, xp)
            values[i:i1] = value
            if g is not None:
                dX[i:i1, ...], dY[i:i1, ...] = forward.vjp(weight)
        return values, dX, dY


class SSIMDistanceKernel(_SSIMKernel):
    """The paper's SSIM kernel in the form MMD needs: ``k(x, y) = -1/2 D(x, y)^p``.

    Parameters
    ----------
    kind : {"eq2", "eq1", "eq1-uncentered"}, default "eq2"
        SSIM distance ``D`` (:func:`ssimref.distance`).
    power : {1, 2}, default 1
        ``p``. ``p = 1`` is the paper's kernel (``-1/2 H D H`` after centring) and is
        characteristic; ``p = 2`` (classical MDS, ``-1/2 H (D o D) H``) only compares
        mean embeddings of the SSIM feature map and is not characteristic.
    config : SSIMConfig, optional
        SSIM conventions; keyword overrides (``data_range=255``, ``window="uniform"``, ...)
        as for :func:`ssimref.distance_matrix`.
    working_memory : float, optional
        MiB for the tiles of pairs (scikit-learn's setting when None).

    Notes
    -----
    The distance-induced kernel with base point ``z0`` (Sejdinovic et al. 2013) is
    ``k0(x, y) = 1/2 [D^p(x, z0) + D^p(y, z0) - D^p(x, y)] = -1/2 D^p(x, y) + f(x) + f(y)``
    with ``f = D^p(., z0) / 2``. For any weight matrix ``W`` whose rows and columns sum to
    zero, ``sum_ij W_ij (f(z_i) + f(z_j)) = sum_i f(z_i) sum_j W_ij + sum_j f(z_j)
    sum_i W_ij = 0``, so ``sum_ij W_ij k0(z_i, z_j) = sum_ij W_ij (-1/2 D^p_ij)`` for every
    ``z0``. Every weight matrix of :mod:`ssimref.gmmn` (biased, unbiased and linear MMD,
    CMMD, permutations) has zero row and column sums, so this kernel gives exactly the MMD
    of the distance-induced kernel, i.e. half the energy distance
    ``2 E D^p(X, Y) - E D^p(X, X') - E D^p(Y, Y')``; no block is ever centred on its own
    (centring ``K_XX``, ``K_YY``, ``K_XY`` separately would make the MMD identically 0).
    ``-1/2 D^p`` itself is only conditionally positive definite: use it with such weights.

    The gradient of ``sum_ij G_ij k(x_i, y_j)`` is ``-1/2`` times
    :func:`ssimref.distance_matrix_vjp` of ``G`` (``squared=True`` for ``p = 2``), with its
    subgradient 0 where ``D = 0``.

    References
    ----------
    Ghojogh, Karray, Crowley, ICIAR 2020. Sejdinovic, Sriperumbudur, Gretton, Fukumizu,
    "Equivalence of distance-based and RKHS-based statistics in hypothesis testing",
    Ann. Statist. 41(5), 2013.

    Examples
    --------
    >>> import numpy as np
    >>> import ssimref
    >>> from ssimref.kernels import SSIMDistanceKernel
    >>> X = np.random.default_rng(0).integers(0, 256, (3, 9, 9), dtype=np.uint8)
    >>> K = SSIMDistanceKernel("eq2", window="uniform", size=3).gram(X)
    >>> D = ssimref.distance_matrix(X, kind="eq2", window="uniform", size=3)
    >>> bool(np.allclose(K, -0.5 * D))
    True
    """

    def __init__(self, kind="eq2", power=1, config=None, *, working_memory=None,
                 **conventions):
        super().__init__(kind, config, working_memory, conventions)
        if power not in (1, 2):
            raise ValueError(f"power must be 1 (the paper's kernel, characteristic) or 2 "
                             f"(D o D, classical MDS), got {power!r}")
        self.power = int(power)

    def __repr__(self):
        return (f"SSIMDistanceKernel(kind={self.kind!r}, power={self.power}, "
                f"config={self.config!r})")

    def describe(self):
        return (f"SSIM distance kernel k = -1/2 D^{self.power} (distance-induced, exact for "
                f"zero-sum MMD weights); {self._conventions()}")

    def _of_squared(self, S, upstream, image_shape, xp):
        if self.power == 2:
            return -0.5 * S, (None if upstream is None else -0.5 * upstream)
        if upstream is None:
            return -0.5 * xp.sqrt(S), None
        D, weight = distance_weight(S, -0.5 * upstream, False, xp)
        return -0.5 * D, weight


class SSIMRBFKernel(_SSIMKernel):
    """Gaussian kernel of the SSIM distance: ``k(x, y) = exp(-gamma D(x, y)^2)``.

    Positive definite for every ``gamma > 0`` (``D^2`` is a squared Hilbert-space
    distance, so Schoenberg's theorem applies), with ``k(x, x) = 1``.

    Parameters
    ----------
    gamma : float > 0
    kind, config, working_memory, **conventions
        As for :class:`SSIMDistanceKernel`.

    Notes
    -----
    Gradient: the cotangent of ``S = D^2`` is ``G o (-gamma K)``, sent back through
    :class:`ssimref.gradients.PairForward`.
    """

    def __init__(self, gamma, kind="eq2", config=None, *, working_memory=None,
                 **conventions):
        super().__init__(kind, config, working_memory, conventions)
        self.gamma = _check_positive(gamma, "gamma")
        self.median = None

    @classmethod
    def from_median(cls, X, Y=None, kind="eq2", config=None, *, scale=1.0, max_points=500,
                    seed=0, working_memory=None, **conventions):
        """``gamma = 1 / (2 scale med^2)``, ``med`` the median SSIM distance over distinct
        pairs of the pooled sample (at most ``max_points`` points, drawn with ``seed``);
        the same convention as :meth:`RBFMixture.from_median` (Gretton et al. 2012)."""
        import numpy as np

        kernel = cls(1.0, kind, config, working_memory=working_memory, **conventions)
        X4, Y4, bound = kernel.prepare(X, Y)
        xp = namespace(X4)
        Z = X4 if Y4 is None else xp.concat([X4, Y4], axis=0)
        if Z.shape[0] < 2:
            raise ValueError("the median heuristic needs at least two images")
        if Z.shape[0] > max_points:
            pick = np.sort(np.random.default_rng(seed).choice(Z.shape[0], max_points,
                                                              replace=False))
            Z = xp.take(Z, xp.asarray(pick), axis=0)
        med = median_heuristic(to_numpy(distance_matrix(Z, None, kind, bound.config,
                                                        working_memory=bound._memory())))
        if not med > 0:
            raise ValueError("the median SSIM distance between the images is 0; give gamma "
                             "explicitly")
        bound.gamma = 1.0 / (2.0 * _check_positive(scale, "scale") * med * med)
        bound.median = med
        return bound

    def __repr__(self):
        return (f"SSIMRBFKernel(gamma={self.gamma!r}, kind={self.kind!r}, "
                f"config={self.config!r})")

    def describe(self):
        text = f"SSIM RBF kernel k = exp(-gamma D^2), gamma = {self.gamma:.6g}"
        if self.median is not None:
            text += (f" = 1 / (2 scale med^2), med = {self.median:.6g} the median SSIM "
                     "distance over distinct pairs of the pooled sample")
        return f"{text}; {self._conventions()}"

    def _of_squared(self, S, upstream, image_shape, xp):
        K = xp.exp(-self.gamma * S)
        return K, (None if upstream is None else (-self.gamma) * K * upstream)


class MeanSSIMKernel(_SSIMKernel):
    """Mean SSIM over windows as a kernel: ``k(x, y) = (1/P) sum_p SSIM_p(x, y)``.

    ``SSIM_p = s1 s2`` is positive definite for each window position ``p`` (REFERENCE:
    the ``1/(a + b + c)`` integral and Schur products), so their mean is too, with
    ``k(x, x) = 1``. With ``D`` of kind "eq1-uncentered", whose squared per-window
    distance is ``1 - s1 s2``, ``k = 1 - D^2 / P`` where ``P`` is the number of window
    positions times channels; the gradient is ``-1/P`` times that of ``D^2``.

    Parameters
    ----------
    config, working_memory, **conventions
        As for :class:`SSIMDistanceKernel`.
    """

    def __init__(self, config=None, *, working_memory=None, **conventions):
        super().__init__("eq1-uncentered", config, working_memory, conventions)

    def __repr__(self):
        return f"MeanSSIMKernel(config={self.config!r})"

    def describe(self):
        return f"mean-SSIM kernel k = mean over windows of s1 s2 = 1 - D^2 / P; " \
               f"{self._conventions()}"

    def _positions(self, image_shape):
        h, w, c = image_shape
        ho, wo = self.config.positions(h, w)
        return ho * wo * c

    def _of_squared(self, S, upstream, image_shape, xp):
        inv_p = 1.0 / self._positions(image_shape)
        return 1.0 - inv_p * S, (None if upstream is None else (-inv_p) * upstream)
