"""Fused vector-Jacobian blocks of SSIM distances on a CUDA GPU, with CuPy (float64).

The same quantities as :mod:`ssimref.engines.numba_vjp` (whose docstring has the
derivation): for target images ``a`` and partner images ``b`` with cotangents ``W_ab`` of
``S_ab = D^2(a, b)``, the kernel ``ssim_vjp_side`` returns ``sum_b W_ab dS_ab / da``.
Because ``S`` is symmetric in its two images, the gradient with respect to the other side
is the same kernel with the roles swapped (``W`` transposed), and a diagonal tile is one
call over the stack with the symmetrised weights.

One thread block owns one target image and loops over its partners in order; for each
pair the block's threads cooperate through shared memory:

1. ``d0 = a0 - b0`` (the mean-shifted difference), one entry per pixel;
2. vertical weighted sums of ``d0^2`` for every (window row, column);
3. per window: the horizontal sum ``E_w[d0^2]``, the six coefficients of the pair (one
   division), the pair's squared distance, and ``cg`` stored for the spread;
4. ``cg`` spread along the rows (the adjoint of the horizontal sum);
5. per pixel: spread down the columns, times ``d0``: the cross term ``d0 T(cg)``.

Every accumulator has one owner: thread ``t`` owns pixels ``t, t + T, ...`` (the cross
sums, held in registers) and windows ``t, t + T, ...`` (the per-image window maps ``R``
and ``V``, in registers), and adds into them in the order of the partners. At the end the
window maps are spread to pixels (``T(R) - a0 T(V)``) and written once. No atomics, no
order that depends on scheduling: the same inputs give the same bits run to run, whatever
the GPU. Shared memory holds ``d0``, the vertical sums and ``cg`` of one pair
(``8 (C H W + C Ho W + C Ho Wo + T)`` bytes); nothing of size ``pairs x pixels`` exists.

The kernel source is plain C++ apart from a few CUDA names; the tests compile it with the
host C++ compiler and run each block with one host thread per CUDA thread and a real
barrier for ``__syncthreads`` (``tests/cuda_host_emulation.py``), and with nvcc where it
exists.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..backend import namespace
from ..kinds import get_kind
from .precompute import image_terms

__all__ = ["vjp_block", "paired_squared", "paired_vjp", "vjp_bytes_per_pair",
           "vjp_bytes_per_image", "VJP_MAX_TILE_PAIRS", "vjp_kernel_source",
           "vjp_geometry", "side_gradients", "VJP_KERNEL_NAME"]

VJP_KERNEL_NAME = "ssim_vjp_side"

#: Pairs per tile: each block loops over its partners, so a tile of 4096 x 4096 pairs
#: keeps thousands of blocks in flight with a few seconds of work at most.
VJP_MAX_TILE_PAIRS = 1 << 24

_SHARED_BYTES = 48 * 1024
_THREADS = (128, 256)  # per block: 128, or 256 for images of more than 2048 pixels

_KERNEL = r"""
// sum_b W_ab dS_ab/da for target images a (one block each); see ssimref/engines/cupy_vjp.py.
// Compile-time: H, W, C, SIZE, STRIDE, HO, WO, THREADS, NPT (pixels per thread),
// NWT (windows per thread).
#ifndef SSIM_HOST_EMULATION
#define SSIM_VJP_SHARED extern __shared__ double smem[];
#define SSIM_SYNC() __syncthreads()
#define SSIM_BOUNDS __launch_bounds__(THREADS)
#endif

#define NPIX (C * H * W)
#define NWIN (C * HO * WO)
#define NCOL (C * HO * W)

// vertical weighted sums of src^2 (square) or of src, for every (channel, window row, column)
__device__ __forceinline__ void ssim_down(const double* src, const double* taps,
                                          double* out, int square)
{
    for (int e = threadIdx.x; e < NCOL; e += THREADS) {
        const int c = e / (HO * W);
        const int r = e - c * (HO * W);
        const int p = r / W;
        const int x = r - p * W;
        const double* s = src + c * (H * W) + (p * STRIDE) * W + x;
        double sum = 0.0;
        for (int k = 0; k < SIZE; ++k) {
            const double v = s[k * W];
            sum += taps[k] * (square ? v * v : v);
        }
        out[e] = sum;
    }
}

