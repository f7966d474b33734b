"""The engines' vector-Jacobian blocks (Numba on the CPU, the CUDA kernel through CuPy and
run on the host) against the reference VJP, central finite differences and exact zeros.

Accuracy contract (docs/engines.md). For every image and every entry ``g`` of its
gradient, with ``g_ref`` the reference (:class:`ssimref.gradients.PairForward`)::

    |g - g_ref| <= 1e-10 * max|g_ref over the image| + vjp_accuracy_floor

where the floor is ``8 u (H + W) (f / k2^2 + 1 / k1)^2 sum|W| / L`` for the image's
cotangents ``W`` (rows of ``W`` for row images, columns for column images): the forward
contract's per-window unit, squared because a gradient entry carries one more division by
a denominator of at least ``c1`` or ``c2``, times the length of the running sums.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ssimref import SSIMConfig
from ssimref.backend import available_engines
from ssimref.engines import accuracy_floor, vjp_accuracy_floor
from ssimref.gradients import PairForward
from ssimref.engines.reference import squared_block as reference_squared

from .conftest import cupy_with_device
from .finite_differences import assert_grad_close, numerical_gradient
from .strategies import KINDS, configs, image_shapes, images

HAS_NUMBA = "numba" in available_engines()
CUPY = cupy_with_device()
needs_numba = pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed")
needs_cupy = [pytest.mark.gpu,
              pytest.mark.skipif(CUPY is None, reason="CuPy or a CUDA device missing")]


def _compiler():
    from . import cuda_host_emulation
    return cuda_host_emulation.compiler()


# ----------------------------------------------------------------------------- engines
class Numba:
    name = "numba"

    @staticmethod
    def block(Xa, Yb, W, kind, config, upper=False, wrt_y=True):
        from ssimref.engines import numba_vjp
        return numba_vjp.vjp_block(Xa, Yb, W, kind, config, upper=upper, wrt_y=wrt_y)

    @staticmethod
    def paired(X, Y, w, kind, config):
        from ssimref.engines import numba_vjp
        return (numba_vjp.paired_squared(X, Y, kind, config),
                *numba_vjp.paired_vjp(X, Y, w, kind, config))


class Emulated:
    """The CUDA kernel compiled for the host, 8 threads per block (so that each thread
    owns several pixels and windows), with the engine's own host code."""
    name = "cupy-kernel-on-host"

    @staticmethod
    def block(Xa, Yb, W, kind, config, upper=False, wrt_y=True):
        from .cuda_host_emulation import emulated_vjp_block
        return emulated_vjp_block(Xa, Yb, W, kind, config, upper=upper, wrt_y=wrt_y,
                                  threads=8)

    @staticmethod
    def paired(X, Y, w, kind, config):
        from .cuda_host_emulation import emulated_paired
        return emulated_paired(X, Y, w, kind, config, threads=8)


class Cupy:
    name = "cupy"

    @staticmethod
    def block(Xa, Yb, W, kind, config, upper=False, wrt_y=True):
        from ssimref.engines import cupy_vjp
        Xd = CUPY.asarray(Xa)
        Yd = Xd if Yb is Xa else CUPY.asarray(Yb)
        dX, dY = cupy_vjp.vjp_block(Xd, Yd, CUPY.asarray(W), kind, config, upper=upper,
                                    wrt_y=wrt_y)
        return CUPY.asnumpy(dX), (None if dY is None else CUPY.asnumpy(dY))

    @staticmethod
    def paired(X, Y, w, kind, config):
        from ssimref.engines import cupy_vjp
        Xd, Yd, wd = CUPY.asarray(X), CUPY.asarray(Y), CUPY.asarray(w)
        S = cupy_vjp.paired_squared(Xd, Yd, kind, config)
        dX, dY = cupy_vjp.paired_vjp(Xd, Yd, wd, kind, config)
        return CUPY.asnumpy(S), CUPY.asnumpy(dX), CUPY.asnumpy(dY)


ENGINES = [
    pytest.param(Numba, id="numba", marks=needs_numba),
    pytest.param(Cupy, id="cupy", marks=needs_cupy),
    pytest.param(Emulated, id="cupy-kernel-on-host", marks=pytest.mark.skipif(
        _compiler() is None, reason="no host C++ compiler to emulate the CUDA kernel")),
]


# --------------------------------------------------------------------------- reference
def reference_block(Xa, Yb, W, kind, config, upper=False, wrt_y=True):
    """The oracle: the array-API reference VJP of the broadcast pairs."""
    if upper:
        Wu = np.triu(W, 1)
        gx, gy = PairForward(Xa[:, None], Xa[None, :], kind, config, np).vjp(Wu)
        return gx[:, 0] + gy[0], None
    gx, gy = PairForward(Xa[:, None], Yb[None, :], kind, config, np).vjp(W, wrt_y=wrt_y)
    return gx[:, 0], (gy[0] if wrt_y else None)


def assert_vjp_contract(got, ref, config, weight_sums, rtol=1e-10):
    """Every entry within ``rtol`` of its image's largest reference entry plus the floor
    of the image's cotangents. Returns the worst ratio of deviation to tolerance."""
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape and got.dtype == np.float64
    assert np.isfinite(got).all()
    if got.size == 0:
        return 0.0
    n = got.shape[0]
    scale = np.abs(ref).reshape(n, -1).max(axis=1)
    floor = vjp_accuracy_floor(config, ref.shape[1:], weight_sums)
    tol = (rtol * scale + floor).reshape((n,) + (1,) * (got.ndim - 1))
    excess = np.abs(got - ref) / np.where(tol > 0, tol, np.inf)
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert excess[worst] <= 1.0, (f"entry {worst}: engine {got[worst]!r}, reference "
                                  f"{ref[worst]!r}, tolerance {tol[worst[0]].item():.3g}")
    exact = tol.reshape(-1) == 0  # images whose cotangents are all 0: exactly 0
    assert (got[exact] == 0).all()
    return float(excess[worst])


