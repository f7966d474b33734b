"""The case corpus: deterministic, the promised dtypes and layouts, and built lazily."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ssimref.verification.cases import CASE_NAMES, DESCRIPTIONS, SEED, case, corpus


def test_corpus_is_deterministic_and_has_the_promised_layouts():
    a, b = corpus(large=False), corpus(large=False)
    for ca, cb in zip(a, b):
        np.testing.assert_array_equal(ca.x, cb.x)
        np.testing.assert_array_equal(ca.y, cb.y)
    by_name = {c.name: c for c in a}
    assert by_name["fortran_order"].layout == "F"
    assert by_name["non_contiguous"].layout == "strided"
    assert by_name["uint8_overflow"].x.dtype == np.uint8
    assert by_name["float32_input"].x.dtype == np.float32
    assert by_name["multichannel"].channels == 3
    assert by_name["tiny"].shape == (11, 11)
    x = by_name["uint8_overflow"].x
    assert (x * x).max() < int(x.max()) ** 2  # uint8 products really overflow


def test_cases_are_cached_and_read_only():
    a, b = corpus(large=False), corpus(large=False)
    assert all(ca is cb for ca, cb in zip(a, b))
    assert case("tiny") is next(c for c in a if c.name == "tiny")
    for c in a:
        assert not c.x.flags.writeable and not c.y.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            c.x[(0,) * c.x.ndim] = 1


def test_a_case_does_not_depend_on_which_cases_were_asked_for():
    # corpus order and seeded draws: the golden file stores the pixels of the whole corpus
    from ssimref.verification.make_golden import case_arrays, load_golden
    stored = load_golden()["cases"]
    for name in ("fortran_order", "random_pair"):
        x, y = case_arrays(stored[name])
        np.testing.assert_array_equal(case(name).x, x)
        np.testing.assert_array_equal(case(name).y, y)


def test_importing_and_listing_build_no_case():
    # Every case is drawn from numpy.random.default_rng(SEED): make that raise, then import
    # the whole verification package and the CLI, list the cases, and describe them.
    script = textwrap.dedent(f"""
        import numpy as np
        default_rng = np.random.default_rng
        def refuse(seed=None, *args, **kwargs):
            if seed == {SEED}:
                raise AssertionError("a case was built")
            return default_rng(seed, *args, **kwargs)
        np.random.default_rng = refuse
        import ssimref.verification
        from ssimref.verification import cases, conformance, make_golden, oracle, peers
        from ssimref.cli import main
        assert main(["verify", "--list-cases"]) == 0
        assert len(cases.DESCRIPTIONS) == len(cases.CASE_NAMES)
        """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == list(CASE_NAMES)


def test_descriptions_are_those_of_the_built_cases():
    for c in corpus(large=False):
        assert DESCRIPTIONS[c.name] == c.description
