"""Every output of every command is checked before any work: a missing folder, a folder
that is a file, a folder that refuses new files, an existing file without ``--force``, a
folder given as a file. The cases are generated from the command table: every option
that names an output must have a case here, so a new one cannot go unchecked."""

from __future__ import annotations

import argparse
import errno
import importlib
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from ssimref import cli
from ssimref.io import atomic_path, check_writable, save_json

#: Options that name what a command writes.
OUTPUT_OPTIONS = {"-o", "--output", "-o-test", "--output-test", "--plot", "--json"}

#: (command, option) -> argv with {out} where the output goes and the suffix it takes.
FILE_OUTPUTS = {
    ("distance", "-o"): (["distance", "X.npy", "-o", "{out}"], ".npy"),
    ("kernel", "-o"): (["kernel", "X.npy", "-o", "{out}"], ".npy"),
    ("kernel", "-o-test"): (["kernel", "X.npy", "-o", "K.npy", "--test", "X.npy",
                             "-o-test", "{out}"], ".npy"),
    ("kernel", "--plot"): (["kernel", "X.npy", "-o", "K.npy", "--plot", "{out}"], ".png"),
    ("mmd", "--json"): (["mmd", "X.npy", "X.npy", "--json", "{out}"], ".json"),
    ("sample", "-o"): (["sample", "RUN", "-o", "{out}"], ".png"),
    ("gmmn sample", "-o"): (["gmmn", "sample", "RUN", "-o", "{out}"], ".npy"),
}
#: Commands whose output is a folder they create.
FOLDER_OUTPUTS = {("demo", "-o"): ["demo", "-o", "{out}"],
                  ("gmmn experiment", "-o"): ["gmmn", "experiment", "-o", "{out}"],
                  ("experiment paper", "-o"): ["experiment", "paper", "-o", "{out}"],
                  ("gmmn train", "-o"): ["gmmn", "train", "-o", "{out}"]}


def _commands(parser: argparse.ArgumentParser, prefix: str = ""):
    """(command path, its parser) for every leaf command of the table."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
        return
    for name, sub in subs[0].choices.items():
        yield from _commands(sub, f"{prefix} {name}".strip())


def output_options():
    found = set()
    for command, parser in _commands(cli.build_parser()):
        for action in parser._actions:
            for option in set(action.option_strings) & OUTPUT_OPTIONS:
                if option.startswith("--") and set(action.option_strings) & OUTPUT_OPTIONS \
                        - {option}:
                    continue  # the long spelling of a short option seen beside it
                found.add(("train" if command.startswith("train ") else command, option))
    return found


def test_every_output_option_of_the_command_table_has_a_case():
    covered = set(FILE_OUTPUTS) | set(FOLDER_OUTPUTS) | {("train", "-o")}
    assert output_options() == covered


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("X.npy", np.random.default_rng(0).integers(0, 256, (5, 9, 9), dtype=np.uint8))
    (tmp_path / "RUN").mkdir()
    (tmp_path / "afile").write_text("a file, not a folder")
    return tmp_path


# Modules that bind the patched names at import: imported first, so that they keep the
# real functions once the patches are undone
PREIMPORT = ("ssimref.gmmn", "ssimref.gmmn.evaluate", "ssimref.gmmn.experiment",
             "ssimref.generative.evaluate", "ssimref.generative.runs", "ssimref.demo")


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test when a command reaches its inputs or its computation."""
    for module in PREIMPORT:
        importlib.import_module(module)

    def refuse(*args, **kwargs):
        raise AssertionError("the command started its work before checking its outputs")

    for module in ("distance", "kernel", "mmd"):
        monkeypatch.setattr(f"ssimref.cli.{module}.load_images", refuse)
    monkeypatch.setattr("ssimref.generative.runs.load_run", refuse)
    monkeypatch.setattr(importlib.import_module("ssimref.gmmn.train"), "load_run", refuse)
    monkeypatch.setattr("ssimref.demo.load_images", refuse)


def _deny_new_files(monkeypatch, folder):
    """Make ``folder`` refuse new files, as a read-only folder does for a normal user
    (the tests may run as root, whom permissions do not stop)."""
    touch = pathlib.Path.touch

    def denied(self, *args, **kwargs):
        if self.parent.resolve() == folder.resolve():
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return touch(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "touch", denied)


def _one_line(capsys):
    err = capsys.readouterr().err
    assert err.startswith("ssimref: error: ") and err.count("\n") == 1, err
    return err


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


