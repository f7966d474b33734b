"""Nystroem features for the SSIM kernel ``K = -1/2 H D^p H``: ``n x m`` distance pairs
instead of ``n^2``.

Derivation
----------
Write ``rho = D^p`` with ``0 < p <= 2``. ``rho`` is of negative type (docs/theory.md,
section 4), so there is a map ``F`` into a Hilbert space with
``rho(x, y) = ||F(x) - F(y)||^2``.

1. *Base point.* For any image ``z0`` the distance-induced kernel

       k0(x, y) = 1/2 [rho(x, z0) + rho(y, z0) - rho(x, y)] = <F(x) - F(z0), F(y) - F(z0)>

   (expand the three squares) is positive semidefinite and vanishes when ``x`` or ``y``
   is ``z0``.
2. *Centring removes the base point.* On training images ``x_1 .. x_n`` its Gram matrix
   is ``K0 = 1/2 (r 1^T + 1 r^T) - 1/2 R`` with ``r_i = rho(x_i, z0)`` and
   ``R_ij = rho(x_i, x_j)``. ``H 1 = 0`` removes the first two terms:
   ``H K0 H = -1/2 H R H``, the paper's SSIM kernel, whatever ``z0``. Equivalently
   ``K_ij = <F(x_i) - Fbar, F(x_j) - Fbar>`` with ``Fbar`` the training mean of ``F``;
   for a new image ``x``, ``<F(x) - Fbar, F(x_i) - Fbar>`` expands to the out-of-sample
   formula of :func:`ssimref.kernels.center_out_of_sample` (Bengio et al. 2004).
3. *Nystroem.* With landmarks ``l_1 .. l_m`` (training images, ``z0 = l_1``),
   ``W = k0(L, L)`` and ``c(x) = k0(x, L)``, the features
   ``psi(x) = c(x) W^(+1/2)`` satisfy ``psi(x) . psi(y) = c(x) W^+ c(y)^T
   = <P (F(x) - F(z0)), P (F(y) - F(z0))>``, where ``P`` is the orthogonal projection
   onto ``V = span{F(l) - F(z0)}`` (``G (G^T G)^+ G^T`` is the projector onto the range
   of ``G``, here the matrix of columns ``F(l_j) - F(z0)``; ``W = G^T G``).
4. *Centre the features.* ``Phi(x) = psi(x) - mean_i psi(x_i)`` gives
   ``Phi(x) . Phi(y) = <P (F(x) - Fbar), P (F(y) - Fbar)>``: the SSIM kernel of the
   projected embedding, in and out of sample alike. Because ``z0`` is a landmark,
   ``V = span{F(l) - F(l')}`` does not depend on which landmark is the base point, so
   neither do the centred features' inner products.
5. *Exactness.* When every training image is a landmark, every ``F(x_i) - Fbar`` lies in
   ``V`` and ``P`` fixes it: ``Phi(x_i) . Phi(x_j) = K_ij`` and
   ``Phi(x) . Phi(x_i)`` is the exact out-of-sample kernel for every ``x``.

The pseudo-inverse square root is ``W^(+1/2) = U_k Lambda_k^(-1/2) U_k^T`` from
``W = U Lambda U^T`` (:func:`scipy.linalg.eigh`), keeping the eigenvalues
``lambda > rtol * lambda_max``. The others are set to 0 (the features are then the
projection on the kept eigenvectors): the exact 0 of the base point's row and column,
duplicates among the landmarks, eigenvalues too small to be told from the round-off of
the distances, and negative eigenvalues, which ``W``, PSD in exact arithmetic, has only
from round-off. A negative eigenvalue below ``-1e-9 lambda_max`` (docs/theory.md, section
11) means the distances are not of negative type and is warned about with
:class:`~ssimref.kernels.IndefiniteKernelWarning`.

Cost: ``m (m - 1) / 2`` pairs for ``W`` and ``n m`` pairs for the training features
(the base point is a landmark, so ``rho(x, z0)`` is one of the ``m`` columns); k-means++
seeding computes those same ``n m`` distances first, and they are reused for the features
when they fit half of ``working_memory`` (else computed again);
``O(m^3)`` for the eigendecomposition and ``O(n m^2)`` for the products. A new image
costs ``m`` pairs.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.validation import check_is_fitted

from ..backend import arrays_for, to_numpy
from ..config import SSIMConfig
from ..engines import ENGINES
from ..pairwise import distance_matrix
from ..tiling import resolve_working_memory, rows_per_batch
from ..validation import check_kind, check_stacks
from .centering import check_power
from .image_input import ImageInputMixin
from .psd import IndefiniteKernelWarning

__all__ = ["SSIMNystroem"]

_LANDMARKS = ("uniform", "k-means++")
#: Eigenvalues of W below ``-_INDEFINITE_TOL * lambda_max`` are not round-off.
_INDEFINITE_TOL = 1e-9
#: Landmarks per pass over the images in k-means++ seeding.
_SEEDING_BATCH = 32
#: float64 arrays per row of a batch: distances to the landmarks, k0, features (at most
#: two of them exist at once, with NumPy's temporaries).
_ARRAYS_PER_ROW = 3


class SSIMNystroem(ImageInputMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                   BaseEstimator):
    """Nystroem features of the SSIM kernel ``K = -1/2 H D^p H``, as a scikit-learn
    transformer.

    ``fit`` picks ``n_components`` landmarks among the training images and
    ``transform`` maps images to features ``Phi`` whose inner products approximate the
    SSIM kernel: ``Phi(X_train) Phi(X_train)^T ~ -1/2 H D^p H`` (exactly, up to
    round-off, when every training image is a landmark) and, for new images,
    ``Phi(X_test) Phi(X_train)^T ~`` the out-of-sample kernel of
    :class:`~ssimref.kernels.SSIMKernel`. Costs ``n_components`` SSIM distances per image
    instead of ``n``; hand the features to any linear method::

        make_pipeline(SSIMNystroem(n_components=300, data_range=16, window="uniform",
                                   size=3, image_shape=(8, 8)), LinearSVC())

    Parameters
    ----------
    kind : {"eq2", "eq1", "eq1-uncentered"}, default "eq2"
        The per-window SSIM distance (:mod:`ssimref.distances`).
    power : float in (0, 2], default 1
        ``p`` in ``D^p``: 1 is the paper's SSIM kernel, 2 classical MDS.
    config : SSIMConfig, optional
        Conventions; the fields below override it when not None.
    backend : {"auto", "reference", "numba", "cupy"}, default "auto"
        Engine of :func:`ssimref.distance_matrix`. With "cupy" each batch of images is
        copied to the GPU for its distances (features stay NumPy arrays); without CuPy
        and a CUDA device, ``fit`` raises ``ValueError`` saying so.
    n_components : int, default 100
        Number of landmarks ``m``, and of features. At most the number of training
        images.
    landmarks : {"uniform", "k-means++"}, default "uniform"
        How the landmarks are drawn from the training images. "uniform": without
        replacement, all alike. "k-means++": the seeding of k-means++ (Arthur and
        Vassilvitskii 2007) in the kernel's feature space: the first uniformly, each
        next with probability proportional to its squared feature distance
        ``D^p`` to the nearest landmark chosen so far (Oglic and Gaertner 2017); for
        ``power=2`` that is D^2-sampling in SSIM distance. Costs ``n`` distances per
        landmark, in one pass over the images per 32 landmarks (exact draws by
        rejection within a batch: docs/nystroem.md).
    random_state : int, RandomState instance or None, default None
        Seeds the landmark draw.
    rtol : float, default 1e-10
        Relative eigenvalue cut-off of the pseudo-inverse square root of the landmarks'
        kernel ``W``: eigenvalues ``<= rtol * lambda_max`` (and negative ones) count as
        0. ``1e-10`` is a hundred times the relative accuracy promised for the distances
        (docs/engines.md), so a dropped direction is one the distances cannot resolve;
        a kept one scales an error in the kernel values by at most
        ``1 / sqrt(rtol lambda_max)``.
    image_shape : tuple (H, W) or (H, W, C), optional
        Shape of one image when ``X`` is given flat, ``(n_samples, H * W [* C])``
        (reshaped in C order, channels last unless ``channel_axis`` says otherwise). If
        given with image stacks it must match.
    channel_axis : int, optional
        The axis of the stack ``(n, ...)`` that holds the channels (1 for
        ``(n, C, H, W)``), as for :func:`ssimref.distance_matrix`; None: channels last,
        at most 4 of them.
    working_memory : float, optional
        MiB for one batch of images: half for the batch's distances, kernel values and
        features (float64), half for the tiles of :func:`ssimref.distance_matrix`.
        scikit-learn's ``working_memory`` setting (1024) when None.
    window, size, sigma, stride, data_range, k1, k2, covariance : optional
        Fields of :class:`ssimref.SSIMConfig` (None: the config's value). ``data_range``
        is required for floating-point images (16 for scikit-learn's digits); for uint8
        and uint16 images it is inferred from the training dtype at fit (255, 65535),
        other integer and boolean images require it too.

    Attributes
    ----------
    components_ : ndarray, shape (n_components, H, W) or (n_components, H, W, C)
        The landmark images (a copy, in the training dtype); ``components_[0]`` is the
        base point ``z0``.
    component_indices_ : ndarray of int64, shape (n_components,)
        Their rows in the training set, in the order they were drawn.
    normalization_ : ndarray, shape (n_components, n_components), float64
        ``W^(+1/2)``, symmetric.
    eigenvalues_ : ndarray, shape (n_components,), float64
        Eigenvalues of ``W``, ascending.
    rank_ : int
        Number of eigenvalues kept (``> rtol * lambda_max``); at most
        ``n_components - 1`` (the base point's row of ``W`` is 0).
    mean_ : ndarray, shape (n_components,), float64
        Training mean of the uncentred features ``psi``, subtracted from every output.
    landmark_distances_ : ndarray, shape (n_components,), float64
        ``D^p(l_j, z0)``, the landmarks' distances to the base point.
    image_shape_ : tuple
        Shape of one image.
    config_ : SSIMConfig
        The conventions used, data range included.
    power_ : float
    n_features_in_ : int
        Values per image, ``H * W * C``.

    See Also
    --------
    ssimref.kernels.SSIMKernel : the exact kernel (``n^2`` pairs).
    sklearn.kernel_approximation.Nystroem : the same method for kernels on vectors.

    Notes
    -----
    The derivation (base point, centring, exactness) is in this module's docstring and in
    docs/nystroem.md. Outputs are float64 unless ``out`` is float32. Round-off: features
    come from float64 distances and one matrix product; with every training image a
    landmark, ``Phi Phi^T`` matches the exact kernel to about ``1e-14`` relative
    (Frobenius) on small sets (the tests ask for ``1e-10``).

    References
    ----------
    Ghojogh, Karray, Crowley, ICIAR 2020, Section 2 (``K = -1/2 H D H``); Williams and
    Seeger, NIPS 2001 (Nystroem); Sejdinovic, Sriperumbudur, Gretton, Fukumizu, Ann.
    Statist. 41(5), 2013 (distance-induced kernels); Bengio et al., Neural Computation
    16(10), 2004 (out of sample); Arthur and Vassilvitskii, SODA 2007 (k-means++);
    Oglic and Gaertner, ICML 2017 (k-means++ landmarks for Nystroem).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.svm import LinearSVC
    >>> from ssimref.kernels import SSIMNystroem
    >>> X, y = load_digits(return_X_y=True)
    >>> model = make_pipeline(
    ...     SSIMNystroem(n_components=200, random_state=0, image_shape=(8, 8),
    ...                  data_range=16, window="uniform", size=3),
    ...     LinearSVC())
    >>> float(model.fit(X[:1000], y[:1000]).score(X[1000:], y[1000:])) > 0.9
    True
    """

    def __init__(self, *, kind="eq2", power=1, config=None, backend="auto",
                 n_components=100, landmarks="uniform", random_state=None, rtol=1e-10,
                 image_shape=None, channel_axis=None, working_memory=None, window=None,
                 size=None, sigma=None, stride=None, data_range=None, k1=None, k2=None,
                 covariance=None):
        self.kind = kind
        self.power = power
        self.config = config
        self.backend = backend
        self.n_components = n_components
        self.landmarks = landmarks
        self.random_state = random_state
        self.rtol = rtol
        self.image_shape = image_shape
        self.channel_axis = channel_axis
        self.working_memory = working_memory
        self.window = window
        self.size = size
        self.sigma = sigma
        self.stride = stride
        self.data_range = data_range
        self.k1 = k1
        self.k2 = k2
        self.covariance = covariance

    # ------------------------------------------------------------------ public
    def fit(self, X, y=None):
        """Draw the landmarks and compute the training mean of the features.

        Parameters
        ----------
        X : array_like, shape (n, H, W), (n, H, W, C) or (n, H * W [* C])
            Training images (flat rows need ``image_shape``); integer images stay in
            their dtype (each batch is converted to float64 by
            :func:`ssimref.distance_matrix`).
        y : ignored

        Returns
        -------
        self

        Raises
        ------
        ValueError, TypeError
            For a bad parameter or input, before any distance is computed: see
            :meth:`fit_transform`.
        """
        self._fit(X, out=None, keep=False)
        return self

    def fit_transform(self, X, y=None, *, out=None):
        """Fit, and return the training images' features in one pass over the data.

        Parameters
        ----------
        X : array_like, shape (n, H, W), (n, H, W, C) or (n, H * W [* C])
            Training images.
        y : ignored
        out : ndarray, shape (n, n_components), float64 or float32, optional
            Where to write the features, e.g. a ``numpy.lib.format.open_memmap`` for
            features larger than RAM. It is written twice: uncentred features, shifted
            by the first batch's mean, then centred once the training mean is known
            (block by block); the shift keeps float32 rounding at the scale of the
            centred features.

        Returns
        -------
        Phi : ndarray, shape (n, n_components)
            ``out`` when given, else a new float64 array. ``Phi Phi^T`` approximates
            ``-1/2 H D^p H``; its columns have mean 0.

        Raises
        ------
        ValueError
            ``n_components`` not an integer in ``[1, n]``; ``power`` outside (0, 2];
            an unknown ``kind``, ``landmarks`` or ``backend``; ``rtol`` or
            ``working_memory`` not a positive number; floating-point images without
            ``data_range``; a window larger than the images; flat rows without
            ``image_shape``; ``out`` of the wrong shape or read-only.
        TypeError
            ``out`` not a float64/float32 NumPy array; images of bool or non-numeric
            dtype.
        """
        return self._fit(X, out=out, keep=True)

    def transform(self, X, out=None):
        """Features of images, centred by the training mean.

        Images are processed in batches sized by ``working_memory``; each batch's
        distances to the landmarks are computed, turned into features and written into
        ``out``, so neither a float64 copy of ``X`` nor all distances exist at once.

        Parameters
        ----------
        X : array_like, shape (m, H, W), (m, H, W, C) or (m, H * W [* C])
            Images of the training image shape (uint8 stays uint8: a ``numpy.memmap``
            of images larger than RAM works).
        out : ndarray, shape (m, n_components), float64 or float32, optional
            Where to write the features (e.g. a float32 ``numpy.lib.format.open_memmap``).

        Returns
        -------
        Phi : ndarray, shape (m, n_components)
            ``out`` when given, else a new float64 array: ``Phi(x) = k0(x, L) W^(+1/2)
            - mean_``.

        Raises
        ------
        ValueError
            Images of another shape than the training images, NaN or Inf, or a bad
            ``out``, before any distance is computed.
        """
        check_is_fitted(self, "normalization_")
        images = self._images(X, reset=False)
        out = _check_out(out, (images.shape[0], self.normalization_.shape[0]))
        working_memory = resolve_working_memory(self.working_memory)
        self._stream(images, self._rho_batches(images, working_memory, None), out,
                     shift=self.mean_)
        return out

    # ----------------------------------------------------------------- fitting
    def _fit(self, X, out, keep):
        power = check_power(self.power)
        kind = check_kind(self.kind)
        landmarks = _check_choice(self.landmarks, "landmarks", _LANDMARKS)
        _check_choice(self.backend, "backend", ENGINES)
        rtol = _check_rtol(self.rtol)
        working_memory = resolve_working_memory(self.working_memory)
        config = self._conventions()
        images = self._images(X, reset=True)
        _, _, _, config = check_stacks(images, None, config, names=("X",),
                                       channel_axis=self.channel_axis)
        n = images.shape[0]
        m = _check_n_components(self.n_components, n)
        if keep:
            out = _check_out(out, (n, m))
        rng = check_random_state(self.random_state)

        self.config_, self.power_, self._kind = config, power, kind
        if landmarks == "uniform":
            indices, cached = rng.permutation(n)[:m], None
        else:
            indices, cached = self._kmeans_plusplus(images, m, rng, working_memory)
        self.component_indices_ = np.asarray(indices, dtype=np.int64)
        self.components_ = np.ascontiguousarray(images[self.component_indices_])

        # W = k0(L, L), with z0 = components_[0]
        rho_LL = self._rho(self.components_, None, working_memory)
        r0 = rho_LL[:, 0].copy()
        W = 0.5 * ((r0[:, None] + r0[None, :]) - rho_LL)
        lam, U = scipy.linalg.eigh(W)
        top = max(float(lam[-1]), 0.0)
        if lam[0] < -_INDEFINITE_TOL * top:
            warnings.warn(f"the landmarks' base-point kernel has an eigenvalue "
                          f"{lam[0]:.3g} below -{_INDEFINITE_TOL:g} x the largest "
                          f"({top:.3g}): the distances are not of negative type beyond "
                          "round-off; the negative part is dropped",
                          IndefiniteKernelWarning, stacklevel=3)
        kept = lam > rtol * top
        Uk = U[:, kept]
        self.normalization_ = (Uk / np.sqrt(lam[kept])) @ Uk.T
        self.eigenvalues_ = lam
        self.rank_ = int(kept.sum())
        self.landmark_distances_ = r0
        self._n_features_out = m

        # training mean of psi, and the training features when asked for
        batches = self._rho_batches(images, working_memory, cached)
        self.mean_, first = self._stream(images, batches, out if keep else None, shift=None)
        if not keep:
            return None
        correction = self.mean_ - first
        for batch in gen_batches(n, rows_per_batch(8 * m, working_memory / 2, n)):
            out[batch] = out[batch] - correction
        return out

    def _kmeans_plusplus(self, images, m, rng, working_memory):
        """k-means++ seeding with weights ``w(x) = min_l D^p(x, l)`` (squared distance in
        the kernel's feature space to the nearest landmark so far).

        The weights of all images are brought up to date once per batch of up to
        ``_SEEDING_BATCH`` landmarks (one pass over the images for the batch, instead of
        one per landmark). Within a batch, each next landmark is drawn exactly from the
        current weights by rejection from the weights ``w0`` at the batch's start:
        proposals are drawn i.i.d. with probability ``w0(x) / sum w0``, and proposal
        ``x`` is accepted with probability ``w(x) / w0(x)`` (weights only decrease), so an
        accepted proposal has probability ``w(x) / sum w``; ``w(x)`` needs only the
        distances between proposals, which contain the batch's landmarks. Once every image
        left copies a landmark (all weights 0), the rest are drawn uniformly without
        replacement, as plain k-means++ would.

        Returns the indices in the order drawn, and the ``(n, m)`` matrix of ``D^p`` to
        the landmarks when it fits half of ``working_memory`` (reused for the features),
        else None.
        """
        n = images.shape[0]
        cached = np.empty((n, m)) if n * m * 8 <= working_memory * 2**20 / 2 else None
        chosen = [int(rng.randint(n))]
        closest = np.full(n, np.inf)
        self._seeding_pass(images, chosen, closest, cached, 0, working_memory)
        while len(chosen) < m:
            size = min(_SEEDING_BATCH, m - len(chosen))
            weights = closest.copy()
            weights[chosen] = 0.0
            total = weights.sum()
            if total > 0:
                batch = self._seeding_batch(images, weights, size, rng, working_memory)
            else:
                rest = np.setdiff1d(np.arange(n), chosen)
                batch = [int(i) for i in rng.choice(rest, size=m - len(chosen), replace=False)]
                if cached is None:
                    chosen.extend(batch)
                    break
            self._seeding_pass(images, batch, closest, cached, len(chosen), working_memory)
            chosen.extend(batch)
        return np.asarray(chosen), cached

    def _seeding_batch(self, images, weights, size, rng, working_memory):
        """Up to ``size`` landmarks drawn in sequence from the current weights, by
        rejection from ``weights`` (those at the batch's start); at least one."""
        cumulative = np.cumsum(weights)
        draws = rng.uniform(size=2 * size) * cumulative[-1]
        proposals = np.searchsorted(cumulative, draws, side="right")
        # a draw equal to the total after rounding lands past the end: take the last
        # image of positive weight
        proposals[proposals >= len(weights)] = np.flatnonzero(weights)[-1]
        unique, where = np.unique(proposals, return_inverse=True)
        rho = self._rho(images[unique], None, working_memory)
        accepted = []                        # positions in ``unique``
        for k in where:
            stale = weights[unique[k]]
            current = min(stale, rho[k, accepted].min()) if accepted else stale
            if rng.uniform() * stale < current:
                accepted.append(int(k))
                if len(accepted) == size:
                    break
        return [int(unique[k]) for k in accepted]

    def _seeding_pass(self, images, batch, closest, cached, column, working_memory):
        """One pass over the images: ``D^p`` to the landmarks ``batch``, in row chunks;
        lowers ``closest`` and fills ``cached[:, column:column + len(batch)]``."""
        n, b = images.shape[0], len(batch)
        landmarks = np.ascontiguousarray(images[np.asarray(batch)])
        for rows in gen_batches(n, rows_per_batch(2 * 8 * b, working_memory / 2, n)):
            rho = self._rho(images[rows], landmarks, working_memory)
            np.minimum(closest[rows], rho.min(axis=1), out=closest[rows])
            if cached is not None:
                cached[rows, column:column + b] = rho

    # ----------------------------------------------------------------- features
    def _rho(self, A, B, working_memory):
        """``D^p`` of two stacks (``B`` None: ``A`` against itself), float64."""
        D2 = to_numpy(distance_matrix(
            arrays_for(self.backend, A), None if B is None else arrays_for(self.backend, B),
            kind=self._kind, config=self.config_, squared=True, backend=self.backend,
            working_memory=working_memory / 2, channel_axis=self.channel_axis))
        if self.power_ == 1:
            return np.sqrt(D2, out=D2)
        return D2 if self.power_ == 2 else np.power(D2, self.power_ / 2, out=D2)

    def _rho_batches(self, images, working_memory, cached):
        """``(rows, D^p(images[rows], landmarks))`` for batches of rows."""
        n, m = images.shape[0], self.components_.shape[0]
        rows = rows_per_batch(_ARRAYS_PER_ROW * 8 * m, working_memory / 2, n)
        for batch in gen_batches(n, rows):
            if cached is not None:
                yield batch, cached[batch]
            else:
                yield batch, self._rho(images[batch], self.components_, working_memory)

    def _stream(self, images, batches, out, shift):
        """Features ``psi(x) = k0(x, L) W^(+1/2)`` batch by batch, written into ``out``
        (when not None) less ``shift``; ``shift`` None (fitting, the training mean not yet
        known): less the first batch's mean of ``psi``.

        Returns ``(mean, first)``: the mean of ``psi`` over the rows, computed as
        ``mean(k0) W^(+1/2)`` (so ``fit`` needs no matrix product), and the shift used
        for the first batch when ``shift`` is None."""
        r0 = self.landmark_distances_
        k0_sum = np.zeros_like(r0)
        first = None
        for batch, rho in batches:
            k0 = rho[:, :1] + r0[None, :]       # k0 = 1/2 [rho(x, z0) + rho(l, z0) - rho(x, l)]
            k0 -= rho
            k0 *= 0.5
            del rho
            k0_sum += k0.sum(axis=0)
            if out is None:
                continue
            psi = k0 @ self.normalization_
            del k0
            if shift is None:
                if first is None:
                    first = psi.mean(axis=0)
                psi -= first
            else:
                psi -= shift
            out[batch] = psi
        return (k0_sum / images.shape[0]) @ self.normalization_, first

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


def _check_choice(value, name, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def _check_rtol(rtol) -> float:
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) \
            or not math.isfinite(rtol) or not 0 <= rtol < 1:
        raise ValueError(f"rtol must be a number in [0, 1) (the relative eigenvalue "
                         f"cut-off; default 1e-10), got {rtol!r}")
    return float(rtol)


def _check_n_components(n_components, n) -> int:
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral) \
            or n_components < 1:
        raise ValueError(f"n_components must be an integer >= 1, got {n_components!r}")
    if n_components > n:
        raise ValueError(f"n_components={n_components} is larger than the {n} training "
                         f"images; the landmarks are training images: use n_components "
                         f"<= {n} (n_components={n} gives the exact kernel, at n^2 cost)")
    return int(n_components)


def _check_out(out, shape):
    if out is None:
        return np.empty(shape, dtype=np.float64)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array (or numpy.memmap), got "
                        f"{type(out).__name__}")
    if out.dtype not in (np.float64, np.float32):
        raise TypeError(f"out must have dtype float64 or float32, got {out.dtype}")
    if tuple(out.shape) != shape:
        raise ValueError(f"out must have shape {shape} (images, n_components), got "
                         f"{tuple(out.shape)}")
    if not out.flags.writeable:
        raise ValueError("out is read-only; pass a writeable array (or memmap mode 'w+' or "
                         "'r+')")
    return out
