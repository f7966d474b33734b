"""The fused all-pairs engines (Numba on the CPU, CuPy on the GPU) against the reference.

Accuracy contract (docs/engines.md). For every pair, with ``u = 2**-53``, ``n`` the number
of window positions times channels, ``f`` the covariance factor::

    |D2_engine - D2_reference| <= 1e-12 * D2_reference + 8 n u (f / k2**2 + 1 / k1)

Engines compute in units of the data range (tiles arrive divided by ``L``), where the
contract lives: the absolute floor is eight rounding units of the largest possible window
energy, 1 in these units, divided by the smallest possible denominator, ``c2 = k2**2`` for
``t2`` (and a ``sqrt(c1)``-bounded term for ``t1``), per window. The local variance of a
difference image is ``E_w[d^2] - mean_d^2`` with both terms up to 1; the engines take
``mean_d`` as a difference of per-image means and ``E_w[d^2]`` from running sums, so
their rounding is relative to the images' range rather than to each window's
difference, and ``c1, c2 > 0`` turn that into a bounded absolute error. (Two float64
implementations of the reference formula, one shifting ``d`` by its mean and one not,
differ by up to 1.7 of the unit ``n u (f / k2**2 + 2 / k1)``.) Pairs whose distance is far
above the floor agree to 1e-12 relative; natural images are checked with no floor at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ssimref
from ssimref.engines import accuracy_floor
from ssimref import SSIMConfig, distance_matrix
from ssimref.backend import available_engines, choose_engine
from ssimref.engines import get_engine
from ssimref.engines import reference as reference_engine
from ssimref.engines.reference import squared_block as reference_block
from ssimref.tiling import plan_pairs

from .conftest import cupy_with_device
from .interrupt import interrupt_after_first_tiles
from .strategies import KINDS, config_and_stack, configs, image_shapes, images

U = 2.0**-53
HAS_NUMBA = "numba" in available_engines()
CUPY = cupy_with_device()


def _compiler():
    from . import cuda_host_emulation
    return cuda_host_emulation.compiler()


needs_numba = pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed")
needs_cupy = [pytest.mark.gpu,
              pytest.mark.skipif(CUPY is None, reason="CuPy or a CUDA device missing")]


# ----------------------------------------------------------------------------- engines
def _numba_block(Xa, Yb, kind, config, upper=False):
    return get_engine("numba").squared_block(Xa, Yb, kind, config, upper=upper)


def _cupy_block(Xa, Yb, kind, config, upper=False):
    Xd = CUPY.asarray(Xa)
    Yd = Xd if Yb is Xa else CUPY.asarray(Yb)
    return CUPY.asnumpy(get_engine("cupy").squared_block(Xd, Yd, kind, config, upper=upper))


def _emulated_block(Xa, Yb, kind, config, upper=False):
    from .cuda_host_emulation import emulated_squared_block
    # 8 threads per block (the GPU runs 32 to 128): several blocks even for small tiles
    return emulated_squared_block(Xa, Yb, kind, config, upper=upper, threads=8)


ENGINE_BLOCKS = [
    pytest.param(_numba_block, id="numba", marks=needs_numba),
    pytest.param(_cupy_block, id="cupy", marks=needs_cupy),
    pytest.param(_emulated_block, id="cupy-kernel-on-host", marks=pytest.mark.skipif(
        _compiler() is None, reason="no host C++ compiler to emulate the CUDA kernel")),
]

BACKENDS = [pytest.param("numba", id="numba", marks=needs_numba),
            pytest.param("cupy", id="cupy", marks=needs_cupy)]


def _on_backend(backend, a):
    return CUPY.asarray(a) if backend == "cupy" else a


def _host(a):
    return CUPY.asnumpy(a) if CUPY is not None and isinstance(a, CUPY.ndarray) else a


def floor(config, image_shape):
    """The absolute term of the accuracy contract for images (H, W, C)."""
    return accuracy_floor(config, tuple(image_shape))


def assert_contract(got, ref, config, image_shape, rtol=1e-12):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape
    if got.size == 0:
        return
    tol = rtol * np.abs(ref) + floor(config, image_shape)
    excess = np.abs(got - ref) - tol
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert excess[worst] <= 0, (f"entry {worst}: engine {got[worst]!r}, reference "
                                f"{ref[worst]!r}, tolerance {tol[worst]:.3g}")


# ---------------------------------------------------------------------------- strategies
@st.composite
def two_stacks(draw, n_max=4, m_max=20):
    """A config and stacks X (n, H, W, C), Y (m, H, W, C) with repeated images, so that
    identical pairs (distance exactly 0) occur at different indices."""
    config = draw(configs())
    shape = draw(image_shapes(config))
    if len(shape) == 2:
        shape = (*shape, 1)
    n = draw(st.integers(1, n_max))
    m = draw(st.integers(1, m_max))
    X = draw(images(shape, config.data_range, n=n))
    Y = draw(images(shape, config.data_range, n=m))
    copies = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, m - 1)),
                           max_size=3))
    for a, b in copies:
        Y[b] = X[a]
    return config, X, Y


# --------------------------------------------------------------- engine blocks vs reference
@pytest.mark.parametrize("block", ENGINE_BLOCKS)
@pytest.mark.parametrize("kind", KINDS)
@given(data=two_stacks())
def test_block_matches_reference_rectangular(block, kind, data):
    config, X, Y = data
    ref = reference_block(X, Y, kind, config)
    got = block(X, Y, kind, config)
    assert got.shape == ref.shape and got.dtype == np.float64
    assert_contract(got, ref, config, X.shape[1:])
    same = (X[:, None] == Y[None, :]).all(axis=(2, 3, 4))
    assert (got[same] == 0.0).all()


@pytest.mark.parametrize("block", ENGINE_BLOCKS)
@pytest.mark.parametrize("kind", KINDS)
@given(data=two_stacks(n_max=20, m_max=1))
def test_block_matches_reference_upper_triangle(block, kind, data):
    config, X, _ = data
    X[-1] = X[0]  # an identical pair away from the diagonal
    ref = reference_block(X, X, kind, config)
    got = block(X, X, kind, config, upper=True)
    upper = np.triu_indices(X.shape[0], 1)
    assert_contract(got[upper], ref[upper], config, X.shape[1:])
    assert (got == got.T).all() and (np.diag(got) == 0.0).all()
    if X.shape[0] > 1:
        assert got[0, X.shape[0] - 1] == 0.0


@needs_numba
@given(data=two_stacks(n_max=6, m_max=1))
def test_numba_image_terms_match_the_array_api_ones(data):
    """The Numba engine computes its per-image terms itself (one pass per image); they
    match ssimref.engines.precompute.image_terms (the core's own moments)."""
    from ssimref.engines import numba_engine
    from ssimref.engines.precompute import image_terms

    config, X, _ = data
    L = config.data_range
    terms = image_terms(X, config, np)
    t = X.shape[0]
    rows, packed = numba_engine.image_terms(X, config)
    lanes = numba_engine.LANES
    scale = {"x0": L, "m0": L, "a": L * L, "v": L * L / config.covariance_factor(),
             "shift": L}
    for k, name in enumerate(("x0", "m0", "a", "v", "shift")):
        want = getattr(terms, name).reshape(t, -1)
        np.testing.assert_allclose(rows[k], want, rtol=1e-13, atol=1e-13 * scale[name],
                                   err_msg=name)
        # packed: image i at [i // LANES, :, i % LANES], the last image as padding
        unpacked = np.moveaxis(packed[k], -1, 1).reshape(-1, want.shape[1])
        assert (unpacked[:t] == rows[k]).all()
        assert (unpacked[t:] == rows[k][-1]).all()


def natural_patches(n, size=28, seed=0):
    """Patches of skimage's bundled camera and astronaut images, uint8 (the W1 data)."""
    from skimage import data
    from skimage.color import rgb2gray

    rng = np.random.default_rng(seed)
    sources = [data.camera(), (rgb2gray(data.astronaut()) * 255).round().astype(np.uint8)]
    out = np.empty((n, size, size), dtype=np.uint8)
    for k in range(n):
        src = sources[k % 2]
        r, c = rng.integers(0, src.shape[0] - size, size=2)
        out[k] = src[r:r + size, c:c + size]
    return out


NATURAL_CONFIGS = {
    "uniform7": SSIMConfig.skimage(data_range=255),                   # W1: uniform 7x7
    "gaussian7": SSIMConfig(window="gaussian", size=7, data_range=255),
    "blocks4": SSIMConfig(window="uniform", size=4, stride=4, data_range=255),
    "wang2004": SSIMConfig.wang2004(data_range=255),
}


@pytest.mark.parametrize("block", ENGINE_BLOCKS)
@pytest.mark.parametrize("name", list(NATURAL_CONFIGS))
def test_natural_images_meet_the_contract(block, name):
    config = NATURAL_CONFIGS[name]
    X = natural_patches(40).astype(np.float64)[..., None]
    Y = natural_patches(21, seed=1).astype(np.float64)[..., None]
    for kind in KINDS:
        assert_contract(block(X, Y, kind, config), reference_block(X, Y, kind, config),
                        config, X.shape[1:])


@pytest.fixture(scope="module")
def exact_natural():
    """D^2 of a few natural pairs in exact rational arithmetic (the oracle, uniform
    windows), for every kind: {config name: (X, Y, {kind: (n, m) float array})}."""
    from fractions import Fraction

    from ssimref.verification import oracle

    X = natural_patches(3, seed=2).astype(np.float64)
    Y = natural_patches(2, seed=3).astype(np.float64)
    result = {}
    for name in ("uniform7", "blocks4"):
        config = NATURAL_CONFIGS[name]
        sums = {kind: np.empty((3, 2)) for kind in KINDS}
        for i in range(3):
            for j in range(2):
                s1, s2 = oracle.ssim_components(X[i], Y[j], config, exact=True)
                s1, s2 = s1.ravel().tolist(), s2.ravel().tolist()
                one = Fraction(1)
                sums["eq1"][i, j] = float(sum(one - b for b in s2))
                sums["eq2"][i, j] = float(sum(2 * one - a - b for a, b in zip(s1, s2)))
                sums["eq1-uncentered"][i, j] = float(sum(one - a * b for a, b in zip(s1, s2)))
        result[name] = (X[..., None], Y[..., None], sums)
    return result


@pytest.mark.parametrize("block", ENGINE_BLOCKS)
@pytest.mark.parametrize("name", ["uniform7", "blocks4"])
def test_natural_images_to_1e13_of_exact_arithmetic(block, name, exact_natural):
    """On natural patches the engines are accurate to 1e-13 relative, no floor: checked
    against D^2 computed in exact rational arithmetic by the independent oracle."""
    X, Y, exact = exact_natural[name]
    for kind in KINDS:
        np.testing.assert_allclose(block(X, Y, kind, NATURAL_CONFIGS[name]), exact[kind],
                                   rtol=1e-13, atol=0, err_msg=kind)


@pytest.mark.parametrize("block", ENGINE_BLOCKS)
def test_multichannel_rgb_patches(block):
    from skimage import data

    rng = np.random.default_rng(5)
    img = data.astronaut()
    corners = rng.integers(0, 512 - 20, size=(9, 2))
    X = np.stack([img[r:r + 20, c:c + 17] for r, c in corners]).astype(np.float64)
    config = SSIMConfig(window="gaussian", size=5, sigma=1.0, stride=2, data_range=255)
    for kind in KINDS:
        ref = reference_block(X, X, kind, config)
        got = block(X, X[:5], kind, config)
        np.testing.assert_allclose(got, ref[:, :5], rtol=1e-12, atol=0)


def test_contract_floor_is_small_but_needed():
    """The floor exists because the engines' error is relative to the images' range:
    for images 1e-6 apart on a 0..255 scale the relative error is far above 1e-12
    yet far below the floor (measured here so that a change in either shows up)."""
    if not HAS_NUMBA:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(0)
    config = SSIMConfig.skimage(data_range=255)
    x = rng.uniform(0, 255, (1, 28, 28, 1))
    X = np.concatenate([x, x + rng.normal(0, 1e-6, x.shape)])
    ref = reference_block(X, X, "eq1", config)[0, 1]
    got = get_engine("numba").fused_block(X, X, "eq1", config, upper=True)[0, 1]
    assert abs(got - ref) > 1e-12 * ref
    assert abs(got - ref) < 0.1 * floor(config, X.shape[1:])


@needs_numba
@pytest.mark.parametrize("window", [dict(window="uniform", size=3),
                                    dict(window="gaussian", size=5, sigma=1.0)],
                         ids=["sliding", "separable"])
def test_pixels_just_below_the_accepted_magnitude_stay_finite(window):
    """Pixels of 0.999 MAX_MAGNITUDE times the range (the largest the public edge
    accepts): the kernels' products stay within float64 and the matrix agrees with the
    reference (before the bound, the Numba engine returned NaN from about 1e77 and the
    reference from about 1e150)."""
    from ssimref.config import MAX_MAGNITUDE
    rng = np.random.default_rng(4)
    X = rng.uniform(-1, 1, (6, 9, 10)) * (0.999 * MAX_MAGNITUDE)
    for kind in KINDS:
        got = distance_matrix(X, kind=kind, data_range=1.0, backend="numba", **window)
        ref = distance_matrix(X, kind=kind, data_range=1.0, backend="reference", **window)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)