# -------------------------------------------------------------------------- strategies
@st.composite
def cotangents(draw, shape):
    """Weights with exact zeros, both signs and a spread of magnitudes."""
    W = draw(st.sampled_from(["normal", "sparse", "positive"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    out = rng.normal(size=shape) * 10.0 ** rng.integers(-3, 3, size=shape)
    if W == "sparse":
        out[rng.random(shape) < 0.6] = 0.0
    elif W == "positive":
        out = np.abs(out)
    return out


@st.composite
def tiles(draw, n_max=5, m_max=40):
    """A config, stacks X (n, H, W, C) and Y (m, H, W, C) with copies of X's images in Y
    (pairs at distance exactly 0), and cotangents (n, m). ``m_max`` above 32 makes the
    Numba engine use two groups of column lanes."""
    config = draw(configs())
    shape = draw(image_shapes(config, extra=4))
    if len(shape) == 2:
        shape = (*shape, 1)
    n = draw(st.integers(1, n_max))
    m = draw(st.integers(1, m_max))
    X = draw(images(shape, config.data_range, n=n))
    Y = draw(images(shape, config.data_range, n=m))
    for a, b in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, m - 1)),
                              max_size=3)):
        Y[b] = X[a]
    return config, X, Y, draw(cotangents((n, m)))


# --------------------------------------------------------------------- against the oracle
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("wrt_y", [True, False], ids=["dx-dy", "dx-only"])
@given(data=tiles(), kind=st.sampled_from(KINDS))
def test_rectangular_tiles_meet_the_contract(engine, wrt_y, data, kind):
    config, X, Y, W = data
    dX, dY = engine.block(X, Y, W, kind, config, wrt_y=wrt_y)
    rX, rY = reference_block(X, Y, W, kind, config, wrt_y=wrt_y)
    assert_vjp_contract(dX, rX, config, np.abs(W).sum(axis=1))
    if wrt_y:
        assert_vjp_contract(dY, rY, config, np.abs(W).sum(axis=0))
    else:
        assert dY is None


@pytest.mark.parametrize("engine", ENGINES)
@given(data=tiles(n_max=1, m_max=40), kind=st.sampled_from(KINDS))
def test_diagonal_tiles_meet_the_contract(engine, data, kind):
    """upper=True: only pairs i < j count (W's diagonal and lower triangle are ignored),
    and the gradient is with respect to the one stack, both roles of each image."""
    config, _, X, W = data
    W = np.resize(W, (X.shape[0], X.shape[0]))  # any square matrix, lower part included
    X[-1] = X[0]  # identical pair (0, m - 1): distance 0
    dX, dY = engine.block(X, X, W, kind, config, upper=True)
    assert dY is None
    rX, _ = reference_block(X, X, W, kind, config, upper=True)
    Wu = np.abs(np.triu(W, 1))
    assert_vjp_contract(dX, rX, config, Wu.sum(axis=0) + Wu.sum(axis=1))


@pytest.mark.parametrize("engine", ENGINES)
@given(data=tiles(n_max=1, m_max=40), kind=st.sampled_from(KINDS))
def test_matched_pairs_meet_the_contracts(engine, data, kind):
    """paired_squared: the forward contract; paired_vjp: the VJP contract."""
    config, _, Y, W = data
    X = Y[::-1].copy()
    w = W[0]
    S, dX, dY = engine.paired(X, Y, w, kind, config)
    forward = PairForward(X, Y, kind, config, np)
    assert S.shape == (X.shape[0],) and S.dtype == np.float64
    assert (np.abs(S - forward.S) <= 1e-12 * forward.S
            + accuracy_floor(config, X.shape[1:])).all()
    assert (S[(X == Y).all(axis=(1, 2, 3))] == 0).all()
    rX, rY = forward.vjp(w)
    assert_vjp_contract(dX, rX, config, np.abs(w))
    assert_vjp_contract(dY, rY, config, np.abs(w))


# ------------------------------------------------------------------------ exact zeros
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", KINDS)
def test_identical_pairs_contribute_exactly_zero(engine, kind):
    """Cotangents only on identical pairs: every gradient entry is exactly 0 (every
    difference and every coefficient of such a pair is exactly 0)."""
    rng = np.random.default_rng(3)
    config = SSIMConfig(window="gaussian", size=5, sigma=1.5, data_range=255)
    X = rng.uniform(0, 255, (3, 11, 9, 2))
    Y = np.concatenate([X[[2, 0]], rng.uniform(0, 255, (35, 11, 9, 2)), X[[1]]])
    W = np.zeros((3, 38))
    W[2, 0], W[0, 1], W[1, 37] = 3.0, -2.0, 1e3
    dX, dY = engine.block(X, Y, W, kind, config)
    assert (dX == 0).all() and (dY == 0).all()
    S, gx, gy = engine.paired(X, X.copy(), np.array([1.0, -5.0, 2.0]), kind, config)
    assert (S == 0).all() and (gx == 0).all() and (gy == 0).all()
    Z = np.concatenate([X, X[::-1]])
    dZ, _ = engine.block(Z, Z, np.eye(6)[::-1] * 7.0, kind, config, upper=True)
    assert (dZ == 0).all()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", KINDS)
def test_constant_images_and_zero_distance_give_finite_gradients(engine, kind):
    """Constant images (zero variances), a constant offset pair, duplicates: finite
    everywhere and within the contract (the denominators are at least c1, c2 > 0)."""
    config = SSIMConfig(window="uniform", size=3, data_range=1.0)
    X = np.stack([np.zeros((7, 8, 1)), np.ones((7, 8, 1)), np.full((7, 8, 1), 0.5),
                  np.zeros((7, 8, 1))])
    W = np.arange(16, dtype=float).reshape(4, 4) - 6
    dX, dY = engine.block(X, X, W, kind, config)
    rX, rY = reference_block(X, X, W, kind, config)
    assert_vjp_contract(dX, rX, config, np.abs(W).sum(axis=1))
    assert_vjp_contract(dY, rY, config, np.abs(W).sum(axis=0))
    dU, _ = engine.block(X, X, W, kind, config, upper=True)
    assert np.isfinite(dU).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_tiles_and_zero_cotangents(engine):
    """Tiles with no rows or no columns, all-zero cotangents, a one-image diagonal tile:
    gradients of the right shapes, exactly 0."""
    rng = np.random.default_rng(0)
    config = SSIMConfig(window="gaussian", size=3, sigma=1.0, data_range=1.0)
    X, Y = rng.random((3, 6, 5, 1)), rng.random((40, 6, 5, 1))
    dX, dY = engine.block(X[:0], Y, np.zeros((0, 40)), "eq2", config)
    assert dX.shape == (0, 6, 5, 1) and dY.shape == Y.shape and (dY == 0).all()
    dX, dY = engine.block(X, Y[:0], np.zeros((3, 0)), "eq2", config)
    assert dX.shape == X.shape and dY.shape == (0, 6, 5, 1) and (dX == 0).all()
    dX, dY = engine.block(X, Y, np.zeros((3, 40)), "eq1", config, wrt_y=False)
    assert dY is None and (dX == 0).all()
    dU, _ = engine.block(X[:1], X[:1], np.ones((1, 1)), "eq2", config, upper=True)
    assert dU.shape == (1, 6, 5, 1) and (dU == 0).all()


