"""The public API is typed and documented: mypy passes on the package (its configuration is
``[tool.mypy]`` in pyproject.toml), every public function and method is fully annotated,
and every public docstring has the numpydoc sections its signature calls for."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

import ssimref

ROOT = Path(ssimref.__file__).resolve().parents[1]
PACKAGE = ROOT / "ssimref"
MYPY = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]


def _checked_files() -> list[Path]:
    """The package's modules that mypy checks (those its ``exclude`` patterns leave)."""
    patterns = [re.compile(p) for p in MYPY["exclude"]]
    return [path for path in sorted(PACKAGE.rglob("*.py"))
            if not any(p.search(path.relative_to(ROOT).as_posix()) for p in patterns)]


def _public_functions(path: Path):
    """``(where, node)`` for every public function and method of a module (methods of
    public classes; ``__init__`` counts, other dunders do not; ``@overload`` stubs are
    skipped, their implementation is checked)."""
    def visit(body, prefix):
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.name.startswith("_") and node.name != "__init__":
                    continue
                if any(isinstance(d, ast.Name) and d.id == "overload"
                       for d in node.decorator_list):
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno} {prefix}{node.name}"
                yield where, node

    yield from visit(ast.parse(path.read_text(), str(path)).body, "")


def _parameters(node: ast.FunctionDef) -> list[ast.arg]:
    args = node.args
    named = args.posonlyargs + args.args + args.kwonlyargs
    if named and named[0].arg in ("self", "cls"):
        named = named[1:]
    return named + [a for a in (args.vararg, args.kwarg) if a is not None]


def test_the_checked_files_are_the_package_less_the_listed_exclusions():
    """The exclusions are the modules still to be annotated, nothing more: the core,
    kernels, statistics, engines, data sets and the command line are all checked."""
    checked = {p.relative_to(PACKAGE).as_posix() for p in _checked_files()}
    for module in ("__init__.py", "config.py", "pairwise.py", "kernels/ssim_kernel.py",
                   "mmd/estimators.py", "engines/numba_engine.py", "datasets.py",
                   "cli/__init__.py"):
        assert module in checked
    assert not any(m.startswith(("verification/", "gmmn/")) for m in checked)


def test_every_public_function_and_method_is_annotated():
    missing = []
    total = 0
    for path in _checked_files():
        for where, node in _public_functions(path):
            total += 1
            unannotated = [a.arg for a in _parameters(node) if a.annotation is None]
            if unannotated or (node.returns is None and node.name != "__init__"):
                missing.append(f"{where}: {unannotated or 'return'}")
    assert total > 200  # the walk found the API
    assert not missing, "\n".join(missing)


def _sections(doc: str) -> set[str]:
    return set(re.findall(r"^\s*(\w[\w ]*)\n\s*-{3,}\s*$", doc, re.M))


def test_public_docstrings_have_the_numpydoc_sections_their_signature_needs():
    """Parameters when there are parameters, Returns (or Yields) when something is
    returned, Raises when the body raises; every public class has a docstring."""
    problems = []
    for path in _checked_files():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") \
                    and not ast.get_docstring(node):
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno} class {node.name}")
        for where, node in _public_functions(path):
            if node.name == "__init__":
                continue  # documented in the class docstring
            doc = ast.get_docstring(node)
            if not doc:
                problems.append(f"{where}: no docstring")
                continue
            sections = _sections(doc)
            is_property = any(isinstance(d, ast.Name) and d.id == "property"
                              for d in node.decorator_list)
            if _parameters(node) and not is_property and "Parameters" not in sections:
                problems.append(f"{where}: no Parameters")
            returns_none = isinstance(node.returns, ast.Constant) and node.returns.value is None
            if not returns_none and not is_property and not {"Returns", "Yields"} & sections:
                problems.append(f"{where}: no Returns")
            if any(isinstance(n, ast.Raise) and n.exc is not None for n in ast.walk(node)) \
                    and "Raises" not in sections:
                problems.append(f"{where}: raises, no Raises")
    assert not problems, "\n".join(problems)


def test_mypy_passes_on_the_package(tmp_path_factory):
    """mypy with the configuration of pyproject.toml. The cache lives beside pytest's
    temporary folders (kept across runs), so a run after the first takes seconds."""
    pytest.importorskip("mypy")
    cache = tmp_path_factory.getbasetemp().parent / "mypy-cache"
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache),
                             "--no-error-summary"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stdout + result.stderr
    assert seconds < 300, f"mypy took {seconds:.0f} s"


def _see_also(doc: str) -> list[str]:
    """The names of a numpydoc "See Also" section."""
    lines = doc.splitlines()
    names = []
    for i, line in enumerate(lines[:-1]):
        if line.strip() != "See Also" or set(lines[i + 1].strip()) != {"-"}:
            continue
        for entry in lines[i + 2:]:
            if not entry.strip():
                break
            if not entry.startswith(" "):
                names += [n.strip() for n in entry.split(" : ")[0].split(",") if n.strip()]
    return names


def _resolves(name: str, module, owner) -> bool:
    if not name.startswith("ssimref."):
        first = name.split(".")[0]
        return (owner is not None and hasattr(owner, first)) or hasattr(module, first)
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        try:
            for attr in parts[k:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def test_see_also_entries_resolve():
    """Every name in a public "See Also" section is an object: in the same module (or
    class), or written out from ``ssimref``."""
    unresolved = []
    for path in _checked_files():
        rel = path.relative_to(ROOT).with_suffix("")
        if rel.name == "__main__":
            continue
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        module = pytest.importorskip(name) if "numba" in name else importlib.import_module(
            name)
        for value in list(vars(module).values()):
            if not (inspect.isfunction(value) or inspect.isclass(value)) \
                    or value.__module__ != name:
                continue
            owner = value if inspect.isclass(value) else None
            members = [value]
            if owner is not None:
                members += [m.__func__ if isinstance(m, (classmethod, staticmethod)) else m
                            for m in vars(owner).values()]
            for member in members:
                if not (inspect.isfunction(member) or inspect.isclass(member)):
                    continue
                for entry in _see_also(inspect.getdoc(member) or ""):
                    if not _resolves(entry, module, owner):
                        unresolved.append(f"{name}.{member.__qualname__}: {entry}")
    assert not unresolved, "\n".join(unresolved)
