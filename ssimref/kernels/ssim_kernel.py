"""The SSIM kernel ``K = -1/2 H D^p H`` from images, as a function and as a scikit-learn
transformer.

``D`` is the all-pairs SSIM distance matrix of :func:`ssimref.distance_matrix`
(``D(i, j) = ||D'_ij||_F``, Ghojogh, Karray, Crowley, ICIAR 2020, Section 2); centring
and its out-of-sample form are in :mod:`ssimref.kernels.centering`. The kernel is
positive semidefinite for every ``0 < p <= 2`` (docs/theory.md), so it can be handed to
any kernel method that accepts a precomputed kernel: ``SVC(kernel="precomputed")``,
``KernelPCA(kernel="precomputed")``, ``SpectralClustering(affinity="precomputed")``
(after making it non-negative), kernel ridge regression.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..backend import Array, ArrayLike, arrays_for, to_numpy
from ..config import SSIMConfig, resolve_config
from ..executor import SerialExecutor, get_executor
from ..kinds import KindName
from ..pairwise import distance_matrix
from ..validation import check_kind, infer_data_range
from .centering import centered_kernel, centered_test_kernel, check_power
from .image_input import ImageInputMixin
from .psd import DEFAULT_PSD_TOL, REPAIRS, repair, spectrum_report, warn_if_indefinite

__all__ = ["ssim_kernel", "SSIMKernel"]

if TYPE_CHECKING:
    from sklearn.preprocessing import KernelCenterer

    from .psd import PSDReport, RepairName


@overload
def ssim_kernel(X: ArrayLike, Y: ArrayLike | None = ..., kind: KindName = ...,
                power: float = ..., config: SSIMConfig | None = ..., *,
                centerer: KernelCenterer | None = ..., return_centerer: Literal[False] = ...,
                out: Array | None = ..., backend: str = ...,
                working_memory: float | None = ..., progress: bool = ...,
                channel_axis: int | None = ..., executor: Any = ...,
                **conventions: Any) -> Array: ...


@overload
def ssim_kernel(X: ArrayLike, Y: ArrayLike | None = ..., kind: KindName = ...,
                power: float = ..., config: SSIMConfig | None = ..., *,
                centerer: KernelCenterer | None = ..., return_centerer: Literal[True],
                out: Array | None = ..., backend: str = ...,
                working_memory: float | None = ..., progress: bool = ...,
                channel_axis: int | None = ..., executor: Any = ...,
                **conventions: Any) -> tuple[Array, KernelCenterer]: ...


def ssim_kernel(X: ArrayLike, Y: ArrayLike | None = None, kind: KindName = "eq2",
                power: float = 1, config: SSIMConfig | None = None, *,
                centerer: KernelCenterer | None = None, return_centerer: bool = False,
                out: Array | None = None, backend: str = "auto",
                working_memory: float | None = None, progress: bool = False,
                channel_axis: int | None = None, executor: Any = None,
                **conventions: Any) -> Array | tuple[Array, KernelCenterer]:
    """The SSIM kernel of a set of images: ``K = -1/2 H D^p H``.

    Parameters
    ----------
    X : array_like, shape (n, H, W) or (n, H, W, C)
        Images, channels last (any array-API array when ``Y`` is None).
    Y : array_like, shape (m, H, W) or (m, H, W, C), optional
        Training images. When given, the result is the kernel of the rows of ``X``
        against the training set ``Y``, centred with ``Y``'s statistics (the
        out-of-sample formula of :func:`ssimref.kernels.center_out_of_sample`):
        ``ssim_kernel(X_test, X_train)`` equals
        ``SSIMKernel(...).fit(X_train).transform(X_test)``. To compare two samples
        (MMD), pass their concatenation as ``X`` instead: centring must be pooled.
    kind : {"eq2", "eq1", "eq1-uncentered"}, default "eq2"
        The per-window SSIM distance (:mod:`ssimref.distances`).
    power : float in (0, 2], default 1
        ``p``; 1 is the paper's kernel, 2 classical MDS.
    config : SSIMConfig, optional
        Conventions; keyword overrides (``data_range=255``, ``window="uniform"``, ...).
    centerer : sklearn.preprocessing.KernelCenterer, optional
        With ``Y``: the training statistics returned by an earlier
        ``ssim_kernel(Y, return_centerer=True)``, so that ``Y``'s own ``m x m`` distances
        are not computed again.
    return_centerer : bool, default False
        Without ``Y``: also return the centring statistics of this training kernel (for
        out-of-sample kernels against ``X`` later).
    out : array, optional
        Where to write the kernel, e.g. a ``numpy.memmap`` of shape (n, n) float64 (or
        (n, m) with ``Y``): distances are computed into it, then turned into the kernel in
        place one block of rows at a time, so an ``n x n`` kernel larger than RAM works.
    backend, working_memory, progress, channel_axis
        Passed to :func:`ssimref.distance_matrix`; ``working_memory`` also bounds the
        blocks of rows and the tiles centred at a time.
    executor : None, "serial", "dask", dask.distributed.Client or executor, optional
        Who runs the distance tiles, the row-mean reduction and the centring tiles
        (:func:`ssimref.executor.get_executor`). With Dask, ``out`` must be a zarr array
        (the workers compute the distances into it and centre it in place) and, with
        ``Y``, the training ``centerer`` must be given.
    **conventions
        Fields of :class:`ssimref.SSIMConfig` overriding ``config``.

    Returns
    -------
    K : Array, shape (n, n) (X's array library, or ``out``) or (n, m) (NumPy, or ``out``),
        float64
        For ``Y`` None: exactly symmetric, rows summing to 0, PSD up to round-off.
    centerer : sklearn.preprocessing.KernelCenterer
        Only with ``return_centerer``.

    Raises
    ------
    ValueError, TypeError
        For invalid images, conventions, ``power`` or ``kind`` (before any work), for
        ``centerer`` without ``Y`` or ``return_centerer`` with ``Y``, and for a Dask
        executor without ``out`` (or, with ``Y``, without ``centerer``).

    See Also
    --------
    SSIMKernel : the same as a scikit-learn transformer.
    ssimref.kernels.double_center, ssimref.kernels.center_out_of_sample : the same from
        distance matrices.

    References
    ----------
    Ghojogh, Karray, Crowley, ICIAR 2020, Section 2; Bengio et al., Neural Computation
    16(10), 2004 (out-of-sample centring).

    Examples
    --------
    >>> import numpy as np
    >>> from ssimref.kernels import ssim_kernel
    >>> X = np.random.default_rng(0).integers(0, 256, size=(6, 12, 12), dtype=np.uint8)
    >>> K = ssim_kernel(X, kind="eq2", window="uniform", size=5)
    >>> K.shape, bool((K == K.T).all()), bool(np.allclose(K.sum(axis=1), 0))
    ((6, 6), True, True)
    """
    power = check_power(power)
    check_kind(kind)
    config = resolve_config(config, **conventions)
    if Y is None and centerer is not None:
        raise ValueError("centerer goes with Y (the training images it was fitted on); "
                         "without Y the kernel is centred with its own statistics")
    if Y is not None and return_centerer:
        raise ValueError("return_centerer=True is for training kernels (Y=None); pass the "
                         "returned centerer back with Y for out-of-sample kernels")
    runner = get_executor(executor)
    if not isinstance(runner, SerialExecutor) and (out is None or (Y is not None
                                                                   and centerer is None)):
        raise ValueError("with a Dask executor, ssim_kernel needs out= a zarr array (the "
                         "workers write the kernel into it) and, with Y, the training "
                         "centerer= (from ssim_kernel(Y, out=..., return_centerer=True))")
    options: dict[str, Any] = dict(kind=kind, config=config, squared=True, backend=backend,
                                   working_memory=working_memory, progress=progress,
                                   channel_axis=channel_axis, executor=runner)
    centring: dict[str, Any] = dict(working_memory=working_memory, executor=runner,
                                    progress=progress)
    if Y is None:
        D2 = distance_matrix(X, out=out, **options)
        return centered_kernel(D2, power, squared=True, out=D2, with_centerer=return_centerer,
                               **centring)
    if centerer is None:
        _, centerer = centered_kernel(distance_matrix(Y, **options), power, squared=True,
                                      with_centerer=True, **centring)
    D2 = distance_matrix(X, Y, out=out, **options)
    return centered_test_kernel(D2, centerer, power, squared=True, out=out, **centring)




class SSIMKernel(ImageInputMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                 BaseEstimator):
    """Images to SSIM kernel, as a scikit-learn transformer.

    ``fit_transform(X_train)`` returns the ``n x n`` kernel ``-1/2 H D^p H`` of the
    training images; ``transform(X_test)`` returns the ``m x n`` kernel of new images
    against the training images, centred with the training statistics (Bengio et al.
    2004). Put it in front of any estimator that takes a precomputed kernel::

        make_pipeline(SSIMKernel(data_range=16, window="uniform", size=3),
                      SVC(kernel="precomputed"))

    All parameters are keyword-only, as in scikit-learn's estimators.

    Parameters
    ----------
    kind : {"eq2", "eq1", "eq1-uncentered"}, default "eq2"
        The per-window SSIM distance (:mod:`ssimref.distances`).
    power : float in (0, 2], default 1
        ``p`` in ``D^p``: 1 is the paper's SSIM kernel, 2 classical MDS.
    config : SSIMConfig, optional
        Conventions; the fields below override it when not None.
    repair : {None, "clip", "flip", "shift"}, default None
        What to do when the training kernel is indefinite beyond round-off (which the
        theory rules out for SSIM distances): None warns with
        :class:`~ssimref.kernels.IndefiniteKernelWarning` and leaves the kernel as it is;
        otherwise :func:`~ssimref.kernels.repair_psd`'s method, with test rows mapped
        consistently (Chen et al., JMLR 2009).
    backend : {"auto", "reference", "numba", "cupy"}, default "auto"
        Engine of :func:`ssimref.distance_matrix`. scikit-learn hands the estimator NumPy
        arrays; with "cupy" the images are copied to the GPU for the distances and the
        kernels come back as NumPy arrays (without CuPy and a CUDA device, ``fit``
        raises ``ValueError`` saying so).
    image_shape : tuple (H, W) or (H, W, C), optional
        Shape of one image when ``X`` is given flat, ``(n_samples, H * W [* C])``
        (scikit-learn's 2-D convention; rows are reshaped in C order, channels last
        unless ``channel_axis`` says otherwise). Not needed for ``X`` of shape
        ``(n, H, W)`` or ``(n, H, W, C)``; if given it must match.
    channel_axis : int, optional
        The axis of the stack ``(n, ...)`` (after reshaping flat rows to ``image_shape``)
        that holds the channels, e.g. 1 for ``(n, C, H, W)``; None: channels last, at
        most 4 of them (as :func:`ssimref.distance_matrix`).
    check_psd : bool, default True
        Compute the training kernel's spectrum at fit (an ``O(n^3)`` eigenvalue
        decomposition) to warn about, or repair, indefiniteness. ``repair`` implies it.
    working_memory : float, optional
        MiB per tile of :func:`ssimref.distance_matrix`.
    window, size, sigma, stride, data_range, k1, k2, covariance : optional
        Fields of :class:`ssimref.SSIMConfig` (None: the config's value). ``data_range``
        is required for floating-point images (16 for scikit-learn's digits); for
        uint8 and uint16 images it is inferred from the training dtype at fit (255,
        65535); other integer and boolean images require it too.

    Attributes
    ----------
    X_fit_ : ndarray, shape (n, H, W) or (n, H, W, C)
        The training images (needed for out-of-sample kernels).
    image_shape_ : tuple
        Shape of one image.
    config_ : SSIMConfig
        The conventions used, data range included.
    power_ : float
    centerer_ : sklearn.preprocessing.KernelCenterer
        Fitted on ``-1/2 D_train^p``; centres test blocks with the training statistics.
    psd_report_ : PSDReport or None
        Spectrum of the training kernel before any repair (None with
        ``check_psd=False`` and no repair).
    repair_map_ : ndarray (n, n) or None
        Matrix applied to test rows after a "clip" or "flip" repair.
    n_features_in_ : int
        Values per image, ``H * W * C``.

    Raises
    ------
    ValueError, TypeError
        At ``fit`` (scikit-learn's convention: the constructor only stores its
        arguments), for an invalid ``kind``, ``power``, ``repair``, ``check_psd``,
        ``image_shape`` or convention, and the image errors of
        :func:`ssimref.distance_matrix`.

    See Also
    --------
    ssim_kernel : the same as a function.
    ssimref.kernels.psd_report, ssimref.kernels.repair_psd : what ``check_psd`` and
        ``repair`` use.

    References
    ----------
    Ghojogh, Karray, Crowley, ICIAR 2020, Section 2 (``K = -1/2 H D H``); Bengio et al.,
    Neural Computation 16(10), 2004 (out-of-sample centring); Chen et al., JMLR 10, 2009,
    Section 3 (repairs).

    Notes
    -----
    ``transform(X_train)`` equals ``fit_transform(X_train)`` up to round-off (the latter
    is exactly symmetric). Centring does not change an SVC's decision function (a
    translation in feature space), and ``KernelPCA(kernel="precomputed")`` centres again,
    which is idempotent.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.svm import SVC
    >>> from ssimref.kernels import SSIMKernel
    >>> X, y = load_digits(return_X_y=True)
    >>> model = make_pipeline(
    ...     SSIMKernel(image_shape=(8, 8), data_range=16, window="uniform", size=3),
    ...     SVC(kernel="precomputed"))
    >>> float(model.fit(X[:300], y[:300]).score(X[300:400], y[300:400])) > 0.9
    True
    """

    X_fit_: npt.NDArray[Any]
    image_shape_: tuple[int, ...]
    config_: SSIMConfig
    power_: float
    centerer_: KernelCenterer
    psd_report_: PSDReport | None
    repair_map_: npt.NDArray[np.float64] | None
    n_features_in_: int

    def __init__(self, *, kind: KindName = "eq2", power: float = 1,
                 config: SSIMConfig | None = None, repair: RepairName | None = None,
                 backend: str = "auto", image_shape: tuple[int, ...] | None = None,
                 channel_axis: int | None = None, check_psd: bool = True, working_memory: float | None = None,
                 window: str | None = None, size: int | None = None,
                 sigma: float | None = None, stride: int | None = None,
                 data_range: float | None = None, k1: float | None = None,
                 k2: float | None = None, covariance: str | None = None) -> None:
        self.kind = kind
        self.power = power
        self.config = config
        self.repair = repair
        self.backend = backend
        self.image_shape = image_shape
        self.channel_axis = channel_axis
        self.check_psd = check_psd
        self.working_memory = working_memory
        self.window = window
        self.size = size
        self.sigma = sigma
        self.stride = stride
        self.data_range = data_range
        self.k1 = k1
        self.k2 = k2
        self.covariance = covariance

    # ------------------------------------------------------------------ fitting
    def fit(self, X: ArrayLike, y: Any = None) -> SSIMKernel:
        """Keep the training images and the centring statistics of their kernel.

        Parameters
        ----------
        X : array_like, shape (n, H, W), (n, H, W, C) or (n, H * W [* C])
            Training images (flat rows need ``image_shape``).
        y : ignored

        Returns
        -------
        SSIMKernel
            ``self``.

        Raises
        ------
        ValueError, TypeError
            For invalid parameters (see the class) or images.

        Warns
        -----
        IndefiniteKernelWarning
            When the training kernel is indefinite beyond round-off and ``repair`` is
            None.
        """
        self._fit(X)
        return self

    def fit_transform(self, X: ArrayLike, y: Any = None) -> npt.NDArray[np.float64]:
        """Fit, and return the training kernel ``-1/2 H D^p H``.

        Parameters
        ----------
        X : array_like
            As for :meth:`fit`.
        y : ignored

        Returns
        -------
        numpy.ndarray, shape (n, n), float64
            Exactly symmetric (repaired if ``repair`` is set and it was indefinite).

        Raises
        ------
        ValueError, TypeError
            As for :meth:`fit`.
        """
        return self._fit(X)

    def transform(self, X: ArrayLike) -> npt.NDArray[np.float64]:
        """Kernel of new images against the training images.

        Parameters
        ----------
        X : array_like, shape (m, H, W), (m, H, W, C) or (m, H * W [* C])
            Images of the training images' shape.

        Returns
        -------
        numpy.ndarray, shape (m, n_train), float64
            Centred with the training statistics:
            ``K(x, x_i) = a(x, x_i) - 1/n sum_j a(x, x_j) - m_i + g``,
            ``a = -1/2 d^p``; times ``repair_map_`` after a "clip" or "flip" repair.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        ValueError
            For images of another shape than the training images'.
        """
        check_is_fitted(self, "centerer_")
        images = self._images(X, reset=False)
        K = to_numpy(ssim_kernel(arrays_for(self.backend, images),
                                 arrays_for(self.backend, self.X_fit_), self.kind,
                                 self.power_, self.config_, centerer=self.centerer_,
                                 backend=self.backend, working_memory=self.working_memory,
                                 channel_axis=self.channel_axis))
        if self.repair_map_ is not None:
            K = K @ self.repair_map_
        return K

    def _fit(self, X: ArrayLike) -> npt.NDArray[np.float64]:
        power = check_power(self.power)
        check_kind(self.kind)
        if self.repair is not None and self.repair not in REPAIRS:
            raise ValueError(f"repair must be None or one of {REPAIRS}, got {self.repair!r}")
        if not isinstance(self.check_psd, (bool, np.bool_)):
            raise TypeError(f"check_psd must be True or False, got {self.check_psd!r}")
        config = self._conventions()
        images = self._images(X, reset=True)
        config = infer_data_range(config, [images], names=("X",))
        K, centerer = ssim_kernel(arrays_for(self.backend, images), None, self.kind, power,
                                  config, return_centerer=True, backend=self.backend,
                                  working_memory=self.working_memory,
                                  channel_axis=self.channel_axis)
        K = to_numpy(K)

        report, right_map = None, None
        if self.check_psd or self.repair is not None:
            report = spectrum_report(K, DEFAULT_PSD_TOL)
            if not report.is_psd:
                if self.repair is None:
                    warn_if_indefinite(report, "training SSIM kernel", stacklevel=4)
                else:
                    K, right_map = repair(K, self.repair)

        self.X_fit_ = images
        self.config_ = config
        self.power_ = power
        self.centerer_ = centerer
        self.psd_report_ = report
        self.repair_map_ = right_map
        self._n_features_out = K.shape[0]
        return K

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
