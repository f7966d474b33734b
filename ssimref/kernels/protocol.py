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
  conventions are resolved (e.g. the SSIM data range inferred from uint8 data). Callers
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

from typing import Any, Literal, overload

from ..backend import Array, ArrayLike, Namespace, as_array, namespace
from ..validation import check_not_masked

__all__ = ["Kernel", "bind_kernel", "BoundKernel"]


def _check_matrix(G: ArrayLike, shape: tuple[int, ...], name: str, xp: Namespace) -> Array:
    check_not_masked(G, name)
    G = xp.asarray(G)
    if tuple(G.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(G.shape)}")
    G = xp.astype(G, xp.float64)
    if not bool(xp.all(xp.isfinite(G))):
        raise ValueError(f"{name} contains NaN or Inf")
    return G


def _restore(d: Array | None, shape: tuple[int, ...] | None, xp: Namespace) -> Array | None:
    """A gradient computed in the working layout, reshaped like the caller's input."""
    if d is None or shape is None or tuple(d.shape) == tuple(shape):
        return d
    return xp.reshape(d, shape)


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

    See Also
    --------
    bind_kernel : validate once, then call the trusted operations.
    ssimref.mmd.mmd2, ssimref.mmd.cmmd2, ssimref.mmd.mmd_test : what kernels are for.
    """

    bytes_per_pair = 64

    def prepare(self, X: ArrayLike,
                Y: ArrayLike | None = None) -> tuple[Array, Array | None, Kernel]:
        """Validate ``X`` (and ``Y``) once and return them in the kernel's working layout.

        Parameters
        ----------
        X : array_like, shape (n, ...)
        Y : array_like, shape (m, ...), optional

        Returns
        -------
        X, Y : Array, float64
            ``Y`` None when not given.
        kernel : Kernel
            This kernel, or a copy with its conventions resolved for these data (e.g. the
            SSIM data range inferred from uint8 or uint16 images).

        Raises
        ------
        ValueError, TypeError
            For invalid points (each kernel states which).
        """
        raise NotImplementedError  # pragma: no cover - abstract

    def _to_input_layout(self, d: Array | None, shape: tuple[int, ...] | None,
                         xp: Namespace) -> Array | None:
        """A gradient computed in the working layout of :meth:`prepare`, in the layout of
        the caller's input of ``shape`` (default: reshaped)."""
        return _restore(d, shape, xp)

    def describe(self) -> str:
        """The kernel and its conventions in words (for reports and sidecars).

        Returns
        -------
        str
        """
        return repr(self)

    # -- public, validating
    def gram(self, X: ArrayLike, Y: ArrayLike | None = None) -> Array:
        """Kernel matrix ``K_ij = k(x_i, y_j)``.

        Parameters
        ----------
        X : array_like, shape (n, ...)
        Y : array_like, shape (m, ...), optional
            ``Y = X`` when None.

        Returns
        -------
        Array, shape (n, m) (or (n, n) when Y is None), float64

        Raises
        ------
        ValueError, TypeError
            As for :meth:`prepare`.
        """
        Xw, Yw, kernel = self.prepare(X, Y)
        return kernel._gram(Xw, Yw)

    @overload
    def value_and_vjp(self, X: ArrayLike, Y: ArrayLike | None, G: ArrayLike,
                      wrt_y: Literal[False] = ...) -> tuple[Array, Array]: ...

    @overload
    def value_and_vjp(self, X: ArrayLike, Y: ArrayLike | None, G: ArrayLike,
                      wrt_y: Literal[True]) -> tuple[Array, Array, Array]: ...

    @overload
    def value_and_vjp(self, X: ArrayLike, Y: ArrayLike | None, G: ArrayLike,
                      wrt_y: bool) -> tuple[Array, ...]: ...

    def value_and_vjp(self, X: ArrayLike, Y: ArrayLike | None, G: ArrayLike,
                      wrt_y: bool = False) -> tuple[Array, ...]:
        """``K`` and the gradient of ``sum_ij G_ij K_ij``, in one pass.

        Parameters
        ----------
        X : array_like, shape (n, ...)
        Y : array_like, shape (m, ...), or None
            None: ``Y = X``, and both roles of each point are in ``dX``.
        G : array_like, shape (n, m)
            The cotangent of ``K``.
        wrt_y : bool, default False
            Also return ``dY`` (needs an explicit ``Y``).

        Returns
        -------
        K : Array, shape (n, m)
        dX : Array, shaped like X
        dY : Array, shaped like Y
            Only with ``wrt_y``.

        Raises
        ------
        ValueError
            For ``wrt_y`` with ``Y=None``, ``G`` of the wrong shape or with NaN or Inf;
            and the errors of :meth:`prepare`.
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
        dX = kernel._to_input_layout(dX, x_shape, xp)
        return (K, dX, kernel._to_input_layout(dY, y_shape, xp)) if wrt_y else (K, dX)

    @overload
    def gram_vjp(self, X: ArrayLike, Y: ArrayLike | None, G: ArrayLike,
                 wrt_y: Literal[False] = ...) -> Array: ...

    @overload
    def gram_vjp(self, X: ArrayLike, Y: ArrayLike | None, G: ArrayLike,
                 wrt_y: Literal[True]) -> tuple[Array, Array]: ...

    @overload
    def gram_vjp(self, X: ArrayLike, Y: ArrayLike | None, G: ArrayLike,
                 wrt_y: bool) -> Array | tuple[Array, Array]: ...

    def gram_vjp(self, X: ArrayLike, Y: ArrayLike | None, G: ArrayLike,
                 wrt_y: bool = False) -> Array | tuple[Array, Array]:
        """Gradient of ``sum_ij G_ij k(x_i, y_j)``.

        Parameters
        ----------
        X, Y, G, wrt_y
            As for :meth:`value_and_vjp`.

        Returns
        -------
        Array or tuple of Array
            ``dX`` shaped like X, or ``(dX, dY)`` when ``wrt_y``. ``Y=None``: ``Y = X``,
            both roles counted in ``dX``.

        Raises
        ------
        ValueError, TypeError
            As for :meth:`value_and_vjp`.
        """
        out = self.value_and_vjp(X, Y, G, wrt_y)
        return out[1:] if wrt_y else out[1]

    def paired(self, X: ArrayLike, Y: ArrayLike) -> Array:
        """``k(x_i, y_i)`` for matched rows.

        Parameters
        ----------
        X, Y : array_like, shape (n, ...)

        Returns
        -------
        Array, shape (n,), float64

        Raises
        ------
        ValueError
            For ``X`` and ``Y`` with different numbers of rows; and the errors of
            :meth:`prepare`.
        """
        Xw, Yw, kernel = self._prepare_pairs(X, Y)
        return kernel._paired_value_and_vjp(Xw, Yw, None)[0]

    def paired_vjp(self, X: ArrayLike, Y: ArrayLike, g: ArrayLike) -> tuple[Array, Array]:
        """Gradients of ``sum_i g_i k(x_i, y_i)`` over matched rows.

        Parameters
        ----------
        X, Y : array_like, shape (n, ...)
        g : array_like, shape (n,)

        Returns
        -------
        dX, dY : Array, shaped like X and Y

        Raises
        ------
        ValueError
            For ``g`` of the wrong shape or with NaN or Inf; and the errors of
            :meth:`paired`.
        """
        x_shape, y_shape = tuple(as_array(X).shape), tuple(as_array(Y).shape)
        Xw, Yw, kernel = self._prepare_pairs(X, Y)
        xp = namespace(Xw)
        g = _check_matrix(g, (Xw.shape[0],), "g", xp)
        _, dX, dY = kernel._paired_value_and_vjp(Xw, Yw, g)
        return (kernel._to_input_layout(dX, x_shape, xp),
                kernel._to_input_layout(dY, y_shape, xp))

    def _prepare_pairs(self, X: ArrayLike, Y: ArrayLike) -> tuple[Array, Array, Kernel]:
        Xw, Yw, kernel = self.prepare(X, Y)
        if Yw is None or Xw.shape[0] != Yw.shape[0]:
            raise ValueError("paired kernels need X and Y with the same number of rows "
                             "(pairs are (X[i], Y[i]))")
        return Xw, Yw, kernel

    # -- trusted defaults (slow; built-ins override)
    def _gram(self, X: Array, Y: Array | None) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def _value_and_vjp(self, X: Array, Y: Array | None, G: Array,
                       wrt_y: bool) -> tuple[Array, Array, Array | None]:
        raise NotImplementedError  # pragma: no cover - abstract

    def _paired_value_and_vjp(self, X: Array, Y: Array,
                              g: Array | None) -> tuple[Array, Array | None, Array | None]:
        """Default: one 1 x 1 block per pair. Returns ``(values, dX, dY)`` (gradients
        None when ``g`` is None)."""
        xp = namespace(X)
        n = X.shape[0]
        values = xp.empty((n,), dtype=xp.float64)
        dX = None if g is None else xp.zeros(X.shape, dtype=xp.float64)
        dY = None if g is None else xp.zeros(Y.shape, dtype=xp.float64)
        for i in range(n):
            if g is None or dX is None or dY is None:
                values[i] = self._gram(X[i:i + 1, ...], Y[i:i + 1, ...])[0, 0]
                continue
            K, gx, gy = self._value_and_vjp(X[i:i + 1, ...], Y[i:i + 1, ...],
                                            xp.reshape(g[i:i + 1], (1, 1)), True)
            values[i] = K[0, 0]
            dX[i:i + 1, ...], dY[i:i + 1, ...] = gx, gy
        return values, dX, dY


class BoundKernel:
    """The trusted operations of a prepared kernel, for callers that loop over tiles.
    Built-in kernels use their unvalidated internals; other objects their public methods.

    Parameters
    ----------
    kernel : Kernel or an object with the protocol's methods
        Prepared (:func:`bind_kernel`).

    Attributes
    ----------
    kernel : Any
    trusted : bool
        Whether ``kernel`` is a :class:`Kernel` (its unvalidated internals are used).
    bytes_per_pair : int
        The kernel's, 64 when it states none.
    """

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.trusted = isinstance(kernel, Kernel)
        self.bytes_per_pair = int(getattr(kernel, "bytes_per_pair", 64))

    def _gram(self, X: Array, Y: Array | None) -> Array:  # for the 1 x 1 paired fallback
        return self.gram(X, Y)

    def _value_and_vjp(self, X: Array, Y: Array | None, G: Array,
                       wrt_y: bool) -> tuple[Array, Array, Array | None]:
        return self.value_and_vjp(X, Y, G, wrt_y)

    def to_input_layout(self, d: Array | None, shape: tuple[int, ...] | None,
                        xp: Namespace) -> Array | None:
        """A gradient of prepared arrays in the layout of the caller's input of ``shape``
        (a kernel's own rule, e.g. its channel axis; else reshaped).

        Parameters
        ----------
        d : Array or None
        shape : tuple of int or None
            The input's shape (None: leave ``d`` as it is).
        xp : Namespace

        Returns
        -------
        Array or None
        """
        if self.trusted:
            return self.kernel._to_input_layout(d, shape, xp)
        return _restore(d, shape, xp)

    def gram(self, X: Array, Y: Array | None) -> Array:
        """The kernel matrix of prepared arrays (``Y = X`` when None).

        Parameters
        ----------
        X : Array, shape (n, ...)
        Y : Array, shape (m, ...), or None

        Returns
        -------
        Array, shape (n, m)
        """
        return self.kernel._gram(X, Y) if self.trusted else self.kernel.gram(X, Y)

    def value_and_vjp(self, X: Array, Y: Array | None, G: Array,
                      wrt_y: bool = False) -> tuple[Array, Array, Array | None]:
        """The kernel matrix and the gradient of ``sum_ij G_ij K_ij`` of prepared arrays.

        Parameters
        ----------
        X, Y, G, wrt_y
            As for :meth:`Kernel.value_and_vjp`.

        Returns
        -------
        K, dX : Array
        dY : Array, or None unless ``wrt_y``
        """
        k = self.kernel
        if self.trusted:
            return k._value_and_vjp(X, Y, G, wrt_y)
        if hasattr(k, "value_and_vjp"):
            out = k.value_and_vjp(X, Y, G, wrt_y=wrt_y)
        else:
            grads = k.gram_vjp(X, Y, G, wrt_y=wrt_y)
            out = (k.gram(X, Y),) + (tuple(grads) if wrt_y else (grads,))
        return (out[0], out[1], out[2] if wrt_y else None)

    def paired_value_and_vjp(self, X: Array, Y: Array,
                             g: Array | None) -> tuple[Array, Array | None, Array | None]:
        """Values over matched rows of prepared arrays, and the gradients of
        ``sum_i g_i k(x_i, y_i)``.

        Parameters
        ----------
        X, Y : Array, shape (n, ...)
        g : Array, shape (n,), or None
            None: values only.

        Returns
        -------
        values : Array, shape (n,)
        dX, dY : Array, shaped like X and Y, or None when ``g`` is None
        """
        k = self.kernel
        if self.trusted:
            return k._paired_value_and_vjp(X, Y, g)
        if not hasattr(k, "paired"):  # 1 x 1 blocks through gram and gram_vjp
            # duck-typed: BoundKernel has the _gram and _value_and_vjp the default uses
            return Kernel._paired_value_and_vjp(self, X, Y, g)  # type: ignore[arg-type]
        values = k.paired(X, Y)
        if g is None:
            return values, None, None
        dX, dY = k.paired_vjp(X, Y, g)
        return values, dX, dY


def bind_kernel(kernel: Any, X: ArrayLike, Y: ArrayLike | None = None,
                ) -> tuple[Namespace, Array, Array | None, BoundKernel]:
    """Validate ``X`` (and ``Y``) once for ``kernel``.

    Parameters
    ----------
    kernel : Kernel or an object with the protocol's methods
    X : array_like, shape (n, ...)
    Y : array_like, shape (m, ...), optional

    Returns
    -------
    xp : Namespace
    X, Y : Array, float64
        Prepared (``Y`` None when not given). Objects without ``prepare`` get their
        inputs as float64 arrays.
    ops : BoundKernel
        Its ``gram``, ``value_and_vjp`` (always ``(K, dX, dY)``) and
        ``paired_value_and_vjp`` work on prepared arrays without re-validating.

    Raises
    ------
    TypeError
        When ``kernel`` lacks ``gram`` and both ``gram_vjp`` and ``value_and_vjp``.
    ValueError
        The kernel's errors for invalid points.
    """
    if not (hasattr(kernel, "gram") and (hasattr(kernel, "gram_vjp")
                                         or hasattr(kernel, "value_and_vjp"))):
        raise TypeError("kernel must provide gram(X, Y) and gram_vjp(X, Y, G, wrt_y) (see "
                        "ssimref.kernels.Kernel), e.g. ssimref.kernels.RBFMixture() or "
                        f"SSIMDistanceKernel(); got {type(kernel).__name__}")
    if hasattr(kernel, "prepare"):
        X, Y, kernel = kernel.prepare(X, Y)
    else:
        check_not_masked(X, "X")
        check_not_masked(Y, "Y")
        X = as_array(X)
        xp = namespace(X, None if Y is None else as_array(Y))
        X = xp.astype(X, xp.float64)
        Y = None if Y is None else xp.astype(xp.asarray(Y), xp.float64)
    return namespace(X, Y), X, Y, BoundKernel(kernel)
