"""Positive semidefiniteness of kernel matrices: diagnosis and repair.

The SSIM kernels of this library are positive semidefinite in exact arithmetic
(docs/theory.md): their Gram matrices may only show negative eigenvalues of round-off
size. :func:`psd_report` measures how far a symmetric matrix is from PSD;
:func:`repair_psd` makes an indefinite one PSD, for kernels built from other
dissimilarities. The three repairs and their out-of-sample maps follow Chen, Garcia,
Gupta, Rahimi, Cazzanti, "Similarity-based classification: concepts and algorithms",
JMLR 10, 2009, Section 3.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from ..backend import Array, ArrayLike, Namespace, namespace
from ..validation import check_matrix

__all__ = ["PSDReport", "psd_report", "repair_psd", "IndefiniteKernelWarning",
           "REPAIRS", "RepairName", "DEFAULT_PSD_TOL"]

#: The repair methods.
RepairName: TypeAlias = Literal["clip", "flip", "shift"]
REPAIRS: tuple[RepairName, ...] = ("clip", "flip", "shift")

#: Default tolerance: eigenvalues down to ``-DEFAULT_PSD_TOL * max |eigenvalue|`` are
#: round-off (double-precision eigensolvers err by about ``n * eps * ||K||``).
DEFAULT_PSD_TOL = 1e-9


class IndefiniteKernelWarning(UserWarning):
    """A kernel matrix that theory says is PSD has eigenvalues below round-off."""


@dataclass(frozen=True)
class PSDReport:
    """Spectrum summary of a symmetric matrix (see :func:`psd_report`).

    Attributes
    ----------
    n : int
        Side of the matrix.
    min_eigenvalue, max_eigenvalue : float
        The extreme eigenvalues.
    relative_min : float
        Smallest eigenvalue divided by the largest eigenvalue magnitude (0 for a zero
        matrix).
    negative_mass : float
        ``sum |negative eigenvalues| / sum |eigenvalues|`` (0 for PSD, 1/2 for a
        spectrum symmetric about 0).
    tol : float
        The round-off allowance used.
    verdict : {"psd", "psd within round-off", "indefinite"}

    See Also
    --------
    psd_report : how it is computed.
    """

    n: int
    min_eigenvalue: float
    max_eigenvalue: float
    relative_min: float
    negative_mass: float
    tol: float
    verdict: str

    @property
    def is_psd(self) -> bool:
        """True unless the verdict is "indefinite"."""
        return self.verdict != "indefinite"

    def __str__(self) -> str:
        return (f"{self.verdict}: eigenvalues in [{self.min_eigenvalue:.6g}, "
                f"{self.max_eigenvalue:.6g}] (n = {self.n}), smallest / largest magnitude "
                f"{self.relative_min:.3g}, negative mass {self.negative_mass:.3g}, "
                f"tolerance {self.tol:g}")


def spectrum_report(K: Array, tol: float = DEFAULT_PSD_TOL,
                    xp: Namespace | None = None) -> PSDReport:
    """:class:`PSDReport` of a symmetric float64 ``K`` (trusted input).

    Parameters
    ----------
    K : Array, shape (n, n), float64, symmetric
    tol : float, default 1e-9
    xp : Namespace, optional
        The namespace of ``K`` (looked up when None).

    Returns
    -------
    PSDReport

    See Also
    --------
    psd_report : the validating public form.
    """
    xp = namespace(K) if xp is None else xp
    return _report(xp.linalg.eigvalsh(K), K.shape[0], tol, xp)


def _report(lam: Array, n: int, tol: float, xp: Namespace) -> PSDReport:
    lo, hi = float(xp.min(lam)), float(xp.max(lam))
    scale = max(abs(lo), abs(hi))
    absolute = float(xp.sum(xp.abs(lam)))
    negative = float(-xp.sum(xp.where(lam < 0, lam, xp.zeros_like(lam))))
    relative = lo / scale if scale > 0 else 0.0
    if lo >= 0:
        verdict = "psd"
    elif relative >= -tol:
        verdict = "psd within round-off"
    else:
        verdict = "indefinite"
    return PSDReport(n=n, min_eigenvalue=lo, max_eigenvalue=hi, relative_min=relative,
                     negative_mass=negative / absolute if absolute > 0 else 0.0, tol=tol,
                     verdict=verdict)


def psd_report(K: ArrayLike, tol: float = DEFAULT_PSD_TOL) -> PSDReport:
    """How positive semidefinite is a symmetric matrix?

    Parameters
    ----------
    K : array_like, shape (n, n)
        Symmetric real matrix (any array-API array); asymmetry above 1e-10 of the largest
        entry is an error.
    tol : float, default 1e-9
        Relative round-off allowance: eigenvalues ``>= -tol * max |eigenvalue|`` count
        as zero.

    Returns
    -------
    PSDReport
        ``min_eigenvalue``, ``max_eigenvalue``; ``relative_min`` = smallest eigenvalue
        divided by the largest eigenvalue magnitude; ``negative_mass`` =
        ``sum |negative eigenvalues| / sum |eigenvalues|`` (0 for PSD, 1/2 for a matrix
        whose spectrum is symmetric about 0); ``verdict`` one of "psd" (no negative
        eigenvalue), "psd within round-off" (``relative_min >= -tol``), "indefinite".

    Raises
    ------
    TypeError
        For a non-numeric ``tol``, or a boolean or non-real ``K``.
    ValueError
        For a negative or non-finite ``tol``; a ``K`` that is not a non-empty square
        matrix, holds NaN or Inf, or is asymmetric beyond 1e-10 of its largest entry.

    See Also
    --------
    repair_psd : make an indefinite matrix PSD.
    PSDReport : the fields.

    Examples
    --------
    >>> import numpy as np
    >>> from ssimref.kernels import psd_report
    >>> psd_report(np.array([[2.0, 0.0], [0.0, 1.0]])).verdict
    'psd'
    >>> r = psd_report(np.array([[0.0, 1.0], [1.0, 0.0]]))
    >>> r.verdict, r.min_eigenvalue, r.negative_mass
    ('indefinite', -1.0, 0.5)
    """
    tol = _check_tol(tol)
    xp, K = check_matrix(K, "K", square=True, symmetric=True)
    return spectrum_report(K, tol, xp)


def _check_tol(tol: Any) -> float:
    try:
        value = float(tol)
    except (TypeError, ValueError):
        raise TypeError(f"tol must be a number >= 0, got {tol!r}") from None
    if not value >= 0 or value != value or value == float("inf"):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    return value


def _check_method(method: Any) -> RepairName:
    if method not in REPAIRS:
        raise ValueError(f"method must be one of {REPAIRS}, got {method!r}: 'clip' sets "
                         "negative eigenvalues to 0, 'flip' takes their absolute values, "
                         "'shift' adds |smallest eigenvalue| to the diagonal")
    return method


def repair(K: Array, method: str, xp: Namespace | None = None) -> tuple[Array, Array | None]:
    """A PSD version of a symmetric float64 ``K`` and the map of its test rows (trusted
    input).

    Parameters
    ----------
    K : Array, shape (n, n), float64, symmetric
    method : {"clip", "flip", "shift"}
    xp : Namespace, optional
        The namespace of ``K`` (looked up when None).

    Returns
    -------
    K_psd : Array, shape (n, n)
        Exactly symmetric.
    right_map : Array, shape (n, n), or None
        The matrix ``P`` that maps a row of test-against-training kernel values ``k`` to
        ``k @ P`` consistently with the repaired training kernel (``K @ P == K_psd``):
        ``U diag(1[lambda >= 0]) U^T`` for "clip", ``U diag(sign lambda) U^T`` for
        "flip", and ``None`` (identity) for "shift", which only changes the diagonal,
        i.e. self-similarities.

    See Also
    --------
    repair_psd : the validating public form.

    References
    ----------
    Chen, Garcia, Gupta, Rahimi, Cazzanti, JMLR 10, 2009, Section 3.
    """
    xp = namespace(K) if xp is None else xp
    if method == "shift":
        lo = float(xp.min(xp.linalg.eigvalsh(K)))
        if lo >= 0:
            return K, None
        n = K.shape[0]
        return K + (-lo) * xp.eye(n, dtype=K.dtype), None
    lam, U = xp.linalg.eigh(K)
    if method == "clip":
        new = xp.where(lam > 0, lam, xp.zeros_like(lam))
        sign = xp.astype(lam > 0, K.dtype)
    else:
        new = xp.abs(lam)
        sign = xp.where(lam < 0, -xp.ones_like(lam), xp.ones_like(lam))
    K_psd = (U * new[None, :]) @ U.T
    right_map = (U * sign[None, :]) @ U.T
    return (K_psd + K_psd.T) / 2.0, (right_map + right_map.T) / 2.0


def repair_psd(K: ArrayLike, method: RepairName = "clip") -> Array:
    """The nearest-in-spirit positive semidefinite version of a symmetric matrix.

    Parameters
    ----------
    K : array_like, shape (n, n)
        Symmetric real matrix (any array-API array).
    method : {"clip", "flip", "shift"}, default "clip"
        With ``K = U diag(lambda) U^T``:

        - "clip": ``U diag(max(lambda, 0)) U^T``, the nearest PSD matrix in Frobenius
          norm (Higham 1988);
        - "flip": ``U diag(|lambda|) U^T``;
        - "shift": ``K + max(0, -lambda_min) I``: eigenvectors kept, every eigenvalue
          raised by the same amount.

    Returns
    -------
    Array, shape (n, n), float64
        Exactly symmetric; its smallest eigenvalue is ``>= 0`` up to round-off. A PSD
        ``K`` comes back unchanged by "shift", and changed only at round-off level by
        "clip" and "flip".

    Raises
    ------
    ValueError
        For an unknown ``method``; and the matrix errors of :func:`psd_report`.
    TypeError
        As for :func:`psd_report`.

    See Also
    --------
    psd_report : diagnose first.
    ssimref.kernels.SSIMKernel : applies a repair to training and test rows consistently.

    References
    ----------
    Chen, Garcia, Gupta, Rahimi, Cazzanti, JMLR 10, 2009, Section 3; Higham, Linear
    Algebra Appl. 103, 1988.

    Examples
    --------
    >>> import numpy as np
    >>> from ssimref.kernels import repair_psd
    >>> repair_psd(np.array([[0.0, 1.0], [1.0, 0.0]]), "clip")
    array([[0.5, 0.5],
           [0.5, 0.5]])
    """
    method = _check_method(method)
    xp, K = check_matrix(K, "K", square=True, symmetric=True)
    return repair(K, method, xp)[0]


def warn_if_indefinite(report: PSDReport, what: str = "kernel matrix",
                       stacklevel: int = 3) -> None:
    """Issue :class:`IndefiniteKernelWarning` when ``report`` says "indefinite".

    Parameters
    ----------
    report : PSDReport
    what : str, default "kernel matrix"
        What the matrix is, for the message.
    stacklevel : int, default 3
        As for :func:`warnings.warn`.

    Warns
    -----
    IndefiniteKernelWarning
    """
    if not report.is_psd:
        warnings.warn(f"the {what} is indefinite beyond round-off ({report}); SSIM "
                      "kernels are PSD in exact arithmetic, so check the distances fed in "
                      "(or pass repair='clip' | 'flip' | 'shift')",
                      IndefiniteKernelWarning, stacklevel=stacklevel)
