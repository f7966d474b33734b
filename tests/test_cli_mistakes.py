"""Every user mistake exits with status 2 and one line on stderr, never a traceback: the
cases are generated from the command table (every leaf command, every option of a type or
with choices, every image input), so a new command or option is covered when it is
added.

- parsing: an unknown option, a word where a number goes, a choice not offered, nothing
  given (exit 2, one line: argparse's usage block is not printed);
- values: every numeric option given -1 is refused with a line naming it, unless -1 means
  something (a seed, an axis counted from the end); the command's work is replaced by a
  sentinel, so a value that passes validation is seen reaching it instead of running;
- image inputs: a boolean stack without --data-range, a pickled array, a 2-D array, a
  text file under a .npy name, a missing path, an empty folder, an .npz with no images.
"""

from __future__ import annotations

import argparse
import importlib

import numpy as np
import pytest

from ssimref import cli

#: The shortest valid invocation of each leaf command ({X}: an image stack, RUN: a
#: folder); the value under test is added to it.
BASE = {
    "distance": ["distance", "X.npy", "-o", "D.npy"],
    "kernel": ["kernel", "X.npy", "-o", "K.npy"],
    "mmd": ["mmd", "X.npy", "X.npy"],
    "demo": ["demo", "-o", "demo"],
    "verify": ["verify"],
    "sample": ["sample", "RUN", "-o", "s.png"],
    "evaluate": ["evaluate", "RUN"],
    "gmmn train": ["gmmn", "train", "-o", "R"],
    "gmmn sample": ["gmmn", "sample", "RUN", "-o", "s.png"],
    "gmmn evaluate": ["gmmn", "evaluate", "RUN"],
    "gmmn experiment": ["gmmn", "experiment", "-o", "E"],
    "experiment paper": ["experiment", "paper", "-o", "E"],
}
#: Numeric options for which -1 is a valid value.
NEGATIVE_ALLOWED = {"--channel-axis"}


# Modules that bind the patched names at import: imported first, so that they keep the
# real functions once the patches are undone
PREIMPORT = ("ssimref.gmmn", "ssimref.gmmn.evaluate", "ssimref.gmmn.experiment",
             "ssimref.experiments",
             "ssimref.generative.evaluate", "ssimref.generative.runs", "ssimref.demo")


class Reached(BaseException):
    """The command passed its checks and started its work (not caught by the CLI)."""


def _commands(parser: argparse.ArgumentParser, prefix: str = ""):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
        return
    for name, sub in subs[0].choices.items():
        yield from _commands(sub, f"{prefix} {name}".strip())


COMMANDS = dict(_commands(cli.build_parser()))


def _base(command):
    if command.startswith("train "):
        return ["train", command.split()[1], "-o", "R"]
    return list(BASE[command])


def _visible(action):
    return action.option_strings and action.help != argparse.SUPPRESS


def _numeric_options():
    for command, parser in COMMANDS.items():
        for action in parser._actions:
            if _visible(action) and action.type in (int, float):
                yield command, action.option_strings[-1]


