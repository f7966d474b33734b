"""The Numba engine gives the same bits whether its kernels were compiled in this process
or loaded from Numba's on-disk cache.

A resumed job, a Dask worker and a CLI run each take their kernels from the cache that an
earlier process wrote, while the process that wrote it used the code it had just
compiled; the matrices they assemble together must agree bit for bit (tests/test_resume.py,
tests/test_dask.py). This holds only because the kernels leave the compiler no choice over
rounding: ``fastmath`` is off, so no ``a * b + c`` may or may not become an FMA depending on
how a compilation went (docs/engines.md, "Accuracy contract"). With FMA contraction allowed,
the code compiled in a process and the code loaded from the cache differed in the last bit
of about one pair in five.

Each case runs in two fresh subprocesses sharing an empty ``NUMBA_CACHE_DIR``: the first
compiles every kernel it calls and writes the cache, the second loads them. Both must give
the same bits as each other and as this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ssimref.backend import available_engines

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif("numba" not in available_engines(),
                                 reason="numba is not installed")]

ROOT = Path(__file__).resolve().parent.parent

# every forward kernel family of the engine: sliding sums (uniform, stride 1), separable
# weighted sums (Gaussian), non-overlapping windows (stride >= size); the VJP blocks and the
# one-pass value and VJP (SSIM-RBF MMD) on the sliding sums (compiling the other VJP
# kernels in a fresh process would cost another 25 s; the flags test below covers them)
WINDOWS = {"sliding": dict(window="uniform", size=3),
           "separable": dict(window="gaussian", size=5, sigma=1.0),
           "strided": dict(window="uniform", size=3, stride=3)}


def compute() -> dict[str, np.ndarray]:
    """Every kernel's output on fixed data, by name."""
    import ssimref
    from ssimref.gmmn import mmd2_and_grad
    from ssimref.kernels import SSIMRBFKernel

    rng = np.random.default_rng(7)
    X = rng.integers(0, 256, (70, 12, 11), dtype=np.uint8)
    Y = rng.integers(0, 256, (40, 12, 11), dtype=np.uint8)
    Xf, Yf = X.astype(np.float64), Y.astype(np.float64)
    G = rng.standard_normal((70, 70))
    G = G + G.T
    Gxy = rng.standard_normal((70, 40))
    out = {}
    for name, conventions in WINDOWS.items():
        conv: dict = dict(conventions, data_range=255, backend="numba")
        for kind in ("eq1", "eq2", "eq1-uncentered"):
            out[f"D-{name}-{kind}"] = ssimref.distance_matrix(X, None, kind, **conv)
            out[f"Dxy-{name}-{kind}"] = ssimref.distance_matrix(X, Y, kind, **conv)
    conv = dict(WINDOWS["sliding"], data_range=255, backend="numba")
    out["vjp-diag"] = ssimref.distance_matrix_vjp(Xf, None, G, **conv)[0]
    out["vjp-x"], out["vjp-y"] = ssimref.distance_matrix_vjp(Xf, Yf, Gxy, **conv)
    kernel = SSIMRBFKernel(0.05, window="uniform", size=3, data_range=255, backend="numba")
    value, out["mmd2-grad"] = mmd2_and_grad(Xf, Yf, kernel)
    out["mmd2"] = np.array(value)
    return out


def _run(tmp_path: Path, cache: Path, name: str) -> dict[str, np.ndarray]:
    """``compute()`` in a fresh subprocess with Numba's cache in ``cache``."""
    target = tmp_path / f"{name}.npz"
    code = ("import sys, numpy as np; from tests.test_compiled_bits import compute; "
            "np.savez(sys.argv[1], **compute())")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    done = subprocess.run([sys.executable, "-c", code, str(target)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with np.load(target) as data:
        return {key: data[key] for key in data.files}


def _mismatches(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, int]:
    assert a.keys() == b.keys()
    return {key: int(np.sum(a[key].view(np.uint64) != b[key].view(np.uint64)))
            for key in a if a[key].tobytes() != b[key].tobytes()}


def test_kernels_compiled_here_and_loaded_from_the_cache_give_the_same_bits(tmp_path):
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    compiled = _run(tmp_path, cache, "compiled")
    assert any(cache.rglob("*.nbc")), "the first process wrote no cache"
    loaded = _run(tmp_path, cache, "loaded")
    assert _mismatches(compiled, loaded) == {}, json.dumps(_mismatches(compiled, loaded))
    # and what this process computes (its kernels from the project's own cache, or
    # compiled here) is the same again
    assert _mismatches(compiled, compute()) == {}


def test_no_numba_kernel_lets_the_compiler_choose_its_rounding():
    """Every compiled function of the Numba engines has ``fastmath`` off: no FMA
    contraction, no reassociation, no approximate functions (the kernels the test above
    does not compile in a fresh process included)."""
    from numba.core.registry import CPUDispatcher

    from ssimref.engines import numba_engine, numba_vjp

    dispatchers = {f"{module.__name__}.{name}": value
                   for module in (numba_engine, numba_vjp)
                   for name, value in vars(module).items()
                   if isinstance(value, CPUDispatcher)}
    assert len(dispatchers) >= 20
    allowed = {name: d.targetoptions.get("fastmath") for name, d in dispatchers.items()
               if d.targetoptions.get("fastmath")}
    assert allowed == {}
