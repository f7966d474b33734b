"""The package's layer rules hold: import-linter's contracts (pyproject.toml) and the rule
that private names (a leading underscore) stay private to their module."""

from __future__ import annotations

import ast
import os
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import ssimref

ROOT = Path(ssimref.__file__).resolve().parents[1]
PACKAGE = ROOT / "ssimref"


def _contracts():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"]


def test_import_linter_contracts_hold():
    """import-linter checks the contracts of pyproject.toml on the package's import graph."""
    pytest.importorskip("importlinter")
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, "
            "no_logo=True))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.split("Contracts:")[-1].split("kept")[0]


def test_every_module_is_bound_by_the_no_cli_contract():
    """A new top-level module cannot slip past "nothing imports the command line"."""
    contract = next(c for c in _contracts() if c["name"] == "nothing imports the command line")
    modules = {f"ssimref.{m.name}" for m in pkgutil.iter_modules([str(PACKAGE)])
               if m.name not in ("cli", "__main__")}
    assert modules <= set(contract["source_modules"]), sorted(
        modules - set(contract["source_modules"]))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_uses_another_modules_private_names():
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        imported_modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _resolve(module, node, path.name == "__init__.py")
                if not source.startswith("ssimref"):
                    continue
                for alias in node.names:
                    if _private(alias.name):
                        offences.append(f"{module}: from {source} import {alias.name}")
                    elif (PACKAGE.parent / (source.replace(".", "/") + "/" + alias.name)
                          ).with_suffix(".py").exists():
                        imported_modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("ssimref."):
                        imported_modules.add(alias.asname or alias.name.split(".")[0])
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in imported_modules and _private(node.attr)):
                offences.append(f"{module}: {node.value.id}.{node.attr}")
    assert not offences, "\n".join(offences)