# -------------------------------------------------------------------- finite differences
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("config", [
    SSIMConfig(window="uniform", size=3, data_range=1.0),
    SSIMConfig(window="gaussian", size=3, sigma=0.8, stride=2, covariance="population",
               data_range=1.0),
    SSIMConfig(window="uniform", size=2, stride=3, covariance="count", data_range=1.0),
], ids=["uniform3", "gaussian3-stride2", "blocks2-stride3"])
def test_gradients_match_central_differences(engine, kind, config):
    """d/dX and d/dY of sum_ij W_ij S_ij, S from the reference forward, by central
    differences (independent of every hand-derived formula)."""
    rng = np.random.default_rng(11)
    X = rng.random((2, 6, 7, 2))
    Y = rng.random((3, 6, 7, 2))
    W = rng.normal(size=(2, 3))

    def loss(A, B):
        return float((W * reference_squared(A, B, kind, config)).sum())

    dX, dY = engine.block(X, Y, W, kind, config)
    assert_grad_close(dX, numerical_gradient(lambda A: loss(A, Y), X))
    assert_grad_close(dY, numerical_gradient(lambda B: loss(X, B), Y))
    Wu = rng.normal(size=(3, 3))
    dU, _ = engine.block(Y, Y, Wu, kind, config, upper=True)
    up = np.triu(Wu, 1)
    assert_grad_close(dU, numerical_gradient(
        lambda B: float((up * reference_squared(B, B, kind, config)).sum()), Y))


# ------------------------------------------------------------------------- natural data
def patches(n, size=28, seed=0):
    """uint8 patches of skimage's camera and astronaut images, as float64 (n, s, s, 1)."""
    from skimage import data
    from skimage.color import rgb2gray

    rng = np.random.default_rng(seed)
    sources = [data.camera(), (rgb2gray(data.astronaut()) * 255).round().astype(np.uint8)]
    out = np.empty((n, size, size, 1))
    for k in range(n):
        src = sources[k % 2]
        r, c = rng.integers(0, src.shape[0] - size, size=2)
        out[k, :, :, 0] = src[r:r + size, c:c + size]
    return out


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("config", [
    SSIMConfig.skimage(data_range=255),
    SSIMConfig(window="gaussian", size=7, sigma=1.5, data_range=255),
    SSIMConfig(window="uniform", size=4, stride=4, data_range=255),
], ids=["uniform7", "gaussian7", "blocks4"])
def test_natural_patches_to_1e12_of_the_reference(engine, config):
    """28x28 natural patches: the floor plays no part; each image's gradient agrees with
    the reference to 1e-12 of its largest entry."""
    X = patches(6)
    Y = patches(34, seed=1)
    W = np.random.default_rng(2).normal(size=(6, 34))
    for kind in KINDS:
        dX, dY = engine.block(X, Y, W, kind, config)
        rX, rY = reference_block(X, Y, W, kind, config)
        for got, ref in ((dX, rX), (dY, rY)):
            err = np.abs(got - ref).reshape(len(ref), -1).max(axis=1)
            assert (err <= 1e-12 * np.abs(ref).reshape(len(ref), -1).max(axis=1)).all()


# --------------------------------------------------------------------------- determinism
@needs_numba
def test_numba_same_bits_run_to_run_and_on_any_number_of_threads():
    """Run to run the same bits, and the same on one thread as on several: rows are dealt
    to a fixed number of chunks, whatever the thread count."""
    import numba

    from ssimref.engines import numba_vjp

    X, Y = patches(9), patches(70, seed=4)
    W = np.random.default_rng(5).normal(size=(9, 70))
    config = SSIMConfig(window="gaussian", size=7, sigma=1.5, data_range=255)
    first = numba_vjp.vjp_block(X, Y, W, "eq2", config)
    second = numba_vjp.vjp_block(X, Y, W, "eq2", config)
    assert (first[0] == second[0]).all() and (first[1] == second[1]).all()
    up1 = numba_vjp.vjp_block(Y, Y, W.T @ W, "eq2", config, upper=True)[0]
    up2 = numba_vjp.vjp_block(Y, Y, W.T @ W, "eq2", config, upper=True)[0]
    assert (up1 == up2).all()
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = numba_vjp.vjp_block(X, Y, W, "eq2", config)
        one_up = numba_vjp.vjp_block(Y, Y, W.T @ W, "eq2", config, upper=True)[0]
        one_sided = numba_vjp.vjp_block(X, Y, W, "eq2", config, wrt_y=False)[0]
    finally:
        numba.set_num_threads(threads)
    assert (one[0] == first[0]).all() and (one[1] == first[1]).all()
    assert (one_up == up1).all()
    assert (one_sided == numba_vjp.vjp_block(X, Y, W, "eq2", config, wrt_y=False)[0]).all()


@pytest.mark.skipif(_compiler() is None, reason="no host C++ compiler")
def test_cuda_kernel_same_bits_for_any_block_size_and_run():
    """Every accumulator of the CUDA kernel has one owner thread and adds the partners in
    order: the gradient does not depend on the block size or on the scheduling (the
    emulation runs the threads of a block as host threads in any order)."""
    from .cuda_host_emulation import emulated_vjp_block

    X, Y = patches(3, size=12), patches(7, size=12, seed=6)
    W = np.random.default_rng(7).normal(size=(3, 7))
    config = SSIMConfig(window="gaussian", size=5, sigma=1.0, data_range=255)
    runs = [emulated_vjp_block(X, Y, W, "eq1-uncentered", config, threads=t)
            for t in (8, 8, 32, 128)]
    for dX, dY in runs[1:]:
        assert (dX == runs[0][0]).all() and (dY == runs[0][1]).all()


