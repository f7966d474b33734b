"""What the conformance runner found, and the report it prints.

:class:`CaseResult` is one row of the table (what was passed, the target's value, the
oracle's, the verdict), :class:`Diagnosis` the knob changes that explain the target's
answers and what they leave unexplained, and :class:`ConformanceResult` the whole run;
``str()`` of the latter is the report that ``ssimref verify`` prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..conventions import Convention

__all__ = ["CaseResult", "Diagnosis", "ConformanceResult"]


@dataclass
class CaseResult:
    """One case: what the target was given, its value, the oracle's, and the verdict.

    ``passed_as`` describes the arrays the target received (shape, dtype, memory layout,
    and "per channel" when a colour case was called channel by channel).
    """

    name: str
    description: str
    shape: tuple
    dtype: str
    value: float | None
    expected: float
    error: float
    tolerance: float
    passed: bool
    message: str = ""
    passed_as: str = ""

    @property
    def status(self) -> str:
        """"pass", "FAIL", "ERROR" (the target raised), "NaN" or "Inf"."""
        if self.value is None:
            return "ERROR"
        if math.isnan(self.value):
            return "NaN"
        if math.isinf(self.value):
            return "Inf"
        return "pass" if self.passed else "FAIL"

    @property
    def finite(self) -> bool:
        """Whether the target returned a finite number."""
        return self.value is not None and math.isfinite(self.value)

    def row(self):
        if self.value is None:
            value = "error"
        elif self.finite:
            value = f"{self.value:.12f}"
        else:
            value = str(self.value)
        error = f"{self.error:.2e}" if self.finite and math.isfinite(self.error) else ""
        passed_as = self.passed_as or ("x".join(map(str, self.shape)) + f" {self.dtype}")
        return [self.name, passed_as, value, f"{self.expected:.12f}", error, self.status]


@dataclass
class Diagnosis:
    """The knob changes that explain an implementation's answers, and what they leave.

    Attributes
    ----------
    verdict : {"conforms", "convention", "partly", "numerical", "unexplained", "no data"}
        Over the cases that returned a finite value: "conforms": all agree under the
        stated convention. "convention": the accepted ``changes`` make all agree, or all
        but ``numerical`` ones. "partly": they make some agree; ``unexplained`` lists the
        rest. "numerical": no change is needed and the only failures are ``numerical``.
        "unexplained": no change makes a failing case agree. "no data": no case returned
        a finite value.
    changes : list of (knob, stated, fitted)
        Descriptions of each accepted knob change.
    convention : Convention
        The fitted convention (the stated one when nothing was accepted).
    residual : float
        Largest difference under the fitted convention over the finite answers.
    failing_before, failing_after : int
        Finite answers outside tolerance under the stated and the fitted convention.
    unexplained : list of (case, error)
    numerical : list of (case, error, bound)
        Failures labelled as cancellation (see
        :mod:`ssimref.verification.conformance.fitting`).
    nonfinite : list of (case, "NaN" or "Inf")
        Cases where the target returned NaN or Inf: never a match, never fitted.
    raised : list of str
        Cases where the target raised.
    tried : list of str
        The knob changes the search walked through, accepted or not.
    total : int
        Number of cases run.
    typical_error : float
        Median difference under the fitted convention. Well above float64 round-off (1e-10
        and more) it points at reduced precision somewhere (window, constants or
        arithmetic) rather than at a convention.
    """

    verdict: str
    changes: list = field(default_factory=list)
    convention: Convention | None = None
    residual: float = math.nan
    failing_before: int = 0
    failing_after: int = 0
    unexplained: list = field(default_factory=list)
    numerical: list = field(default_factory=list)
    nonfinite: list = field(default_factory=list)
    raised: list = field(default_factory=list)
    tried: list = field(default_factory=list)
    total: int = 0
    typical_error: float = 0.0

    @property
    def knobs(self):
        """The names of the knobs that changed."""
        return [knob for knob, _, _ in self.changes]

    def _nonfinite_lines(self):
        lines = []
        for kind in ("NaN", "Inf"):
            names = [name for name, k in self.nonfinite if k == kind]
            if names:
                lines.append(f"returned {kind} on {len(names)}/{self.total} cases "
                             f"({', '.join(names)}): never a match, and not fitted")
        if self.raised:
            lines.append(f"raised on {len(self.raised)}/{self.total} cases "
                         f"({', '.join(self.raised)}): not fitted")
        return lines

    def __str__(self):
        lines = self._nonfinite_lines()
        if self.verdict == "no data":
            return "\n".join(lines + ["no case returned a finite value: nothing to fit"])
        if self.verdict == "conforms":
            if not lines:
                return ("conforms: every case agrees with the oracle under the stated "
                        "convention")
            return "\n".join(lines + ["every case that returned a finite value agrees with "
                                      "the oracle under the stated convention"])
        if self.changes:
            lines.append("fitted: " + "; ".join(
                f"{knob}: stated {old}, behaves like {new}" for knob, old, new in self.changes))
            lines.append(f"under the fitted convention {self.failing_after} case(s) still "
                         f"differ (was {self.failing_before}); largest difference "
                         f"{self.residual:.2e}")
        elif self.verdict == "numerical":
            lines.append("convention: as stated; every other case agrees, and the "
                         "remaining differences are within round-off of E[x^2] - E[x]^2:")
        else:
            tried = f" (tried: {', '.join(self.tried)})" if self.tried else ""
            lines.append("no knob change makes a failing case agree with the oracle, "
                         f"without breaking one that agrees{tried}")
        for name, err, bound in self.numerical:
            lines.append(f"  numerical: {name}: difference {err:.2e}, within the "
                         f"cancellation bound {bound:.1e} of this case")
        for name, err in self.unexplained:
            lines.append(f"  unexplained: {name}: difference {err:.2e}")
        if self.typical_error > 1e-10:
            lines.append(f"  typical (median) difference {self.typical_error:.1e} on the "
                         "cases: beyond float64 round-off, so something is computed in "
                         "reduced precision (a window, constant or arithmetic)")
        return "\n".join(lines)


@dataclass
class ConformanceResult:
    """Everything :func:`~ssimref.verification.conformance.check` found; ``str()`` gives the
    report the CLI prints."""

    target: str
    version: str
    convention: Convention
    tolerance: float
    cases: list
    diagnosis: Diagnosis
    note: str = ""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases)

    def table(self) -> str:
        head = ["case", "passed as", "value", "oracle", "abs error", "result"]
        rows = [head] + [c.row() for c in self.cases]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(cell.ljust(wd) for cell, wd in zip(r, widths)).rstrip()
                 for r in rows]
        lines.insert(1, "  ".join("-" * wd for wd in widths))
        for c in self.cases:
            if c.message:
                lines.append(f"{c.name}: {c.message}")
        return "\n".join(lines)

    def __str__(self):
        passed = sum(c.passed for c in self.cases)
        head = [f"target: {self.target}" + (f" {self.version}" if self.version else ""),
                f"stated convention: {self.convention.describe()}",
                f"tolerance: {self.tolerance:g} (absolute, on mean SSIM)"]
        if self.note:
            head.append(f"called as: {self.note}")
        return "\n".join(head + ["", self.table(), "",
                                 f"{passed}/{len(self.cases)} cases pass",
                                 f"diagnosis: {self.diagnosis}"])