// adjoint of the horizontal window sum: out[c][p][x] = sum over q, k with
// q * STRIDE + k == x of taps[k] win[c][p][q]
__device__ __forceinline__ void ssim_spread_along(const double* win, const double* taps,
                                                  double* out)
{
    for (int e = threadIdx.x; e < NCOL; e += THREADS) {
        const int c = e / (HO * W);
        const int r = e - c * (HO * W);
        const int p = r / W;
        const int x = r - p * W;
        const double* row = win + c * (HO * WO) + p * WO;
        double sum = 0.0;
        for (int k = 0; k < SIZE; ++k) {
            const int qq = x - k;
            if (qq >= 0 && qq % STRIDE == 0 && qq / STRIDE < WO) {
                sum += taps[k] * row[qq / STRIDE];
            }
        }
        out[e] = sum;
    }
}

// adjoint of the vertical window sum at pixel idx of a [C][H][W] image
__device__ __forceinline__ double ssim_spread_down(const double* cols, const double* taps,
                                                   int idx)
{
    const int c = idx / (H * W);
    const int r = idx - c * (H * W);
    const int h = r / W;
    const int x = r - h * W;
    double sum = 0.0;
    for (int k = 0; k < SIZE; ++k) {
        const int pp = h - k;
        if (pp >= 0 && pp % STRIDE == 0 && pp / STRIDE < HO) {
            sum += taps[k] * cols[c * (HO * W) + (pp / STRIDE) * W + x];
        }
    }
    return sum;
}