@pytest.mark.gpu
@pytest.mark.skipif(CUPY is None, reason="CuPy or a CUDA device missing")
def test_cupy_same_bits_run_to_run():
    from ssimref.engines import cupy_vjp

    X, Y = CUPY.asarray(patches(40)), CUPY.asarray(patches(300, seed=8))
    W = CUPY.asarray(np.random.default_rng(9).normal(size=(40, 300)))
    config = SSIMConfig(window="gaussian", size=7, sigma=1.5, data_range=255)
    a = cupy_vjp.vjp_block(X, Y, W, "eq2", config)
    b = cupy_vjp.vjp_block(X, Y, W, "eq2", config)
    assert bool((a[0] == b[0]).all()) and bool((a[1] == b[1]).all())


# ---------------------------------------------------------------------------- memory
@needs_numba
@pytest.mark.parametrize("mode", ["dx-dy", "dx-only", "upper"])
@pytest.mark.parametrize("shape,config", [
    ((28, 28, 1), SSIMConfig(window="gaussian", size=7, sigma=1.5, data_range=255)),
    ((16, 20, 3), SSIMConfig(window="uniform", size=4, stride=2, data_range=255)),
], ids=["28x28-gaussian7", "16x20x3-uniform4-stride2"])
def test_numba_tile_memory_within_the_stated_budget(mode, shape, config):
    """Peak NumPy memory of a tile (tracemalloc) within vjp_bytes_per_pair * pairs +
    vjp_bytes_per_image * images: nothing of size pairs x pixels is allocated. (Numba's
    own allocations, a few rows of scratch per thread, are not traced.)"""
    import tracemalloc

    from ssimref.engines import numba_vjp

    rng = np.random.default_rng(1)
    ta, tb = 70, 90
    X = rng.uniform(0, 255, (ta,) + shape)
    Y = X if mode == "upper" else rng.uniform(0, 255, (tb,) + shape)
    W = rng.normal(size=(ta, Y.shape[0]))
    numba_vjp.vjp_block(X[:2], Y[:2], W[:2, :2], "eq2", config, upper=mode == "upper")
    tracemalloc.start()
    try:
        numba_vjp.vjp_block(X, Y, W, "eq2", config, upper=mode == "upper",
                            wrt_y=mode != "dx-only")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    pairs = ta * Y.shape[0]
    images = ta + Y.shape[0]  # as tiles are sized: a diagonal tile counts both sides
    budget = (numba_vjp.vjp_bytes_per_pair(shape, config) * pairs
              + numba_vjp.vjp_bytes_per_image(shape, config) * images)
    assert peak <= budget, (peak, budget)
    # and far below one pixel map per pair
    assert peak < 0.25 * pairs * 8 * np.prod(shape)


# ----------------------------------------------------------------------- the floor itself
def test_floor_values():
    """The floor for W1 (28x28, uniform 7x7, sample covariance) and unit cotangents, on a
    0..255 scale: 8 u (28 + 28) (f / k2^2 + 1 / k1)^2 / 255."""
    config = SSIMConfig.skimage(data_range=255)
    f = 49 / 48
    expected = 8 * 2.0**-53 * 56 * (f / 0.03**2 + 100) ** 2 / 255
    assert vjp_accuracy_floor(config, (28, 28, 1), 1.0) == pytest.approx(expected, rel=1e-14)
    assert expected < 3e-10
    sums = np.array([0.0, 2.0])
    assert (vjp_accuracy_floor(config, (28, 28, 1), sums) == [0.0, 2 * expected]).all()


@needs_numba
@settings(max_examples=60)
@given(data=tiles(n_max=3, m_max=34), kind=st.sampled_from(KINDS),
       offset=st.sampled_from([0.0, 0.4, 1.0]), scale=st.sampled_from([1e-7, 1e-3, 1.0]))
def test_near_duplicates_with_offsets_meet_the_contract(data, kind, offset, scale):
    """The hard case for the floor: column images that are row images plus a small
    perturbation and a large offset (the engines' per-image shifts round relative to the
    data range, the reference's relative to each difference)."""
    from ssimref.engines import numba_vjp

    config, X, Y, W = data
    L = config.data_range
    assume(X.shape[0] >= 1)
    rng = np.random.default_rng(int(abs(W).sum() * 1e6) % 2**32)
    base = X[rng.integers(0, X.shape[0], Y.shape[0])]
    Y = np.clip(base * (1 - offset) + offset * L
                + scale * L * rng.normal(size=Y.shape), 0, L)
    dX, dY = numba_vjp.vjp_block(X, Y, W, kind, config)
    rX, rY = reference_block(X, Y, W, kind, config)
    assert_vjp_contract(dX, rX, config, np.abs(W).sum(axis=1))
    assert_vjp_contract(dY, rY, config, np.abs(W).sum(axis=0))


# ----------------------------------------------------------------------------- compile
def test_cuda_vjp_kernel_compiles_with_nvcc(tmp_path):
    """The VJP kernel compiles for an H100/H200 (sm_90) where nvcc exists, for a small
    and a multichannel strided geometry."""
    import shutil
    import subprocess

    from ssimref.engines.cupy_vjp import vjp_kernel_source

    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not installed")
    geometries = [((28, 28, 1), SSIMConfig(window="gaussian", size=7, sigma=1.5,
                                           data_range=1.0)),
                  ((30, 17, 3), SSIMConfig(window="uniform", size=4, stride=3,
                                           data_range=255))]
    for k, (shape, config) in enumerate(geometries):
        src = tmp_path / f"vjp{k}.cu"
        src.write_text(vjp_kernel_source(shape, config))
        subprocess.run([nvcc, "-arch=sm_90", "-c", "-o", str(src.with_suffix(".o")),
                        str(src)], check=True, capture_output=True)



# ---------------------------------------------------- one pass: S and the VJP together
RULE_CASES = [  # (rule, coef, h(S), h'(S) with 0 where S = 0 for the root)
    ("sqrt", -0.5, lambda S: -0.5 * np.sqrt(S),
     lambda S: np.where(S > 0, -0.25 / np.sqrt(np.where(S > 0, S, 1.0)), 0.0)),
    ("linear", -0.5, lambda S: -0.5 * S, lambda S: np.full_like(S, -0.5)),
    ("exp", 0.3, lambda S: np.exp(-0.3 * S), lambda S: -0.3 * np.exp(-0.3 * S)),
]


