"""`ssimref kernel` and `ssimref demo`."""

import json

import numpy as np
import pytest

from ssimref.cli import main
from ssimref.kernels import ssim_kernel
from ssimref.plotting import have_matplotlib

CONV = ["--window", "uniform", "--size", "3"]
needs_matplotlib = pytest.mark.skipif(not have_matplotlib(), reason="matplotlib missing")


@pytest.fixture
def image_files(tmp_path, rng):
    train = rng.integers(0, 256, size=(12, 9, 9), dtype=np.uint8)
    test = rng.integers(0, 256, size=(4, 9, 9), dtype=np.uint8)
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "test.npy", test)
    return tmp_path, train, test


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("power", ["1", "2"])
def test_kernel_writes_the_training_and_test_kernels(image_files, capsys, power):
    folder, train, test = image_files
    code, out, err = run(["kernel", folder / "train.npy", "-o", folder / "K.npy", "--test",
                          folder / "test.npy", "-o-test", folder / "Kt.npy", "--power",
                          power, "--kind", "eq1", *CONV], capsys)
    assert code == 0, err
    K = np.load(folder / "K.npy", allow_pickle=False)
    Kt = np.load(folder / "Kt.npy", allow_pickle=False)
    p = float(power)
    np.testing.assert_allclose(K, ssim_kernel(train, kind="eq1", power=p, window="uniform",
                                              size=3), atol=1e-13)
    assert (K == K.T).all()
    np.testing.assert_allclose(Kt, ssim_kernel(test, train, kind="eq1", power=p,
                                               window="uniform", size=3), atol=1e-13)
    meta = json.loads((folder / "K.json").read_text())
    assert meta["power"] == p and meta["kind"] == "eq1" and meta["config"]["size"] == 3
    assert meta["config"]["data_range"] == 255.0 and meta["shape"] == [12, 12]
    meta_test = json.loads((folder / "Kt.json").read_text())
    assert meta_test["shape"] == [4, 12] and "training statistics" in meta_test["what"]
    assert "wrote" in out


def test_kernel_refuses_to_overwrite_without_force(image_files, capsys):
    folder, _, _ = image_files
    argv = ["kernel", folder / "train.npy", "-o", folder / "K.npy", *CONV]
    assert run(argv, capsys)[0] == 0
    code, _, err = run(argv, capsys)
    assert code == 2 and err.startswith("ssimref: error:") and "--force" in err
    assert err.count("\n") == 1
    assert run([*argv, "--force"], capsys)[0] == 0


@pytest.mark.parametrize("extra, message", [
    (["--test", "TEST"], "go together"),
    (["-o-test", "OUT"], "go together"),
    (["--power", "3"], "power must be in"),
    (["--plot", "K.jpg"], "must end in .png"),
    (["--size", "11"], "larger than the images"),
])
def test_kernel_bad_arguments_exit_2_with_one_line(image_files, capsys, extra, message):
    folder, _, _ = image_files
    extra = [str(folder / "test.npy") if e == "TEST" else str(folder / "Kt.npy")
             if e == "OUT" else e for e in extra]
    code, _, err = run(["kernel", folder / "train.npy", "-o", folder / "K.npy", *CONV,
                        *extra], capsys)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (folder / "K.npy").exists()


def test_kernel_refuses_test_images_of_another_shape(image_files, capsys):
    folder, _, _ = image_files
    np.save(folder / "small.npy", np.zeros((2, 8, 8), dtype=np.uint8))
    code, _, err = run(["kernel", folder / "train.npy", "-o", folder / "K.npy", "--test",
                        folder / "small.npy", "-o-test", folder / "Kt.npy", *CONV], capsys)
    assert code == 2 and "IMAGES and --test must hold images of the same shape" in err
    assert "(8, 8)" in err
    assert not (folder / "K.npy").exists()


