"""The README's Python example runs and prints what it says."""

import re
from pathlib import Path

import pytest

from ssimref.verification import oracle

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["D"].shape == (500, 500)
    assert namespace["s1"].shape == (6, 6)
    printed = [float(v) for v in capsys.readouterr().out.split()]
    X, cfg = namespace["X"], namespace["cfg"]
    assert printed[0] == pytest.approx(oracle.ssim(X[0], X[1], cfg), rel=1e-12)
    assert printed[1] == pytest.approx(oracle.distance(X[0], X[1], cfg, "eq1"), rel=1e-12)
    assert printed[2] > 0.94  # SSIM-kernel SVC on the last 797 digits; measured 0.954


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    text = README.read_text()
    commands = re.findall(r"^    (python -m pip install .*)$", text, re.M)
    assert len(commands) == 2
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1] in ci
