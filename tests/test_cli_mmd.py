"""The ``ssimref mmd`` subcommand: printed values equal the library's, conventions shown,
bad input exits 2 with one line."""

import json

import numpy as np
import pytest

from ssimref import SSIMConfig, cli
from ssimref.gmmn import mmd2, mmd_test
from ssimref.kernels import RBFMixture, SSIMDistanceKernel, SSIMRBFKernel


def run(*args):
    return cli.main([str(a) for a in args])


@pytest.fixture
def two_sets(tmp_path, rng):
    A = rng.integers(0, 256, (8, 10, 10), dtype=np.uint8)
    B = (rng.integers(0, 256, (6, 10, 10)) // 3).astype(np.uint8)
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "B.npy", B)
    return tmp_path / "A.npy", tmp_path / "B.npy", A, B


def printed_value(out, prefix):
    line = next(line for line in out.splitlines() if line.startswith(prefix))
    return line.split(":", 1)[1].split()[0]


def test_ssim_kernel_statistic_and_p_value(two_sets, capsys):
    a, b, A, B = two_sets
    assert run("mmd", a, b, "--permutations", 99, "--seed", 3, "--window", "uniform",
               "--size", "3", "--kind", "eq1") == 0
    out = capsys.readouterr().out
    config = SSIMConfig(window="uniform", size=3, data_range=255)
    kernel = SSIMDistanceKernel("eq1", 1, config)
    expected = mmd_test(A, B, kernel, permutations=99, seed=3)
    assert float(printed_value(out, "MMD^2")) == pytest.approx(expected.statistic, rel=1e-9)
    assert float(printed_value(out, "p-value")) == pytest.approx(expected.p_value, rel=1e-5)
    assert "unbiased estimator" in out and "data_range 255" in out and "kind eq1" in out
    assert "(1 + #{T_b >= T - gamma}) / (B + 1) over B = 99" in out and "seed 3" in out


def test_rbf_and_ssim_rbf_kernels_use_the_median_heuristic(two_sets, capsys):
    a, b, A, B = two_sets
    assert run("mmd", a, b, "--kernel", "rbf", "--scales", "0.5", "2", "--permutations", 0,
               "--estimator", "biased") == 0
    out = capsys.readouterr().out
    kernel = RBFMixture.from_median(A, B, scales=(0.5, 2.0))
    assert float(printed_value(out, "MMD^2")) == pytest.approx(mmd2(A, B, kernel), rel=1e-9)
    assert "median" in out and "not computed" in out
    assert run("mmd", a, b, "--kernel", "ssim-rbf", "--permutations", 0, "--size", "3") == 0
    out = capsys.readouterr().out
    kernel = SSIMRBFKernel.from_median(A, B, "eq2", SSIMConfig(size=3, data_range=255))
    assert float(printed_value(out, "MMD^2")) == pytest.approx(
        mmd2(A, B, kernel, "unbiased"), rel=1e-9)


def test_json_record(two_sets, tmp_path, capsys):
    a, b, _, _ = two_sets
    out = tmp_path / "r.json"
    assert run("mmd", a, b, "--kernel", "mean-ssim", "--permutations", 19, "--seed", 0,
               "--size", "3", "--json", out) == 0
    record = json.loads(out.read_text())
    assert record["permutations"] == 19 and record["config"]["size"] == 3
    assert 0 < record["p_value"] <= 1 and "mean-SSIM" in record["kernel"]
    assert run("mmd", a, b, "--json", out) == 2
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--estimator", "linear", "--permutations", "5"], "--permutations 5 does nothing"),
    (["--permutations", "-1"], "permutations"),
    (["--size", "13"], "--size 13 is larger"),
    (["{float}"], "--data-range is required"),
])
def test_bad_input_exits_2_with_one_line(args, message, two_sets, tmp_path, capsys):
    a, b, A, _ = two_sets
    np.save(tmp_path / "F.npy", A.astype(float))
    args = [x.format(float=tmp_path / "F.npy") for x in args]
    first = args.pop(0) if args and args[0].endswith(".npy") else a
    assert run("mmd", first, b, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("ssimref: error:") and err.count("\n") == 1 and message in err