# -------------------------------------------------------------- distance_matrix, all backends
@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=20)
@given(data=two_stacks(n_max=18, m_max=1), kind=st.sampled_from(KINDS),
       tiny_tiles=st.booleans())
def test_symmetric_matrix_exact_symmetry_and_zero_diagonal(backend, data, kind, tiny_tiles):
    config, X, _ = data
    X[-1] = X[0]
    wm = 1e-4 if tiny_tiles else None
    D = _host(distance_matrix(_on_backend(backend, X), kind=kind, config=config,
                              backend=backend, working_memory=wm))
    ref = distance_matrix(X, kind=kind, config=config, backend="reference")
    assert (D == D.T).all()
    assert (np.diag(D) == 0.0).all()
    assert D[0, -1] == 0.0
    assert_contract(D**2, ref**2, config, X.shape[1:])


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=15)
@given(data=two_stacks(n_max=6, m_max=20), kind=st.sampled_from(KINDS))
def test_rectangular_matrix_and_squared(backend, data, kind):
    config, X, Y = data
    D2 = _host(distance_matrix(_on_backend(backend, X), _on_backend(backend, Y), kind=kind,
                               config=config, squared=True, backend=backend))
    ref = reference_block(X, Y, kind, config)
    assert D2.shape == (X.shape[0], Y.shape[0])
    assert_contract(D2, ref, config, X.shape[1:])


