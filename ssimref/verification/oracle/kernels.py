"""Kernels, MMD^2 and CMMD^2 as plain loops over Python numbers.

:func:`double_centred_kernel` ``K = -1/2 H D^p H`` (``H = I - 11^T / n``),
:func:`mmd2` and :func:`mmd2_from_kernel_matrix` (biased V-statistic and unbiased
U-statistic), :func:`cmmd2` (Ren et al. 2016) with the regularised solves done by a
Gaussian elimination written out (:func:`solve`). Every function is exact when given
:class:`fractions.Fraction` (or int) entries, and never calls a linear-algebra library.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

__all__ = ["centring_matrix", "double_centred_kernel", "kernel_matrix", "mmd2",
           "mmd2_from_kernel_matrix", "solve", "cmmd2", "cmmd2_from_samples"]


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
    """CMMD^2 of Ren, Li, Luo and Zhu (NIPS 2016); see docs/mmd.md.

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
