"""Finite-difference checks of SSIM-loss gradients.

SSIM losses are easy to differentiate wrongly (a missing factor 2, a covariance
normalisation forgotten in the derivative, a square root at 0 giving NaN). :func:`gradcheck`
compares a user's analytic gradient with central differences::

    g_k ~ (loss(x + h e_k) - loss(x - h e_k)) / (2 h)       error O(h^2 f''')

coordinate by coordinate (all of them, or a seeded random subset of ``max_points`` for
large inputs), in float64, and reports the worst coordinate.

Error measure: ``|a - n| / max(|a|, |n|, scale)`` with ``scale = atol_scale`` times the
largest gradient entry seen, so that entries that are ~0 compare absolutely against the
gradient's size instead of producing huge relative errors from round-off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["gradcheck", "GradcheckResult"]


@dataclass
class GradcheckResult:
    """What :func:`gradcheck` found.

    Attributes
    ----------
    passed : bool
    max_rel_error : float
        Largest error over the checked coordinates (module docstring).
    worst_index : tuple
        Index of the coordinate with that error.
    analytic, numeric : float
        Both derivatives at that coordinate.
    max_abs_error : float
    n_checked : int
    step : float
    rtol : float
    nonfinite : list of tuple
        Coordinates where the analytic gradient is NaN or Inf (always a failure).
    """

    passed: bool
    max_rel_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    max_abs_error: float
    n_checked: int
    step: float
    rtol: float
    nonfinite: list

    def __str__(self):
        verdict = "gradient OK" if self.passed else "gradient WRONG"
        lines = [f"{verdict}: max relative error {self.max_rel_error:.2e} (tolerance "
                 f"{self.rtol:.1e}) over {self.n_checked} coordinates, central differences "
                 f"with step {self.step:.1e}",
                 f"worst at index {self.worst_index}: analytic {self.analytic:.10g}, "
                 f"finite difference {self.numeric:.10g} (abs error {self.max_abs_error:.2e})"]
        if self.nonfinite:
            lines.append(f"non-finite analytic gradient at {len(self.nonfinite)} "
                         f"coordinate(s), first {self.nonfinite[0]}")
        return "\n".join(lines)


def gradcheck(loss, grad, x, *, step=None, rtol=1e-5, atol_scale=1e-6, max_points=500,
              seed=0) -> GradcheckResult:
    """Compare ``grad(x)`` with central finite differences of ``loss`` at ``x``.

    Parameters
    ----------
    loss : callable
        ``loss(x) -> float`` for an array ``x`` of the shape of ``x``.
    grad : callable or array
        ``grad(x) -> array`` of ``x``'s shape (or the gradient array itself).
    x : array_like
        The point; converted to float64 (the checker never perturbs your array).
    step : float, optional
        Finite-difference step; default ``eps^(1/3) * max(1, max|x|)`` (about 6e-6 for
        data in [0, 1]), which balances truncation and round-off for central differences.
    rtol : float
        Largest acceptable error (module docstring).
    atol_scale : float
        Fraction of the gradient's largest entry below which entries compare absolutely.
    max_points : int or None
        Check at most this many coordinates (a seeded random subset); None: all.
    seed : int

    Returns
    -------
    GradcheckResult
        ``.passed``, the worst coordinate and both derivatives there; ``str()`` reports.

    Examples
    --------
    >>> import numpy as np
    >>> r = gradcheck(lambda v: float(np.sum(v ** 3)), lambda v: 3 * v ** 2, np.ones((2, 2)))
    >>> r.passed
    True
    """
    x = np.array(x, dtype=np.float64)
    if x.size == 0:
        raise ValueError("x is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or Inf")
    analytic = np.asarray(grad(x) if callable(grad) else grad, dtype=np.float64)
    if analytic.shape != x.shape:
        raise ValueError(f"the gradient has shape {analytic.shape}, x has {x.shape}")
    if step is None:
        step = np.finfo(np.float64).eps ** (1 / 3) * max(1.0, float(np.max(np.abs(x))))
    flat = np.arange(x.size)
    if max_points is not None and x.size > max_points:
        flat = np.sort(np.random.default_rng(seed).choice(x.size, max_points, replace=False))
    numeric = np.empty(flat.size)
    probe = x.copy()
    for n, k in enumerate(flat):
        index = np.unravel_index(k, x.shape)
        original = probe[index]
        probe[index] = original + step
        up = float(loss(probe))
        probe[index] = original - step
        down = float(loss(probe))
        probe[index] = original
        numeric[n] = (up - down) / (2 * step)
    chosen = analytic.ravel()[flat]
    nonfinite = [tuple(int(i) for i in np.unravel_index(k, x.shape))
                 for k, a in zip(flat, chosen) if not np.isfinite(a)]
    finite = np.isfinite(chosen) & np.isfinite(numeric)
    scale = atol_scale * max(float(np.max(np.abs(chosen[finite]), initial=0.0)),
                             float(np.max(np.abs(numeric[finite]), initial=0.0)))
    with np.errstate(invalid="ignore"):
        abs_err = np.abs(chosen - numeric)
        denom = np.maximum(np.maximum(np.abs(chosen), np.abs(numeric)), scale)
        rel = np.where(denom > 0, abs_err / np.where(denom > 0, denom, 1.0), 0.0)
    rel = np.where(np.isfinite(rel), rel, np.inf)
    worst = int(np.argmax(rel))
    worst_index = tuple(int(i) for i in np.unravel_index(flat[worst], x.shape))
    max_rel = float(rel[worst])
    return GradcheckResult(passed=max_rel <= rtol and not nonfinite, max_rel_error=max_rel,
                           worst_index=worst_index, analytic=float(chosen[worst]),
                           numeric=float(numeric[worst]),
                           max_abs_error=float(np.max(np.where(np.isfinite(abs_err), abs_err,
                                                               np.inf))),
                           n_checked=int(flat.size), step=float(step), rtol=rtol,
                           nonfinite=nonfinite)