def test_kernel_check_psd_reports_the_spectrum(image_files, capsys):
    folder, _, _ = image_files
    code, out, _ = run(["kernel", folder / "train.npy", "-o", folder / "K.npy", *CONV,
                        "--check-psd"], capsys)
    assert code == 0 and "spectrum: psd" in out
    meta = json.loads((folder / "K.json").read_text())
    assert meta["psd"]["verdict"] in ("psd", "psd within round-off")


@needs_matplotlib
def test_kernel_plot(image_files, capsys):
    folder, _, _ = image_files
    code, _, err = run(["kernel", folder / "train.npy", "-o", folder / "K.npy", *CONV,
                        "--plot", folder / "K.png"], capsys)
    assert code == 0, err
    assert (folder / "K.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_kernel_on_digits(tmp_path, capsys):
    """`digits` as IMAGES: data range 16 from the source (1.6 million pairs)."""
    code, out, err = run(["kernel", "digits", "-o", tmp_path / "K.npy", "--window",
                          "uniform", "--size", "7"], capsys)
    assert code == 0, err
    K = np.load(tmp_path / "K.npy")
    assert K.shape == (1797, 1797) and "data_range 16" in out


def test_demo_quick_run(tmp_path, capsys):
    folder = tmp_path / "demo"
    code, out, err = run(["demo", "-o", folder, "--limit", "150", "--seed", "3",
                          "--no-plots"], capsys)
    assert code == 0, err
    assert "seed 3" in out and "5-fold" in out and "105 train / 45 test" in out
    for row in ("SVC, SSIM kernel, Eq. (1) exact", "contrast 0.6, brightness +4",
                "noise sigma 2"):
        assert row in out
    results = json.loads((folder / "results.json").read_text())
    assert results["seed"] == 3 and results["images"] == 150
    assert results["table2"]["train"] == 105 and results["table2"]["test"] == 45
    for row in results["table2"]["accuracy"].values():
        assert set(row) == {"SSIM eq1", "SSIM eq2", "RBF pixels", "linear pixels"}
        assert all(0 <= v <= 1 for v in row.values())
    # clean digits are easy even with 105 training images
    assert results["table1"]["accuracy"]["SSIM eq2"]["mean"] > 0.8
    code, _, err = run(["demo", "-o", folder, "--limit", "150", "--no-plots"], capsys)
    assert code == 2 and "--force" in err


@needs_matplotlib
def test_demo_plots(tmp_path, capsys):
    folder = tmp_path / "demo"
    folder.mkdir()
    code, out, err = run(["demo", "-o", folder, "--limit", "120", "--force"], capsys)
    assert code == 0, err
    for name in ("kernel_pca.png", "kernel_heatmap.png", "results.json"):
        assert (folder / name).exists()
    assert f"into {folder}" in out
    assert not list(folder.glob(".*.tmp"))


def test_demo_bad_limit(tmp_path, capsys):
    code, _, err = run(["demo", "-o", tmp_path / "d", "--limit", "10"], capsys)
    assert code == 2 and "limit" in err


@pytest.mark.slow
def test_full_demo_matches_the_probe_ordering(tmp_path, capsys):
    """The full demo: SSIM eq1 beats RBF on pixels under the lighting change
    0.6 x + 4 (measured: 0.9833 vs 0.9648 with seed 0)."""
    code, out, err = run(["demo", "-o", tmp_path / "demo", "--no-plots"], capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    changed = results["table2"]["accuracy"]["contrast 0.6, brightness +4"]
    assert changed["SSIM eq1"] > changed["RBF pixels"]


def test_demo_without_matplotlib_prints_the_tables(tmp_path, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib fails
    code, out, err = run(["demo", "-o", tmp_path / "d", "--limit", "100"], capsys)
    assert code == 0, err
    assert "Table 1" in out and "Table 2" in out and "plots skipped" in out
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["results.json"]
    code, _, err = run(["kernel", "digits", "-o", tmp_path / "K.npy", "--plot",
                        tmp_path / "K.png"], capsys)
    assert code == 2 and "matplotlib" in err and not (tmp_path / "K.npy").exists()
