"""Other positive-definite kernels built from SSIM: Gaussian of the SSIM distance and the
mean-SSIM Gram matrix; the median heuristic for the Gaussian's bandwidth.

Both are positive definite for the reasons of docs/theory.md: ``D^2`` is a squared
Hilbert-space distance, so ``exp(-gamma D^2)`` is positive definite for every
``gamma > 0`` (Schoenberg 1938); and SSIM itself, per window, is a positive-definite
kernel, so the mean over windows is one too.
"""

from __future__ import annotations

import math
from typing import Any

from ..backend import Array, ArrayLike, as_array
from ..config import SSIMConfig, resolve_config
from ..pairwise import distance_matrix
from ..validation import check_channel_axis, check_matrix

__all__ = ["ssim_rbf_kernel", "mean_ssim_kernel", "median_heuristic"]


def median_heuristic(D: ArrayLike) -> float:
    """Bandwidth ``sigma`` = the median of the pairwise distances.

    Parameters
    ----------
    D : array_like, shape (n, n) or (n, m)
        Distances (unsquared), e.g. from :func:`ssimref.distance_matrix`. For a square
        matrix the median runs over the ``n (n - 1) / 2`` entries above the diagonal
        (each unordered pair once, self-distances excluded); for a rectangular one over
        all ``n m`` entries.

    Returns
    -------
    float
        ``sigma = median_{i<j} D_ij``.

    Notes
    -----
    Convention: the Gaussian kernel paired with it is ``exp(-D^2 / (2 sigma^2))``, i.e.
    ``gamma = 1 / (2 sigma^2)`` in :func:`ssim_rbf_kernel` (Gretton et al., JMLR 2012;
    hyppo). Libraries that instead write ``exp(-D^2 / sigma^2)`` with the same median
    (alibi-detect) use a bandwidth ``sqrt(2)`` times narrower in these units
    (docs/mmd.md, "Median heuristic").

    Raises
    ------
    ValueError
        When the median is 0 (more than half the pairs are identical images), for a
        square ``D`` of fewer than 2 points, and for a ``D`` that is empty, holds NaN,
        Inf or negative entries.
    TypeError
        For a boolean or non-real ``D``.

    See Also
    --------
    ssim_rbf_kernel : uses it when ``gamma`` is None.
    ssimref.kernels.RBFMixture.from_median : the same convention on pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from ssimref.kernels import median_heuristic
    >>> median_heuristic(np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 4.0], [2.0, 4.0, 0.0]]))
    2.0
    """
    xp, D = check_matrix(D, "D", square=False, nonnegative=True)
    n, m = D.shape
    if n == m:
        if n < 2:
            raise ValueError("D must hold at least 2 points for a median of pairwise "
                             "distances")
        upper = xp.reshape(D, (-1,))[xp.reshape(xp.arange(n)[:, None] < xp.arange(m)[None, :],
                                                (-1,))]
    else:
        upper = xp.reshape(D, (-1,))
    values = xp.sort(upper)
    k = values.shape[0]
    mid = k // 2
    sigma = float(values[mid]) if k % 2 else (float(values[mid - 1]) + float(values[mid])) / 2
    if sigma == 0:
        raise ValueError("the median pairwise distance is 0 (most pairs are identical "
                         "images); choose gamma by hand")
    return sigma