def _rule_cotangent(rule, coef, G):
    """The cotangent function as the kernels write it, wrapped with its rule."""
    from ssimref.engines import ElementwiseCotangent
    from ssimref.gradients import distance_weight

    def function(S):
        if rule == "linear":
            return coef * S, coef * G
        if rule == "sqrt":
            D, W = distance_weight(S, coef * G, False, np)
            return coef * D, W
        K = np.exp(-coef * S)
        return K, (-coef) * K * G

    return ElementwiseCotangent(function, rule, coef, G)


@needs_numba
@settings(max_examples=40)
@given(data=tiles(n_max=4, m_max=36), kind=st.sampled_from(KINDS),
       case=st.sampled_from(RULE_CASES), mode=st.sampled_from(["dx-dy", "dx-only", "upper"]),
       near=st.sampled_from([None, 1e-7, 1e-3]))
def test_numba_one_pass_value_and_vjp_meets_both_contracts(data, kind, case, mode, near):
    """An ElementwiseCotangent runs the one-pass kernels (window sums kept for the VJP, W
    formed in the kernel): S within the forward contract of the reference (exactly 0 for
    identical images), the values h(S), and the gradients the reference VJP of the
    cotangent of that S, under the VJP contract; near-duplicates (within the floor, sent
    back through the two-pass VJP after refinement) included."""
    from ssimref.engines import numba_engine, numba_vjp

    config, X, Y, G = data
    rule, coef, value_of, slope = case
    L = config.data_range
    if near is not None:  # column images close to row images
        rng = np.random.default_rng(int(abs(G).sum() * 1e6) % 2**32)
        Y = np.clip(X[rng.integers(0, X.shape[0], Y.shape[0])]
                    + near * L * rng.normal(size=Y.shape), 0, L)
    assert numba_vjp.fuses(X.shape[1:], config)
    upper = mode == "upper"
    if upper:
        Y, G = X, np.resize(G, (X.shape[0], X.shape[0]))
    value, dX, dY = numba_engine.value_and_vjp_block(
        X, Y, kind, config, _rule_cotangent(rule, coef, np.triu(G, 1) if upper else G),
        upper=upper, wrt_y=mode == "dx-dy")
    S_ref = reference_squared(X, Y, kind, config)
    tol = 2e-12 * S_ref + accuracy_floor(config, X.shape[1:])  # the forward contract
    if rule == "exp":  # |exp(-c S) - exp(-c S_ref)| <= c |S - S_ref|
        assert (np.abs(value - value_of(S_ref)) <= coef * tol + 1e-15).all()
    else:  # S itself from the value
        S_value = value / coef if rule == "linear" else (value / coef) ** 2
        assert (np.abs(S_value - S_ref) <= tol).all()
    S = numba_engine.squared_block(X, Y, kind, config, upper=upper)
    identical = (X[:, None] == Y[None, :]).all(axis=(2, 3, 4))
    W = G * slope(S)
    if upper:
        Wu = np.triu(W, 1)
        rX, _ = reference_block(X, X, W, kind, config, upper=True)
        assert_vjp_contract(dX, rX, config, np.abs(Wu).sum(axis=0) + np.abs(Wu).sum(axis=1))
        assert dY is None
        return
    assert (value[identical] == value_of(np.zeros(1))[0]).all()
    rX, rY = reference_block(X, Y, W, kind, config, wrt_y=mode == "dx-dy")
    assert_vjp_contract(dX, rX, config, np.abs(W).sum(axis=1))
    if mode == "dx-dy":
        assert_vjp_contract(dY, rY, config, np.abs(W).sum(axis=0))
    else:
        assert dY is None


@needs_numba
def test_numba_one_pass_is_the_two_pass_path_and_same_bits_run_to_run(monkeypatch):
    """On natural patches the one-pass kernels give the two-pass path's values and
    gradients to rounding, the same bits run to run, and the two-pass path where the
    store would be too large."""
    from ssimref.engines import numba_engine, numba_vjp

    config = SSIMConfig(window="gaussian", size=7, sigma=1.5, covariance="sample",
                        data_range=1.0)
    P = patches(70, seed=4) / 255.0
    X, Y = P[:30], P[30:]
    G = np.random.default_rng(2).normal(size=(30, 40))
    runs = [numba_engine.value_and_vjp_block(X, Y, "eq2", config,
                                             _rule_cotangent("sqrt", -0.5, G))
            for _ in range(2)]
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(numba_vjp, "FUSED_MAX_STORE", 0)
    assert not numba_vjp.fuses(X.shape[1:], config)
    two = numba_engine.value_and_vjp_block(X, Y, "eq2", config,
                                           _rule_cotangent("sqrt", -0.5, G))
    np.testing.assert_allclose(runs[0][0], two[0], rtol=1e-13)
    for a, b in zip(runs[0][1:], two[1:]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())


# ============================================================ the public functions
# distance_matrix_vjp, paired_distance(_and_grad) and the SSIM kernels run on the engine
# backend= names ("auto" included): on every backend they must compute the engine's VJP of
# the cotangent of the engine's own S (checked against the oracle on that cotangent, under
# the contract), give exactly 0 for identical pairs, and match finite differences.
def _emulated_engine():
    from .cuda_host_emulation import EmulatedCupyEngine
    return EmulatedCupyEngine


PUBLIC_BACKENDS = [
    pytest.param("reference", id="reference"),
    pytest.param("numba", id="numba", marks=needs_numba),
    pytest.param("cupy", id="cupy", marks=needs_cupy),
    pytest.param("cupy-kernel-on-host", id="cupy-kernel-on-host", marks=pytest.mark.skipif(
        _compiler() is None, reason="no host C++ compiler to emulate the CUDA kernel")),
]


