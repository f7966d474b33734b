"""Fused all-pairs SSIM distances on a CUDA GPU, with CuPy.

The same computation as :mod:`ssimref.engines.numba_engine` (per-image terms from
:mod:`ssimref.engines.precompute`, then one window sum of ``d0^2 = (x0_i - y0_j)^2`` per
pair fused with the ratio), written as one CUDA kernel in float64:

- a thread block of ``T`` threads handles the pairs ``(i, j0 .. j0 + T - 1)``: row image
  ``i = blockIdx.x`` is read by all threads at the same addresses (broadcast loads), the
  column images are stored image-index-fastest so that the threads' loads coalesce;
  consecutive blocks take consecutive row images with the same column images, so the
  column data of the blocks in flight stays in cache;
- each thread keeps its column sums of ``d0^2`` (one per image column) in shared memory,
  ``col[w * T + t]``; threads never share data, so no synchronisation is needed;
- uniform windows with stride 1 use running sums (add the entering row or column,
  subtract the leaving one); other windows recompute each output row's weighted column
  sums directly from the images, which also covers strides and non-overlapping windows.

Image geometry (H, W, C, window size, stride) is compiled into the kernel as constants;
CuPy caches compiled kernels on disk. Results are float64 device arrays; the caller
(:func:`ssimref.distance_matrix`) takes roots and casts on the device, and a host ``out``
(e.g. a memmap) is written through :func:`host_stager`: each tile is copied once, on a
stream of its own into pinned staging buffers, while the next tile's kernel runs, and the
executor's writer thread stores it (and its mirror image) into ``out``
(:class:`ssimref.executor.HostWriter`).

The kernel source is plain C++ apart from a few CUDA names, so the test-suite also
compiles it with a host C++ compiler and runs it thread by thread on the CPU
(``tests/test_engines.py``), which checks its indexing and arithmetic without a GPU.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import Array, namespace
from ..config import SSIMConfig
from . import accuracy_floor, cupy_vjp
from ..kinds import get_kind
from .precompute import ImageTerms, image_terms
from .reference import refine_near_zero, refine_paired_near_zero, symmetrise_upper
from .reference import squared_block as reference_squared_block

__all__ = ["NAME", "squared_block", "bytes_per_pair", "bytes_per_image", "max_tile_pairs",
           "fused_block", "kernel_source", "threads_per_block", "row_arrays", "column_arrays",
           "value_and_vjp_block", "paired_value_and_vjp", "vjp_bytes_per_pair",
           "vjp_bytes_per_image", "vjp_max_tile_pairs", "host_stager", "STAGING_DEPTH"]

#: Pinned staging buffers of :func:`host_stager`: tiles in flight between the device and
#: the writer thread (one being copied, one being written, one spare).
STAGING_DEPTH = 3

NAME = "cupy"
_SHARED_BYTES = 48 * 1024  # shared memory a block may use without opting in

KERNEL_NAME = "ssim_pair_distances"

_KERNEL = r"""
// D^2(i, j) for the pairs of one tile; see ssimref/engines/cupy_engine.py.
// Compile-time constants: H, W, C, SIZE, STRIDE, HO, WO, SLIDING (uniform window, stride 1).
#ifndef SSIM_HOST_EMULATION
#define SSIM_SHARED_SCRATCH extern __shared__ double scratch[];
#endif

