"""The repository stands alone: no file cites notes kept outside it. Facts the code relies
on live in docs/ (conventions.md, theory.md, mmd.md), with their outside sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import ssimref

ROOT = Path(ssimref.__file__).resolve().parents[1]

# Spelled in pieces so that this file does not match itself.
OUTSIDE = ("REFERENCE" + ".md", "reference" + " notes", "/work/" + "shared")


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / line for line in out.splitlines() if line]


def test_no_file_cites_notes_outside_the_repository():
    offences = []
    for path in _tracked_files():
        rel = path.relative_to(ROOT).as_posix()
        if not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # binary
        for number, line in enumerate(text.splitlines(), 1):
            if any(word.lower() in line.lower() for word in OUTSIDE):
                offences.append(f"{rel}:{number}: {line.strip()}")
    assert not offences, "\n".join(offences)


def test_the_docs_the_code_points_to_exist():
    """Sections that docstrings point to instead of outside notes are there."""
    conventions = (ROOT / "docs" / "conventions.md").read_text()
    for heading in ("## The quantities", "## Matching other libraries",
                    "## What other implementations do", "### The paper's authors' code",
                    "## Baselines", "### Covariance normalisation"):
        assert heading in conventions
    theory = (ROOT / "docs" / "theory.md").read_text()
    for heading in ("## 2. s1, s2 and SSIM are positive-definite kernels",
                    "## 6. Double centring, and new points",
                    "## 7. Distance-induced kernels and the energy distance"):
        assert heading in theory
    mmd = (ROOT / "docs" / "mmd.md").read_text()
    for heading in ("### Median heuristic", "## One weighted form"):
        assert heading in mmd