extern "C" __global__ void SSIM_BOUNDS ssim_vjp_side(
    const double* __restrict__ a0,    // [na][C][H][W]   target images minus their means
    const double* __restrict__ am0,   // [na][C][HO][WO] local means of a0
    const double* __restrict__ aa,    // [na][C][HO][WO] mu^2 + c1/2
    const double* __restrict__ av,    // [na][C][HO][WO] (var + c2/2) / f
    const double* __restrict__ ash,   // [na][C]         global means
    const double* __restrict__ b0,    // [nb][C][H][W]   partner images, likewise
    const double* __restrict__ bm0,
    const double* __restrict__ ba,
    const double* __restrict__ bv,
    const double* __restrict__ bsh,
    const double* __restrict__ taps,  // [SIZE] 1-D window weights (ones for uniform)
    const double* __restrict__ wts,   // [na][nb] cotangents (paired: [na])
    const long long nb, const int paired, const double scale,
    const double e1, const double e3, const int want_grad,
    double* __restrict__ grad,        // [na][C][H][W]
    double* __restrict__ values)      // [na]  sum_b W_ab S_ab
{
    SSIM_VJP_SHARED
    double* d0 = smem;                // [C][H][W]   d0 of the pair (V at the end)
    double* cols = d0 + NPIX;         // [C][HO][W]  vertical sums, then cg spread along
    double* cgs = cols + NCOL;        // [C][HO][WO] cg of the pair (R at the end)
    double* red = cgs + NWIN;         // [THREADS]
    const int t = threadIdx.x;
    const long long a = blockIdx.x;

    const double* own = a0 + a * NPIX;  // the target image (read through the caches)
    double acc[NPT], racc[NWT], vacc[NWT];
#pragma unroll
    for (int k = 0; k < NPT; ++k) {
        acc[k] = 0.0;
    }
#pragma unroll
    for (int k = 0; k < NWT; ++k) {
        racc[k] = 0.0;
        vacc[k] = 0.0;
    }
    double val = 0.0;
    const long long first = paired ? a : 0;
    const long long last = paired ? a + 1 : nb;
    for (long long b = first; b < last; ++b) {
        const double w = paired ? wts[a] : wts[a * nb + b];
        if (w == 0.0) {
            continue;  // the same for every thread of the block
        }
        const double w2 = 2.0 * scale * w;
        const double* bb = b0 + b * NPIX;
#pragma unroll
        for (int k = 0; k < NPT; ++k) {
            const int idx = t + k * THREADS;
            if (idx < NPIX) {
                d0[idx] = own[idx] - bb[idx];
            }
        }
        SSIM_SYNC();
        ssim_down(d0, taps, cols, 1);
        SSIM_SYNC();
#pragma unroll
        for (int k = 0; k < NWT; ++k) {
            const int win = t + k * THREADS;
            if (win < NWIN) {
                const int c = win / (HO * WO);
                const int r = win - c * (HO * WO);
                const int p = r / WO;
                const int q = r - p * WO;
                const double* row = cols + c * (HO * W) + p * W + q * STRIDE;
                double E = 0.0;
                for (int kk = 0; kk < SIZE; ++kk) {
                    E += taps[kk] * row[kk];
                }
                E *= scale;
                const double m0i = am0[a * NWIN + win];
                const double m0j = bm0[b * NWIN + win];
                const double shi = ash[a * C + c];
                const double md0 = m0i - m0j;
                double n2 = E - md0 * md0;
                n2 = n2 > 0.0 ? n2 : 0.0;
                const double md = md0 + (shi - bsh[b * C + c]);
                const double n1 = md * md;
                const double A = aa[a * NWIN + win] + ba[b * NWIN + win];
                const double B = av[a * NWIN + win] + bv[b * NWIN + win];
                const double rr = 1.0 / (A * B);
                const double ia = B * rr;
                const double ib = A * rr;
                const double t1 = n1 * ia;
                const double t2 = n2 * ib;
                // t2, t1 + t2 or t1 + t2 - t1 t2 for (e1, e3) = (0,0), (1,0), (1,1)
                val += w * (t2 + e1 * t1 - e3 * (t1 * t2));
                if (want_grad) {
                    const double h1 = w2 * (e1 * (1.0 - e3 * t2)) * ia;
                    const double cg = w2 * (1.0 - e3 * t1) * ib;
                    const double u = h1 * t1;
                    const double vv = cg * t2;
                    const double e = h1 * md - cg * md0;
                    cgs[win] = cg;
                    racc[k] += e - u * (m0i + shi) + vv * m0i;
                    vacc[k] += vv;
                }
            }
        }
        if (!want_grad) {
            continue;  // the next pair's first barrier orders the shared buffers
        }
        SSIM_SYNC();
        ssim_spread_along(cgs, taps, cols);
        SSIM_SYNC();
#pragma unroll
        for (int k = 0; k < NPT; ++k) {
            const int idx = t + k * THREADS;
            if (idx < NPIX) {
                acc[k] += d0[idx] * ssim_spread_down(cols, taps, idx);
            }
        }
        // d0 is rewritten next only at this thread's own pixels; cols and cgs only after
        // the next barrier, which every thread reaches after this loop
    }
    red[t] = val;
    SSIM_SYNC();
    if (t == 0) {
        double sum = 0.0;
        for (int k = 0; k < THREADS; ++k) {
            sum += red[k];
        }
        values[a] = sum;
    }
    if (!want_grad) {
        return;
    }
    // the per-image part T(R) - a0 T(V), R and V spread in turn through cgs and cols
#pragma unroll
    for (int k = 0; k < NWT; ++k) {
        const int win = t + k * THREADS;
        if (win < NWIN) {
            cgs[win] = racc[k];
        }
    }
    SSIM_SYNC();
    ssim_spread_along(cgs, taps, cols);
    SSIM_SYNC();
#pragma unroll
    for (int k = 0; k < NPT; ++k) {
        const int idx = t + k * THREADS;
        if (idx < NPIX) {
            acc[k] += ssim_spread_down(cols, taps, idx);
        }
    }
    SSIM_SYNC();
#pragma unroll
    for (int k = 0; k < NWT; ++k) {
        const int win = t + k * THREADS;
        if (win < NWIN) {
            cgs[win] = vacc[k];
        }
    }
    SSIM_SYNC();
    ssim_spread_along(cgs, taps, cols);
    SSIM_SYNC();
#pragma unroll
    for (int k = 0; k < NPT; ++k) {
        const int idx = t + k * THREADS;
        if (idx < NPIX) {
            grad[a * NPIX + idx] = acc[k] - own[idx] * ssim_spread_down(cols, taps, idx);
        }
    }
}
"""


def vjp_geometry(image_shape, config, threads=None):
    """Launch geometry for images ``(H, W, C)``: ``(threads, npt, nwt, shared_bytes)``.
    ``threads`` per block (128, or 256 for images of more than 2048 values), the pixels
    and windows a thread owns (their sums live in registers, or in local memory when
    they do not fit the registers ``__launch_bounds__`` leaves), shared memory per
    block."""
    h, w, c = image_shape
    ho, wo = config.positions(h, w)
    npix, nwin = c * h * w, c * ho * wo
    if threads is None:
        threads = _THREADS[0] if npix <= 2048 else _THREADS[1]
    npt = math.ceil(npix / threads)
    nwt = math.ceil(nwin / threads)
    shared = 8 * (npix + c * ho * w + nwin + threads)
    return threads, npt, nwt, shared


def vjp_kernel_source(image_shape, config, threads=None):
    """The CUDA source for one image geometry (also compiled on the host by the tests)."""
    h, w, c = image_shape
    ho, wo = config.positions(h, w)
    threads, npt, nwt, _ = vjp_geometry(image_shape, config, threads)
    defines = dict(H=h, W=w, C=c, SIZE=config.size, STRIDE=config.stride, HO=ho, WO=wo,
                   THREADS=threads, NPT=npt, NWT=nwt)
    return "".join(f"#define {k} {v}\n" for k, v in defines.items()) + _KERNEL


def _window_weights(config, xp):
    """1-D taps (ones for a uniform window) and the scale applied after the 2-D sum."""
    taps = config.taps()
    if config.window == "uniform":
        return xp.ones(config.size, dtype=xp.float64), taps[0] * taps[0]
    return xp.asarray(taps, dtype=xp.float64), 1.0


def _flat_terms(A, config, xp):
    """Per-image arrays of a float64 stack (t, H, W, C), channel-major and flattened per
    image, as the kernel reads them: x0 (t, C*H*W), m0, a, v (t, C*Ho*Wo), shift (t, C)."""
    terms = image_terms(A, config, xp)
    t = A.shape[0]
    return tuple(xp.reshape(arr, (t, math.prod(arr.shape[1:]))) for arr in
                 (terms.x0, terms.m0, terms.a, terms.v, terms.shift))


def side_gradients(A, B, weights, kind, config, launch, *, paired=False, want_grad=True,
                   threads=None):
    """``sum_b W_ab dS_ab / da`` for every target image ``a``, and ``sum_b W_ab S_ab``.

    The building block of this module: one launch of ``ssim_vjp_side``.

    Parameters
    ----------
    A : array (na, H, W, C), float64;  B : array (nb, H, W, C), float64
        CuPy arrays on the GPU (NumPy arrays for the host emulation of the tests).
    weights : array (na, nb) float64 (``paired``: (na,), partner ``b = a``)
    kind, config : as for :func:`vjp_block`
    launch : callable ``launch(source, grid, threads, shared_bytes, args)``
        Compiles (cached) and runs the kernel; ``args`` are the kernel's arguments in
        order (arrays of ``xp``, then NumPy scalars).
    paired : bool
        Each target ``a`` has the one partner ``B[a]`` (matched pairs).
    want_grad : bool
        False: only the values.
    threads : int, optional
        Threads per block (the default of :func:`vjp_geometry`).

    Returns
    -------
    grad : array (na, H, W, C) float64, or None when not ``want_grad``
    values : array (na,) float64
    """
    xp = namespace(A)
    na, height, width, channels = A.shape
    image_shape = (height, width, channels)
    threads, _, _, shared = vjp_geometry(image_shape, config, threads)
    source = vjp_kernel_source(image_shape, config, threads)
    taps, scale = _window_weights(config, xp)
    e1, e3 = get_kind(kind).e1, get_kind(kind).e3
    ta = _flat_terms(A, config, xp)
    tb = ta if B is A else _flat_terms(B, config, xp)
    grad = xp.zeros((na, channels * height * width), dtype=xp.float64)
    values = xp.zeros((na,), dtype=xp.float64)
    weights = xp.reshape(xp.asarray(weights, dtype=xp.float64), (-1,))
    args = (*ta, *tb, taps, weights, np.int64(B.shape[0]), np.int32(bool(paired)),
            np.float64(scale), np.float64(e1), np.float64(e3), np.int32(bool(want_grad)),
            grad, values)
    if na > 0:
        launch(source, (na,), threads, shared, args)
    if not want_grad:
        return None, values
    grad = xp.reshape(grad, (na, channels, height, width))
    return xp.ascontiguousarray(xp.permute_dims(grad, (0, 2, 3, 1))), values


@functools.lru_cache(maxsize=32)
def _compiled(source):
    import cupy

    return cupy.RawKernel(source, VJP_KERNEL_NAME)


def _cupy_launch(source, grid, threads, shared, args):
    kernel = _compiled(source)
    if shared > _SHARED_BYTES:
        kernel.max_dynamic_shared_size_bytes = shared
    kernel(grid, (threads,), args, shared_mem=shared)


@functools.cache
def _optin_shared_bytes() -> int:
    import cupy

    attributes = cupy.cuda.Device().attributes
    return int(attributes.get("MaxSharedMemoryPerBlockOptin", _SHARED_BYTES))


def _fits(image_shape, config) -> bool:
    return vjp_geometry(image_shape, config)[3] <= _optin_shared_bytes()


def _reference(Xa, Yb, W, kind, config, upper, wrt_y):
    """The array-API reference, for images whose pair buffers exceed shared memory."""
    import cupy as cp

    from ..gradients import PairForward

    if upper:
        Wm = cp.triu(W, 1)
        gx, gy = PairForward(Xa[:, None], Xa[None, :], kind, config, cp).vjp(Wm)
        return gx[:, 0] + gy[0], None
    gx, gy = PairForward(Xa[:, None], Yb[None, :], kind, config, cp).vjp(W, wrt_y=wrt_y)
    return gx[:, 0], (gy[0] if wrt_y else None)


def vjp_block(Xa, Yb, W, kind, config, *, upper=False, wrt_y=True):
    """Gradients of ``sum_ij W_ij S_ij`` for a tile of CuPy arrays, as
    :func:`ssimref.engines.numba_vjp.vjp_block` (same arguments and results, CuPy float64
    arrays). A diagonal tile (``upper``) runs one launch over the stack with the
    symmetrised strict upper triangle of ``W``; a two-sided tile runs one launch per
    side. Bit-reproducible run to run."""
    import cupy as cp

    image_shape = tuple(Xa.shape[1:])
    W = cp.asarray(W, dtype=cp.float64)
    if not _fits(image_shape, config):
        return _reference(Xa, Yb, W, kind, config, upper, wrt_y)
    if upper:
        Wu = cp.triu(W, 1)
        dX, _ = side_gradients(Xa, Xa, Wu + Wu.T, kind, config, _cupy_launch)
        return dX, None
    dX, _ = side_gradients(Xa, Yb, W, kind, config, _cupy_launch)
    if not wrt_y:
        return dX, None
    dY, _ = side_gradients(Yb, Xa, W.T, kind, config, _cupy_launch)
    return dX, dY


def paired_squared(X, Y, kind, config):
    """``S_i = D^2(X[i], Y[i])`` for matched pairs of CuPy float64 stacks: (n,)."""
    import cupy as cp

    if not _fits(tuple(X.shape[1:]), config):
        from ..gradients import PairForward
        return PairForward(X, Y, kind, config, cp).S
    ones = cp.ones((X.shape[0],), dtype=cp.float64)
    _, values = side_gradients(X, Y, ones, kind, config, _cupy_launch, paired=True,
                               want_grad=False)
    return values


def paired_vjp(X, Y, w, kind, config):
    """Gradients ``(dX, dY)`` of ``sum_i w_i D^2(X[i], Y[i])`` (CuPy float64)."""
    import cupy as cp

    w = cp.asarray(w, dtype=cp.float64)
    if not _fits(tuple(X.shape[1:]), config):
        from ..gradients import PairForward
        return PairForward(X, Y, kind, config, cp).vjp(w)
    dX, _ = side_gradients(X, Y, w, kind, config, _cupy_launch, paired=True)
    dY, _ = side_gradients(Y, X, w, kind, config, _cupy_launch, paired=True)
    return dX, dY


def vjp_bytes_per_pair(image_shape, config) -> int:
    """Device bytes per pair of a tile: the cotangents and the symmetrised (or
    transposed) copy a launch reads."""
    return 8 * 3


def vjp_bytes_per_image(image_shape, config) -> int:
    """Device bytes per image of a tile: its float64 copy (made by the caller), its
    terms while they are prepared with the array-API functions and kept flattened
    (``8 (4 HWC + 10 Ho Wo C)``, as the forward engine budgets), and its gradient
    (kernel output and the channels-last copy)."""
    h, w, c = image_shape
    ho, wo = config.positions(h, w)
    return 8 * (h * w * c + 4 * h * w * c + 10 * ho * wo * c + 2 * h * w * c)