def ssim_rbf_kernel(D: ArrayLike, gamma: float | None = None) -> Array:
    """Gaussian kernel of an SSIM distance matrix, ``exp(-gamma D^2)``.

    Parameters
    ----------
    D : array_like, shape (n, m)
        SSIM distances (unsquared), any array-API array.
    gamma : float > 0, optional
        Inverse squared length scale. None: ``1 / (2 sigma^2)`` with
        ``sigma = median_heuristic(D)``; pass it explicitly (computed on training
        distances) when ``D`` holds test-against-training distances.

    Returns
    -------
    Array, shape (n, m), float64
        Entries in ``(0, 1]``, 1 where ``D`` is 0. Positive definite for a square ``D``
        of SSIM distances (``D^2`` is conditionally negative definite; Schoenberg,
        Trans. AMS 44, 1938).

    Raises
    ------
    TypeError
        For a non-numeric ``gamma``, or a boolean or non-real ``D``.
    ValueError
        For a ``gamma`` that is not a finite number > 0; a ``D`` that is empty, holds
        NaN, Inf or negative entries; and the errors of :func:`median_heuristic` when
        ``gamma`` is None.

    See Also
    --------
    ssimref.kernels.SSIMRBFKernel : the same kernel, differentiable, from images.
    mean_ssim_kernel : the other alternative.

    Examples
    --------
    >>> import numpy as np
    >>> from ssimref.kernels import ssim_rbf_kernel
    >>> ssim_rbf_kernel(np.array([[0.0, 1.0], [1.0, 0.0]]), gamma=0.5)
    array([[1.        , 0.60653066],
           [0.60653066, 1.        ]])
    """
    xp, D = check_matrix(D, "D", square=False, nonnegative=True)
    if gamma is None:
        sigma = median_heuristic(D)
        gamma = 1.0 / (2.0 * sigma * sigma)
    try:
        gamma = float(gamma)
    except (TypeError, ValueError):
        raise TypeError(f"gamma must be a number > 0, got {gamma!r}") from None
    if not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
    return xp.exp(-gamma * (D * D))


def mean_ssim_kernel(X: ArrayLike, Y: ArrayLike | None = None,
                     config: SSIMConfig | None = None, *, backend: str = "auto",
                     working_memory: float | None = None, progress: bool = False,
                     channel_axis: int | None = None, **conventions: Any) -> Array:
    """Gram matrix of mean SSIM: ``S_ij = mean over windows (and channels) of
    SSIM(x_i, y_j)``.

    Parameters
    ----------
    X : array_like, shape (n, H, W) or (n, H, W, C)
    Y : array_like, shape (m, H, W) or (m, H, W, C), optional
        Defaults to ``X`` (then ``S`` is exactly symmetric with diagonal exactly 1).
    config, **conventions
        SSIM conventions as for :func:`ssimref.ssim`.
    backend, working_memory, progress, channel_axis
        Passed to :func:`ssimref.distance_matrix`.

    Returns
    -------
    S : Array, shape (n, m) or (n, n), float64
        Values in ``[-1, 1]``; :func:`ssimref.ssim` of each pair. Positive definite
        (not centred; ``1/2 H S H`` equals the classical-MDS kernel of the
        Eq. (1)-uncentred distance).

    Raises
    ------
    ValueError, TypeError
        As for :func:`ssimref.distance_matrix`.

    See Also
    --------
    ssimref.ssim : one pair.
    ssimref.kernels.MeanSSIMKernel : the same kernel, differentiable.

    Notes
    -----
    The per-window squared "eq1-uncentered" distance is ``1 - s1 s2 = 1 - SSIM``, so
    with ``P`` window positions times channels,
    ``S = 1 - D^2 / P``, ``D^2`` = ``distance_matrix(..., kind="eq1-uncentered",
    squared=True)``.

    Examples
    --------
    >>> import numpy as np
    >>> from ssimref import ssim
    >>> from ssimref.kernels import mean_ssim_kernel
    >>> X = np.random.default_rng(1).integers(0, 256, size=(3, 10, 10), dtype=np.uint8)
    >>> S = mean_ssim_kernel(X, window="uniform", size=5)
    >>> bool(np.isclose(S[0, 1], ssim(X[0], X[1], window="uniform", size=5)))
    True
    """
    config = resolve_config(config, **conventions)
    D2 = distance_matrix(X, Y, kind="eq1-uncentered", config=config, squared=True,
                         backend=backend, working_memory=working_memory, progress=progress,
                         channel_axis=channel_axis)
    shape = list(as_array(X).shape)
    if channel_axis is None:
        channels = shape[3] if len(shape) == 4 else 1
    else:
        axis = check_channel_axis(channel_axis, len(shape), True)
        assert axis is not None  # channel_axis was given
        channels = shape.pop(axis)
    height, width = shape[1], shape[2]
    ho, wo = config.positions(height, width)
    return 1.0 - D2 / float(ho * wo * channels)
