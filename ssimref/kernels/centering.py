"""Double centring of distance matrices: the SSIM kernel ``K = -1/2 H D^p H``.

With ``H = I - (1/n) 1 1^T`` and a distance matrix ``D`` of ``n`` points,

    K = -1/2 H (D^p) H,     D^p the element-wise power,

is the Gram matrix of the points' feature vectors centred at their mean whenever ``D^p``
is of negative type (Schoenberg 1935): ``p = 1`` is the SSIM kernel of the paper
(Ghojogh, Karray, Crowley, ICIAR 2020, Section 2; its authors' code does the same),
``p = 2`` is classical multidimensional scaling (Torgerson 1952; Gower 1966). Every SSIM
distance of this library is a Hilbert-space distance, so any ``0 < p <= 2`` gives a
positive semidefinite ``K`` (docs/theory.md).

Element-wise, with ``A = -1/2 D^p``, row means ``m_i`` and grand mean ``g``::

    K_ij = A_ij - m_i - m_j + g.

Out of sample (Bengio, Paiement, Vincent, Delalleau, Le Roux, Ouimet, "Out-of-sample
extensions for LLE, Isomap, MDS, Eigenmaps, and spectral clustering", NIPS 2003 / Neural
Computation 16(10), 2004, Eq. (10)): a new point ``x`` against the training points
``x_1..x_n``, with ``a(x, x_i) = -1/2 d(x, x_i)^p``, is centred with the *training*
statistics::

    K(x, x_i) = a(x, x_i) - 1/n sum_j a(x, x_j) - m_i + g.

This is what :class:`sklearn.preprocessing.KernelCenterer` computes when fitted on the
training block ``A`` and applied to the test block, so it is reused here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import numpy.typing as npt

from array_api_compat import is_array_api_obj

from ..backend import Array, ArrayLike, Namespace, is_numpy_array, namespace, to_numpy
from ..executor import TileTask, get_executor
from ..tiling import (PairPlan, Tile, chunk_plan, plan_pairs, resolve_working_memory,
                      row_batches, rows_per_batch)
from ..validation import check_matrix

__all__ = ["double_center", "center_out_of_sample", "negative_half_power", "check_power",
           "double_center_inplace", "training_centerer", "centered_kernel",
           "centered_test_kernel", "centerer_from_statistics", "centring_statistics",
           "centre_tiles", "out_of_sample_statistics", "centre_test_tiles"]

if TYPE_CHECKING:
    from sklearn.preprocessing import KernelCenterer


def check_power(power: Any) -> float:
    """Validate the exponent ``p`` of ``D^p``.

    Parameters
    ----------
    power : Any

    Returns
    -------
    float
        ``power`` as a float.

    Raises
    ------
    TypeError
        When ``power`` is not a number.
    ValueError
        Unless ``0 < power <= 2`` (booleans, NaN and infinities included), where
        ``-1/2 H D^p H`` is PSD for every SSIM distance.
    """
    try:
        value = float(power)
    except (TypeError, ValueError):
        raise TypeError(f"power must be a number in (0, 2], got {power!r}") from None
    if isinstance(power, bool) or not math.isfinite(value) or not 0 < value <= 2:
        raise ValueError(f"power must be in (0, 2] (1: the paper's SSIM kernel, 2: classical "
                         f"MDS), got {power!r}; outside that range -1/2 H D^p H need not be "
                         "positive semidefinite")
    return value


def negative_half_power(D: Array, power: float, *, squared: bool = False) -> Array:
    """``-1/2 D^p`` element-wise (trusted input).

    Parameters
    ----------
    D : Array
        Distances (``squared``: their squares).
    power : float in (0, 2]
    squared : bool, default False
        ``D`` holds squared distances and ``-1/2 (D)^(p/2)`` is returned: powers of
        squared distances skip a square root (``p = 2`` is exact).

    Returns
    -------
    Array
        Same shape and array library as ``D``.
    """
    if squared:
        if power == 2:
            return -0.5 * D
        return -0.5 * (D ** (power / 2.0))
    if power == 1:
        return -0.5 * D
    if power == 2:
        return -0.5 * (D * D)
    return -0.5 * (D ** power)


def double_center_inplace(A: Array, xp: Namespace | None = None, *,
                          working_memory: float | None = None) -> Array:
    """Replace the symmetric matrix ``A`` by ``H A H`` in place, row block by row block.

    ``K_ij = (A_ij + g) - (m_i + m_j)`` with the row means ``m`` and their mean ``g``:
    every term is symmetric in ``i, j``, so the result is exactly symmetric. Every entry
    is computed from its own row's and column's means, so the result does not depend on
    the block size.

    Parameters
    ----------
    A : Array, shape (n, n), floating
        A NumPy memmap, or any array-API array that supports slice assignment.
    xp : Namespace, optional
        The namespace of ``A`` (looked up when None).
    working_memory : float, optional
        MiB per block of rows in memory at a time (scikit-learn's setting when None).

    Returns
    -------
    Array
        ``A``.
    """
    xp = namespace(A) if xp is None else xp
    n = A.shape[0]
    # a row block and its temporary result
    blocks = row_batches(n, 2 * 8 * n, resolve_working_memory(working_memory))
    m = xp.concat([xp.mean(A[rows, :], axis=1) for rows in blocks])
    g = xp.mean(m)
    for rows in blocks:
        A[rows, :] = (A[rows, :] + g) - (m[rows, None] + m[None, :])
    return A


def double_center(D: ArrayLike, power: float = 1) -> Array:
    """The double-centred kernel ``K = -1/2 H D^p H`` of a distance matrix.

    Parameters
    ----------
    D : array_like, shape (n, n)
        Symmetric, non-negative distances with zero diagonal, e.g. from
        :func:`ssimref.distance_matrix` (unsquared). Any array-API array (NumPy, CuPy,
        ...). An asymmetry within 1e-10 of the largest entry is symmetrised away.
    power : float in (0, 2], default 1
        ``p``: 1 is the paper's SSIM kernel, 2 is classical MDS (``-1/2 H (D∘D) H``).

    Returns
    -------
    K : Array, shape (n, n), float64
        Exactly symmetric; every row and column sums to 0 up to round-off
        (``|sum| <= n * eps * max|K|``), so ``K 1 = 0``.

    Raises
    ------
    TypeError
        For a non-numeric ``power`` or a boolean or non-real ``D``.
    ValueError
        For ``power`` outside (0, 2]; a ``D`` that is not a non-empty square matrix,
        holds NaN, Inf or negative entries, or is asymmetric beyond 1e-10 of its largest
        entry.

    See Also
    --------
    center_out_of_sample : new points against the same training points.
    ssimref.kernels.ssim_kernel : the same from images.
    ssimref.distance_matrix : the SSIM distances.

    Notes
    -----
    ``H = I - (1/n) 1 1^T``. For Euclidean distances of points ``z_i`` and ``p = 2``,
    ``K = (Z - mean Z)(Z - mean Z)^T``: the Gram matrix of the centred points.

    References
    ----------
    Ghojogh, Karray, Crowley, ICIAR 2020, Section 2 (``K = -1/2 H D H``); Torgerson,
    Psychometrika 17, 1952; Gower, Biometrika 53, 1966.

    Examples
    --------
    >>> import numpy as np
    >>> from ssimref.kernels import double_center
    >>> z = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    >>> D = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    >>> K = double_center(D, power=2)
    >>> zc = z - z.mean(axis=0)
    >>> bool(np.allclose(K, zc @ zc.T)), bool((K == K.T).all())
    (True, True)
    """
    power = check_power(power)
    _, D = check_matrix(D, "D", square=True, symmetric=True, nonnegative=True)
    return centered_kernel(D, power)


def center_out_of_sample(D_test: ArrayLike, D_train: ArrayLike,
                         power: float = 1) -> npt.NDArray[np.float64]:
    """Kernel of new points against the training points, centred with the training
    statistics (Bengio et al. 2004).

    Parameters
    ----------
    D_test : array_like, shape (m, n)
        Distances from ``m`` new points to the ``n`` training points.
    D_train : array_like, shape (n, n)
        Distances among the training points (symmetric, as for :func:`double_center`).
    power : float in (0, 2], default 1

    Returns
    -------
    K_test : numpy.ndarray, shape (m, n), float64
        ``K(x, x_i) = a(x, x_i) - 1/n sum_j a(x, x_j) - m_i + g`` with
        ``a = -1/2 d^p``, ``m_i`` the training row means of ``a`` and ``g`` their mean.
        For ``D_test = D_train`` this equals ``double_center(D_train, power)`` up to
        round-off.

    Raises
    ------
    TypeError, ValueError
        As for :func:`double_center`, for either matrix; and a ``D_test`` without one
        column per training point.

    See Also
    --------
    double_center : the training kernel.
    ssimref.kernels.SSIMKernel : the same inside a scikit-learn pipeline.

    Notes
    -----
    Computed by :class:`sklearn.preprocessing.KernelCenterer` fitted on
    ``-1/2 D_train^p``; NumPy arrays (other array libraries are copied to the host).
    The paper's authors' public code omits the ``- m_i`` term (docs/conventions.md,
    "The paper's authors' code"), which shifts every test kernel column by the training
    column means.

    References
    ----------
    Bengio, Paiement, Vincent, Delalleau, Le Roux, Ouimet, Neural Computation 16(10), 2004.
    """
    power = check_power(power)
    _, D_train = check_matrix(D_train, "D_train", square=True, symmetric=True,
                              nonnegative=True)
    _, D_test = check_matrix(D_test, "D_test", square=False, nonnegative=True)
    if D_test.shape[1] != D_train.shape[0]:
        raise ValueError(f"D_test must have one column per training point: got shape "
                         f"{tuple(D_test.shape)} against {D_train.shape[0]} training points")
    _, centerer = centered_kernel(D_train, power, with_centerer=True)
    return centered_test_kernel(D_test, centerer, power)


def training_centerer(A_train: Array) -> KernelCenterer:
    """The training statistics of the out-of-sample formula.

    Parameters
    ----------
    A_train : Array, shape (n, n)
        The training block ``-1/2 D_train^p`` before centring (copied to the host).

    Returns
    -------
    sklearn.preprocessing.KernelCenterer
        Fitted on ``A_train``; its ``transform`` applies the out-of-sample formula of the
        module docstring to a test block ``-1/2 D_test^p``.
    """
    from sklearn.preprocessing import KernelCenterer

    return KernelCenterer().fit(to_numpy(A_train))


def centerer_from_statistics(row_means: Array, grand_mean: float) -> KernelCenterer:
    """A fitted :class:`sklearn.preprocessing.KernelCenterer` holding training statistics.

    Equivalent to :func:`training_centerer` on ``A = -1/2 D^p`` without ``A`` in memory:
    ``m`` holds the row means of ``A``, which are its column means (``A`` is symmetric),
    as :func:`centring_statistics` computes them tile by tile.

    Parameters
    ----------
    row_means : Array, shape (n,)
        ``m``.
    grand_mean : float
        ``g``, the mean of ``m``.

    Returns
    -------
    sklearn.preprocessing.KernelCenterer
        With ``K_fit_rows_ = m`` (NumPy) and ``K_fit_all_ = g``.
    """
    from sklearn.preprocessing import KernelCenterer

    m = np.asarray(to_numpy(row_means), dtype=np.float64)
    centerer = KernelCenterer()
    centerer.K_fit_rows_ = m
    centerer.K_fit_all_ = float(grand_mean)
    centerer.n_features_in_ = int(m.shape[0])
    return centerer


# Tile functions of the centring pipeline (module level, so that an executor can ship them
# to other processes; see ssimref.executor.TileTask). ``D`` may be any array that slices
# into an array: NumPy, a memmap, CuPy, a zarr array (read chunk by chunk).
def _row_means_tile(tile: Tile, D: Array, *, power: float, squared: bool) -> Array:
    """Row means of ``A = -1/2 D^p`` over one block of full rows."""
    A = negative_half_power(D[tile.rows, :], power, squared=squared)
    return namespace(A).mean(A, axis=1)


def _row_sums_over_n_tile(tile: Tile, D: Array, *, power: float, squared: bool) -> Array:
    """``sum_j A_ij / n`` over one block of full rows: sklearn's ``K_pred_cols``."""
    A = negative_half_power(D[tile.rows, :], power, squared=squared)
    return namespace(A).sum(A, axis=1) / A.shape[1]


def _centre_tile(tile: Tile, D: Array, m: Array, *, g: float, power: float,
                 squared: bool) -> Array:
    """``K = (A + g) - (m_i + m_j)`` on one tile (exactly symmetric in ``i, j``)."""
    A = negative_half_power(D[tile.rows, tile.cols], power, squared=squared)
    return (A + g) - (m[tile.rows, None] + m[None, tile.cols])


def _centre_test_tile(tile: Tile, D: Array, fit_rows: Array, pred_cols: Array, *,
                      fit_all: float, power: float, squared: bool) -> Array:
    """``K = ((a - m_j) - a_i.) + g`` on one tile of test rows: the operations of
    :meth:`sklearn.preprocessing.KernelCenterer.transform`, in its order."""
    K = negative_half_power(D[tile.rows, tile.cols], power, squared=squared)
    K = K - fit_rows[None, tile.cols]
    K = K - pred_cols[tile.rows, None]
    return K + fit_all


def _row_plan(n: int, m: int, working_memory: float | None) -> PairPlan:
    """Blocks of full rows: a row and its temporary result within ``working_memory``."""
    rows = rows_per_batch(2 * 8 * m, resolve_working_memory(working_memory))
    return PairPlan(n, m, min(rows, n), m, False)


def _reduce_rows(D: Array, tile_fn: TileTask, working_memory: float | None, executor: Any,
                 progress: bool | None, desc: str) -> Array:
    n, m = D.shape
    parts: list[Array] = []
    get_executor(executor).reduce(_row_plan(n, m, working_memory), tile_fn,
                                  lambda tile, part: parts.append(part), progress=progress,
                                  desc=desc)
    return namespace(*parts[:1]).concat(parts) if parts else np.empty(0)


def centring_statistics(D: Array, power: float, *, squared: bool = False,
                        working_memory: float | None = None, executor: Any = None,
                        progress: bool | None = False) -> tuple[Array, float]:
    """The training statistics of ``K = -1/2 H D^p H``: the row means ``m`` of
    ``A = -1/2 D^p`` and their mean ``g``, as a reduction over blocks of full rows run by
    an executor (trusted input).

    Parameters
    ----------
    D : Array, shape (n, n)
        Symmetric distances (``squared``: their squares): NumPy, a memmap, CuPy, or a
        zarr array (read block by block, by the workers with a Dask executor).
    power : float in (0, 2]
    squared : bool, default False
    working_memory : float, optional
        MiB per block of rows (scikit-learn's setting when None).
    executor : optional
        Who runs the blocks (:func:`ssimref.executor.get_executor`); the partial results
        are put together in row order, so every executor gives the same bits.
    progress : bool or None, default False

    Returns
    -------
    m : Array, shape (n,), float64
    g : float
    """
    m = _reduce_rows(D, TileTask(_row_means_tile, (D,), dict(power=power, squared=squared)),
                     working_memory, executor, progress, "row means")
    return m, float(namespace(m).mean(m))


def centre_tiles(D: Array, m: Array, g: float, power: float, out: Array, *,
                 squared: bool = False, plan: PairPlan | None = None,
                 working_memory: float | None = None, executor: Any = None,
                 ledger: Any = None, progress: bool | None = False) -> Array:
    """Write ``K = (A + g) - (m_i + m_j)``, ``A = -1/2 D^p``, into ``out`` tile by tile,
    each tile and its mirror (trusted input).

    Parameters
    ----------
    D : Array, shape (n, n)
        As for :func:`centring_statistics`.
    m, g
        The statistics (:func:`centring_statistics`).
    power : float in (0, 2]
    out : Array, shape (n, n)
        May be ``D`` itself: each tile reads only its own block of ``D``, on or above the
        diagonal, before it is overwritten.
    squared : bool, default False
    plan : PairPlan, optional
        The tiles (symmetric); by default ``out``'s chunks (a zarr array), else square
        tiles within ``working_memory``.
    working_memory : float, optional
    executor : optional
        Who runs the tiles (:func:`ssimref.executor.get_executor`).
    ledger : optional
        Records of completed tiles (:mod:`ssimref.stores`).
    progress : bool or None, default False

    Returns
    -------
    Array
        ``out``.
    """
    n = D.shape[0]
    if plan is None:
        plan = chunk_plan(out, True) or plan_pairs(
            n, None, bytes_per_pair=4 * 8, working_memory=resolve_working_memory(
                working_memory))
    task = TileTask(_centre_tile, (D, m), dict(g=float(g), power=power, squared=squared))
    return get_executor(executor).fill(plan, task, out, ledger=ledger, progress=progress,
                                       desc="centring")


def out_of_sample_statistics(D_test: Array, power: float, *, squared: bool = False,
                    working_memory: float | None = None, executor: Any = None,
                    progress: bool | None = False) -> Array:
    """``sum_j A_ij / n`` for every test row of ``A = -1/2 D_test^p`` (scikit-learn's
    ``K_pred_cols``), as a reduction over blocks of full rows (trusted input).

    Parameters
    ----------
    D_test : Array, shape (m, n)
    power : float in (0, 2]
    squared : bool, default False
    working_memory : float, optional
    executor : optional
    progress : bool or None, default False

    Returns
    -------
    Array, shape (m,), float64
    """
    return _reduce_rows(D_test, TileTask(_row_sums_over_n_tile, (D_test,),
                                         dict(power=power, squared=squared)),
                        working_memory, executor, progress, "test row means")


def centre_test_tiles(D_test: Array, centerer: KernelCenterer, pred_cols: Array,
                      power: float, out: Array, *, squared: bool = False,
                      plan: PairPlan | None = None, working_memory: float | None = None,
                      executor: Any = None, ledger: Any = None,
                      progress: bool | None = False) -> Array:
    """Write the test kernel centred with the training statistics of ``centerer`` into
    ``out``, tile by tile (trusted input).

    Parameters
    ----------
    D_test : Array, shape (m, n)
    centerer : sklearn.preprocessing.KernelCenterer
        The training statistics.
    pred_cols : Array, shape (m,)
        :func:`out_of_sample_statistics` of ``D_test``.
    power : float in (0, 2]
    out : Array, shape (m, n)
        May be ``D_test`` itself.
    squared : bool, default False
    plan : PairPlan, optional
        The tiles; by default ``out``'s chunks, else within ``working_memory``.
    working_memory : float, optional
    executor, ledger, progress
        As for :func:`centre_tiles`.

    Returns
    -------
    Array
        ``out``: ``K_ij = ((a_ij - m_j) - 1/n sum_k a_ik) + g``.
    """
    m, n = D_test.shape
    if plan is None:
        plan = chunk_plan(out, False) or plan_pairs(
            m, n, bytes_per_pair=4 * 8, working_memory=resolve_working_memory(
                working_memory))
    fit_rows = np.asarray(to_numpy(centerer.K_fit_rows_), dtype=np.float64)
    if not is_numpy_array(pred_cols):
        fit_rows = namespace(pred_cols).asarray(fit_rows)
    task = TileTask(_centre_test_tile, (D_test, fit_rows, pred_cols),
                    dict(fit_all=float(centerer.K_fit_all_), power=power, squared=squared))
    return get_executor(executor).fill(plan, task, out, ledger=ledger, progress=progress,
                                       desc="centring")


@overload
def centered_kernel(D: Array, power: float, *, squared: bool = ..., out: Array | None = ...,
                    with_centerer: Literal[False] = ...,
                    working_memory: float | None = ..., executor: Any = ...,
                    progress: bool | None = ...) -> Array: ...


@overload
def centered_kernel(D: Array, power: float, *, squared: bool = ..., out: Array | None = ...,
                    with_centerer: Literal[True],
                    working_memory: float | None = ..., executor: Any = ...,
                    progress: bool | None = ...) -> tuple[Array, KernelCenterer]: ...


@overload
def centered_kernel(D: Array, power: float, *, squared: bool = ..., out: Array | None = ...,
                    with_centerer: bool,
                    working_memory: float | None = ..., executor: Any = ...,
                    progress: bool | None = ...) -> Array | tuple[Array, KernelCenterer]:
    ...


def centered_kernel(D: Array, power: float, *, squared: bool = False,
                    out: Array | None = None, with_centerer: bool = False,
                    working_memory: float | None = None, executor: Any = None,
                    progress: bool | None = False) -> Array | tuple[Array, KernelCenterer]:
    """The one pipeline from training distances to the centred kernel ``-1/2 H D^p H``
    (trusted input: validate at the public edge).

    Parameters
    ----------
    D : array (n, n)
        Symmetric distances (``squared``: their squares), any array library; may be a
        memmap or a zarr array.
    power : float in (0, 2]
    squared : bool, default False
        ``D`` holds squared distances.
    out : array (n, n), optional
        Where to write the kernel; may be ``D`` itself (in place, one tile at a time
        within ``working_memory``, so a memmap or zarr array never needs to fit in
        memory). A new array when None.
    with_centerer : bool, default False
        Also return a fitted :class:`sklearn.preprocessing.KernelCenterer` holding the
        training statistics (:func:`centerer_from_statistics`), for
        :func:`centered_test_kernel`.
    working_memory : float, optional
        MiB per block of rows and per tile (scikit-learn's setting when None).
    executor : optional
        Who runs the row-mean reduction and the centring tiles
        (:func:`ssimref.executor.get_executor`; with Dask, ``D`` and ``out`` are zarr
        arrays the workers read and write).
    progress : bool or None, default False

    Returns
    -------
    K : Array, shape (n, n)
        ``out`` when given.
    centerer : sklearn.preprocessing.KernelCenterer
        Only with ``with_centerer``.

    See Also
    --------
    centered_test_kernel : the test rows.
    double_center : the validating public form.

    Notes
    -----
    Two passes over ``D``: the row means ``m`` and their mean ``g``
    (:func:`centring_statistics`, blocks of full rows), then ``K_ij = (A_ij + g) -
    (m_i + m_j)`` tile by tile (:func:`centre_tiles`). Every entry depends on its own
    block and the statistics only, so the result does not depend on the tile sizes or
    the executor.
    """
    m, g = centring_statistics(D, power, squared=squared, working_memory=working_memory,
                               executor=executor, progress=progress)
    if out is None:
        xp = namespace(D)
        out = xp.empty(tuple(D.shape), dtype=xp.float64)
    K = centre_tiles(D, m, g, power, out, squared=squared, working_memory=working_memory,
                     executor=executor, progress=progress)
    return (K, centerer_from_statistics(m, g)) if with_centerer else K


def centered_test_kernel(D_test: Array, centerer: KernelCenterer, power: float, *,
                         squared: bool = False, out: Array | None = None,
                         working_memory: float | None = None, executor: Any = None,
                         progress: bool | None = False) -> Array:
    """Kernel of new points against the training points, ``-1/2 D_test^p`` centred with
    the training statistics held by ``centerer`` (from :func:`centered_kernel`), tile by
    tile (trusted input).

    Parameters
    ----------
    D_test : array (m, n)
        Distances (``squared``: their squares) from new points to the training points.
    centerer : sklearn.preprocessing.KernelCenterer
    power : float in (0, 2]
    squared : bool, default False
    out : array (m, n), optional
        Where to write the result (may be ``D_test`` itself when it is a NumPy array,
        memmap or zarr array); a new NumPy array when None.
    working_memory : float, optional
    executor : optional
        As for :func:`centered_kernel`.
    progress : bool or None, default False

    Returns
    -------
    Array, shape (m, n), float64
        ``out`` when given (else a new NumPy array): ``K_ij = ((a_ij - m_j) -
        1/n sum_k a_ik) + g``, the operations of
        :meth:`sklearn.preprocessing.KernelCenterer.transform` in its order.

    See Also
    --------
    centered_kernel : the training kernel and its centerer.
    center_out_of_sample : the validating public form.
    """
    D_host = D_test if not is_array_api_obj(D_test) or is_numpy_array(D_test) \
        else to_numpy(D_test)
    if out is None:
        out = np.empty(tuple(D_host.shape))
    pred_cols = out_of_sample_statistics(D_host, power, squared=squared,
                                working_memory=working_memory, executor=executor,
                                progress=progress)
    return centre_test_tiles(D_host, centerer, pred_cols, power, out, squared=squared,
                             working_memory=working_memory, executor=executor,
                             progress=progress)
