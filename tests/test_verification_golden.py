"""The shipped golden file: it regenerates from the oracle, describes its cases exactly,
and ssimref's fast functions reproduce it."""

import math
from decimal import Decimal

import numpy as np
import pytest

import ssimref
from ssimref import SSIMConfig
from ssimref.verification.cases import corpus
from ssimref.verification.make_golden import (GOLDEN_CONFIGS, GOLDEN_PATH, QUANTITIES, build,
                                              case_arrays, dumps, load_golden, main)

GOLDEN = load_golden()


def _configs():
    return [(case, name) for case, per_config in GOLDEN["values"].items()
            for name in per_config]


def test_file_is_package_data_and_records_its_generation():
    assert GOLDEN_PATH.name == "golden.json" and GOLDEN_PATH.exists()
    assert GOLDEN["format"] == "ssimref-golden/1"
    assert GOLDEN["configs"] == GOLDEN_CONFIGS
    assert set(GOLDEN["versions"]) == {"ssimref", "numpy", "python"}
    assert set(GOLDEN["cases"]) == {c.name for c in corpus(large=False)}


def test_cases_are_stored_exactly():
    for case in corpus(large=False):
        x, y = case_arrays(GOLDEN["cases"][case.name])
        assert x.dtype == case.x.dtype and x.shape == case.x.shape
        np.testing.assert_array_equal(x, case.x)
        np.testing.assert_array_equal(y, case.y)
        assert GOLDEN["cases"][case.name]["data_range"] == case.data_range
        if case.layout == "F":
            assert x.flags.f_contiguous


def _close(a, b, rel=1e-13, abs_=1e-14):
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


@pytest.mark.parametrize("names", [["constant_images", "tiny", "odd_size"]])
def test_regenerating_a_subset_gives_the_file(names):
    fresh = build(names)
    for name in names:
        assert fresh["cases"][name] == GOLDEN["cases"][name]
        for config, values in fresh["values"][name].items():
            stored = GOLDEN["values"][name][config]
            assert stored.get("exact") == values.get("exact")
            for q in QUANTITIES:
                assert _close(stored[q], values[q]), (name, config, q)


@pytest.mark.slow
def test_regenerating_everything_gives_the_file(tmp_path):
    out = tmp_path / "golden.json"
    assert main(["--output", str(out)]) == 0
    fresh = load_golden(out)
    assert fresh["cases"] == GOLDEN["cases"]
    for name, per_config in fresh["values"].items():
        for config, values in per_config.items():
            stored = GOLDEN["values"][name][config]
            assert stored.get("exact") == values.get("exact")
            for q in QUANTITIES:
                assert _close(stored[q], values[q]), (name, config, q)


def test_generator_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "golden.json"
    out.write_text("{}")
    assert main(["--output", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_exact_values_agree_with_float_values():
    checked = 0
    for name, config in _configs():
        values = GOLDEN["values"][name][config]
        if "exact" not in values:
            continue
        for q in QUANTITIES:
            exact = float(Decimal(values["exact"][q]))
            assert math.isclose(values[q], exact, rel_tol=1e-12, abs_tol=1e-12), \
                (name, config, q, values[q], exact)
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("name,config", _configs())
def test_fast_functions_match_the_golden_values(name, config):
    entry = GOLDEN["cases"][name]
    x, y = case_arrays(entry)
    cfg = SSIMConfig(data_range=entry["data_range"], **GOLDEN["configs"][config])
    values = GOLDEN["values"][name][config]
    reference = values.get("exact", values)
    ref = {q: float(Decimal(reference[q])) if isinstance(reference[q], str) else reference[q]
           for q in QUANTITIES}
    s1, s2 = ssimref.ssim_components(x, y, cfg)
    got = {"ssim": ssimref.ssim(x, y, cfg), "s1_mean": float(np.mean(s1)),
           "s2_mean": float(np.mean(s2))}
    for kind in ("eq1", "eq1-uncentered", "eq2"):
        got[f"d2_{kind}"] = ssimref.distance(x, y, kind, cfg, squared=True)
    # D^2 sums up to a few hundred windows: compare relative to the number of terms
    n_terms = s1.size
    for q in QUANTITIES:
        scale = n_terms if q.startswith("d2") else 1
        assert math.isclose(got[q], ref[q], rel_tol=1e-10, abs_tol=1e-12 * scale), \
            (q, got[q], ref[q])


def test_dumps_keeps_one_line_per_image():
    text = dumps(build(["tiny"], exact=False))
    lines = [line for line in text.splitlines() if line.lstrip().startswith('"x"')]
    assert len(lines) == 1 and lines[0].count("[") == 12  # 11 rows + the outer list
