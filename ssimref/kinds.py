"""The table of SSIM distance kinds: one row per kind, used by every computation.

Per window, with the SSIM defects ``t1 = 1 - s1`` (luminance) and ``t2 = 1 - s2``
(contrast-structure) of :mod:`ssimref.similarity`, every kind's squared per-window
distance is

    g(t1, t2) = e1 t1 + t2 - e3 t1 t2,

with two coefficients per kind:

============================  ==========================  ======  ======  ============
kind                          per-window distance         ``e1``  ``e3``  ``g``
============================  ==========================  ======  ======  ============
``"eq1"`` (Eq. 1, exact)      ``sqrt(1 - s2)``            0       0       ``t2``
``"eq2"`` (Eq. 2)             ``sqrt(2 - s1 - s2)``       1       0       ``t1 + t2``
``"eq1-uncentered"``          ``sqrt(1 - s1 s2)``         1       1       ``t1+t2-t1 t2``
============================  ==========================  ======  ======  ============

(``1 - s1 s2 = t1 + t2 - t1 t2``.) Its partial derivatives, which the gradients need, are

    dg/dt1 = e1 - e3 t2,        dg/dt2 = 1 - e3 t1.

The fused engines evaluate ``g`` from the moments with one division per window,
``t1 = n1 / a`` and ``t2 = n2 / v``:
``g = (n1 (e1 v - e3 n2) + n2 a) / (a v)``; the Numba engine specialises that
expression per kind by the kind's integer ``code`` (docs/engines.md).

References
----------
Ghojogh, Karray, Crowley, ICIAR 2020, Eqs. (1) and (2); Brunet, Vrscay, Wang, IEEE TIP
21(4), 2012.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from .backend import Array, Namespace

__all__ = ["Kind", "KINDS", "KIND_NAMES", "KindName", "get_kind"]

#: The names of the distance kinds.
KindName: TypeAlias = Literal["eq1", "eq1-uncentered", "eq2"]


@dataclass(frozen=True)
class Kind:
    """One SSIM distance kind: its coefficients and the formulas built from them.

    Attributes
    ----------
    name : {"eq1", "eq2", "eq1-uncentered"}
    code : int
        Small integer the compiled engines branch on.
    e1, e3 : float
        Coefficients of ``g(t1, t2) = e1 t1 + t2 - e3 t1 t2`` (module docstring).
    """

    name: KindName
    code: int
    e1: float
    e3: float

    def squared(self, t1: Array, t2: Array) -> Array:
        """``g(t1, t2) = e1 t1 + t2 - e3 t1 t2``, the squared per-window distance.

        Parameters
        ----------
        t1, t2 : Array
            The defect maps ``1 - s1`` and ``1 - s2`` (any array library; broadcast).

        Returns
        -------
        Array
            Terms with a zero coefficient are not computed.
        """
        g = t1 + t2 if self.e1 else t2
        return g - t1 * t2 if self.e3 else g

    def partials(self, t1: Array, t2: Array, xp: Namespace) -> tuple[Array, Array]:
        """The partial derivatives ``(dg/dt1, dg/dt2) = (e1 - e3 t2, 1 - e3 t1)``.

        Parameters
        ----------
        t1, t2 : Array
            The defect maps.
        xp : Namespace
            Their namespace.

        Returns
        -------
        tuple of Array
            Shaped like ``t1`` and ``t2``.
        """
        if self.e3:
            return self.e1 - t2, 1.0 - t1
        g1 = xp.ones_like(t1) if self.e1 else xp.zeros_like(t1)
        return g1, xp.ones_like(t2)


#: The kinds by name.
KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("eq1", 0, 0.0, 0.0), Kind("eq2", 1, 1.0, 0.0), Kind("eq1-uncentered", 2, 1.0, 1.0))}
#: The kind names, in the order the documentation lists them.
KIND_NAMES: tuple[KindName, ...] = ("eq1", "eq1-uncentered", "eq2")


def get_kind(name: str) -> Kind:
    """The :class:`Kind` called ``name`` (trusted: validate with
    :func:`ssimref.validation.check_kind` at the public edge).

    Parameters
    ----------
    name : {"eq1", "eq2", "eq1-uncentered"}

    Returns
    -------
    Kind

    Raises
    ------
    KeyError
        For another name (callers validate first).
    """
    return KINDS[name]
