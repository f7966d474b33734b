"""distance_matrix: equals the pairwise loop of distance(); tiling, out=, dtype, progress."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import ssimref
from ssimref import SSIMConfig

from .strategies import KINDS, config_and_stack


def _loop(X, Y, kind, config):
    return np.array([[ssimref.distance(x, y, kind, config) for y in Y] for x in X])


@given(config_and_stack(n_min=1, n_max=5), st.sampled_from(KINDS))
def test_equals_pairwise_loop_of_distance(case, kind):
    config, X = case
    D = ssimref.distance_matrix(X, kind=kind, config=config, backend="reference")
    np.testing.assert_allclose(D, _loop(X, X, kind, config), rtol=1e-13, atol=1e-13)
    Y = X[: max(1, len(X) - 1)] * 0.5
    DR = ssimref.distance_matrix(X, Y, kind, config, backend="reference")
    assert DR.shape == (len(X), len(Y))
    np.testing.assert_allclose(DR, _loop(X, Y, kind, config), rtol=1e-13, atol=1e-13)


@pytest.fixture
def stack(rng):
    return rng.integers(0, 256, (23, 14, 13), dtype=np.uint8)


@pytest.mark.parametrize("kind", KINDS)
def test_tiling_gives_identical_results(stack, kind):
    full = ssimref.distance_matrix(stack, kind=kind, backend="reference")
    # About 3 pairs per tile: many tiles, diagonal and off-diagonal blocks of odd sizes.
    tiny = ssimref.distance_matrix(stack, kind=kind, working_memory=0.02, backend="reference")
    np.testing.assert_array_equal(tiny, full)
    rect = ssimref.distance_matrix(stack, stack[:7], kind=kind, working_memory=0.02,
                                   backend="reference")
    np.testing.assert_array_equal(rect, full[:, :7])


def test_symmetric_result_is_exact(stack):
    D = ssimref.distance_matrix(stack, working_memory=0.05)
    assert np.array_equal(D, D.T) and np.all(np.diag(D) == 0)
    assert np.array_equal(ssimref.distance_matrix(stack, stack), D)  # Y is X
    # Identical images at different indices and across X, Y give exactly 0.
    X = np.concatenate([stack[:3], stack[:3]])
    assert np.all(ssimref.distance_matrix(X)[np.arange(3), np.arange(3) + 3] == 0)
    assert np.all(np.diag(ssimref.distance_matrix(stack, stack.copy())) == 0)


def test_memmap_output(stack, tmp_path):
    out = np.lib.format.open_memmap(tmp_path / "D.npy", mode="w+", dtype=np.float64,
                                    shape=(len(stack), len(stack)))
    result = ssimref.distance_matrix(stack, out=out, working_memory=0.05)
    assert result is out
    out.flush()
    del out, result
    np.testing.assert_array_equal(np.load(tmp_path / "D.npy"),
                                  ssimref.distance_matrix(stack))


def test_float32_output_rounds_the_float64_result(stack):
    D64 = ssimref.distance_matrix(stack)
    D32 = ssimref.distance_matrix(stack, dtype="float32")
    assert D32.dtype == np.float32
    np.testing.assert_array_equal(D32, D64.astype(np.float32))
    out = np.empty(D64.shape, np.float32)
    ssimref.distance_matrix(stack, out=out)
    np.testing.assert_array_equal(out, D32)


def test_squared(stack):
    np.testing.assert_allclose(ssimref.distance_matrix(stack, squared=True),
                               ssimref.distance_matrix(stack) ** 2, rtol=1e-14)


def test_progress_bar_reports_pairs(stack, capsys):
    ssimref.distance_matrix(stack, progress=True, working_memory=0.05)
    err = capsys.readouterr().err
    assert "SSIM distances" in err and "253/253" in err  # 23 * 22 / 2 pairs


def test_memory_stays_within_working_memory(rng):
    import tracemalloc
    X = rng.random((60, 28, 28))
    config = SSIMConfig(data_range=1.0, window="uniform")
    out = np.empty((60, 60))
    ssimref.distance_matrix(X[:2], config=config)  # first call imports modules: not traced
    for budget in (1.0, 4.0, 16.0):  # MiB
        tracemalloc.start()
        ssimref.distance_matrix(X, config=config, working_memory=budget, out=out)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # Besides the tiles: the caller's output (allocated before tracing) and float64
        # copies of a tile's images.
        assert peak <= budget * 2**20 + X.nbytes, (budget, peak / 2**20)


def test_multichannel_is_a_sum_over_channels(rng):
    X = rng.random((4, 12, 12, 3))
    config = SSIMConfig(data_range=1.0)
    D2 = ssimref.distance_matrix(X, config=config, squared=True)
    per_channel = sum(ssimref.distance_matrix(X[..., c], config=config, squared=True)
                      for c in range(3))
    np.testing.assert_allclose(D2, per_channel, rtol=1e-13)
