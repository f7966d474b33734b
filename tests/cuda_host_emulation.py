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


# ------------------------------------------------------------------- VJP kernel (blocks)
# The VJP kernel (ssimref.engines.cupy_vjp) is cooperative: the threads of a block share
# buffers and meet at __syncthreads. Each block therefore runs with one host thread per
# CUDA thread, a pthread barrier for __syncthreads and a buffer for its shared memory;
# blocks run one after another. Thread-private variables (the kernel's register arrays)
# live on each host thread's stack, as on the GPU.
_VJP_PRELUDE = r"""
#define SSIM_HOST_EMULATION 1
#include <pthread.h>
#include <vector>
struct ssim_index3 { long long x, y, z; };
static thread_local ssim_index3 threadIdx;
static ssim_index3 blockIdx, blockDim;
static double* ssim_shared;
static pthread_barrier_t ssim_barrier;
#define SSIM_VJP_SHARED double* smem = ssim_shared;
#define SSIM_SYNC() pthread_barrier_wait(&ssim_barrier)
#define SSIM_BOUNDS
#define __global__
#define __device__
#define __forceinline__ inline
"""

_VJP_DRIVER = r"""
struct ssim_args {
    const double *a0, *am0, *aa, *av, *ash, *b0, *bm0, *ba, *bv, *bsh, *taps, *wts;
    long long nb; int paired; double scale, e1, e3; int want_grad;
    double *grad, *values; long long tid;
};

static void* ssim_thread(void* p)
{
    ssim_args* g = (ssim_args*)p;
    threadIdx.x = g->tid; threadIdx.y = 0; threadIdx.z = 0;
    ssim_vjp_side(g->a0, g->am0, g->aa, g->av, g->ash, g->b0, g->bm0, g->ba, g->bv, g->bsh,
                  g->taps, g->wts, g->nb, g->paired, g->scale, g->e1, g->e3, g->want_grad,
                  g->grad, g->values);
    return nullptr;
}

extern "C" int launch(
    const double* a0, const double* am0, const double* aa, const double* av,
    const double* ash, const double* b0, const double* bm0, const double* ba,
    const double* bv, const double* bsh, const double* taps, const double* wts,
    long long nb, int paired, double scale, double e1, double e3, int want_grad,
    double* grad, double* values, long long grid, double* shared, long long shared_doubles)
{
    blockDim.x = THREADS; blockDim.y = 1; blockDim.z = 1;
    std::vector<pthread_t> threads(THREADS);
    std::vector<ssim_args> args(THREADS);
    for (long long bx = 0; bx < grid; ++bx) {
        blockIdx.x = bx; blockIdx.y = 0; blockIdx.z = 0;
        for (long long k = 0; k < shared_doubles; ++k) {
            shared[k] = -1e300;  // garbage: a read before a write shows up in the results
        }
        ssim_shared = shared;
        if (pthread_barrier_init(&ssim_barrier, nullptr, THREADS) != 0) {
            return 1;
        }
        for (int t = 0; t < THREADS; ++t) {
            args[t] = ssim_args{a0, am0, aa, av, ash, b0, bm0, ba, bv, bsh, taps, wts, nb,
                                paired, scale, e1, e3, want_grad, grad, values, t};
            if (pthread_create(&threads[t], nullptr, ssim_thread, &args[t]) != 0) {
                return 2;
            }
        }
        for (int t = 0; t < THREADS; ++t) {
            pthread_join(threads[t], nullptr);
        }
        pthread_barrier_destroy(&ssim_barrier);
    }
    return 0;
}
"""


def _vjp_library(source):
    full = _VJP_PRELUDE + source + _VJP_DRIVER
    digest = hashlib.sha1(full.encode()).hexdigest()[:16]
    _BUILD.mkdir(exist_ok=True)
    lib = _BUILD / f"vjp_{digest}.so"
    if not lib.exists():
        src = _BUILD / f"vjp_{digest}.cpp"
        src.write_text(full)
        tmp = lib.with_suffix(f".{digest}.tmp")
        # -ffp-contract=off: no FMA, so the emulation is bit-reproducible on any host
        subprocess.run([compiler(), "-O1", "-ffp-contract=off", "-std=c++14", "-pthread",
                        "-shared", "-fPIC", "-o", str(tmp), str(src)],
                       check=True, capture_output=True)
        tmp.replace(lib)
    return ctypes.CDLL(str(lib))