extern "C" __global__ void ssim_pair_distances(
    const double* __restrict__ x0r,   // [ta][C][H][W]    row images minus their means
    const double* __restrict__ m0r,   // [ta][C][HO*WO]   local means of x0r
    const double* __restrict__ ar,    // [ta][C][HO*WO]   mu^2 + c1/2
    const double* __restrict__ vr,    // [ta][C][HO*WO]   (var + c2/2) / f
    const double* __restrict__ shr,   // [ta][C]          global means
    const double* __restrict__ x0c,   // [C][H][W][ldc]   column images, image index fastest
    const double* __restrict__ m0c,   // [C][HO*WO][ldc]
    const double* __restrict__ ac,    // [C][HO*WO][ldc]
    const double* __restrict__ vc,    // [C][HO*WO][ldc]
    const double* __restrict__ shc,   // [C][ldc]
    const double* __restrict__ taps,  // [SIZE] 1-D window weights (ones for uniform)
    const long long tb, const long long ldc,
    const double scale, const double e1, const double e3, const int upper,
    double* __restrict__ out)         // [ta][tb]
{
    SSIM_SHARED_SCRATCH
    // blockIdx.x (fastest) runs over row images, so the blocks resident at a time share
    // their column images: those stay in L1/L2 while the row images stream past.
    const long long T = blockDim.x;
    const long long t = threadIdx.x;
    const long long i = blockIdx.x;
    const long long j = (long long)blockIdx.y * T + t;
    if (j >= tb || (upper && j <= i)) {
        return;
    }
    double* col = scratch + t;        // col[w * T]: this thread's column sums
    const long long P = (long long)HO * WO;
    double acc = 0.0;
    for (int c = 0; c < C; ++c) {
        const double* xr = x0r + (i * C + c) * (long long)(H * W);
        const double* xc = x0c + (long long)c * H * W * ldc + j;
        const double* mr = m0r + (i * C + c) * P;
        const double* a_r = ar + (i * C + c) * P;
        const double* v_r = vr + (i * C + c) * P;
        const double* mc = m0c + (long long)c * P * ldc + j;
        const double* a_c = ac + (long long)c * P * ldc + j;
        const double* v_c = vc + (long long)c * P * ldc + j;
        const double dsh = shr[i * C + c] - shc[(long long)c * ldc + j];
        for (int p = 0; p < HO; ++p) {
#if SLIDING
            if (p == 0) {
                for (int w = 0; w < W; ++w) {
                    double sum = 0.0;
                    for (int k = 0; k < SIZE; ++k) {
                        const double d = xr[k * W + w] - xc[(long long)(k * W + w) * ldc];
                        sum += d * d;
                    }
                    col[w * T] = sum;
                }
            } else {
                const int rin = (p + SIZE - 1) * W;
                const int rout = (p - 1) * W;
                for (int w = 0; w < W; ++w) {
                    const double da = xr[rin + w] - xc[(long long)(rin + w) * ldc];
                    const double db = xr[rout + w] - xc[(long long)(rout + w) * ldc];
                    col[w * T] += da * da - db * db;
                }
            }
            double run = 0.0;
            for (int k = 0; k < SIZE - 1; ++k) {
                run += col[k * T];
            }
#else
            for (int w = 0; w < W; ++w) {
                double sum = 0.0;
                for (int k = 0; k < SIZE; ++k) {
                    const int r = (p * STRIDE + k) * W + w;
                    const double d = xr[r] - xc[(long long)r * ldc];
                    sum += taps[k] * (d * d);
                }
                col[w * T] = sum;
            }
#endif
            for (int q = 0; q < WO; ++q) {
#if SLIDING
                const double window = run + col[(q + SIZE - 1) * T];
                run = window - col[q * T];
#else
                double window = 0.0;
                for (int k = 0; k < SIZE; ++k) {
                    window += taps[k] * col[(q * STRIDE + k) * T];
                }
#endif
                const long long row = (long long)p * WO + q;
                const double md0 = mr[row] - mc[row * ldc];
                double n2 = window * scale - md0 * md0;   // var_d / f
                n2 = n2 > 0.0 ? n2 : 0.0;
                const double md = md0 + dsh;               // mean_d
                const double a = a_r[row] + a_c[row * ldc];
                const double v = v_r[row] + v_c[row * ldc];
                const double n1 = md * md;
                // t2, t1 + t2 or t1 + t2 - t1 t2 for (e1, e3) = (0,0), (1,0), (1,1)
                acc += (n1 * (v * e1 - n2 * e3) + n2 * a) / (a * v);
            }
        }
    }
    out[i * tb + j] = acc;
}
"""


def kernel_source(height: int, width: int, channels: int, size: int, stride: int) -> str:
    """The CUDA source for one image geometry (also compiled on the host by the tests).

    Parameters
    ----------
    height, width, channels : int
        The image shape.
    size, stride : int
        The window side and the step between windows.

    Returns
    -------
    str
        The kernel with the geometry as ``#define`` constants.
    """
    ho = (height - size) // stride + 1
    wo = (width - size) // stride + 1
    defines = dict(H=height, W=width, C=channels, SIZE=size, STRIDE=stride, HO=ho, WO=wo)
    return "".join(f"#define {k} {v}\n" for k, v in defines.items()) + _KERNEL


def threads_per_block(width: int) -> int:
    """Threads per block: 128, fewer for wide images so that the column sums
    (``8 * width`` bytes per thread) fit the shared memory of a block.

    Parameters
    ----------
    width : int
        Image width in pixels.

    Returns
    -------
    int
        A multiple of 32, at most 128 (below 32, or 0, for images too wide to fit).
    """
    fit = _SHARED_BYTES // (8 * width)
    return int(min(128, fit - fit % 32))


def max_tile_pairs(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """8192 x 8192 pairs: 512 MiB of float64 per tile, copied to the host tile by tile.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W, C)``.
    config : SSIMConfig

    Returns
    -------
    int
        ``2**26``.
    """
    return 1 << 26


def bytes_per_pair(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """Device bytes per pair of a tile: the float64 block and the caller's copies.

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
    """
    return 8 * 4


def bytes_per_image(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """Device bytes of one image's per-image terms while a tile is prepared.

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
    """
    h, w, c = image_shape
    ho, wo = config.positions(h, w)
    return 8 * (4 * h * w * c + 10 * ho * wo * c)


@functools.lru_cache(maxsize=32)
def _kernel(height: int, width: int, channels: int, size: int, stride: int,
            sliding: bool) -> Any:
    import cupy

    source = f"#define SLIDING {int(sliding)}\n" + kernel_source(height, width, channels,
                                                                 size, stride)
    return cupy.RawKernel(source, KERNEL_NAME)


def row_arrays(terms: ImageTerms, cp: Any) -> tuple[Array, ...]:
    """The per-image terms in the row layout: ``(x0, m0, a, v, shift)``, each a
    contiguous CuPy array with one row per image.

    Parameters
    ----------
    terms : ImageTerms
        Of CuPy arrays.
    cp : module
        CuPy.

    Returns
    -------
    tuple of cupy.ndarray
    """
    t = terms.x0.shape[0]
    return tuple(cp.ascontiguousarray(a.reshape(t, -1))
                 for a in (terms.x0, terms.m0, terms.a, terms.v, terms.shift))


def column_arrays(terms: ImageTerms, cp: Any, ldc: int) -> tuple[Array, ...]:
    """The per-image terms in the column layout: image index last (fastest), padded to
    ``ldc`` images with copies of the last.

    Parameters
    ----------
    terms : ImageTerms
        Of CuPy arrays.
    cp : module
        CuPy.
    ldc : int
        Padded number of images, at least the number of images.

    Returns
    -------
    tuple of cupy.ndarray
        ``(x0, m0, a, v, shift)``, each of shape (values per image, ldc).
    """
    t = terms.x0.shape[0]
    packed = []
    for a in (terms.x0, terms.m0, terms.a, terms.v, terms.shift):
        a = a.reshape(t, -1)
        if ldc > t:
            a = cp.concatenate([a, cp.broadcast_to(a[-1:], (ldc - t, a.shape[1]))])
        packed.append(cp.ascontiguousarray(a.T))
    return tuple(packed)


class _PinnedStager:
    """CuPy's stager (:class:`ssimref.executor.Stager`): device-to-host copies on a copy stream of
    their own into pinned buffers (grown to the largest block seen), each copy ordered
    after the work queued so far on the current stream (an event), so the next tile's
    kernel runs while it lands."""

    def __init__(self, cp: Any, depth: int) -> None:
        self.cp = cp
        self.depth = depth
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.buffers: list[Any] = [None] * depth

    def _buffer(self, slot: int, size: int, dtype: Any) -> Any:
        buf = self.buffers[slot]
        if buf is None or buf.size < size or buf.dtype != dtype:
            mem = self.cp.cuda.alloc_pinned_memory(size * np.dtype(dtype).itemsize)
            buf = np.frombuffer(mem, dtype, size)  # keeps the pinned memory alive
            self.buffers[slot] = buf
        return buf

    def stage(self, block: Any, slot: int) -> tuple[Any, Callable[[], None]]:
        cp = self.cp
        block = cp.ascontiguousarray(block)
        host = self._buffer(slot, block.size, block.dtype)[:block.size].reshape(block.shape)
        ready = cp.cuda.Event()
        ready.record()  # the current stream: the block's kernel and cast
        self.stream.wait_event(ready)
        block.get(stream=self.stream, out=host, blocking=False)
        done = cp.cuda.Event()
        done.record(self.stream)
        kept = [block]  # the device block must outlive its copy

        def wait() -> None:
            done.synchronize()
            kept.clear()

        return host, wait


def host_stager(cp: Any = None) -> Any:
    """Asynchronous copies of device tiles into pinned host buffers, on a copy stream of
    their own, for :class:`ssimref.executor.HostWriter` (which :func:`ssimref.distance_matrix`
    uses for a host ``out``): the copies and the writes overlap the next tiles' kernels.

    Parameters
    ----------
    cp : module, optional
        CuPy (imported when None); the tests pass a host stand-in.

    Returns
    -------
    ssimref.executor.Stager
        With :data:`STAGING_DEPTH` buffers.
    """
    if cp is None:
        import cupy
        return _PinnedStager(cupy, STAGING_DEPTH)
    return _PinnedStager(cp, STAGING_DEPTH)


def squared_block(Xa: Array, Yb: Array, kind: str, config: SSIMConfig, *,
                  upper: bool = False) -> Array:
    """``D^2`` for all pairs of two float64 CuPy tiles.

    Parameters
    ----------
    Xa : cupy.ndarray, shape (ta, H, W, C), float64
    Yb : cupy.ndarray, shape (tb, H, W, C), float64
    kind : {"eq1", "eq1-uncentered", "eq2"}
    config : SSIMConfig
        With its data range set.
    upper : bool, default False
        ``Xa is Yb``: each unordered pair is computed once and mirrored, so the block is
        exactly symmetric with a zero diagonal.

    Returns
    -------
    cupy.ndarray, shape (ta, tb), float64
        Within the accuracy contract of docs/engines.md; pairs that :func:`fused_block`
        puts within the accuracy floor of 0 are recomputed by the reference engine.

    See Also
    --------
    ssimref.engines.accuracy_floor : the contract's absolute term.
    """
    block = fused_block(Xa, Yb, kind, config, upper=upper)
    return refine_near_zero(block, Xa, Yb, upper, accuracy_floor(config, Xa.shape[1:]),
                            kind, config)


def fused_block(Xa: Array, Yb: Array, kind: str, config: SSIMConfig, *,
                upper: bool = False) -> Array:
    """The CUDA kernel's ``D^2`` block alone, without the refinement near 0.

    Parameters
    ----------
    Xa, Yb, kind, config, upper
        As for :func:`squared_block`.

    Returns
    -------
    cupy.ndarray, shape (ta, tb), float64
        The reference engine's block when a row of column sums per thread does not fit
        the shared memory of a block (very wide images).
    """
    import cupy as cp

    ta, height, width, channels = Xa.shape
    tb = Yb.shape[0]
    threads = threads_per_block(width)
    shared = 8 * width * max(threads, 32)
    if threads < 32 and shared > _optin_shared_bytes():
        # a row of column sums per thread does not fit a block: use the reference
        return reference_squared_block(Xa, Yb, kind, config, upper=upper)
    threads = max(threads, 32)
    sliding = config.window == "uniform" and config.stride == 1
    kernel = _kernel(height, width, channels, config.size, config.stride, sliding)
    if shared > _SHARED_BYTES:
        kernel.max_dynamic_shared_size_bytes = shared

    xp = namespace(Xa)
    ldc = -(-tb // threads) * threads
    row_terms = image_terms(Xa, config, xp)
    col_terms = row_terms if Yb is Xa else image_terms(Yb, config, xp)
    rows = row_arrays(row_terms, cp)
    cols = column_arrays(col_terms, cp, ldc)
    taps = config.taps()
    uniform = config.window == "uniform"
    weights = cp.ones(config.size) if uniform else cp.asarray(taps, dtype=cp.float64)
    scale = taps[0] * taps[0] if uniform else 1.0
    e1, e3 = get_kind(kind).e1, get_kind(kind).e3
    out = cp.zeros((ta, tb), dtype=cp.float64)
    kernel((ta, ldc // threads), (threads,),
           (*rows, *cols, weights, np.int64(tb), np.int64(ldc), np.float64(scale),
            np.float64(e1), np.float64(e3), np.int32(bool(upper)), out),
           shared_mem=shared)
    if upper:
        out = symmetrise_upper(out, xp)
    return out


# ------------------------------------------------------------------ value and VJP
#: Device bytes per pair of a value-and-VJP tile beyond the VJP kernel's: the ``S``
#: block, the caller's value and cotangent and the temporaries of its cotangent function.
_COTANGENT_BYTES = 8 * 8


def value_and_vjp_block(Xa: Array, Yb: Array, kind: str, config: SSIMConfig,
                        cotangent: Callable[[Array], tuple[Any, Array]], *,
                        upper: bool = False,
                        wrt_y: bool = True) -> tuple[Any, Array, Array | None]:
    """The tile's ``S`` block (:func:`squared_block`), ``cotangent(S)``, and the fused
    VJP of its cotangent (:func:`ssimref.engines.cupy_vjp.vjp_block`), on the GPU.

    Parameters
    ----------
    Xa, Yb, kind, config, upper, wrt_y, cotangent
        As for :meth:`ssimref.engines.Engine.value_and_vjp_block`; CuPy arrays.

    Returns
    -------
    value : Any
    dXa : cupy.ndarray, shaped like Xa, float64
    dYb : cupy.ndarray, shaped like Yb, float64, or None
    """
    value, weight = cotangent(squared_block(Xa, Yb, kind, config, upper=upper))
    dX, dY = cupy_vjp.vjp_block(Xa, Xa if upper else Yb, weight, kind, config,
                                upper=upper, wrt_y=wrt_y)
    return value, dX, dY


def paired_value_and_vjp(X: Array, Y: Array, kind: str, config: SSIMConfig,
                         cotangent: Callable[[Array], tuple[Any, Any]],
                         ) -> tuple[Any, Array | None, Array | None]:
    """Matched pairs on the GPU: ``S`` (:func:`ssimref.engines.cupy_vjp.paired_squared`,
    pairs within the accuracy floor of 0 recomputed by the reference), ``cotangent(S)``
    and the fused VJP (:func:`ssimref.engines.cupy_vjp.paired_vjp`).

    Parameters
    ----------
    X, Y, kind, config, cotangent
        As for :meth:`ssimref.engines.Engine.paired_value_and_vjp`; CuPy arrays.

    Returns
    -------
    value : Any
    dX, dY : cupy.ndarray, shaped like X and Y, float64, or None
    """
    S = refine_paired_near_zero(cupy_vjp.paired_squared(X, Y, kind, config), X, Y,
                                accuracy_floor(config, X.shape[1:]), kind, config)
    value, weight = cotangent(S)
    if weight is None:
        return value, None, None
    dX, dY = cupy_vjp.paired_vjp(X, Y, weight, kind, config)
    return value, dX, dY


def vjp_bytes_per_pair(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """Device bytes per pair of a value-and-VJP tile: the ``S`` block, the cotangent
    function's arrays, and the kernel's cotangents and their transposed copy.

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
    """
    return _COTANGENT_BYTES + cupy_vjp.vjp_bytes_per_pair(image_shape, config)


def vjp_bytes_per_image(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """Device bytes per image of a value-and-VJP tile: the larger of the forward's and
    the VJP kernel's (terms, gradient and its copies).

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
    """
    return max(bytes_per_image(image_shape, config),
               cupy_vjp.vjp_bytes_per_image(image_shape, config))


def vjp_max_tile_pairs(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """4096 x 4096 pairs: thousands of blocks in flight, a few seconds of work at most.

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
        ``2**24``.
    """
    return int(cupy_vjp.VJP_MAX_TILE_PAIRS)


@functools.cache
def _optin_shared_bytes() -> int:
    import cupy

    attributes = cupy.cuda.Device().attributes
    return int(attributes.get("MaxSharedMemoryPerBlockOptin", _SHARED_BYTES))