def _choice_options():
    for command, parser in COMMANDS.items():
        for action in parser._actions:
            if _visible(action) and action.choices and action.type is not None or (
                    _visible(action) and action.choices):
                yield command, action.option_strings[-1]


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.save("X.npy", rng.integers(0, 256, (5, 9, 9), dtype=np.uint8))
    np.save("bool.npy", rng.random((5, 9, 9)) > 0.5)
    np.save("flat.npy", rng.integers(0, 256, (5, 81), dtype=np.uint8))
    np.save("pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez("labels.npz", labels=np.arange(5), names=np.arange(3))
    (tmp_path / "text.npy").write_text("not an array")
    (tmp_path / "empty").mkdir()
    (tmp_path / "RUN").mkdir()

    def reached(*args, **kwargs):
        raise Reached

    for module in PREIMPORT:
        importlib.import_module(module)

    for module, name in [("ssimref.cli.distance", "prepare_distance_job"),
                         ("ssimref.cli.kernel", "prepare_kernel_job"),
                         ("ssimref.mmd", "mmd_test"), ("ssimref.mmd", "mmd2"),
                         ("ssimref.demo", "distance_matrix"),
                         ("ssimref.verification.conformance", "check"),
                         ("ssimref.generative.runs", "load_run"),
                         ("ssimref.generative.runs", "train"),
                         ("ssimref.gmmn.train", "load_run"), ("ssimref.gmmn.train", "train"),
                         ("ssimref.gmmn.experiment", "run_experiment"),
                         ("ssimref.experiments", "run_paper"),
                         ("ssimref.experiments", "plan_paper"),
                         ("ssimref.experiments", "write_report")]:
        monkeypatch.setattr(importlib.import_module(module), name, reached)
    return tmp_path


def _exits_2_with_one_line(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, (argv, err)
    assert err.startswith("ssimref: error: ") and err.count("\n") == 1, (argv, err)
    assert "Traceback" not in err
    return err


def test_the_table_has_a_base_for_every_command():
    assert {c for c in COMMANDS if not c.startswith("train ")} == set(BASE)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_parsing_mistakes(command, work, capsys):
    base = _base(command)
    err = _exits_2_with_one_line(base + ["--no-such-option"], capsys)
    assert "--no-such-option" in err
    parser = COMMANDS[command]
    if any(a.required for a in parser._actions):
        err = _exits_2_with_one_line(command.split(), capsys)
        assert "required" in err
    for action in parser._actions:
        if not _visible(action):
            continue
        option = action.option_strings[-1]
        if action.type in (int, float):
            err = _exits_2_with_one_line(base + [option, "abc"], capsys)
            assert option in err and "'abc'" in err
        if action.choices:
            bad = "7" if action.type in (int, float) else "no-such-choice"
            err = _exits_2_with_one_line(base + [option, bad], capsys)
            assert option in err and "invalid choice" in err


@pytest.mark.parametrize("command, option", sorted(set(_numeric_options())))
def test_negative_numbers_are_refused_naming_the_option(command, option, work, capsys):
    argv = _base(command) + [option, "-1"]
    if option in NEGATIVE_ALLOWED:
        try:
            assert cli.main(argv) in (0, 2)
        except Reached:
            pass
        return
    try:
        err = _exits_2_with_one_line(argv, capsys)
    except Reached:
        pytest.fail(f"{' '.join(argv)} was accepted")
    flag = option.lstrip("-").replace("-", "_")
    assert option in err or flag in err, err


def _image_inputs():
    for command, parser in COMMANDS.items():
        for action in parser._actions:
            if action.dest in ("images", "a", "b", "test"):
                yield command, action.dest


BAD_IMAGES = {"bool.npy": "--data-range", "pickled.npy": "pickle",
              "flat.npy": "", "text.npy": "", "missing.npy": "missing.npy",
              "empty": "empty", "labels.npz": "--key"}


@pytest.mark.parametrize("bad", sorted(BAD_IMAGES))
@pytest.mark.parametrize("command, dest", sorted(set(_image_inputs())))
def test_bad_image_inputs(command, dest, bad, work, capsys):
    argv = _base(command)
    if dest == "test":
        argv += ["--test", bad, "-o-test", "T.npy"]
    else:
        argv[argv.index("X.npy") + (1 if dest == "b" else 0)] = bad
    err = _exits_2_with_one_line(argv, capsys)
    assert BAD_IMAGES[bad] in err


def test_stacks_of_two_shapes_are_refused_for_their_shapes_first(tmp_path, capsys):
    """A and B of different image shapes and of dtypes that do not imply a data range: the
    shapes are the mistake to report (a data range would not make them comparable)."""
    np.save(tmp_path / "a.npy", np.zeros((3, 8, 8)))
    np.save(tmp_path / "b.npy", np.zeros((3, 9, 9)))
    err = _exits_2_with_one_line(["mmd", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")],
                                 capsys)
    assert "A and B must hold images of the same shape" in err and "(8, 8)" in err
    assert "--data-range" not in err


def test_8_bit_values_with_the_range_of_unit_images_are_refused(tmp_path, capsys):
    x = np.zeros((3, 8, 8), np.uint8)
    x[:, ::2] = 200
    np.save(tmp_path / "x.npy", x)
    for argv in (["distance", str(tmp_path / "x.npy"), "-o", str(tmp_path / "D.npy")],
                 ["kernel", str(tmp_path / "x.npy"), "-o", str(tmp_path / "K.npy")],
                 ["mmd", str(tmp_path / "x.npy"), str(tmp_path / "x.npy")]):
        err = _exits_2_with_one_line(argv + ["--data-range", "1", "--size", "3"], capsys)
        assert "--data-range is 1 but the values of" in err and "span 0 to 200" in err
        # the fix names a range at least the span, not the value just refused
        assert "at least 200" in err and "--data-range 255" in err
        assert "--data-range 1 " not in err
        assert not (tmp_path / "D.npy").exists() and not (tmp_path / "K.npy").exists()
