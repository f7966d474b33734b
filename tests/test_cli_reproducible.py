"""What a result needs to be reproduced and trusted: the linear estimator's asymptotic
test (against its closed form), the default seed recorded, the data range actually used
in ``MMDTestResult.convention``, sidecars that index the matrix (ordered files,
``--color``, the engine that ran, the absolute source), and flags that would do nothing
refused with one line naming them."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest

import ssimref
from ssimref import cli
from ssimref.kernels import RBFMixture, SSIMDistanceKernel
from ssimref.mmd import mmd_test
from ssimref.mmd.two_sample import DEFAULT_SEED


def run(*args):
    return cli.main([str(a) for a in args])


# -- the linear estimator's test ---------------------------------------------------------

X1 = [0.3, -1.2, 0.8, 2.0, -0.4, 1.1, 0.0, -2.2]
Y1 = [1.9, 0.7, 3.1, 1.4, 2.6, 0.2, 1.0, 2.8]


def linear_test_by_hand(X, Y, variance):
    """Gretton et al. (2012), Lemma 14 and Corollary 16, written out with the math
    module: h_i over the quadruples (x_2i, x_2i+1, y_2i, y_2i+1), z = sqrt(p) mean / sd,
    p-value = 1 - Phi(z) = erfc(z / sqrt 2) / 2."""
    k = lambda a, b: math.exp(-(a - b) ** 2 / (2 * variance))  # noqa: E731
    p = len(X) // 2
    h = [k(X[2 * i], X[2 * i + 1]) + k(Y[2 * i], Y[2 * i + 1]) - k(X[2 * i], Y[2 * i + 1])
         - k(X[2 * i + 1], Y[2 * i]) for i in range(p)]
    mean = math.fsum(h) / p
    z = math.sqrt(p) * mean / statistics.stdev(h)
    return mean, 0.5 * math.erfc(z / math.sqrt(2))


def test_linear_estimator_asymptotic_test_matches_its_closed_form():
    result = mmd_test(np.array(X1)[:, None], np.array(Y1)[:, None], RBFMixture((2.0,)),
                      estimator="linear")
    mean, pvalue = linear_test_by_hand(X1, Y1, 2.0)
    assert result.statistic == pytest.approx(mean, rel=1e-14)
    assert result.pvalue == pytest.approx(pvalue, rel=1e-12)
    assert result.method == "asymptotic normal" and result.n_resamples == 0
    assert "Corollary 16" in result.convention and result.seed is None


def test_linear_estimator_refuses_permutation_arguments():
    with pytest.raises(ValueError, match="n_resamples do not apply to the linear"):
        mmd_test([[0.0]] * 4, [[1.0]] * 4, RBFMixture(), 100, estimator="linear")
    with pytest.raises(ValueError, match="at least 2 quadruples"):
        mmd_test([[0.0], [1.0]], [[1.0], [2.0]], RBFMixture(), estimator="linear")


def test_cli_linear_estimator_runs_its_asymptotic_test_by_default(tmp_path, capsys):
    A = np.array(X1).reshape(8, 1, 1) * np.ones((1, 3, 3))
    B = np.array(Y1).reshape(8, 1, 1) * np.ones((1, 3, 3))
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "B.npy", B)
    # an RBF on 9 equal pixels: ||a - b||^2 = 9 (x - y)^2, variance 9 * 2 = scale * med^2
    med = float(np.median([3 * abs(u - v) for i, u in enumerate(X1 + Y1)
                           for v in (X1 + Y1)[i + 1:]]))
    scale = 18.0 / med ** 2
    assert run("mmd", tmp_path / "A.npy", tmp_path / "B.npy", "--kernel", "rbf",
               "--estimator", "linear", "--scales", repr(scale), "--json",
               tmp_path / "r.json") == 0
    out = capsys.readouterr().out
    mean, pvalue = linear_test_by_hand(X1, Y1, 2.0)
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["mmd2"] == pytest.approx(mean, rel=1e-9)
    assert record["p_value"] == pytest.approx(pvalue, rel=1e-9)
    assert record["test"] == "asymptotic normal" and record["permutations"] == 0
    assert "asymptotic normal test of the linear estimator" in out
    assert run("mmd", tmp_path / "A.npy", tmp_path / "B.npy", "--kernel", "rbf",
               "--estimator", "linear", "--permutations", "0") == 0
    assert "not computed" in capsys.readouterr().out


# -- seeds, estimators, data ranges --------------------------------------------------------

@pytest.fixture
def two_sets(tmp_path):
    rng = np.random.default_rng(5)
    np.save(tmp_path / "A.npy", rng.integers(0, 256, (7, 9, 9), dtype=np.uint8))
    np.save(tmp_path / "B.npy", rng.integers(0, 200, (7, 9, 9), dtype=np.uint8))
    return tmp_path / "A.npy", tmp_path / "B.npy"


def test_default_seed_is_fixed_recorded_and_the_pythons(two_sets, tmp_path, capsys):
    a, b = two_sets
    for name in ("r1.json", "r2.json"):
        assert run("mmd", a, b, "--permutations", 50, "--size", 3, "--json",
                   tmp_path / name) == 0
    first, second = (json.loads((tmp_path / n).read_text()) for n in ("r1.json", "r2.json"))
    assert first["seed"] == DEFAULT_SEED == 0 and first["p_value"] == second["p_value"]
    assert f"seed {DEFAULT_SEED}" in capsys.readouterr().out
    A, B = np.load(a), np.load(b)
    # the Python default: the same estimator (unbiased), the same seed, the same p-value
    python = mmd_test(A, B, SSIMDistanceKernel(config=ssimref.SSIMConfig(size=3)), 50)
    assert python.estimator == first["estimator"] == "unbiased"
    assert python.pvalue == first["p_value"] and python.seed == first["seed"]


def test_convention_records_the_data_range_actually_used(two_sets):
    A, B = np.load(two_sets[0]), np.load(two_sets[1])
    result = mmd_test(A, B, SSIMDistanceKernel(config=ssimref.SSIMConfig(size=3)), 20)
    assert "data_range 255" in result.convention and "data_range 255" in result.kernel
    assert "None" not in result.convention
    result = mmd_test(A / 255.0, B / 255.0, SSIMDistanceKernel(
        config=ssimref.SSIMConfig(size=3, data_range=1.0)), 20)
    assert "data_range 1," in result.kernel


# -- sidecars -------------------------------------------------------------------------------

def test_sidecar_indexes_the_matrix(tmp_path, monkeypatch):
    from PIL import Image
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(2)
    names = ["b.png", "a.png", "c.png"]
    images = {}
    for name in names:
        images[name] = rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)
        Image.fromarray(images[name]).save(folder / name)
    assert run("distance", "imgs", "--color", "-o", "D.npy", "--size", "3") == 0
    meta = json.loads((tmp_path / "D.json").read_text())
    assert meta["source"] == str(folder.resolve())  # absolute, whatever the cwd
    assert meta["images"]["color"] is True and meta["images"]["dtype"] == "uint8"
    files = meta["images"]["files"]
    assert sorted(files) == sorted(names)
    assert meta["engine"] in ("numba", "reference") and meta["backend_requested"] == "auto"
    # row i of the matrix is files[i]: recompute two entries from the files themselves
    D = np.load(tmp_path / "D.npy")
    stack = np.stack([images[f] for f in files])
    np.testing.assert_array_equal(D, ssimref.distance_matrix(stack, size=3))


# -- flags that would do nothing ------------------------------------------------------------

@pytest.mark.parametrize("args, flag", [
    (["mmd", "A.npy", "B.npy", "--kernel", "rbf", "--window", "uniform"], "--window"),
    (["mmd", "A.npy", "B.npy", "--kernel", "rbf", "--data-range", "255"], "--data-range"),
    (["mmd", "A.npy", "B.npy", "--kernel", "rbf", "--kind", "eq1"], "--kind"),
    (["mmd", "A.npy", "B.npy", "--kernel", "rbf", "--power", "2"], "--power"),
    (["mmd", "A.npy", "B.npy", "--kernel", "ssim", "--scales", "2"], "--scales"),
    (["mmd", "A.npy", "B.npy", "--kernel", "mean-ssim", "--power", "2"], "--power"),
    (["mmd", "A.npy", "B.npy", "--kernel", "ssim-rbf", "--scales", "1", "2"], "one scale"),
    (["mmd", "A.npy", "B.npy", "--color"], "--color"),
    (["mmd", "A.npy", "B.npy", "--estimator", "linear", "--permutations", "9"],
     "--permutations 9 does nothing"),
    (["distance", "A.npy", "-o", "D.npy", "--color"], "--color"),
    (["distance", "A.npy", "-o", "D.npy", "--key", "images"], "--key"),
    (["distance", "A.npy", "-o", "D.npy", "--window", "uniform", "--sigma", "2"], "--sigma"),
    (["kernel", "digits", "-o", "K.npy", "--color"], "--color"),
])
def test_flags_that_do_nothing_are_refused(args, flag, two_sets, monkeypatch, capsys):
    monkeypatch.chdir(two_sets[0].parent)
    before = sorted(p.name for p in two_sets[0].parent.iterdir())
    assert run(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("ssimref: error: ") and err.count("\n") == 1 and flag in err
    assert sorted(p.name for p in two_sets[0].parent.iterdir()) == before


# -- evaluation: direction and the real-data reference ------------------------------------

def test_gmmn_evaluate_prints_directions_and_the_real_digits(tmp_path, capsys):
    from ssimref.gmmn.evaluate import reference_metrics
    run_dir = tmp_path / "g"
    assert run("gmmn", "train", "--steps", 2, "--batch", 8, "--no-progress", "-o",
               run_dir) == 0
    capsys.readouterr()
    assert run("gmmn", "evaluate", run_dir, "-n", 40, "--parzen-samples", 50) == 0
    lines = {line.split(":", 1)[0].strip(): line for line in
             capsys.readouterr().out.splitlines() if ":" in line}
    reference = reference_metrics(n=40)  # real training digits in place of samples
    for metric, direction in [("mmd2_rbf", "lower is better"),
                              ("mmd2_ssim", "lower is better"),
                              ("parzen_ll", "higher is better"),
                              ("class_kl", "lower is better")]:
        assert f"({direction}" in lines[metric]
        assert lines[metric].endswith(f"[real digits: {reference[metric]:.6g}]")
    stored = json.loads((run_dir / "evaluation.json").read_text())
    assert stored["reference"]["mmd2_ssim"] == reference["mmd2_ssim"]
    assert stored["directions"]["mmd2_ssim"] == "lower is better"
