"""The protocol of differentiable kernels, for MMD, conditional MMD and GMMN training.

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

Built-in kernels: :class:`~ssimref.kernels.RBFMixture` (:mod:`ssimref.kernels.rbf`,
``k = sum_s w_s exp(-||x - y||^2 / (2 s))``, Li, Swersky, Zemel, ICML 2015) and the
kernels of the SSIM distance (:mod:`ssimref.kernels.ssim_distance`):
:class:`~ssimref.kernels.SSIMDistanceKernel` ``k = -1/2 D^p`` (the paper's kernel in the
form MMD needs), :class:`~ssimref.kernels.SSIMRBFKernel` ``k = exp(-gamma D^2)`` and
:class:`~ssimref.kernels.MeanSSIMKernel` (mean SSIM over windows).

Point sets for :class:`~ssimref.kernels.RBFMixture` are arrays ``(n, d1, d2, ...)``: each
row is one point of dimension ``d1 d2 ...``, flattened in C (row-major) order, so an image stack
``(n, H, W[, C])`` is ``n`` points of dimension ``H W C``; a 1-D array ``(n,)`` is ``n``
points of dimension 1. Gradients come back in the input's shape. The SSIM kernels take
image stacks ``(n, H, W)`` or ``(n, H, W, C)`` as :func:`ssimref.distance_matrix` does.
"""

from __future__ import annotations

from ..backend import as_array, namespace

__all__ = ["Kernel", "bind_kernel", "BoundKernel"]


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


class BoundKernel:
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
    return namespace(X, Y), X, Y, BoundKernel(kernel)