class OnBackend:
    """``with OnBackend(name) as b``: ``b.dev`` moves NumPy arrays to the backend's
    library, ``b.host`` back; the emulated CUDA engine is registered for the block."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        if self.name == "cupy-kernel-on-host":
            from ssimref.engines import register_engine
            register_engine(_emulated_engine(), replace=True)
        return self

    def __exit__(self, *exc):
        if self.name == "cupy-kernel-on-host":
            from ssimref.engines import unregister_engine
            unregister_engine(self.name)

    def dev(self, a):
        return a if a is None or self.name != "cupy" else CUPY.asarray(a)

    def host(self, a):
        return a if a is None or self.name != "cupy" else CUPY.asnumpy(a)


def _distance_cotangent(S, G, squared):
    """The cotangent of S for a loss on D (or D^2 when squared), 0 where D = 0."""
    if squared:
        return G
    D = np.sqrt(S)
    return np.where(D > 0, G / (2.0 * np.where(D > 0, D, 1.0)), 0.0)


# A budget that cuts these small stacks into several tiles on every engine.
SMALL_MEMORY = 0.05


@pytest.mark.parametrize("backend", PUBLIC_BACKENDS)
@settings(max_examples=25)
@given(data=tiles(n_max=4, m_max=36), kind=st.sampled_from(KINDS), squared=st.booleans(),
       symmetric=st.booleans())
def test_distance_matrix_vjp_is_the_engines_vjp_under_the_contract(backend, data, kind,
                                                                   squared, symmetric):
    import ssimref

    config, X, Y, G = data
    if symmetric:
        Y, G = None, np.resize(G, (X.shape[0], X.shape[0]))
    with OnBackend(backend) as b:
        dX, dY = ssimref.distance_matrix_vjp(b.dev(X), b.dev(Y), b.dev(G), kind, config,
                                             squared=squared, backend=backend,
                                             working_memory=SMALL_MEMORY)
        S = b.host(ssimref.distance_matrix(b.dev(X), b.dev(Y), kind, config, squared=True,
                                           backend=backend))
    dX, dY = b.host(dX), b.host(dY)
    W = _distance_cotangent(S, G, squared)
    if symmetric:
        assert dY is None
        Ws = W + W.T
        rX, _ = reference_block(X, X, Ws, kind, config, upper=True)
        Wu = np.abs(np.triu(Ws, 1))
        assert_vjp_contract(dX, rX, config, Wu.sum(axis=0) + Wu.sum(axis=1))
    else:
        rX, rY = reference_block(X, Y, W, kind, config)
        assert_vjp_contract(dX, rX, config, np.abs(W).sum(axis=1))
        assert_vjp_contract(dY, rY, config, np.abs(W).sum(axis=0))


@pytest.mark.parametrize("backend", PUBLIC_BACKENDS)
@settings(max_examples=25)
@given(data=tiles(n_max=1, m_max=36), kind=st.sampled_from(KINDS), squared=st.booleans())
def test_paired_distance_and_grad_is_the_engines_vjp_under_the_contract(backend, data, kind,
                                                                       squared):
    import ssimref

    config, _, Y, W = data
    X = Y[::-1].copy()
    weights = W[0]
    with OnBackend(backend) as b:
        values, dX, dY = ssimref.paired_distance_and_grad(
            b.dev(X), b.dev(Y), kind, config, squared=squared, weights=b.dev(weights),
            backend=backend, working_memory=SMALL_MEMORY)
        S = b.host(ssimref.paired_distance(b.dev(X), b.dev(Y), kind, config, squared=True,
                                           backend=backend))
    values, dX, dY = b.host(values), b.host(dX), b.host(dY)
    forward = PairForward(X, Y, kind, config, np)
    assert (np.abs(S - forward.S) <= 1e-12 * forward.S
            + accuracy_floor(config, X.shape[1:])).all()
    assert (S[(X == Y).all(axis=(1, 2, 3))] == 0).all()
    np.testing.assert_array_equal(values, S if squared else np.sqrt(S))
    w = _distance_cotangent(S, weights, squared)
    rX, rY = forward.vjp(w)
    assert_vjp_contract(dX, rX, config, np.abs(w))
    assert_vjp_contract(dY, rY, config, np.abs(w))


def _kernel_cases(config, image_shape):
    """SSIM kernels with their values and cotangents of S in closed form: (kernel,
    k(S), dk/dS (0 where undefined))."""
    from ssimref.kernels import MeanSSIMKernel, SSIMDistanceKernel, SSIMRBFKernel

    h, w, c = image_shape
    ho, wo = config.positions(h, w)
    positions = ho * wo * c
    inv_root = lambda S: np.where(S > 0, 1.0 / np.sqrt(np.where(S > 0, S, 1.0)), 0.0)  # noqa: E731
    return [
        ("eq2", lambda kw: SSIMDistanceKernel("eq2", 1, config, **kw),
         lambda S: -0.5 * np.sqrt(S), lambda S: -0.25 * inv_root(S)),
        ("eq1", lambda kw: SSIMDistanceKernel("eq1", 2, config, **kw),
         lambda S: -0.5 * S, lambda S: np.full_like(S, -0.5)),
        ("eq1-uncentered", lambda kw: SSIMRBFKernel(0.3, "eq1-uncentered", config, **kw),
         lambda S: np.exp(-0.3 * S), lambda S: -0.3 * np.exp(-0.3 * S)),
        ("eq1-uncentered", lambda kw: MeanSSIMKernel(config, **kw),
         lambda S: 1.0 - S / positions, lambda S: np.full_like(S, -1.0 / positions)),
    ]


@pytest.mark.parametrize("backend", PUBLIC_BACKENDS)
@settings(max_examples=10)
@given(data=tiles(n_max=3, m_max=34))
def test_ssim_kernels_value_and_vjp_on_every_backend(backend, data):
    """Each SSIM kernel's value_and_vjp (rectangular with dY, and symmetric) is the
    engine's VJP of the kernel's cotangent of S (closed forms here), under the contract;
    the values are the kernel of the engine's S."""
    import ssimref

    config, X, Y, G = data
    Gs = np.resize(G, (X.shape[0], X.shape[0]))
    for kind, make, value_of, slope in _kernel_cases(config, X.shape[1:]):
        with OnBackend(backend) as b:
            kernel = make(dict(backend=backend, working_memory=SMALL_MEMORY))
            K, dX, dY = kernel.value_and_vjp(b.dev(X), b.dev(Y), b.dev(G), wrt_y=True)
            Ks, dXs = kernel.value_and_vjp(b.dev(X), None, b.dev(Gs))
            S = b.host(ssimref.distance_matrix(b.dev(X), b.dev(Y), kind, config,
                                               squared=True, backend=backend))
            Ss = b.host(ssimref.distance_matrix(b.dev(X), None, kind, config, squared=True,
                                                backend=backend))
        np.testing.assert_allclose(b.host(K), value_of(S), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(b.host(Ks), value_of(Ss), rtol=1e-14, atol=1e-15)
        W = G * slope(S)
        rX, rY = reference_block(X, Y, W, kind, config)
        assert_vjp_contract(b.host(dX), rX, config, np.abs(W).sum(axis=1))
        assert_vjp_contract(b.host(dY), rY, config, np.abs(W).sum(axis=0))
        Ws = (Gs + Gs.T) * slope(Ss)
        rXs, _ = reference_block(X, X, Ws, kind, config, upper=True)
        Wu = np.abs(np.triu(Ws, 1))
        assert_vjp_contract(b.host(dXs), rXs, config, Wu.sum(axis=0) + Wu.sum(axis=1))


@pytest.mark.parametrize("backend", PUBLIC_BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_public_gradients_of_identical_pairs_are_exactly_zero(backend, kind):
    """Weights only on identical pairs: every gradient entry is exactly 0, rectangular,
    symmetric and matched, through the public functions and several tiles."""
    import ssimref

    rng = np.random.default_rng(4)
    config = SSIMConfig(window="gaussian", size=5, sigma=1.5, data_range=255)
    X = rng.uniform(0, 255, (4, 11, 9, 2))
    Y = np.concatenate([X[[2, 0]], rng.uniform(0, 255, (35, 11, 9, 2)), X[[1, 3]]])
    G = np.zeros((4, 39))
    G[2, 0], G[0, 1], G[1, 37], G[3, 38] = 3.0, -2.0, 1e3, 0.5
    Z = np.concatenate([X, X[::-1]])
    Gz = np.zeros((8, 8))
    Gz[np.arange(8), 7 - np.arange(8)] = np.arange(1.0, 9.0)
    with OnBackend(backend) as b:
        for squared in (False, True):
            dX, dY = ssimref.distance_matrix_vjp(b.dev(X), b.dev(Y), b.dev(G), kind, config,
                                                 squared=squared, backend=backend,
                                                 working_memory=SMALL_MEMORY)
            assert (b.host(dX) == 0).all() and (b.host(dY) == 0).all()
            dZ, _ = ssimref.distance_matrix_vjp(b.dev(Z), None, b.dev(Gz), kind, config,
                                                squared=squared, backend=backend,
                                                working_memory=SMALL_MEMORY)
            assert (b.host(dZ) == 0).all()
            values, pX, pY = ssimref.paired_distance_and_grad(
                b.dev(X), b.dev(X.copy()), kind, config, squared=squared,
                weights=b.dev(np.array([1.0, -5.0, 2.0, 7.0])), backend=backend)
            assert (b.host(values) == 0).all()
            assert (b.host(pX) == 0).all() and (b.host(pY) == 0).all()


@pytest.mark.parametrize("backend", PUBLIC_BACKENDS)
@pytest.mark.parametrize("config", [
    SSIMConfig(window="uniform", size=3, data_range=1.0),
    SSIMConfig(window="gaussian", size=3, sigma=0.8, stride=2, covariance="population",
               data_range=1.0),
], ids=["uniform3", "gaussian3-stride2"])
def test_public_gradients_match_central_differences(backend, config):
    """distance_matrix_vjp (rectangular and symmetric) and paired_distance_and_grad
    against central differences of the reference forward."""
    import ssimref

    rng = np.random.default_rng(12)
    X, Y = rng.random((2, 6, 7, 2)), rng.random((3, 6, 7, 2))
    G, Gs, w = rng.normal(size=(2, 3)), rng.normal(size=(3, 3)), rng.normal(size=3)

    def D(A, B=None):
        return ssimref.distance_matrix(A, B, "eq2", config, backend="reference")

    with OnBackend(backend) as b:
        dX, dY = ssimref.distance_matrix_vjp(b.dev(X), b.dev(Y), b.dev(G), "eq2", config,
                                             backend=backend, working_memory=SMALL_MEMORY)
        dS, _ = ssimref.distance_matrix_vjp(b.dev(Y), None, b.dev(Gs), "eq2", config,
                                            backend=backend, working_memory=SMALL_MEMORY)
        _, pX, pY = ssimref.paired_distance_and_grad(b.dev(X[:2]), b.dev(Y[1:]), "eq1",
                                                     config, weights=b.dev(w[:2]),
                                                     backend=backend)
    assert_grad_close(b.host(dX), numerical_gradient(lambda A: float((G * D(A, Y)).sum()), X))
    assert_grad_close(b.host(dY), numerical_gradient(lambda B: float((G * D(X, B)).sum()), Y))
    assert_grad_close(b.host(dS), numerical_gradient(lambda B: float((Gs * D(B)).sum()), Y))

    def paired(A, B):
        return float((w[:2] * ssimref.paired_distance(A, B, "eq1", config,
                                                      backend="reference")).sum())

    assert_grad_close(b.host(pX), numerical_gradient(lambda A: paired(A, Y[1:]), X[:2]))
    assert_grad_close(b.host(pY), numerical_gradient(lambda B: paired(X[:2], B), Y[1:]))


@needs_numba
def test_auto_runs_the_numba_engine_on_numpy_arrays():
    """backend="auto" on NumPy arrays is the Numba engine, bit for bit."""
    import ssimref
    from ssimref.kernels import SSIMDistanceKernel

    X, Y = patches(5, size=12), patches(40, size=12, seed=3)
    G = np.random.default_rng(1).normal(size=(5, 40))
    config = SSIMConfig(window="gaussian", size=5, sigma=1.5, data_range=255)
    for a, b in zip(ssimref.distance_matrix_vjp(X, Y, G, config=config),
                    ssimref.distance_matrix_vjp(X, Y, G, config=config, backend="numba")):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(ssimref.paired_distance_and_grad(X, Y[:5], config=config),
                    ssimref.paired_distance_and_grad(X, Y[:5], config=config,
                                                     backend="numba")):
        np.testing.assert_array_equal(a, b)
    auto = SSIMDistanceKernel(config=config).value_and_vjp(X, Y, G, wrt_y=True)
    numba_ = SSIMDistanceKernel(config=config, backend="numba").value_and_vjp(X, Y, G,
                                                                                wrt_y=True)
    for a, b in zip(auto, numba_):
        np.testing.assert_array_equal(a, b)


def test_unknown_backends_and_engines_without_gradients_are_refused():
    import ssimref
    from ssimref.engines import register_engine, reference, unregister_engine
    from ssimref.kernels import MeanSSIMKernel, SSIMDistanceKernel, SSIMRBFKernel

    X = np.random.default_rng(0).random((3, 6, 6))
    config = SSIMConfig(window="uniform", size=3, data_range=1.0)
    for call in (
            lambda: ssimref.distance_matrix_vjp(X, None, np.ones((3, 3)), config=config,
                                                backend="fast"),
            lambda: ssimref.paired_distance(X, X, config=config, backend="fast"),
            lambda: ssimref.paired_distance_and_grad(X, X, config=config, backend=1),
            lambda: SSIMDistanceKernel(config=config, backend="gpu"),
            lambda: SSIMRBFKernel(1.0, config=config, backend="gpu"),
            lambda: MeanSSIMKernel(config, backend="gpu")):
        with pytest.raises(ValueError, match="backend must be one of"):
            call()

    class ForwardOnly:
        NAME = "test-forward-only"
        squared_block = staticmethod(reference.squared_block)
        bytes_per_pair = staticmethod(reference.bytes_per_pair)
        bytes_per_image = staticmethod(reference.bytes_per_image)
        max_tile_pairs = staticmethod(reference.max_tile_pairs)

    register_engine(ForwardOnly)
    try:
        kernel = SSIMDistanceKernel(config=config, backend=ForwardOnly.NAME)
        np.testing.assert_allclose(kernel.gram(X), SSIMDistanceKernel(
            config=config, backend="reference").gram(X), rtol=1e-15)
        for call in (
                lambda: ssimref.distance_matrix_vjp(X, None, np.ones((3, 3)), config=config,
                                                    backend=ForwardOnly.NAME),
                lambda: ssimref.paired_distance(X, X, config=config, backend=ForwardOnly.NAME),
                lambda: kernel.value_and_vjp(X, None, np.ones((3, 3)))):
            with pytest.raises(ValueError, match="computes no gradients"):
                call()
    finally:
        unregister_engine(ForwardOnly.NAME)


@needs_numba
def test_numba_value_and_vjp_tile_memory_within_the_stated_budget():
    """A value-and-VJP tile of the Numba engine with the SSIM distance kernel's cotangent
    (the costliest of the kernels': a root, masks and a division) stays within
    vjp_bytes_per_pair * pairs + vjp_bytes_per_image * images (tracemalloc)."""
    import tracemalloc

    from ssimref.engines import numba_engine
    from ssimref.gradients import distance_weight

    rng = np.random.default_rng(2)
    config = SSIMConfig(window="gaussian", size=7, sigma=1.5, data_range=255)
    shape = (28, 28, 1)
    X, Y = rng.uniform(0, 255, (90,) + shape), rng.uniform(0, 255, (110,) + shape)
    G = rng.normal(size=(90, 110))

    def cotangent(S):
        D, W = distance_weight(S, -0.5 * G[:S.shape[0], :S.shape[1]], False, np)
        return -0.5 * D, W

    numba_engine.value_and_vjp_block(X[:3], Y[:3], "eq2", config, cotangent)
    for upper in (False, True):
        B = X if upper else Y
        tracemalloc.start()
        try:
            numba_engine.value_and_vjp_block(X, B, "eq2", config, cotangent, upper=upper)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        budget = (numba_engine.vjp_bytes_per_pair(shape, config) * X.shape[0] * B.shape[0]
                  + numba_engine.vjp_bytes_per_image(shape, config) * (X.shape[0]
                                                                       + B.shape[0]))
        assert peak <= budget, (upper, peak, budget)


@needs_numba
@settings(max_examples=30, deadline=None)
@given(data=tiles(n_max=5, m_max=40), kind=st.sampled_from(KINDS),
       case=st.sampled_from(RULE_CASES), mode=st.sampled_from(["dx-dy", "dx-only", "upper"]))
def test_numba_small_calls_on_one_thread_give_the_threaded_bits(data, kind, case, mode):
    """Calls below SERIAL_BELOW run on one thread (numba_engine.threads_for); the other
    tests of this file and tests/test_engines.py mostly see such small tiles, so this one
    forces the threaded path on the same tiles and asks for the same bits: forward blocks,
    one-pass and two-pass value-and-VJP, matched pairs."""
    import numba

    from ssimref.engines import numba_engine

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one thread only")
    config, X, Y, G = data
    rule, coef, _, _ = case
    upper = mode == "upper"
    if upper:
        Y, G = X, np.resize(G, (X.shape[0], X.shape[0]))
    G = np.triu(G, 1) if upper else G

    def run():
        S = numba_engine.squared_block(X, Y, kind, config, upper=upper)
        one = numba_engine.value_and_vjp_block(X, Y, kind, config,
                                               _rule_cotangent(rule, coef, G),
                                               upper=upper, wrt_y=mode == "dx-dy")
        two = numba_engine.value_and_vjp_block(X, Y, kind, config,
                                               lambda S: (S, G), upper=upper,
                                               wrt_y=mode == "dx-dy")
        n = min(X.shape[0], Y.shape[0])
        paired = numba_engine.paired_value_and_vjp(X[:n], Y[:n], kind, config,
                                                   lambda S: (S, np.ones_like(S)))
        return [S, *one, *two, *paired]

    saved, threads = numba_engine.SERIAL_BELOW, numba.get_num_threads()
    try:
        numba.set_num_threads(2)
        numba_engine.SERIAL_BELOW = 1 << 62  # every call on one thread
        serial = run()
        assert numba.get_num_threads() == 2  # restored after each call
        numba_engine.SERIAL_BELOW = 0  # every call on both threads
        threaded = run()
    finally:
        numba_engine.SERIAL_BELOW = saved
        numba.set_num_threads(threads)
    for a, b in zip(serial, threaded):
        if a is None:
            assert b is None
        else:
            np.testing.assert_array_equal(a, b)