def host_launch(source, grid, threads, shared_bytes, args):
    """Run the VJP kernel ``source`` on the CPU: the ``launch`` callable that
    :func:`ssimref.engines.cupy_vjp.side_gradients` takes, for NumPy arrays."""
    lib = _vjp_library(source)
    shared = np.empty(max(1, shared_bytes // 8))
    c_args = []
    for a in args:
        if isinstance(a, np.ndarray) and a.ndim > 0:
            assert a.flags.c_contiguous and a.dtype == np.float64, "kernel arrays"
            c_args.append(_pointer(a))
        elif isinstance(a, np.int64):
            c_args.append(ctypes.c_longlong(int(a)))
        elif isinstance(a, np.int32):
            c_args.append(ctypes.c_int(int(a)))
        else:
            c_args.append(ctypes.c_double(float(a)))
    rc = lib.launch(*c_args, ctypes.c_longlong(grid[0]), _pointer(shared),
                    ctypes.c_longlong(shared.size))
    assert rc == 0, f"emulated launch failed ({rc})"


def emulated_vjp_block(Xa, Yb, W, kind, config, *, upper=False, wrt_y=True, threads=16):
    """What cupy_vjp.vjp_block computes, with every launch run on the CPU (NumPy in and
    out; ``threads`` per block, fewer than on the GPU so that each thread owns several
    pixels and windows)."""
    from ssimref.engines.cupy_vjp import side_gradients

    def side(A, B, weights):
        return side_gradients(A, B, weights, kind, config, host_launch, threads=threads)[0]

    if upper:
        Wu = np.triu(W, 1)
        return side(Xa, Xa, Wu + Wu.T), None
    dX = side(Xa, Yb, W)
    return dX, (side(Yb, Xa, np.ascontiguousarray(W.T)) if wrt_y else None)


def emulated_paired(X, Y, w, kind, config, *, threads=16):
    """What cupy_vjp.paired_squared and paired_vjp compute: (S, dX, dY), on the CPU."""
    from ssimref.engines.cupy_vjp import side_gradients

    S = side_gradients(X, Y, np.ones(X.shape[0]), kind, config, host_launch, paired=True,
                       want_grad=False, threads=threads)[1]
    dX = side_gradients(X, Y, w, kind, config, host_launch, paired=True, threads=threads)[0]
    dY = side_gradients(Y, X, w, kind, config, host_launch, paired=True, threads=threads)[0]
    return S, dX, dY


class EmulatedCupyEngine:
    """The CuPy engine's kernels run on the host, as an engine plug-in
    (:func:`ssimref.engines.register_engine`) on NumPy arrays: the public functions then
    run the CUDA kernels through the tile plan, the executor and the value-and-VJP loops,
    composed as the CuPy engine composes them (forward block, near-zero refinement,
    cotangent, VJP kernel). Memory figures are the CuPy engine's."""

    NAME = "cupy-kernel-on-host"
    threads = 8  # per VJP block: each thread owns several pixels and windows

    from ssimref.engines.cupy_engine import (bytes_per_image, bytes_per_pair,  # noqa: E402
                                             max_tile_pairs, vjp_bytes_per_image,
                                             vjp_bytes_per_pair, vjp_max_tile_pairs)
    bytes_per_pair = staticmethod(bytes_per_pair)
    bytes_per_image = staticmethod(bytes_per_image)
    max_tile_pairs = staticmethod(max_tile_pairs)
    vjp_bytes_per_pair = staticmethod(vjp_bytes_per_pair)
    vjp_bytes_per_image = staticmethod(vjp_bytes_per_image)
    vjp_max_tile_pairs = staticmethod(vjp_max_tile_pairs)

    @staticmethod
    def squared_block(Xa, Yb, kind, config, *, upper=False):
        from ssimref.engines import accuracy_floor
        from ssimref.engines.reference import refine_near_zero

        block = emulated_squared_block(Xa, Yb, kind, config, upper=upper)
        return refine_near_zero(block, Xa, Yb, upper, accuracy_floor(config, Xa.shape[1:]),
                                kind, config)

    @classmethod
    def value_and_vjp_block(cls, Xa, Yb, kind, config, cotangent, *, upper=False,
                            wrt_y=True):
        value, W = cotangent(cls.squared_block(Xa, Yb, kind, config, upper=upper))
        dX, dY = emulated_vjp_block(Xa, Yb, np.ascontiguousarray(W), kind, config,
                                    upper=upper, wrt_y=wrt_y and not upper,
                                    threads=cls.threads)
        return value, dX, dY

    @classmethod
    def paired_value_and_vjp(cls, X, Y, kind, config, cotangent):
        from ssimref.engines import accuracy_floor
        from ssimref.engines.reference import refine_paired_near_zero

        X, Y = np.ascontiguousarray(X), np.ascontiguousarray(Y)
        n = X.shape[0]
        S, _, _ = emulated_paired(X, Y, np.zeros(n), kind, config, threads=cls.threads)
        S = refine_paired_near_zero(S, X, Y, accuracy_floor(config, X.shape[1:]), kind,
                                    config)
        value, w = cotangent(S)
        if w is None:
            return value, None, None
        _, dX, dY = emulated_paired(X, Y, np.ascontiguousarray(w), kind, config,
                                    threads=cls.threads)
        return value, dX, dY
