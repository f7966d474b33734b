"""Run the CuPy engine's CUDA kernel on the CPU, thread by thread.

The kernel (ssimref.engines.cupy_engine) is plain C++ apart from a few CUDA names; its
threads never communicate. Compiled with a host C++ compiler after the definitions below,
and called once per (block, thread) in sequence, it computes exactly what the GPU would,
up to FMA contraction. This checks the kernel's indexing, layouts and arithmetic where no
GPU is present. The host side (packing, launch geometry) is the engine's own code:
:func:`emulated_squared_block` reuses its packing functions with NumPy.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ssimref.engines import cupy_engine
from ssimref.engines.precompute import image_terms
from ssimref.engines.reference import symmetrise_upper
from ssimref.kinds import get_kind

_PRELUDE = r"""
#define SSIM_HOST_EMULATION 1
struct ssim_index3 { long long x, y, z; };
static ssim_index3 threadIdx, blockIdx, blockDim;
static double* scratch;
#define SSIM_SHARED_SCRATCH
#define __global__
"""

_DRIVER = r"""
extern "C" void launch(
    const double* x0r, const double* m0r, const double* ar, const double* vr,
    const double* shr, const double* x0c, const double* m0c, const double* ac,
    const double* vc, const double* shc, const double* taps, long long tb, long long ldc,
    double scale, double e1, double e3, int upper, double* out,
    long long grid_x, long long grid_y, long long threads, double* shared)
{
    scratch = shared;
    blockDim.x = threads;
    for (long long by = 0; by < grid_y; ++by) {
        for (long long bx = 0; bx < grid_x; ++bx) {
            for (long long t = 0; t < threads; ++t) {
                blockIdx.x = bx; blockIdx.y = by; threadIdx.x = t;
                ssim_pair_distances(x0r, m0r, ar, vr, shr, x0c, m0c, ac, vc, shc, taps,
                                    tb, ldc, scale, e1, e3, upper, out);
            }
        }
    }
}
"""

_BUILD = Path(tempfile.gettempdir()) / "ssimref-cuda-emulation"


def compiler():
    """A host C++ compiler, or None."""
    return shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


def _library(height, width, channels, size, stride, sliding):
    source = (f"#define SLIDING {int(sliding)}\n" + _PRELUDE
              + cupy_engine.kernel_source(height, width, channels, size, stride) + _DRIVER)
    digest = hashlib.sha1(source.encode()).hexdigest()[:16]
    _BUILD.mkdir(exist_ok=True)
    lib = _BUILD / f"kernel_{digest}.so"
    if not lib.exists():
        src = _BUILD / f"kernel_{digest}.cpp"
        src.write_text(source)
        tmp = lib.with_suffix(f".{digest}.tmp")
        # -ffp-contract=off: no FMA, so the emulation is bit-reproducible on any host
        subprocess.run([compiler(), "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-o",
                        str(tmp), str(src)], check=True, capture_output=True)
        tmp.replace(lib)
    return ctypes.CDLL(str(lib))


def _pointer(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def emulated_squared_block(Xa, Yb, kind, config, upper=False, threads=None):
    """What cupy_engine.squared_block computes, with the kernel run on the CPU."""
    ta, height, width, channels = Xa.shape
    tb = Yb.shape[0]
    threads = threads or max(32, cupy_engine.threads_per_block(width))
    ldc = -(-tb // threads) * threads
    rows = cupy_engine.row_arrays(image_terms(Xa, config, np), np)
    cols = cupy_engine.column_arrays(image_terms(Yb, config, np), np, ldc)
    taps = config.taps()
    uniform = config.window == "uniform"
    weights = np.ones(config.size) if uniform else np.asarray(taps, dtype=np.float64)
    scale = taps[0] * taps[0] if uniform else 1.0
    e1, e3 = get_kind(kind).e1, get_kind(kind).e3
    out = np.zeros((ta, tb))
    shared = np.zeros(width * threads)
    sliding = uniform and config.stride == 1
    lib = _library(height, width, channels, config.size, config.stride, sliding)
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (*rows, *cols, weights)]
    lib.launch(*[_pointer(a) for a in arrays], ctypes.c_longlong(tb), ctypes.c_longlong(ldc),
               ctypes.c_double(scale), ctypes.c_double(e1), ctypes.c_double(e3),
               ctypes.c_int(int(bool(upper))), _pointer(out), ctypes.c_longlong(ta),
               ctypes.c_longlong(ldc // threads), ctypes.c_longlong(threads), _pointer(shared))
    if upper:  # as the engine does after its kernel
        out = symmetrise_upper(out, np)
    return out
