"""Kernels of the SSIM distance with hand-derived gradients: ``-1/2 D^p`` (the paper's
kernel in the form MMD needs), ``exp(-gamma D^2)`` and mean SSIM, implementing the
protocol of :mod:`ssimref.kernels.protocol`.

Each is ``k = h(S)`` of the squared SSIM distance ``S = D^2``; values and gradients come
from one pass over each tile of pairs (:func:`ssimref.pairwise.pairwise_value_and_vjp`,
:func:`ssimref.paired.paired_value_and_vjp`), the Gram matrix from
:func:`ssimref.distance_matrix`.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from ..backend import Array, ArrayLike, Namespace, namespace, to_numpy
from ..config import SSIMConfig, resolve_config
from ..engines import check_backend
from ..kinds import KindName
from ..gradients import distance_weight
from ..paired import paired_value_and_vjp
from ..pairwise import distance_matrix, pairwise_value_and_vjp
from ..tiling import resolve_working_memory
from ..validation import (channels_back, check_channel_axis, check_kind, check_positive,
                          check_stacks)
from .alternatives import median_heuristic
from .protocol import Kernel

__all__ = ["SSIMDistanceKernel", "SSIMRBFKernel", "MeanSSIMKernel"]

_K = TypeVar("_K", bound="_SSIMKernel")


class _SSIMKernel(Kernel):
    """Kernels ``k = h(S)`` of the squared SSIM distance ``S = D^2``: value and gradient
    in one forward pass per tile of pairs."""

    # Blocks handed to value_and_vjp cost their K and G tiles and a product; the SSIM
    # work inside is tiled separately to ``working_memory``.
    bytes_per_pair = 32

    def __init__(self, kind: str, config: SSIMConfig | None, working_memory: float | None,
                 backend: str, conventions: dict[str, Any],
                 channel_axis: int | None = None) -> None:
        self.kind = check_kind(kind)
        self.config = resolve_config(config, **conventions)
        if working_memory is not None:
            resolve_working_memory(working_memory)
        self.working_memory = working_memory
        self.backend = check_backend(backend)
        if channel_axis is not None:  # validate the type and stack rule now
            check_channel_axis(channel_axis, 4, True, "the image stacks")
        self.channel_axis = channel_axis

    def _to_input_layout(self, d: Array | None, shape: tuple[int, ...] | None,
                         xp: Namespace) -> Array | None:
        if d is None or self.channel_axis is None or shape is None:
            return super()._to_input_layout(d, shape, xp)
        return channels_back(d, check_channel_axis(self.channel_axis, 4, True), xp)

    def _of_squared(self, S: Array, upstream: Array | None, image_shape: tuple[int, ...],
                    xp: Namespace) -> tuple[Array, Array | None]:  # pragma: no cover
        """``(h(S), upstream * h'(S))`` (the second None when upstream is None)."""
        raise NotImplementedError

    def _rule(self, image_shape: tuple[int, ...]) -> tuple[str, float] | None:
        """``(rule, coef)`` of :meth:`_of_squared` with an upstream, as
        :class:`ssimref.engines.ElementwiseCotangent` states it (None: no such rule)."""
        return None

    def _conventions(self) -> str:
        config = self.config
        if config.data_range is None:
            return "SSIM config " + repr(config)
        return f"SSIM distance kind {self.kind}; {config.describe()}"

    def prepare(self: _K, X: ArrayLike,
                Y: ArrayLike | None = None) -> tuple[Array, Array | None, _K]:
        """Validate image stacks once: float64 ``(n, H, W, C)`` arrays, and this kernel
        with the data range inferred from uint8 or uint16 images when it was not given.

        Parameters
        ----------
        X : array_like, shape (n, H, W) or (n, H, W, C)
        Y : array_like, shape (m, H, W) or (m, H, W, C), optional

        Returns
        -------
        X, Y : Array, float64, shape (n, H, W, C) and (m, H, W, C)
            ``Y`` None when not given.
        kernel : the kernel's class
            ``self``, or a copy with the data range set.

        Raises
        ------
        ValueError, TypeError
            As for :func:`ssimref.distance_matrix`.
        """
        xp, X4, Y4, config = check_stacks(X, Y, self.config, channel_axis=self.channel_axis)
        X4 = xp.astype(X4, xp.float64, copy=False)  # no copy of float64 input
        Y4 = None if Y4 is None else xp.astype(Y4, xp.float64, copy=False)
        bound = self
        if config != self.config:
            bound = copy.copy(self)
            bound.config = config
        return X4, Y4, bound

    def _memory(self) -> float:
        return resolve_working_memory(self.working_memory)

    def _gram(self, X: Array, Y: Array | None) -> Array:
        xp = namespace(X)
        # prepared arrays are channels last, whatever their number of channels
        S = distance_matrix(X, Y, self.kind, self.config, squared=True,
                            working_memory=self._memory(), channel_axis=-1,
                            backend=self.backend)
        return self._of_squared(S, None, tuple(X.shape[1:]), xp)[0]

    def _value_and_vjp(self, X: Array, Y: Array | None, G: Array,
                       wrt_y: bool) -> tuple[Array, Array, Array | None]:
        xp = namespace(X)
        image_shape = tuple(X.shape[1:])
        return pairwise_value_and_vjp(
            X, Y, G, self.kind, self.config,
            lambda S, Gt: self._of_squared(S, Gt, image_shape, xp), wrt_y=wrt_y,
            working_memory=self._memory(), keep_values=True, backend=self.backend,
            elementwise=self._rule(image_shape))

    def _paired_value_and_vjp(self, X: Array, Y: Array,
                              g: Array | None) -> tuple[Array, Array | None, Array | None]:
        xp = namespace(X)
        image_shape = tuple(X.shape[1:])
        return paired_value_and_vjp(
            X, Y, self.kind, self.config,
            lambda S, rows: self._of_squared(S, None if g is None else g[rows], image_shape,
                                             xp),
            grad=g is not None, working_memory=self._memory(), backend=self.backend)


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
    backend : {"auto", "reference", "numba", "cupy"}, default "auto"
        Engine for the pairs of the Gram matrices and of the gradients
        (:func:`ssimref.engines.choose_engine`; "auto" picks the fused engine of the
        arrays' library). Gradients of the fused engines agree with the reference to the
        contract of docs/engines.md (:func:`ssimref.engines.vjp_accuracy_floor`).
    channel_axis : int, optional
        The channel axis of the 4-D image stacks the kernel is given (1 for
        ``(n, C, H, W)``), as for :func:`ssimref.distance_matrix`; gradients keep that
        layout. None: channels last, at most 4 of them.
    **conventions
        Fields of :class:`ssimref.SSIMConfig` overriding ``config``.

    Raises
    ------
    ValueError
        For an unknown ``kind``, a ``power`` other than 1 or 2, invalid conventions, a
        non-positive ``working_memory``, an unknown ``backend`` or a ``channel_axis``
        of 0.
    TypeError
        For an unknown convention keyword or a non-integer ``channel_axis``.

    See Also
    --------
    ssimref.kernels.ssim_kernel : the centred Gram matrix ``-1/2 H D^p H`` itself.
    ssimref.mmd.mmd2 : where the kernel is used.

    Notes
    -----
    The distance-induced kernel with base point ``z0`` (Sejdinovic et al. 2013) is
    ``k0(x, y) = 1/2 [D^p(x, z0) + D^p(y, z0) - D^p(x, y)] = -1/2 D^p(x, y) + f(x) + f(y)``
    with ``f = D^p(., z0) / 2``. For any weight matrix ``W`` whose rows and columns sum to
    zero, ``sum_ij W_ij (f(z_i) + f(z_j)) = sum_i f(z_i) sum_j W_ij + sum_j f(z_j)
    sum_i W_ij = 0``, so ``sum_ij W_ij k0(z_i, z_j) = sum_ij W_ij (-1/2 D^p_ij)`` for every
    ``z0``. Every weight matrix of :mod:`ssimref.mmd` (biased, unbiased and linear MMD,
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

    def __init__(self, kind: KindName = "eq2", power: int = 1,
                 config: SSIMConfig | None = None, *, working_memory: float | None = None,
                 backend: str = "auto", channel_axis: int | None = None,
                 **conventions: Any) -> None:
        super().__init__(kind, config, working_memory, backend, conventions, channel_axis)
        if power not in (1, 2):
            raise ValueError(f"power must be 1 (the paper's kernel, characteristic) or 2 "
                             f"(D o D, classical MDS), got {power!r}")
        self.power = int(power)

    def __repr__(self) -> str:
        return (f"SSIMDistanceKernel(kind={self.kind!r}, power={self.power}, "
                f"config={self.config!r})")

    def describe(self) -> str:
        """The kernel and its SSIM conventions in words.

        Returns
        -------
        str
        """
        return (f"SSIM distance kernel k = -1/2 D^{self.power} (distance-induced, exact for "
                f"zero-sum MMD weights); {self._conventions()}")

    def _rule(self, image_shape: tuple[int, ...]) -> tuple[str, float] | None:
        return ("linear", -0.5) if self.power == 2 else ("sqrt", -0.5)

    def _of_squared(self, S: Array, upstream: Array | None, image_shape: tuple[int, ...],
                    xp: Namespace) -> tuple[Array, Array | None]:
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
    kind, config, working_memory, backend, channel_axis, **conventions
        As for :class:`SSIMDistanceKernel`.

    Raises
    ------
    ValueError
        For a ``gamma`` that is not a finite number > 0; and as for
        :class:`SSIMDistanceKernel`.
    TypeError
        As for :class:`SSIMDistanceKernel`.

    See Also
    --------
    from_median : ``gamma`` from the median heuristic.
    ssimref.kernels.ssim_rbf_kernel : the same kernel from a distance matrix.

    Notes
    -----
    Gradient: the cotangent of ``S = D^2`` is ``G o (-gamma K)``, sent back through the
    engine's value-and-VJP blocks (:class:`ssimref.gradients.PairForward` on the
    reference).
    """

    def __init__(self, gamma: float, kind: KindName = "eq2", config: SSIMConfig | None = None,
                 *, working_memory: float | None = None, backend: str = "auto",
                 channel_axis: int | None = None, **conventions: Any) -> None:
        super().__init__(kind, config, working_memory, backend, conventions, channel_axis)
        self.gamma = check_positive(gamma, "gamma")
        self.median: float | None = None

    @classmethod
    def from_median(cls, X: ArrayLike, Y: ArrayLike | None = None, kind: KindName = "eq2",
                    config: SSIMConfig | None = None, *, scale: float = 1.0,
                    max_points: int = 500, seed: int = 0,
                    working_memory: float | None = None, backend: str = "auto",
                    channel_axis: int | None = None,
                    **conventions: Any) -> SSIMRBFKernel:
        """The kernel with ``gamma = 1 / (2 scale med^2)``, ``med`` the median SSIM
        distance over distinct pairs of the pooled sample; the same convention as
        :meth:`ssimref.kernels.RBFMixture.from_median` (Gretton et al. 2012).

        Parameters
        ----------
        X : array_like, shape (n, H, W) or (n, H, W, C)
        Y : array_like, shape (m, H, W) or (m, H, W, C), optional
            Pooled with ``X`` for the median.
        kind, config, working_memory, backend, channel_axis, **conventions
            As for :class:`SSIMDistanceKernel`.
        scale : float > 0, default 1.0
        max_points : int, default 500
            Largest pooled sample the median is taken over (a random subset beyond).
        seed : int, default 0
            Seed of the subset (NumPy ``default_rng``).

        Returns
        -------
        SSIMRBFKernel
            With the data range resolved from the images and ``median`` set.

        Raises
        ------
        ValueError
            When the median is 0, for fewer than two images, an invalid ``scale``; and
            the errors of :func:`ssimref.distance_matrix`.
        """
        import numpy as np

        kernel = cls(1.0, kind, config, working_memory=working_memory, backend=backend,
                     channel_axis=channel_axis, **conventions)
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
                                                        working_memory=bound._memory(),
                                                        channel_axis=-1,
                                                        backend=bound.backend)))
        if not med > 0:
            raise ValueError("the median SSIM distance between the images is 0; give gamma "
                             "explicitly")
        bound.gamma = 1.0 / (2.0 * check_positive(scale, "scale") * med * med)
        bound.median = med
        return bound

    def __repr__(self) -> str:
        return (f"SSIMRBFKernel(gamma={self.gamma!r}, kind={self.kind!r}, "
                f"config={self.config!r})")

    def describe(self) -> str:
        """The kernel, ``gamma`` (and how it was chosen) and its conventions in words.

        Returns
        -------
        str
        """
        text = f"SSIM RBF kernel k = exp(-gamma D^2), gamma = {self.gamma:.6g}"
        if self.median is not None:
            text += (f" = 1 / (2 scale med^2), med = {self.median:.6g} the median SSIM "
                     "distance over distinct pairs of the pooled sample")
        return f"{text}; {self._conventions()}"

    def _rule(self, image_shape: tuple[int, ...]) -> tuple[str, float] | None:
        return ("exp", self.gamma)

    def _of_squared(self, S: Array, upstream: Array | None, image_shape: tuple[int, ...],
                    xp: Namespace) -> tuple[Array, Array | None]:
        K = xp.exp(-self.gamma * S)
        return K, (None if upstream is None else (-self.gamma) * K * upstream)


class MeanSSIMKernel(_SSIMKernel):
    """Mean SSIM over windows as a kernel: ``k(x, y) = (1/P) sum_p SSIM_p(x, y)``.

    ``SSIM_p = s1 s2`` is positive definite for each window position ``p`` (docs/theory.md,
    section 2: the ``1/(a + b + c)`` integral and Schur products), so their mean is too,
    with ``k(x, x) = 1``. With ``D`` of kind "eq1-uncentered", whose squared per-window
    distance is ``1 - s1 s2``, ``k = 1 - D^2 / P`` where ``P`` is the number of window
    positions times channels; the gradient is ``-1/P`` times that of ``D^2``.

    Parameters
    ----------
    config, working_memory, backend, channel_axis, **conventions
        As for :class:`SSIMDistanceKernel`.

    Raises
    ------
    ValueError, TypeError
        For invalid conventions or ``working_memory``, as for :class:`SSIMDistanceKernel`.

    See Also
    --------
    ssimref.kernels.mean_ssim_kernel : the same Gram matrix, not differentiable.
    ssimref.ssim : mean SSIM of one pair.
    """

    def __init__(self, config: SSIMConfig | None = None, *,
                 working_memory: float | None = None, backend: str = "auto",
                 channel_axis: int | None = None, **conventions: Any) -> None:
        super().__init__("eq1-uncentered", config, working_memory, backend, conventions,
                         channel_axis)

    def __repr__(self) -> str:
        return f"MeanSSIMKernel(config={self.config!r})"

    def describe(self) -> str:
        """The kernel and its SSIM conventions in words.

        Returns
        -------
        str
        """
        return f"mean-SSIM kernel k = mean over windows of s1 s2 = 1 - D^2 / P; " \
               f"{self._conventions()}"

    def _positions(self, image_shape: tuple[int, ...]) -> int:
        h, w, c = image_shape
        ho, wo = self.config.positions(h, w)
        return ho * wo * c

    def _rule(self, image_shape: tuple[int, ...]) -> tuple[str, float] | None:
        return ("linear", -(1.0 / self._positions(image_shape)))

    def _of_squared(self, S: Array, upstream: Array | None, image_shape: tuple[int, ...],
                    xp: Namespace) -> tuple[Array, Array | None]:
        inv_p = 1.0 / self._positions(image_shape)
        return 1.0 - inv_p * S, (None if upstream is None else (-inv_p) * upstream)