BAD = ["missing folder", "folder is a file", "no new files", "exists", "is a folder"]


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("case", sorted(FILE_OUTPUTS), ids=" ".join)
def test_a_bad_file_output_exits_2_naming_it_before_any_work(case, bad, work, no_work,
                                                           monkeypatch, capsys):
    argv, suffix = FILE_OUTPUTS[case]
    out = {"missing folder": f"nowhere/out{suffix}", "folder is a file": f"afile/out{suffix}",
           "no new files": f"ro/out{suffix}", "exists": f"old{suffix}",
           "is a folder": f"dir{suffix}"}[bad]
    (work / "ro").mkdir()
    (work / f"old{suffix}").write_text("keep me")
    (work / f"dir{suffix}").mkdir()
    if bad == "no new files":
        _deny_new_files(monkeypatch, work / "ro")
    before = _listing(work)
    assert cli.main([a.format(out=out) for a in argv]) == 2
    err = _one_line(capsys)
    _, option = case
    assert f"{option} {out}" in err  # the option and the path the user gave
    assert ".tmp" not in err and ".probe" not in err
    expected = {"missing folder": "does not exist", "folder is a file": "is a file",
                "no new files": "Permission denied", "exists": "--force",
                "is a folder": "is a folder"}[bad]
    assert expected in err
    assert _listing(work) == before  # nothing written, nothing started
    assert (work / f"old{suffix}").read_text() == "keep me"


@pytest.mark.parametrize("case", sorted(FOLDER_OUTPUTS), ids=" ".join)
def test_a_folder_output_under_a_file_exits_2_and_writes_nothing(case, work, no_work, capsys):
    before = _listing(work)
    assert cli.main([a.format(out="afile/run") for a in FOLDER_OUTPUTS[case]]) == 2
    assert "afile" in _one_line(capsys)
    assert _listing(work) == before


def test_demo_folder_that_refuses_files(work, no_work, monkeypatch, capsys):
    (work / "ro").mkdir()
    _deny_new_files(monkeypatch, work / "ro")
    assert cli.main(["demo", "-o", "ro/demo"]) == 2
    err = _one_line(capsys)
    assert "--output ro/demo" in err and "Permission denied" in err
    assert not (work / "ro" / "demo").exists()


@pytest.mark.parametrize("command", [["evaluate", "RUN"], ["gmmn", "evaluate", "RUN"]])
def test_evaluate_checks_its_file_in_the_run_folder_first(command, work, no_work,
                                                          monkeypatch, capsys):
    _deny_new_files(monkeypatch, work / "RUN")
    assert cli.main(command) == 2
    err = _one_line(capsys)
    assert "RUN/evaluation.json" in err and "Permission denied" in err
    assert list((work / "RUN").iterdir()) == []


def test_atomic_writes_name_the_output_not_the_temporary_file(tmp_path):
    """An OS error while the hidden temporary file is written (a full disk, a permission
    taken away during the job) names the file the user asked for, and the temporary file
    is gone."""
    target = tmp_path / "r.json"
    with pytest.raises(OSError) as info:
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert ".tmp" not in str(info.value) and str(target) in str(info.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(PermissionError, match="r.json"):
        with atomic_path(target) as tmp:
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp))
    with pytest.raises(ValueError, match="unrelated"):  # other errors pass unchanged
        with atomic_path(target):
            raise ValueError("unrelated")
    save_json(target, {"a": 1})
    assert target.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_check_writable_leaves_no_trace(tmp_path):
    assert check_writable(tmp_path / "x.npy", name="-o") == tmp_path / "x.npy"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "x.npy").write_bytes(b"")
    with pytest.raises(FileExistsError, match="-o .*x.npy exists; pass --force"):
        check_writable(tmp_path / "x.npy", name="-o")
    check_writable(tmp_path / "x.npy", name="-o", force=True)
    check_writable(tmp_path / "store.zarr", name="-o", folder_only=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


@pytest.mark.parametrize("command", [["distance"], ["kernel"]])
def test_output_that_is_the_input_is_refused_even_with_force(tmp_path, command):
    # the matrix would replace the images it is computed from
    images = tmp_path / "g.npy"
    stack = np.random.default_rng(0).random((4, 8, 8))
    np.save(images, stack)
    code = subprocess.run([sys.executable, "-m", "ssimref", *command, str(images), "-o",
                           str(images), "--data-range", "1", "--force"],
                          capture_output=True, text=True)
    assert code.returncode == 2
    assert "would overwrite the input" in code.stderr and len(code.stderr.splitlines()) == 1
    np.testing.assert_array_equal(np.load(images), stack)  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.npy"]
