"""What the conformance runner found, and the report it prints.

:class:`CaseResult` is one row of the table (the target's value, the oracle's, the
verdict), :class:`Diagnosis` the knob changes that explain the target's answers, and
:class:`ConformanceResult` the whole run; ``str()`` of the latter is the report that
``ssimref verify`` prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..conventions import Convention

__all__ = ["CaseResult", "Diagnosis", "ConformanceResult", "NUMERIC_TRAPS"]

NUMERIC_TRAPS = {
    "large_offset": "cancellation in E[x^2] - E[x]^2 at a large offset",
    "uint8_overflow": "integer input: uint8 products overflowing, or a float32 conversion",
    "float32_input": "float32 arithmetic",
    "zero_images": "0/0 or an eps added to a denominator on flat zero images",
    "identical": "round-off on identical images (SSIM must be exactly 1)",
    "negated": "rejecting or mishandling negative pixel values",
    "non_contiguous": "strided (non-contiguous) input",
    "fortran_order": "column-major input",
    "multichannel": "channel handling",
    "tiny": "images no larger than the window",
}
"""The trap each case sets, named in a diagnosis when no convention explains the case."""


@dataclass
class CaseResult:
    """One case: the implementation's value, the oracle's, and the verdict."""

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

    def row(self):
        value = "error" if self.value is None else f"{self.value:.12f}"
        error = "" if self.value is None else f"{self.error:.2e}"
        status = "pass" if self.passed else ("ERROR" if self.value is None else "FAIL")
        shape = "x".join(map(str, self.shape))
        return [self.name, f"{shape} {self.dtype}", value, f"{self.expected:.12f}", error,
                status]


@dataclass
class Diagnosis:
    """The knob changes that best explain an implementation's answers.

    Attributes
    ----------
    verdict : {"conforms", "convention", "partly", "unexplained", "no data"}
        "conforms": every case agrees under the stated convention. "convention": the
        ``changes`` explain every case. "partly": they explain some; ``unexplained`` lists
        the rest. "unexplained": no knob change helps.
    changes : list of (knob, stated, fitted)
        Human descriptions of each knob's stated and fitted value, most important first.
    convention : Convention
        The best-fitting convention.
    residual : float
        Largest absolute difference between the implementation and the oracle under the
        fitted convention, over the cases it answered.
    failing_before, failing_after : int
        Cases outside tolerance under the stated and the fitted convention.
    unexplained : list of (case, trap)
    typical_error : float
        Median absolute difference under the fitted convention. Well above float64
        round-off (1e-10 and more) it points at reduced precision somewhere (a float32
        window, constants or arithmetic) rather than at a convention.
    """

    verdict: str
    changes: list = field(default_factory=list)
    convention: Convention | None = None
    residual: float = math.nan
    failing_before: int = 0
    failing_after: int = 0
    unexplained: list = field(default_factory=list)
    typical_error: float = 0.0

    @property
    def knobs(self):
        """The names of the knobs that changed."""
        return [knob for knob, _, _ in self.changes]

    def __str__(self):
        if self.verdict == "conforms":
            return "conforms: every case agrees with the oracle under the stated convention"
        if self.verdict == "no data":
            return "no case returned a value: nothing to fit"
        lines = []
        if self.changes:
            lines.append("most likely cause: " + "; ".join(
                f"{knob}: stated {old}, behaves like {new}" for knob, old, new in self.changes))
            lines.append(f"under the fitted convention {self.failing_after} case(s) still "
                         f"differ (was {self.failing_before}); largest difference "
                         f"{self.residual:.2e}")
        elif self.unexplained and all(name in NUMERIC_TRAPS for name, _ in self.unexplained):
            lines.append("convention: as stated (no knob change improves agreement); the "
                         "differences are numerical, not conventions:")
        else:
            lines.append("no single convention change explains the differences")
        for name, trap in self.unexplained:
            lines.append(f"  {name}: not a convention; suspect {trap}")
        if self.typical_error > 1e-10:
            lines.append(f"  typical (median) difference {self.typical_error:.1e} on the "
                         "cases: beyond float64 round-off, so something is computed in "
                         "reduced precision (a float32 window, constant or arithmetic)")
        return "\n".join(lines)


@dataclass
class ConformanceResult:
    """Everything :func:`check` found; ``str()`` gives the report the CLI prints."""

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
        head = ["case", "input", "value", "oracle", "abs error", "result"]
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
