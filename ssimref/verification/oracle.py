"""Slow, loop-based, obviously correct SSIM quantities.

This module is the project's reference for its own fast code and for other SSIM
implementations. It deliberately shares no computation with :mod:`ssimref`: it reads the
fields of an :class:`~ssimref.SSIMConfig`, builds its own window weights, and evaluates the
textbook formulas window by window with plain Python numbers::

    mu_x = sum_k w_k x_k
    sigma_x^2 = f * sum_k w_k (x_k - mu_x)^2
    sigma_xy  = f * sum_k w_k (x_k - mu_x)(y_k - mu_y)
    s1 = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1),  c1 = (k1 L)^2
    s2 = (2 sigma_xy + c2) / (sigma_x^2 + sigma_y^2 + c2),  c2 = (k2 L)^2

with ``f`` = 1 (population), ``1 / (1 - sum w^2)`` (sample) or ``q / (q - 1)`` (count).
Squared per-window distances are ``1 - s2`` (eq1), ``1 - s1 s2`` (eq1-uncentered) and
``2 - s1 - s2`` (eq2); ``D^2`` is their sum over windows and channels.

With ``exact=True`` (uniform windows only) every number is a :class:`fractions.Fraction`:
pixel values, ``k1``, ``k2`` and ``L`` are read as exact decimals and the results are
exact rationals (squared distances; a square root is taken only by :func:`distance`).

Other implementations' conventions
    :func:`variant_ssim_map` and :func:`variant_ssim` evaluate SSIM under a
    :class:`~ssimref.verification.conventions.Convention`: 'same' maps of padded images
    (reflect, symmetric, zero, replicate), ``ssim.m``/piq downsampling, a fixed or
    data-dependent data range, and the luminance-term defect. Padding and downsampling are
    written as loops over pixels with explicit index arithmetic.

Kernels and MMD (REFERENCE.md sections 1 and 3)
    :func:`double_centred_kernel` ``K = -1/2 H D^p H``, :func:`mmd2` and
    :func:`mmd2_from_kernel_matrix` (biased V-statistic and unbiased U-statistic),
    :func:`cmmd2` (Ren et al. 2016), with a Gaussian elimination written out for the
    regularised solves. All of them are plain loops over Python numbers, exact when given
    :class:`fractions.Fraction` entries.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

__all__ = ["window_weights", "covariance_factor", "ssim_components", "ssim_map", "ssim",
           "squared_distance_map", "distance_map", "squared_distance", "distance",
           "distance_matrix", "pad_image", "downsample_image", "variant_ssim_map",
           "variant_ssim", "centring_matrix", "double_centred_kernel", "kernel_matrix",
           "mmd2", "mmd2_from_kernel_matrix", "solve", "cmmd2", "cmmd2_from_samples"]


def _number(exact):
    return (lambda v: Fraction(str(v))) if exact else float


def window_weights(config, exact=False):
    """2-D window weights as a list of lists, summing to 1."""
    size = config.size
    if config.window == "uniform":
        one = Fraction(1, size * size) if exact else 1.0 / (size * size)
        return [[one] * size for _ in range(size)]
    if exact:
        raise ValueError("exact arithmetic needs a uniform window (Gaussian weights are "
                         "irrational)")
    r = (size - 1) / 2.0
    raw = [[math.exp(-((i - r) ** 2 + (j - r) ** 2) / (2.0 * config.sigma ** 2))
            for j in range(size)] for i in range(size)]
    total = math.fsum(v for row in raw for v in row)
    return [[v / total for v in row] for row in raw]


def covariance_factor(config, weights):
    """The normalisation ``f`` of weighted (co)variance sums."""
    q = config.size * config.size
    if config.covariance == "population":
        return 1
    if config.covariance == "count":
        return Fraction(q, q - 1) if isinstance(weights[0][0], Fraction) else q / (q - 1)
    sum_w2 = sum(w * w for row in weights for w in row)
    return 1 / (1 - sum_w2)


def _image(a, num):
    """An image as nested lists [row][col][channel] of numbers, plus 'was 2-D'."""
    a = np.asarray(a)
    two_d = a.ndim == 2
    if two_d:
        a = a[:, :, None]
    return [[[num(v) for v in pixel] for pixel in row] for row in a.tolist()], two_d


def _constants(config, num):
    if config.data_range is None:
        raise ValueError("the oracle needs an explicit data_range in its config")
    L = num(config.data_range)
    return (num(config.k1) * L) ** 2, (num(config.k2) * L) ** 2


def _window_pairs(x, y, config, exact):
    """Yield (row, col, channel, s1, s2) for every valid window of two nested-list images."""
    num = _number(exact)
    w = window_weights(config, exact)
    f = covariance_factor(config, w)
    c1, c2 = _constants(config, num)
    size, stride = config.size, config.stride
    height, width, channels = len(x), len(x[0]), len(x[0][0])
    for r in range(0, height - size + 1, stride):
        for c in range(0, width - size + 1, stride):
            for ch in range(channels):
                xs = [(w[i][j], x[r + i][c + j][ch]) for i in range(size) for j in range(size)]
                ys = [y[r + i][c + j][ch] for i in range(size) for j in range(size)]
                mu_x = sum(wk * xk for wk, xk in xs)
                mu_y = sum(wk * yk for (wk, _), yk in zip(xs, ys))
                var_x = f * sum(wk * (xk - mu_x) ** 2 for wk, xk in xs)
                var_y = f * sum(wk * (yk - mu_y) ** 2 for (wk, _), yk in zip(xs, ys))
                cov = f * sum(wk * (xk - mu_x) * (yk - mu_y) for (wk, xk), yk in zip(xs, ys))
                s1 = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)
                s2 = (2 * cov + c2) / (var_x + var_y + c2)
                yield r // stride, c // stride, ch, s1, s2


def _maps(x, y, config, exact, value):
    """Apply ``value(s1, s2)`` to every window; an object array (Ho, Wo[, C])."""
    num = _number(exact)
    xi, two_d = _image(x, num)
    yi, _ = _image(y, num)
    if np.shape(x) != np.shape(y):
        raise ValueError("x and y must have the same shape")
    ho = (len(xi) - config.size) // config.stride + 1
    wo = (len(xi[0]) - config.size) // config.stride + 1
    out = np.empty((ho, wo, len(xi[0][0])), dtype=object)
    for r, c, ch, s1, s2 in _window_pairs(xi, yi, config, exact):
        out[r, c, ch] = value(s1, s2)
    out = out[:, :, 0] if two_d else out
    return out if exact else out.astype(np.float64)


def ssim_components(x, y, config, exact=False):
    """``(s1, s2)`` maps, shape (Ho, Wo) or (Ho, Wo, C)."""
    return (_maps(x, y, config, exact, lambda s1, s2: s1),
            _maps(x, y, config, exact, lambda s1, s2: s2))


def ssim_map(x, y, config, exact=False):
    """SSIM map ``s1 * s2``."""
    return _maps(x, y, config, exact, lambda s1, s2: s1 * s2)


def ssim(x, y, config, exact=False):
    """Mean of the SSIM map over windows and channels."""
    values = ssim_map(x, y, config, exact).ravel().tolist()
    return sum(values) / len(values) if exact else math.fsum(values) / len(values)


_SQUARED = {
    "eq1": lambda s1, s2: 1 - s2,
    "eq1-uncentered": lambda s1, s2: 1 - s1 * s2,
    "eq2": lambda s1, s2: 2 - s1 - s2,
}


def squared_distance_map(x, y, config, kind, exact=False):
    """Squared per-window distances of ``kind``."""
    return _maps(x, y, config, exact, _SQUARED[kind])


def distance_map(x, y, config, kind, exact=False):
    """Per-window distances (float)."""
    sq = squared_distance_map(x, y, config, kind, exact)
    return np.sqrt(np.maximum(sq.astype(np.float64), 0.0))


def squared_distance(x, y, config, kind, exact=False):
    """``D^2``: sum of squared per-window distances over windows and channels."""
    values = squared_distance_map(x, y, config, kind, exact).ravel().tolist()
    return sum(values) if exact else math.fsum(values)


def distance(x, y, config, kind):
    """``D = sqrt(D^2)``."""
    return math.sqrt(max(float(squared_distance(x, y, config, kind)), 0.0))


def distance_matrix(X, Y, config, kind):
    """``D(i, j)`` for every pair of images of two stacks, one pair at a time."""
    Y = X if Y is None else Y
    return np.array([[distance(xi, yj, config, kind) for yj in Y] for xi in X])


# ------------------------------------------------------------------------------------------
# Other implementations' conventions: padding, downsampling, data range, luminance defect
# ------------------------------------------------------------------------------------------

def _source_index(i, n, mode):
    """Index into an axis of length ``n`` that position ``i`` (possibly outside 0..n-1) of
    a padded axis reads, or ``None`` for a zero ("constant") pixel. NumPy's np.pad modes."""
    if 0 <= i < n:
        return i
    if mode == "constant":
        return None
    if mode == "edge":
        return 0 if i < 0 else n - 1
    if mode == "reflect":  # d c b | a b c d | c b a: the edge pixel is not repeated
        period = 2 * (n - 1)
        if period == 0:
            return 0
        i = i % period
        return i if i < n else period - i
    if mode == "symmetric":  # c b a | a b c d | d c b: the edge pixel is repeated
        period = 2 * n
        i = i % period
        return i if i < n else period - 1 - i
    raise ValueError(f"unknown padding mode {mode!r}")