@pytest.mark.parametrize("backend", BACKENDS)
def test_tiling_does_not_change_a_single_bit(backend):
    X = _on_backend(backend, natural_patches(45))
    config = SSIMConfig.skimage(data_range=255)
    whole = _host(distance_matrix(X, config=config, backend=backend))
    # per-image terms take 63 kB an image here: tiles of about 10 x 10 images
    tiled = _host(distance_matrix(X, config=config, backend=backend, working_memory=1.5))
    rect = _host(distance_matrix(X, X[:45], config=config, backend=backend,
                                 working_memory=2))
    upper = np.triu_indices(45, 1)
    if backend == "numba":
        assert (whole == tiled).all()
        assert (rect[upper] == whole[upper]).all()
        assert (rect == rect.T).all()  # (i, j) and (j, i) computed apart: the same bits
    else:  # GPU reductions (per-image means) may be ordered by the tile's size
        np.testing.assert_allclose(tiled, whole, rtol=1e-13)
        np.testing.assert_allclose(rect[upper], whole[upper], rtol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_output_is_float64_rounded_once(backend):
    X = _on_backend(backend, natural_patches(30))
    config = SSIMConfig.skimage(data_range=255)
    D64 = _host(distance_matrix(X, config=config, backend=backend))
    D32 = _host(distance_matrix(X, config=config, backend=backend, dtype="float32"))
    assert D32.dtype == np.float32
    assert (D32 == D64.astype(np.float32)).all()
    np.testing.assert_allclose(D32, D64, rtol=1e-6, atol=0)


@pytest.mark.parametrize("backend", [pytest.param("reference", id="reference"), *BACKENDS])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_out_memmap_and_progress(backend, dtype, tmp_path, capsys):
    X = natural_patches(37)
    config = SSIMConfig.skimage(data_range=255)
    out = np.lib.format.open_memmap(tmp_path / "D.npy", mode="w+", dtype=dtype,
                                    shape=(37, 37))
    result = distance_matrix(_on_backend(backend, X), config=config, backend=backend,
                             out=out, progress=True, working_memory=1.5)
    assert result is out
    out.flush()
    del out, result
    stored = np.load(tmp_path / "D.npy", allow_pickle=False)
    ref = distance_matrix(X, config=config, backend="reference").astype(dtype)
    np.testing.assert_allclose(stored, ref, rtol=1e-12 if dtype == "float64" else 1e-6)
    bar = capsys.readouterr().err
    assert "SSIM distances" in bar and "666/666" in bar  # 37 * 36 / 2 pairs


# ---------------------------------------------------------------------------- Ctrl-C
@pytest.mark.parametrize("backend", ["reference", pytest.param("numba", marks=needs_numba)])
def test_interrupt_leaves_no_output_and_no_temporary_file(backend, tmp_path):
    """SIGINT (Ctrl-C) after the first tiles are written leaves neither the matrix nor
    its sidecar under their names; the completed tiles are kept to resume."""
    np.save(tmp_path / "X.npy", natural_patches(2000))
    code, err, written = interrupt_after_first_tiles(
        ["distance", "X.npy", "-o", "D.npy", "--window", "uniform", "--working-memory", "1.5",
         "--backend", backend], tmp_path, "D.npy")
    assert code == 130 and 0 < written < 1  # interrupted with part of the matrix written
    assert "interrupted (SIGINT); kept" in err and "resume with:" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [".D.npy.partial", "X.npy"]


# --------------------------------------------------------------------- engine choice
def test_a_registered_engine_is_chosen_by_name_only():
    """A plug-in engine computes distance_matrix's tiles when named, never for "auto",
    and leaves no trace once unregistered."""
    from ssimref.engines import register_engine, unregister_engine

    class Scaled:
        NAME = "test-twice-reference"
        bytes_per_pair = staticmethod(reference_engine.bytes_per_pair)
        bytes_per_image = staticmethod(reference_engine.bytes_per_image)
        max_tile_pairs = staticmethod(reference_engine.max_tile_pairs)

        @staticmethod
        def squared_block(Xa, Yb, kind, config, *, upper=False):
            return 4.0 * reference_block(Xa, Yb, kind, config, upper=upper)

    X = natural_patches(7, size=12)
    config = SSIMConfig(window="uniform", size=5)
    with pytest.raises(ValueError, match="backend must be one of"):
        distance_matrix(X, config=config, backend=Scaled.NAME)
    register_engine(Scaled)
    try:
        with pytest.raises(ValueError, match="registered"):
            register_engine(Scaled)
        assert choose_engine("auto", np) in ("numba", "reference")
        D = distance_matrix(X, config=config, backend=Scaled.NAME)
        np.testing.assert_array_equal(D, 2.0 * distance_matrix(X, config=config,
                                                               backend="reference"))
    finally:
        unregister_engine(Scaled.NAME)
    with pytest.raises(ValueError, match="backend must be one of"):
        choose_engine(Scaled.NAME, np)


def test_register_engine_refuses_incomplete_or_builtin_engines():
    from ssimref.engines import register_engine

    class Incomplete:
        NAME = "test-incomplete"

        @staticmethod
        def squared_block(Xa, Yb, kind, config, *, upper=False):
            return None

    with pytest.raises(TypeError, match="bytes_per_pair"):
        register_engine(Incomplete)
    reference_named = type("Clash", (), {"NAME": "numba", **{
        k: staticmethod(getattr(reference_engine, k)) for k in
        ("squared_block", "bytes_per_pair", "bytes_per_image", "max_tile_pairs")}})
    with pytest.raises(ValueError, match="other than"):
        register_engine(reference_named)


def test_available_engines_and_auto_choice():
    import array_api_strict

    engines = available_engines()
    assert ("numba" in engines) == HAS_NUMBA
    assert ("cupy" in engines) == (CUPY is not None)
    assert choose_engine("auto", np) == ("numba" if HAS_NUMBA else "reference")
    assert choose_engine("auto", array_api_strict) == "reference"
    assert choose_engine("reference", np) == "reference"
    if CUPY is None:
        with pytest.raises(ValueError, match="not available"):
            choose_engine("cupy", np)
    elif HAS_NUMBA:
        with pytest.raises(ValueError, match="needs NumPy arrays"):
            choose_engine("numba", CUPY)


def test_package_imports_without_the_engines():
    """ssimref imports neither numba nor cupy until an engine is used."""
    import subprocess
    import sys

    code = ("import sys, ssimref; ssimref.distance_matrix; "
            "print('numba' in sys.modules, 'cupy' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(Path(ssimref.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    assert out == ["False", "False"]


def test_engine_tiles_fit_working_memory():
    """Tiles of the fused engines hold only their (ta, tb) block and per-image terms:
    no pairs x positions array, and the sum stays within working_memory."""
    numba_engine = pytest.importorskip("ssimref.engines.numba_engine")
    config = SSIMConfig.skimage(data_range=255)
    shape = (28, 28, 1)
    per_pair = numba_engine.bytes_per_pair(shape, config)
    per_image = numba_engine.bytes_per_image(shape, config)
    for wm in (0.5, 16, 1024):
        for symmetric in (True, False):
            max_pairs = numba_engine.max_tile_pairs(shape, config)
            plan = plan_pairs(10_000, None if symmetric else 7_000, bytes_per_pair=per_pair,
                              bytes_per_image=per_image, max_pairs=max_pairs,
                              working_memory=wm)
            ta, tb = plan.tile_rows, plan.tile_cols
            assert ta * tb <= max_pairs
            if ta * tb > 1:
                assert ta * tb * per_pair + (ta + tb) * per_image <= wm * 2**20


def test_cuda_kernel_compiles_with_nvcc(tmp_path):
    """The CuPy engine's kernel source compiles for an H100 (sm_90) where nvcc exists."""
    import shutil
    import subprocess

    from ssimref.engines.cupy_engine import kernel_source

    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not installed")
    for sliding, geometry in ((1, (28, 28, 1, 7, 1)), (0, (64, 48, 3, 11, 3))):
        src = tmp_path / f"k{sliding}.cu"
        src.write_text(f"#define SLIDING {sliding}\n" + kernel_source(*geometry))
        subprocess.run([nvcc, "-arch=sm_90", "-c", "-o", str(src.with_suffix(".o")), str(src)],
                       check=True, capture_output=True)


# ---------------------------------------------------------------------- GPU streaming
@pytest.mark.gpu
@pytest.mark.skipif(CUPY is None, reason="CuPy or a CUDA device missing")
def test_cupy_streams_tiles_to_a_host_memmap(tmp_path):
    X = natural_patches(150)
    config = SSIMConfig.skimage(data_range=255)
    out = np.lib.format.open_memmap(tmp_path / "D.npy", mode="w+", dtype="float32",
                                    shape=(150, 150))
    distance_matrix(CUPY.asarray(X), config=config, backend="cupy", out=out,
                    working_memory=5)  # tiles of about 40 x 40
    ref = distance_matrix(X, config=config, backend="reference")
    np.testing.assert_allclose(np.asarray(out), ref.astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("backend", ["numba"])
@pytest.mark.parametrize("kind", ["eq1", "eq1-uncentered", "eq2"])
def test_images_agreeing_on_every_window_are_at_exactly_zero(backend, kind):
    """Near-zero engine results are refined by the reference, which is exactly 0 when two
    images agree on every window (here they differ only outside all windows)."""
    pytest.importorskip(backend)
    config = ssimref.SSIMConfig(window="uniform", size=2, stride=3, data_range=255)
    rng = np.random.default_rng(5)
    x = rng.random((8, 8)) * 255
    y = x.copy()
    y[2::3, :] = 3.0
    X = np.stack([x, y, x * 0.5, y])
    D = ssimref.distance_matrix(X, kind=kind, config=config, backend=backend)
    ref = ssimref.distance_matrix(X, kind=kind, config=config, backend="reference")
    assert D[0, 1] == 0.0 and D[1, 3] == 0.0 and D[0, 3] == 0.0
    np.testing.assert_allclose(D, ref, rtol=1e-12)
    R = ssimref.distance_matrix(X[:2], X[1:], kind=kind, config=config, backend=backend)
    assert R[0, 0] == 0.0 and R[0, 2] == 0.0


@settings(max_examples=40, deadline=None)
@given(data=st.data(), kind=st.sampled_from(KINDS), upper=st.booleans())
def test_refinement_recomputes_each_near_pair_as_the_reference_does(data, kind, upper):
    """The refinement recomputes the near pairs in batches of matched pairs: each value is
    the reference's ``squared_block`` of that pair alone, bit for bit, the others are left
    as they were, and a diagonal tile stays exactly symmetric. Stacks with repeated images
    and near-duplicates (a pixel changed by 1e-9 of the range) give pairs near 0; a floor
    of infinity makes every pair 'near'."""
    config, X = data.draw(config_and_stack(n_min=2, n_max=5))
    X = X if X.ndim == 4 else X[..., None]
    near_copy = X[:1].copy()
    near_copy[0, 0, 0, 0] += 1e-9 * config.data_range
    X = np.concatenate([X, X[:1], near_copy])
    Y = X if upper else X[::-1].copy()
    units = config.in_range_units()
    Xu = ssimref.moments.in_range_units(X, config, np)
    Yu = Xu if upper else ssimref.moments.in_range_units(Y, config, np)
    floor = data.draw(st.sampled_from([accuracy_floor(units, Xu.shape[1:]), np.inf]))
    # a fused block: zeros (near) and values far above the floor (left alone)
    start = np.where(np.random.default_rng(len(Xu)).random((len(Xu), len(Yu))) < 0.5, 0.0,
                     7.0)
    if upper:
        start = np.triu(start, 1) + np.triu(start, 1).T  # symmetric, zero diagonal
    block = reference_engine.refine_near_zero(start.copy(), Xu, Yu, upper, floor, kind,
                                              units)
    for i in range(len(Xu)):
        for j in range(len(Yu)):
            if upper and i == j:
                assert block[i, j] == 0.0
            elif start[i, j] <= floor:
                one = reference_block(Xu[i:i + 1], Yu[j:j + 1], kind, units)[0, 0]
                assert block[i, j] == one, (i, j)
            else:
                assert block[i, j] == start[i, j]
    if upper:
        assert np.array_equal(block, block.T)
    paired = reference_engine.refine_paired_near_zero(np.full(len(Xu), floor / 2), Xu, Yu,
                                                      floor, kind, units) \
        if floor != np.inf else None
    if paired is not None:
        for i in range(len(Xu)):
            one = reference_block(Xu[i:i + 1], Yu[i:i + 1], kind, units)[0, 0]
            assert paired[i] == one


@needs_numba
@settings(max_examples=40, deadline=None)
@given(data=st.data(), kind=st.sampled_from(KINDS), upper=st.booleans(),
       dtype=st.sampled_from(["float64", "float32"]), squared=st.booleans(),
       into=st.booleans())
def test_numba_distance_block_is_the_squared_block_rooted_and_rounded_once(
        data, kind, upper, dtype, squared, into):
    """The Numba kernels root, round and flag the pairs near 0 as they store each pair.
    Their block is the scanning path's, bit for bit: the fused ``D^2`` block refined where
    a scan of the whole block finds it within the floor (the reference engine's
    ``refine_near_zero`` without the kernel's flags), then rooted with NumPy and rounded
    once to ``dtype``, of the images divided by the data range by NumPy
    (``in_range_units``; the engine divides the images as stored on its threads).
    Stacks with repeated images and near-duplicates (a pixel changed by 1e-9 of the
    range) put pairs near 0, so a pair the kernels failed to flag keeps its fused value
    and differs. With ``into``, the block is written into a strided view
    of a larger NaN-filled matrix (as the executor hands over a tile's place in the
    output): every entry of the view is written, nothing outside it."""
    config, X = data.draw(config_and_stack(n_min=2, n_max=6))
    X = X if X.ndim == 4 else X[..., None]
    near_copy = X[-1:].copy()
    near_copy[0, -1, -1, 0] += 1e-9 * config.data_range
    X = np.concatenate([X, X[:1], near_copy, X[1:2]])
    units = config.in_range_units()
    Xu = ssimref.moments.in_range_units(X, config, np)
    Yu = Xu if upper else np.ascontiguousarray(Xu[::-1])
    engine = get_engine("numba")
    floor = accuracy_floor(units, Xu.shape[1:])
    scanned = reference_engine.refine_near_zero(
        engine.fused_block(Xu, Yu, kind, units, upper=upper), Xu, Yu, upper, floor, kind,
        units)
    want = (scanned if squared else np.sqrt(scanned)).astype(dtype)
    whole = np.full((len(Xu) + 3, len(Yu) + 5), np.nan, dtype=dtype)
    view = whole[1:1 + len(Xu), 2:2 + len(Yu)] if into else None
    got = engine.distance_block(X, X if upper else X[::-1].copy(), kind, config,
                                upper=upper, squared=squared, dtype=dtype, out=view)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, want, strict=True)
    if into:
        assert got is view
        outside = np.ones(whole.shape, dtype=bool)
        outside[1:1 + len(Xu), 2:2 + len(Yu)] = False
        assert np.isnan(whole[outside]).all()
    if squared and dtype == "float64":
        np.testing.assert_array_equal(engine.squared_block(Xu, Yu, kind, units, upper=upper),
                                      want, strict=True)


def test_engines_without_distance_block_get_the_passes_from_the_protocol():
    """``ssimref.engines.distance_block`` roots and rounds a plug-in's ``squared_block``
    block (an engine that lacks ``distance_block``) as NumPy does."""
    from ssimref.engines import distance_block

    class SquaredOnly:
        NAME = "squared-only"

        @staticmethod
        def squared_block(Xa, Yb, kind, config, *, upper=False):
            return reference_block(Xa, Yb, kind, config, upper=upper)

    rng = np.random.default_rng(2)
    X = rng.random((4, 9, 9, 1))
    config = SSIMConfig(window="uniform", size=3, data_range=1.0)
    block = reference_block(X, X, "eq2", config, upper=True)
    got = distance_block(SquaredOnly(), X, X, "eq2", config, upper=True, dtype="float32")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.sqrt(block).astype(np.float32))
    got = distance_block(SquaredOnly(), X, X, "eq2", config, upper=True, squared=True)
    np.testing.assert_array_equal(got, block)
    # images as stored: divided by the data range first
    got = distance_block(SquaredOnly(), X * 255, X * 255, "eq2",
                         SSIMConfig(window="uniform", size=3, data_range=255.0), upper=True)
    want = reference_block(X * 255 / 255, X * 255 / 255, "eq2", config, upper=True)
    np.testing.assert_array_equal(got, np.sqrt(want))


def test_refine_near_zero_refuses_a_rooted_block_without_the_flagged_pairs():
    X = np.random.default_rng(0).random((2, 5, 5, 1))
    config = SSIMConfig(window="uniform", size=3, data_range=1.0)
    with pytest.raises(ValueError, match="needs near="):
        reference_engine.refine_near_zero(np.zeros((2, 2)), X, X, True, 1e-9, "eq2", config,
                                          root=True)


@needs_numba
@pytest.mark.parametrize("dtype", [">f8", "<f4", "float16", ">u2", "bool", "int8", ">i4",
                                   "uint8"])
def test_numba_engine_reads_every_real_dtype_as_the_reference_does(dtype):
    """The Numba engine converts the tile's images itself; byte orders and widths that
    Numba cannot read (big-endian, float16) go through NumPy. Every dtype gives the
    reference engine's matrix (the accuracy contract's relative term, the floor)."""
    rng = np.random.default_rng(3)
    scale = 1 if np.dtype(dtype).kind in "fb" else 100
    X = (rng.random((6, 9, 9)) * scale).astype(dtype)
    config = SSIMConfig(window="uniform", size=3, data_range=float(scale))
    got = distance_matrix(X, config=config, backend="numba", squared=True)
    want = distance_matrix(X, config=config, backend="reference", squared=True)
    floor = accuracy_floor(config.in_range_units(), (9, 9, 1))
    assert np.all(np.abs(got - want) <= 1e-12 * want + floor)