def pad_image(img, pad, mode, zero=0):
    """Pad a nested-list image ``[row][col][channel]`` by ``pad`` pixels on every side."""
    height, width = len(img), len(img[0])
    channels = len(img[0][0])
    out = []
    for i in range(-pad, height + pad):
        si = _source_index(i, height, mode)
        row = []
        for j in range(-pad, width + pad):
            sj = _source_index(j, width, mode)
            if si is None or sj is None:
                row.append([zero] * channels)
            else:
                row.append(list(img[si][sj]))
        out.append(row)
    return out


def downsample_image(img, method, factor):
    """Downsample a nested-list image by ``factor`` as ``method`` ("ssim.m" or "avgpool")
    does (see :mod:`ssimref.verification.conventions`)."""
    if factor == 1:
        return img
    height, width, channels = len(img), len(img[0]), len(img[0][0])
    f2 = factor * factor
    if method == "avgpool":
        return [[[sum(img[r * factor + a][c * factor + b][ch]
                      for a in range(factor) for b in range(factor)) / f2
                  for ch in range(channels)]
                 for c in range(width // factor)]
                for r in range(height // factor)]
    if method == "ssim.m":
        # imfilter(img, ones(f)/f^2, 'symmetric', 'same') correlates with the kernel's
        # centre at 1-based index floor((f + 1) / 2), so output pixel i averages input
        # pixels i - lead .. i - lead + f - 1 with lead = floor((f - 1) / 2); then
        # img(1:f:end, 1:f:end) keeps every f-th pixel from the first.
        lead = (factor - 1) // 2
        out = []
        for r in range(0, height, factor):
            row = []
            for c in range(0, width, factor):
                pixel = []
                for ch in range(channels):
                    total = 0
                    for a in range(factor):
                        for b in range(factor):
                            sr = _source_index(r - lead + a, height, "symmetric")
                            sc = _source_index(c - lead + b, width, "symmetric")
                            total = total + img[sr][sc][ch]
                    pixel.append(total / f2)
                row.append(pixel)
            out.append(row)
        return out
    raise ValueError(f"unknown downsampling method {method!r}")


def _variant_range(xi, yi, convention, data_range, num):
    L = convention.data_range
    if L is None:
        if data_range is None:
            raise ValueError("pass data_range (the convention takes the caller's range)")
        return num(data_range)
    if L == "dynamic":
        def ptp(img):
            values = [v for row in img for pixel in row for v in pixel]
            return max(values) - min(values)
        return max(ptp(xi), ptp(yi))
    return num(L)


def variant_ssim_map(x, y, convention, data_range=None, exact=False):
    """SSIM map under a :class:`~ssimref.verification.conventions.Convention`.

    Steps, each a loop: read the images (``(H, W)`` or ``(H, W, C)``), take the data
    range (the convention's, else ``data_range``), downsample, pad for 'same' borders,
    then evaluate every window as :func:`ssim_map` does, with ``mu_y := mu_x`` in the
    luminance term when ``convention.luminance == "first"``.

    Returns
    -------
    ndarray (Ho, Wo) or (Ho, Wo, C), float64 (object array of Fractions when ``exact``)
    """
    from .conventions import downsample_factor

    if np.shape(x) != np.shape(y):
        raise ValueError("x and y must have the same shape")
    num = _number(exact)
    xi, two_d = _image(x, num)
    yi, _ = _image(y, num)
    L = _variant_range(xi, yi, convention, data_range, num)
    c1, c2 = (num(convention.k1) * L) ** 2, (num(convention.k2) * L) ** 2
    f = downsample_factor(len(xi), len(xi[0]), convention.downsample)
    xi = downsample_image(xi, convention.downsample, f)
    yi = downsample_image(yi, convention.downsample, f)
    if convention.border != "valid":
        mode, pad = convention.border[len("same-"):], convention.size // 2
        xi = pad_image(xi, pad, mode, num(0))
        yi = pad_image(yi, pad, mode, num(0))
    w = window_weights(convention, exact)
    fac = covariance_factor(convention, w)
    size = convention.size
    height, width, channels = len(xi), len(xi[0]), len(xi[0][0])
    if size > height or size > width:
        raise ValueError(f"window {size}x{size} does not fit the {height}x{width} image")
    out = np.empty((height - size + 1, width - size + 1, channels), dtype=object)
    for r in range(height - size + 1):
        for c in range(width - size + 1):
            for ch in range(channels):
                wx = [(w[i][j], xi[r + i][c + j][ch]) for i in range(size)
                      for j in range(size)]
                ys = [yi[r + i][c + j][ch] for i in range(size) for j in range(size)]
                mu_x = sum(wk * xk for wk, xk in wx)
                mu_y = sum(wk * yk for (wk, _), yk in zip(wx, ys))
                var_x = fac * sum(wk * (xk - mu_x) ** 2 for wk, xk in wx)
                var_y = fac * sum(wk * (yk - mu_y) ** 2 for (wk, _), yk in zip(wx, ys))
                cov = fac * sum(wk * (xk - mu_x) * (yk - mu_y)
                                for (wk, xk), yk in zip(wx, ys))
                mu_l = mu_x if convention.luminance == "first" else mu_y
                s1 = (2 * mu_x * mu_l + c1) / (mu_x ** 2 + mu_l ** 2 + c1)
                s2 = (2 * cov + c2) / (var_x + var_y + c2)
                out[r, c, ch] = s1 * s2
    out = out[:, :, 0] if two_d else out
    return out if exact else out.astype(np.float64)


def variant_ssim(x, y, convention, data_range=None, exact=False):
    """Mean of :func:`variant_ssim_map` over window positions and channels."""
    values = variant_ssim_map(x, y, convention, data_range, exact).ravel().tolist()
    return sum(values) / len(values) if exact else math.fsum(values) / len(values)


# ------------------------------------------------------------------------------------------
# Kernels, MMD and CMMD (REFERENCE.md sections 1 and 3)
# ------------------------------------------------------------------------------------------

def _matrix(a):
    """A square or rectangular matrix as a list of lists of Python numbers (Fractions and
    ints are kept, NumPy floats become floats)."""
    if isinstance(a, np.ndarray):
        return a.tolist()
    return [list(row) for row in a]


def _one(entry):
    return Fraction(1) if isinstance(entry, (Fraction, int)) else 1.0


def centring_matrix(n, exact=False):
    """``H = I - (1/n) 1 1^T`` as a list of lists."""
    inv = Fraction(1, n) if exact else 1.0 / n
    return [[(1 if i == j else 0) - inv for j in range(n)] for i in range(n)]


def _matmul(a, b):
    return [[sum(a[i][k] * b[k][j] for k in range(len(b))) for j in range(len(b[0]))]
            for i in range(len(a))]


def double_centred_kernel(D, power=1):
    """``K = -1/2 H D^p H`` with ``D^p`` the element-wise power (``p = 2``: classical MDS),
    computed as two explicit matrix products with ``H = I - 11^T / n``.

    Parameters
    ----------
    D : (n, n) array or list of lists
        Distances; exact when its entries are Fractions or ints.
    power : {1, 2}

    Returns
    -------
    list of lists (n, n)
    """
    D = _matrix(D)
    n = len(D)
    exact = all(isinstance(v, (Fraction, int)) for row in D for v in row)
    H = centring_matrix(n, exact)
    P = [[v ** power for v in row] for row in D]
    half = Fraction(1, 2) if exact else 0.5
    return [[-half * v for v in row] for row in _matmul(_matmul(H, P), H)]


def kernel_matrix(kernel, A, B=None):
    """``[[kernel(a, b) for b in B] for a in A]`` (``B = A`` when omitted)."""
    B = A if B is None else B
    return [[kernel(a, b) for b in B] for a in A]


def mmd2_from_kernel_matrix(K, n, unbiased=False):
    """MMD^2 between the first ``n`` and the remaining ``m`` points of a pooled sample.

    Biased (V-statistic)::

        1/n^2 sum_{i,j<n} K_ij + 1/m^2 sum_{i,j>=n} K_ij - 2/(n m) sum_{i<n<=j} K_ij

    which equals ``s^T K s`` with ``s_i = 1/n`` on the first block and ``-1/m`` on the
    second. Unbiased (U-statistic, Gretton et al. 2012): the diagonals of the two within
    blocks are dropped and their sums divided by ``n (n - 1)`` and ``m (m - 1)``; it can
    be negative.

    Parameters
    ----------
    K : (n + m, n + m) array or list of lists
        Kernel matrix of the pooled sample, first sample first.
    n : int
        Size of the first sample (``1 <= n < n + m``; at least 2 per sample if unbiased).
    """
    K = _matrix(K)
    total = len(K)
    m = total - n
    if n < 1 or m < 1 or (unbiased and (n < 2 or m < 2)):
        raise ValueError(f"need samples of at least {2 if unbiased else 1} points, got "
                         f"n={n}, m={m}")
    xx = sum(K[i][j] for i in range(n) for j in range(n) if not (unbiased and i == j))
    yy = sum(K[i][j] for i in range(n, total) for j in range(n, total)
             if not (unbiased and i == j))
    xy = sum(K[i][j] for i in range(n) for j in range(n, total))
    one = _one(K[0][0])
    nxx = n * (n - 1) if unbiased else n * n
    nyy = m * (m - 1) if unbiased else m * m
    return one * xx / nxx + one * yy / nyy - 2 * one * xy / (n * m)


def mmd2(X, Y, kernel, unbiased=False):
    """MMD^2 between samples ``X`` and ``Y`` (sequences of points) for a kernel function
    ``kernel(a, b)``: :func:`mmd2_from_kernel_matrix` of the pooled kernel matrix."""
    pooled = list(X) + list(Y)
    return mmd2_from_kernel_matrix(kernel_matrix(kernel, pooled), len(X), unbiased)


def solve(A, B):
    """``A^{-1} B`` by Gaussian elimination with partial pivoting (largest absolute pivot),
    written out; exact when ``A`` and ``B`` hold Fractions.

    Parameters
    ----------
    A : (n, n) list of lists, non-singular
    B : (n, k) list of lists

    Returns
    -------
    list of lists (n, k)
    """
    n = len(A)
    k = len(B[0])
    M = [list(A[i]) + list(B[i]) for i in range(n)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(M[r][col]))
        if M[pivot][col] == 0:
            raise ValueError("the matrix is singular")
        M[col], M[pivot] = M[pivot], M[col]
        for r in range(n):
            if r != col and M[r][col] != 0:
                factor = M[r][col] / M[col][col]
                M[r] = [a - factor * b for a, b in zip(M[r], M[col])]
    return [[M[i][n + j] / M[i][i] for j in range(k)] for i in range(n)]


def cmmd2(K, L_ss, L_dd, L_sd, lam):
    """CMMD^2 of Ren, Li, Luo and Zhu (NIPS 2016), REFERENCE.md section 3.

    With the conditioning kernel matrix ``K`` on the shared inputs ``x_i`` and the output
    kernel ``l``, ``C = (K + lambda I)^-1`` and ``M = C K C``::

        CMMD^2 = sum_ij M_ij [l(s_i, s_j) + l(d_i, d_j) - l(s_i, d_j) - l(d_i, s_j)]

    where ``s_i`` is the generated and ``d_i`` the data output paired with ``x_i``.
    ``M`` is computed by two solves with :func:`solve` (``X = (K + lambda I)^-1 K``, then
    ``M = (K + lambda I)^-1 X^T`` transposed, using the symmetry of ``K + lambda I``); no
    inverse is formed.

    Parameters
    ----------
    K : (n, n) symmetric PSD kernel matrix of the inputs.
    L_ss, L_dd : (n, n) output-kernel matrices ``l(s_i, s_j)``, ``l(d_i, d_j)``.
    L_sd : (n, n) ``l(s_i, d_j)``; ``l(d_i, s_j)`` is ``L_sd[j][i]``.
    lam : float or Fraction, > 0

    Returns
    -------
    number (a Fraction when every input is exact)
    """
    K, L_ss, L_dd, L_sd = (_matrix(a) for a in (K, L_ss, L_dd, L_sd))
    n = len(K)
    A = [[K[i][j] + (lam if i == j else 0) for j in range(n)] for i in range(n)]
    X = solve(A, K)
    Xt = [[X[j][i] for j in range(n)] for i in range(n)]
    Mt = solve(A, Xt)
    M = [[Mt[j][i] for j in range(n)] for i in range(n)]
    return sum(M[i][j] * (L_ss[i][j] + L_dd[i][j] - L_sd[i][j] - L_sd[j][i])
               for i in range(n) for j in range(n))


def cmmd2_from_samples(inputs, generated, data, input_kernel, output_kernel, lam):
    """:func:`cmmd2` from paired samples and kernel functions: ``inputs[i]`` conditions
    ``generated[i]`` (``s_i``) and ``data[i]`` (``d_i``)."""
    return cmmd2(kernel_matrix(input_kernel, inputs),
                 kernel_matrix(output_kernel, generated),
                 kernel_matrix(output_kernel, data),
                 kernel_matrix(output_kernel, generated, data), lam)
