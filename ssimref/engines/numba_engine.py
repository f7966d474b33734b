"""Fused all-pairs SSIM distances on the CPU, compiled with Numba.

For a tile of row images ``i`` and column images ``j`` this computes
``D^2(i, j) = sum over windows p and channels c of d_p(x_i, y_j)^2`` without any array of
shape ``pairs x positions``: the per-image terms are those of
:mod:`ssimref.engines.precompute` (computed here by a parallel Numba pass), and the only
per-pair work is one window sum of ``d0^2 = (x0_i - y0_j)^2`` followed by the ratio,
fused into one pass over the windows.

Layout. Column images are packed in groups of ``LANES`` (32): every per-image array of a
group is stored with the image index last, ``(..., LANES)``, so the innermost loops run
over 32 contiguous float64 values (eight AVX2 registers), one per pair, with no reduction
across them; LLVM vectorises them without reassociating any sum. Row images are read as
scalars and broadcast. Threads (``prange``) take (row, group) tasks in chunks, dynamically
scheduled, group-major (a group's terms stay in cache while row images stream past).
Per-image terms (shifted image, local means and variances) are computed once per tile by
a parallel pass, and reused when the tile is on the diagonal, whose lower triangle is
then mirrored from the upper one (a parallel pass too). Each task stores its pairs rooted
and rounded to the block's dtype when asked (:func:`distance_block`) and returns the
lanes within the accuracy floor of 0 as bits, so neither the square root, the cast nor
the search for pairs to refine is a pass over the block.

Window sums, three ways (same values up to rounding):

- uniform window, stride 1: running sums. The column sums over ``size`` rows are updated
  by adding the entering row and subtracting the leaving one, the squares recomputed from
  the images; the horizontal sums likewise, fused with the ratio. About 8 flops per pixel
  and 20 per window.
- other overlapping windows (Gaussian, or stride < size): a ring buffer of the squares of
  the last ``size`` rows, then the separable weighted sums per output row, each a flat
  loop over (column, lane).
- non-overlapping windows (stride >= size): each pixel's square is added straight into
  its window's sum; pixels between windows are never touched.

Accuracy. Everything is float64 and ``fastmath`` is off: nothing is reassociated and no
``a * b + c`` is contracted into an FMA, so every operation rounds as written and the
bits do not depend on how LLVM compiled a loop (the code compiled in a process and the
code loaded from Numba's cache give the same bits; docs/engines.md, "Accuracy contract").
Identical images give exactly 0 (every difference is exactly 0); a pair and its mirror
give bit-identical terms because every per-pair quantity is symmetric in the two images
(``d0^2``, ``(m0_i - m0_j)^2``, ``a_i + a_j``, ...). Running sums add and subtract, so
their rounding error is bounded by the largest window energy met along a row rather than
by the window's own; that error is divided by a denominator of at least ``c2`` (``c1``
for ``t1``), hence the absolute floor in the accuracy contract (docs/engines.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
from numba import njit, prange

from ..config import SSIMConfig
from . import accuracy_floor
from ..kinds import KINDS, get_kind
from ..moments import in_range_units
from .reference import refine_near_zero, refine_paired_near_zero

__all__ = ["NAME", "LANES", "squared_block", "distance_block", "bytes_per_pair",
           "bytes_per_image", "max_tile_pairs", "fused_block", "image_terms", "warm_up",
           "value_and_vjp_block", "paired_value_and_vjp", "vjp_bytes_per_pair",
           "vjp_bytes_per_image", "vjp_max_tile_pairs"]

NAME = "numba"

# squared window distance from n1 = mean_d^2, n2 = var_d / f, a = mu_i^2 + mu_j^2 + c1,
# v = (var_i + var_j + c2) / f: t2 = n2 / v (eq1), t1 + t2 = (n1 v + n2 a) / (a v) (eq2),
# t1 + t2 - t1 t2 = (n1 v + n2 a - n1 n2) / (a v) (eq1-uncentered): one division each
# (the kind table's g = e1 t1 + t2 - e3 t1 t2, ssimref/kinds.py, specialised per kind).
# The kernels branch on the kind's code inside their innermost loop; the branch is
# invariant, and LLVM moves it out of the loop (unswitching), which keeps it vectorised.
_EQ1, _EQ2, _EQ1_UNCENTERED = (KINDS[name].code for name in ("eq1", "eq2", "eq1-uncentered"))

LANES = 32

# fastmath off, FMA contraction included: every operation rounds as written, whatever
# LLVM makes of a loop (docs/engines.md, "Accuracy contract").
_JIT: dict[str, Any] = dict(cache=True, error_model="numpy", boundscheck=False,
                            fastmath=False)


@njit(inline="always", **_JIT)
def _window_term(sum_d2, md0, shift, a, v, kind):
    """Squared distance of one window from the weighted sum of ``d0^2`` over it
    (``sum_d2``, already scaled by the covariance factor), the difference ``md0`` of the
    shifted local means, the difference of the images' shifts, and the halves of the two
    denominators summed (``a``: luminance, ``v``: contrast-structure). The variance
    ``sum_d2 - md0^2`` is clipped at 0, as in the reference; one division per window."""
    n2 = sum_d2 - md0 * md0
    n2 = n2 if n2 > 0.0 else 0.0
    md = md0 + shift
    n1 = md * md
    if kind == _EQ2:
        return (n1 * v + n2 * a) / (a * v)
    if kind == _EQ1:
        return n2 / v
    return (n1 * v + n2 * a - n1 * n2) / (a * v)


@njit(**_JIT)
def _store(acc, out, i, jb, upper, root, floor):
    """Write a task's lanes ``acc`` (``D^2`` in float64) into ``out[i, jb * nl + l]``:
    ``sqrt(acc)`` with ``root``, rounded once to ``out``'s dtype. Returns the lanes whose
    ``D^2`` is within ``floor`` as bits (bit ``l``: column ``jb * nl + l``), columns past
    the row only with ``upper``: the pairs the refinement near 0 recomputes."""
    nl = acc.shape[0]
    first = i + 1 if upper else 0
    near = 0
    for l in range(nl):
        j = jb * nl + l
        if j < out.shape[1]:
            value = acc[l]
            if j >= first and value <= floor:
                near |= 1 << l
            out[i, j] = math.sqrt(value) if root else value
    return near


@njit(**_JIT)
def _shift_differences(shr, shc, i, jb, c, dsh):
    nl = dsh.shape[0]
    for l in range(nl):
        dsh[l] = shr[i, c] - shc[jb, c, l]


@njit(**_JIT)
def weighted_sum(dst: npt.NDArray[np.float64], n: int, src: npt.NDArray[np.float64],
                 offsets: npt.NDArray[np.int64], taps: npt.NDArray[np.float64],
                 count: int) -> None:
    """``dst[:n] = sum_k taps[k] * src[offsets[k] : offsets[k] + n]`` over ``k < count``,
    four taps per pass over ``dst`` (a pass per tap would store every element ``count``
    times). Sources are taken as slices so that every index is a plain loop counter (no
    wraparound code, which would stop LLVM from vectorising). The filters of both the
    forward kernels and the VJP kernels (:mod:`ssimref.engines.numba_vjp`).

    Parameters
    ----------
    dst : numpy.ndarray, float64
        Output; its first ``n`` entries are overwritten.
    n : int
        Entries to compute.
    src : numpy.ndarray, float64
        Flat source.
    offsets : numpy.ndarray, int64
        Start of each tap's slice of ``src``.
    taps : numpy.ndarray, float64
        Filter weights.
    count : int
        Taps used (the first ``count``).
    """
    out = dst[:n]
    for idx in range(n):
        out[idx] = 0.0
    k = 0
    while k < count:
        left = count - k
        s0 = src[offsets[k]:offsets[k] + n]
        g0 = taps[k]
        if left >= 4:
            s1 = src[offsets[k + 1]:offsets[k + 1] + n]
            s2 = src[offsets[k + 2]:offsets[k + 2] + n]
            s3 = src[offsets[k + 3]:offsets[k + 3] + n]
            g1, g2, g3 = taps[k + 1], taps[k + 2], taps[k + 3]
            for idx in range(n):
                out[idx] += g0 * s0[idx] + g1 * s1[idx] + g2 * s2[idx] + g3 * s3[idx]
            k += 4
        elif left == 3:
            s1 = src[offsets[k + 1]:offsets[k + 1] + n]
            s2 = src[offsets[k + 2]:offsets[k + 2] + n]
            g1, g2 = taps[k + 1], taps[k + 2]
            for idx in range(n):
                out[idx] += g0 * s0[idx] + g1 * s1[idx] + g2 * s2[idx]
            k += 3
        elif left == 2:
            s1 = src[offsets[k + 1]:offsets[k + 1] + n]
            g1 = taps[k + 1]
            for idx in range(n):
                out[idx] += g0 * s0[idx] + g1 * s1[idx]
            k += 2
        else:
            for idx in range(n):
                out[idx] += g0 * s0[idx]
            k += 1


@njit(parallel=True, **_JIT)
def _tiles_sliding(x0r, m0r, ar, vr, shr, x0c, m0c, ac, vc, shc, task_i, task_j,
                   height, width, size, scale, kind, nchunks, upper, root, floor, out,
                   near):
    """Uniform window, stride 1: running column and row sums."""
    channels = shr.shape[1]
    nl = x0c.shape[2]
    ho = height - size + 1
    wo = width - size + 1
    ntasks = task_i.shape[0]
    for chunk in prange(nchunks):
        col = np.empty((width, nl))
        s = np.empty(nl)
        acc = np.empty(nl)
        dsh = np.empty(nl)
        for t in range(chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks):
            i = task_i[t]
            jb = task_j[t]
            for l in range(nl):
                acc[l] = 0.0
            for c in range(channels):
                px = c * height * width
                pw = c * ho * wo
                _shift_differences(shr, shc, i, jb, c, dsh)
                # column sums of d0^2 over the first `size` rows
                for w in range(width):
                    for l in range(nl):
                        col[w, l] = 0.0
                    for k in range(size):
                        xv = x0r[i, px + k * width + w]
                        for l in range(nl):
                            d = xv - x0c[jb, px + k * width + w, l]
                            col[w, l] += d * d
                for p in range(ho):
                    if p > 0:  # slide the column sums down one row
                        rin = px + (p + size - 1) * width
                        rout = px + (p - 1) * width
                        for w in range(width):
                            xa = x0r[i, rin + w]
                            xb = x0r[i, rout + w]
                            for l in range(nl):
                                da = xa - x0c[jb, rin + w, l]
                                db = xb - x0c[jb, rout + w, l]
                                col[w, l] += da * da - db * db
                    # s: sum of the first size-1 columns; each window adds its last one
                    for l in range(nl):
                        s[l] = 0.0
                    for k in range(size - 1):
                        for l in range(nl):
                            s[l] += col[k, l]
                    for q in range(wo):
                        row = pw + p * wo + q
                        m0i = m0r[i, row]
                        ai = ar[i, row]
                        vi = vr[i, row]
                        last = q + size - 1
                        for l in range(nl):
                            window = s[l] + col[last, l]
                            s[l] = window - col[q, l]
                            acc[l] += _window_term(window * scale, m0i - m0c[jb, row, l],
                                                   dsh[l], ai + ac[jb, row, l],
                                                   vi + vc[jb, row, l], kind)
            near[t] = _store(acc, out, i, jb, upper, root, floor)


@njit(parallel=True, **_JIT)
def _tiles_separable(x0r, m0r, ar, vr, shr, x0c, m0c, ac, vc, shc, task_i, task_j,
                     height, width, taps, stride, scale, kind, nchunks, upper, root, floor,
                     out, near):
    """Any window: separable weighted sums per output row. Overlapping windows
    (stride < size) keep the squares of the last ``size`` rows in a ring; otherwise the
    squares are formed inside the vertical sum. Sums over whole rows of (column, lane)
    are single flat loops."""
    channels = shr.shape[1]
    nl = x0c.shape[2]
    size = taps.shape[0]
    ho = (height - size) // stride + 1
    wo = (width - size) // stride + 1
    overlap = stride < size
    uniform = True
    for k in range(size):
        uniform = uniform and taps[k] == 1.0
    ntasks = task_i.shape[0]
    for chunk in prange(nchunks):
        # flat buffers for the weighted sums, 2-D or 3-D views of the same memory for
        # the lane loops (indices there must be plain loop counters, see weighted_sum)
        ring_flat = np.empty(size * width * nl)
        ring = ring_flat.reshape((size, width, nl))
        offsets = np.empty(size, dtype=np.int64)
        col = np.empty(width * nl)
        col2 = col.reshape((width, nl))
        hsum = np.empty(wo * nl)
        hsum2 = hsum.reshape((wo, nl))
        acc = np.empty(nl)
        dsh = np.empty(nl)
        for t in range(chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks):
            i = task_i[t]
            jb = task_j[t]
            for l in range(nl):
                acc[l] = 0.0
            for c in range(channels):
                px = c * height * width
                pw = c * ho * wo
                _shift_differences(shr, shc, i, jb, c, dsh)
                filled = 0  # image rows squared into the ring so far
                for p in range(ho):
                    top = p * stride
                    for idx in range(wo * nl):
                        hsum[idx] = 0.0
                    if overlap:
                        while filled < top + size:
                            r = px + filled * width
                            slot = filled % size
                            for w in range(width):
                                xv = x0r[i, r + w]
                                for l in range(nl):
                                    d = xv - x0c[jb, r + w, l]
                                    ring[slot, w, l] = d * d
                            filled += 1
                        for k in range(size):
                            offsets[k] = ((top + k) % size) * width * nl
                        weighted_sum(col, width * nl, ring_flat, offsets, taps, taps.shape[0])
                        if stride == 1:
                            for k in range(size):
                                offsets[k] = k * nl
                            weighted_sum(hsum, wo * nl, col, offsets, taps, taps.shape[0])
                        else:
                            for q in range(wo):
                                for k in range(size):
                                    g = taps[k]
                                    src = q * stride + k
                                    for l in range(nl):
                                        hsum2[q, l] += g * col2[src, l]
                    else:
                        # each pixel lies in at most one window: add its square there
                        for k in range(size):
                            r = px + (top + k) * width
                            for q in range(wo):
                                for kw in range(size):
                                    w = q * stride + kw
                                    xv = x0r[i, r + w]
                                    if uniform:
                                        for l in range(nl):
                                            d = xv - x0c[jb, r + w, l]
                                            hsum2[q, l] += d * d
                                    else:
                                        g = taps[k] * taps[kw]
                                        for l in range(nl):
                                            d = xv - x0c[jb, r + w, l]
                                            hsum2[q, l] += g * (d * d)
                    for q in range(wo):
                        row = pw + p * wo + q
                        m0i = m0r[i, row]
                        ai = ar[i, row]
                        vi = vr[i, row]
                        for l in range(nl):
                            acc[l] += _window_term(hsum2[q, l] * scale, m0i - m0c[jb, row, l],
                                                   dsh[l], ai + ac[jb, row, l],
                                                   vi + vc[jb, row, l], kind)
            near[t] = _store(acc, out, i, jb, upper, root, floor)


@njit(parallel=True, **_JIT)
def _image_terms(X, taps, stride, scale, f, half_c1, half_c2, rows, packed):
    """The per-image terms of :func:`ssimref.engines.precompute.image_terms`, one pass per
    image, written in row layout (``rows``: x0 (t, C*H*W); m0, a, v (t, C*Ho*Wo); shift
    (t, C)) and/or in the packed layout of column groups (``packed``: the same with a
    leading group axis and the image index last, (groups, depth, LANES); lanes past the
    last image repeat it). Either tuple may hold empty arrays (not wanted). Threads take
    whole groups, so that no two threads write one cache line. Window sums are direct
    separable sums (``taps``, then ``scale``, as :func:`ssimref.moments.window_sums`)."""
    t, height, width, channels = X.shape
    x0r, m0r, ar, vr, shr = rows
    x0p, m0p, ap, vp, shp = packed
    want_rows = x0r.shape[0] > 0
    want_packed = x0p.shape[0] > 0
    nl = LANES
    groups = (t + nl - 1) // nl
    size = taps.shape[0]
    ho = (height - size) // stride + 1
    wo = (width - size) // stride + 1
    for g in prange(groups):
        image = np.empty(height * width)
        col1 = np.empty(width)
        col2 = np.empty(width)
        for l in range(nl):
            img = min(g * nl + l, t - 1)
            real = g * nl + l < t
            for c in range(channels):
                total = 0.0
                for h in range(height):
                    for w in range(width):
                        total += X[img, h, w, c]
                mean = total / (height * width)
                base = c * height * width
                for h in range(height):
                    for w in range(width):
                        image[h * width + w] = X[img, h, w, c] - mean
                if want_packed:
                    shp[g, c, l] = mean
                    for k in range(height * width):
                        x0p[g, base + k, l] = image[k]
                if want_rows and real:
                    shr[img, c] = mean
                    x0i = x0r[img, base:base + height * width]
                    for k in range(height * width):
                        x0i[k] = image[k]
                for p in range(ho):
                    for w in range(width):
                        s1 = 0.0
                        s2 = 0.0
                        for k in range(size):
                            val = image[(p * stride + k) * width + w]
                            s1 += taps[k] * val
                            s2 += taps[k] * (val * val)
                        col1[w] = s1
                        col2[w] = s2
                    for q in range(wo):
                        s1 = 0.0
                        s2 = 0.0
                        for k in range(size):
                            s1 += taps[k] * col1[q * stride + k]
                            s2 += taps[k] * col2[q * stride + k]
                        mean0 = s1 * scale
                        var = s2 * scale - mean0 * mean0
                        var = (var if var > 0.0 else 0.0) * f
                        row = (c * ho + p) * wo + q
                        mu = mean0 + mean
                        a = mu * mu + half_c1
                        v = (var + half_c2) / f
                        if want_packed:
                            m0p[g, row, l] = mean0
                            ap[g, row, l] = a
                            vp[g, row, l] = v
                        if want_rows and real:
                            m0r[img, row] = mean0
                            ar[img, row] = a
                            vr[img, row] = v


def _weights(config: SSIMConfig) -> tuple[npt.NDArray[np.float64], float]:
    """1-D taps and the factor applied after the 2-D sum: ones and ``1/size^2`` for a
    uniform window (sum, then scale, as the reference does), the Gaussian taps and 1."""
    taps = config.taps()
    if config.window == "uniform":
        return np.ones(config.size), taps[0] * taps[0]
    return np.asarray(taps, dtype=np.float64), 1.0


Terms = tuple[npt.NDArray[np.float64], ...]


def image_terms(X: npt.NDArray[np.float64], config: SSIMConfig, rows: bool = True,
                packed: bool = True) -> tuple[Terms | None, Terms | None]:
    """Per-image terms of a float64 stack, in the row and the packed layout.

    Parameters
    ----------
    X : numpy.ndarray, shape (t, H, W, C), float64
    config : SSIMConfig
        With its data range set.
    rows, packed : bool, default True
        Which layouts to compute.

    Returns
    -------
    rows, packed : tuple of numpy.ndarray, or None when not asked for
        Each ``(x0, m0, a, v, shift)``. Row layout: x0 (t, C*H*W), m0, a, v
        (t, C*Ho*Wo), shift (t, C). Packed layout: a leading group axis and the image
        index last in groups of LANES, image ``i`` at ``[i // LANES, ..., i % LANES]``.
    """
    t, height, width, channels = X.shape
    ho, wo = config.positions(height, width)
    depths = (channels * height * width, channels * ho * wo, channels * ho * wo,
              channels * ho * wo, channels)

    row_arrays = tuple(np.empty((t, d)) if rows else np.empty((0, 0)) for d in depths)
    groups = -(-t // LANES)
    packed_arrays = tuple(np.empty((groups, d, LANES)) if packed else np.empty((0, 0, 0))
                          for d in depths)
    taps, scale = _weights(config)
    c1, c2 = config.constants()
    _image_terms(np.ascontiguousarray(X), taps, config.stride, scale,
                 config.covariance_factor(), 0.5 * c1, 0.5 * c2, row_arrays, packed_arrays)
    return (row_arrays if rows else None), (packed_arrays if packed else None)


def _tasks(rows: int, groups: int,
           upper: bool) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(row, group) pairs to compute, group-major: a thread's consecutive tasks share one
    group of column images, whose terms then stay in cache while the row images stream
    past (1.3x faster for 64x64 images, whose groups take 3.6 MB); with ``upper`` only
    groups holding a column > row."""
    jb = np.repeat(np.arange(groups, dtype=np.int64), rows)
    i = np.tile(np.arange(rows, dtype=np.int64), groups)
    if upper:
        keep = jb * LANES + LANES - 1 > i
        i, jb = i[keep], jb[keep]
    return i, jb


def bytes_per_pair(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """Working bytes per pair of a tile: the float64 block and the copies the caller
    makes of it (mirror, root, cast).

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W, C)``.
    config : SSIMConfig

    Returns
    -------
    int
    """
    return 8 * 4


def bytes_per_image(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """float64 bytes per image of a tile: its copy in float64 (made by the caller) and its
    packed terms (shifted image, local mean, a, v, global mean).

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
    return 8 * (2 * h * w * c + 3 * ho * wo * c + c)


def max_tile_pairs(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """About two seconds of work at W1 speed: progress and Ctrl-C stay responsive.

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
        ``2**22``.
    """
    return 1 << 22


@njit(parallel=True, **_JIT)
def _to_units(X, L, out):
    """``out = float64(X) / L``, threads over images: the tile's images in units of the
    data range, as :func:`ssimref.moments.in_range_units` computes them (the same bits)."""
    for i in prange(X.shape[0]):
        for h in range(X.shape[1]):
            for w in range(X.shape[2]):
                for c in range(X.shape[3]):
                    out[i, h, w, c] = np.float64(X[i, h, w, c]) / L


def _in_range_units(X: npt.NDArray[Any], config: SSIMConfig) -> npt.NDArray[np.float64]:
    """A tile's images in float64 in units of the data range, on Numba's threads; dtypes
    Numba cannot read (non-native byte order, float16, extended precision) by NumPy."""
    L = config.data_range
    assert L is not None  # set at the public edge
    if not (X.dtype.isnative and X.dtype.kind in "biuf"
            and (X.dtype.kind != "f" or X.dtype.itemsize in (4, 8))):
        return in_range_units(X, config, np)
    out = np.empty(X.shape, dtype=np.float64)
    _to_units(np.ascontiguousarray(X), float(L), out)
    return out


@njit(parallel=True, **_JIT)
def _mirror_upper(out, block):
    """Copy the strict upper triangle of the square ``out`` onto the lower one and set
    the diagonal to 0, in ``block`` x ``block`` squares (threads over block rows)."""
    n = out.shape[0]
    nb = (n + block - 1) // block
    for bi in prange(nb):
        i0 = bi * block
        i1 = min(i0 + block, n)
        for bj in range(bi + 1):
            j0 = bj * block
            for i in range(i0, i1):
                for j in range(j0, min(j0 + block, i)):
                    out[i, j] = out[j, i]
        for i in range(i0, i1):
            out[i, i] = 0.0


#: Below this much work (pairs times window positions) a call runs on the calling thread
#: alone: waking Numba's other threads costs more than such work, and on a busy machine the
#: call waits until every thread is scheduled (a 4 x 4 MMD^2 of 5x5 images: 2 ms on one
#: thread, 50-120 ms on two under a load of 5 on 2 cores). Every pair's value and every
#: gradient is computed in an order that does not depend on the thread count, so the bits
#: are the same either way.
SERIAL_BELOW = 1 << 16


@contextmanager
def threads_for(pairs: int, image_shape: tuple[int, ...],
                config: SSIMConfig) -> Iterator[None]:
    """Run the enclosed kernels on one thread when ``pairs`` pairs of ``image_shape`` images
    are less work than :data:`SERIAL_BELOW`, on Numba's threads otherwise.

    Parameters
    ----------
    pairs : int
        Pairs the call computes.
    image_shape : tuple of int
        ``(H, W, C)``.
    config : SSIMConfig

    Yields
    ------
    None
    """
    threads = numba.get_num_threads()
    work = pairs * math.prod(config.positions(image_shape[0], image_shape[1]))
    if threads == 1 or work >= SERIAL_BELOW:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


def squared_block(Xa: npt.NDArray[np.float64], Yb: npt.NDArray[np.float64], kind: str,
                  config: SSIMConfig, *, upper: bool = False) -> npt.NDArray[np.float64]:
    """``D^2`` for all pairs of two float64 tiles.

    Parameters
    ----------
    Xa : numpy.ndarray, shape (ta, H, W, C), float64
    Yb : numpy.ndarray, shape (tb, H, W, C), float64
    kind : {"eq1", "eq1-uncentered", "eq2"}
    config : SSIMConfig
        With its data range set.
    upper : bool, default False
        ``Xa is Yb``: each unordered pair is computed once and mirrored, so the block is
        exactly symmetric with a zero diagonal.

    Returns
    -------
    numpy.ndarray, shape (ta, tb), float64
        Within the accuracy contract of docs/engines.md; pairs that :func:`fused_block`
        puts within the accuracy floor of 0 are recomputed by the reference engine
        (:func:`ssimref.engines.reference.refine_near_zero`).

    See Also
    --------
    distance_block : ``D`` in float64 or float32 of images as stored, from the same
        kernels.
    ssimref.engines.accuracy_floor : the contract's absolute term.
    """
    with threads_for(Xa.shape[0] * Yb.shape[0], Xa.shape[1:], config):
        return _block(Xa, Yb, kind, config, upper, True, "float64", None)


def distance_block(Xa: npt.NDArray[Any], Yb: npt.NDArray[Any], kind: str,
                   config: SSIMConfig, *, upper: bool = False, squared: bool = False,
                   dtype: str = "float64",
                   out: npt.NDArray[Any] | None = None) -> npt.NDArray[Any]:
    """``D`` (or ``D^2``) for all pairs of two tiles of images as stored, in ``dtype``:
    the images are converted to float64 in units of the data range on Numba's threads,
    the kernels take the square root of each pair's float64 ``D^2`` and round it once to
    ``dtype`` as they store it, and flag the pairs within the accuracy floor of 0 as they
    go, so no pass over the block follows them (besides the mirror of a diagonal tile, on
    Numba's threads too).

    Parameters
    ----------
    Xa : numpy.ndarray, shape (ta, H, W, C), any real dtype
    Yb : numpy.ndarray, shape (tb, H, W, C), any real dtype
        ``Xa`` itself for a diagonal tile.
    kind, upper
        As for :func:`squared_block`.
    config : SSIMConfig
        With its data range set (not in units of it: the images are divided by it here,
        :func:`ssimref.moments.in_range_units`).
    squared : bool, default False
        ``D^2`` instead of ``D``.
    dtype : {"float64", "float32"}, default "float64"
    out : numpy.ndarray, shape (ta, tb), of ``dtype``, optional
        Written instead of a new array (any strides: e.g. the tile's view of the whole
        matrix); every entry is overwritten.

    Returns
    -------
    numpy.ndarray, shape (ta, tb), of ``dtype``
        The square root of :func:`squared_block`'s block (unless ``squared``), rounded
        once to ``dtype``: the same values, bit for bit, as rooting and casting that block.
        ``out`` when given.
    """
    with threads_for(Xa.shape[0] * Yb.shape[0], Xa.shape[1:], config):
        Xu = _in_range_units(Xa, config)
        Yu = Xu if Yb is Xa else _in_range_units(Yb, config)
        return _block(Xu, Yu, kind, config.in_range_units(), upper, squared, dtype, out)


def _block(Xa: npt.NDArray[np.float64], Yb: npt.NDArray[np.float64], kind: str,
           config: SSIMConfig, upper: bool, squared: bool, dtype: str,
           out: npt.NDArray[Any] | None) -> npt.NDArray[Any]:
    """:func:`distance_block` of float64 tiles in units of the data range (``config`` in
    those units): the kernels' block, refined near 0."""
    floor = accuracy_floor(config, Xa.shape[1:])
    block, near = _fused(Xa, Yb, kind, config, upper, not squared, np.dtype(dtype), floor,
                         out)
    return refine_near_zero(block, Xa, Yb, upper, floor, kind, config, near=near,
                            root=not squared)


def fused_block(Xa: npt.NDArray[np.float64], Yb: npt.NDArray[np.float64], kind: str,
                config: SSIMConfig, *, upper: bool = False) -> npt.NDArray[np.float64]:
    """The fused kernels' ``D^2`` block alone, without the refinement near 0 (what the
    accuracy contract of docs/engines.md bounds).

    Parameters
    ----------
    Xa, Yb, kind, config, upper
        As for :func:`squared_block`.

    Returns
    -------
    numpy.ndarray, shape (ta, tb), float64
    """
    return _fused(Xa, Yb, kind, config, upper, False, np.dtype(np.float64), -np.inf)[0]


def _fused(Xa: npt.NDArray[np.float64], Yb: npt.NDArray[np.float64], kind: str,
           config: SSIMConfig, upper: bool, root: bool, dtype: np.dtype[Any],
           floor: float, out: npt.NDArray[Any] | None = None,
           ) -> tuple[npt.NDArray[Any], tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]]:
    """The kernels' block (``D`` with ``root``, in ``dtype``; written into ``out`` when
    given) and the pairs ``(rows, cols)`` whose ``D^2`` is within ``floor`` (upper
    triangle only with ``upper``)."""
    ta, height, width, _ = Xa.shape
    if Yb is Xa:
        rows, cols = image_terms(Xa, config)
    else:
        rows, _ = image_terms(Xa, config, packed=False)
        _, cols = image_terms(Yb, config, rows=False)
    assert rows is not None and cols is not None
    task_i, task_j = _tasks(ta, cols[0].shape[0], upper)
    if out is None:
        out = np.zeros((ta, Yb.shape[0]), dtype=dtype)
    near = np.zeros(task_i.size, dtype=np.int64)
    if task_i.size > 0:
        threads = numba.get_num_threads()
        nchunks = int(min(task_i.size, 8 * threads))
        weights, scale = _weights(config)
        code = get_kind(kind).code
        with numba.parallel_chunksize(1):
            if config.window == "uniform" and config.stride == 1:
                _tiles_sliding(*rows, *cols, task_i, task_j, height, width, config.size,
                               scale, code, nchunks, upper, root, floor, out, near)
            else:
                _tiles_separable(*rows, *cols, task_i, task_j, height, width, weights,
                                 config.stride, scale, code, nchunks, upper, root, floor,
                                 out, near)
        if upper:
            _mirror_upper(out, 64)
    hit = np.flatnonzero(near)
    task, lane = np.nonzero((near[hit, None] >> np.arange(LANES)) & 1)
    return out, (task_i[hit][task].astype(np.intp),
                 (task_j[hit][task] * LANES + lane).astype(np.intp))


# ------------------------------------------------------------------ value and VJP
# The VJP kernels live in numba_vjp (which imports this module's layout), imported when a
# gradient is first asked for.

#: Working bytes per pair of a value-and-VJP tile: the ``S`` block, the caller's value and
#: cotangent and the temporaries of its cotangent function (about five more arrays of the
#: tile's size), and the VJP's packed copy of the cotangent (numba_vjp).
_COTANGENT_BYTES = 8 * 8


def value_and_vjp_block(Xa: npt.NDArray[np.float64], Yb: npt.NDArray[np.float64],
                        kind: str, config: SSIMConfig,
                        cotangent: Callable[[npt.NDArray[np.float64]], tuple[Any, Any]], *,
                        upper: bool = False,
                        wrt_y: bool = True) -> tuple[Any, npt.NDArray[np.float64],
                                                     npt.NDArray[np.float64] | None]:
    """The tile's ``S`` block (:func:`squared_block`), ``cotangent(S)``, and the fused
    VJP of its cotangent (:func:`ssimref.engines.numba_vjp.vjp_block`).

    An :class:`ssimref.engines.ElementwiseCotangent` runs in one pass instead
    (:func:`ssimref.engines.numba_vjp.fused_value_and_vjp`: each task's window sums serve
    both ``S`` and the VJP, and ``W`` is formed in the kernel by the rule); the pairs it
    puts within the accuracy floor of 0 are then refined as :func:`squared_block` refines
    them, and their cotangents (from ``cotangent`` on the refined block) sent back through
    :func:`ssimref.engines.numba_vjp.vjp_block`. Images too large for the kernels' store
    (:func:`ssimref.engines.numba_vjp.fuses`) take the two-pass path.

    Parameters
    ----------
    Xa, Yb, kind, config, upper, wrt_y, cotangent
        As for :meth:`ssimref.engines.Engine.value_and_vjp_block`.

    Returns
    -------
    value : Any
    dXa : numpy.ndarray, shaped like Xa, float64
    dYb : numpy.ndarray, shaped like Yb, float64, or None

    See Also
    --------
    ssimref.engines.vjp_accuracy_floor : the gradients' accuracy contract.
    """
    with threads_for(Xa.shape[0] * Yb.shape[0], Xa.shape[1:], config):
        return _value_and_vjp_block(Xa, Yb, kind, config, cotangent, upper, wrt_y)


def _value_and_vjp_block(Xa, Yb, kind, config, cotangent, upper, wrt_y):
    from . import ElementwiseCotangent, numba_vjp

    if isinstance(cotangent, ElementwiseCotangent) and numba_vjp.fuses(Xa.shape[1:], config):
        floor = accuracy_floor(config, Xa.shape[1:])
        S, dX, dY = numba_vjp.fused_value_and_vjp(
            Xa, Yb, cotangent.upstream, cotangent.rule, cotangent.coef, floor, kind, config,
            upper=upper, wrt_y=wrt_y)
        near = (S > 0) & (S <= floor)  # W = 0 in the kernel: refine, then send back
        if near.any():
            refine_near_zero(S, Xa, Yb, upper, floor, kind, config)
        value, weight = cotangent(S)
        if near.any():
            gx, gy = numba_vjp.vjp_block(Xa, Xa if upper else Yb,
                                         np.where(near, weight, 0.0), kind, config,
                                         upper=upper, wrt_y=wrt_y)
            dX += gx
            if dY is not None and gy is not None:
                dY += gy
        return value, dX, dY
    value, weight = cotangent(squared_block(Xa, Yb, kind, config, upper=upper))
    dX, dY = numba_vjp.vjp_block(Xa, Xa if upper else Yb, weight, kind, config,
                                 upper=upper, wrt_y=wrt_y)
    return value, dX, dY


def paired_value_and_vjp(
        X: npt.NDArray[np.float64], Y: npt.NDArray[np.float64], kind: str,
        config: SSIMConfig, cotangent: Callable[[npt.NDArray[np.float64]], tuple[Any, Any]],
) -> tuple[Any, npt.NDArray[np.float64] | None, npt.NDArray[np.float64] | None]:
    """Matched pairs: ``S`` (:func:`ssimref.engines.numba_vjp.paired_squared`, pairs within
    the accuracy floor of 0 recomputed by the reference), ``cotangent(S)`` and the fused
    VJP (:func:`ssimref.engines.numba_vjp.paired_vjp`).

    Parameters
    ----------
    X, Y, kind, config, cotangent
        As for :meth:`ssimref.engines.Engine.paired_value_and_vjp`.

    Returns
    -------
    value : Any
    dX, dY : numpy.ndarray, shaped like X and Y, float64, or None
    """
    with threads_for(X.shape[0], X.shape[1:], config):
        return _paired_value_and_vjp(X, Y, kind, config, cotangent)


def _paired_value_and_vjp(X, Y, kind, config, cotangent):
    from . import numba_vjp

    S = refine_paired_near_zero(numba_vjp.paired_squared(X, Y, kind, config), X, Y,
                                accuracy_floor(config, X.shape[1:]), kind, config)
    value, weight = cotangent(S)
    if weight is None:
        return value, None, None
    dX, dY = numba_vjp.paired_vjp(X, Y, weight, kind, config)
    return value, dX, dY


def vjp_bytes_per_pair(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """Working bytes per pair of a value-and-VJP tile: the ``S`` block, the cotangent
    function's value, cotangent and temporaries, and the VJP's packed cotangent and task
    mask.

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
    """
    from . import numba_vjp

    return _COTANGENT_BYTES + numba_vjp.vjp_bytes_per_pair(image_shape, config)


def vjp_bytes_per_image(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """Working bytes per image of a value-and-VJP tile: the larger of the forward's
    (:func:`bytes_per_image`) and the VJP kernels' (terms, gradient, per-chunk buffers).

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
    """
    from . import numba_vjp

    return max(bytes_per_image(image_shape, config),
               numba_vjp.vjp_bytes_per_image(image_shape, config))


def vjp_max_tile_pairs(image_shape: tuple[int, int, int], config: SSIMConfig) -> int:
    """About two seconds of VJP work on two cores (Ctrl-C and progress stay responsive).

    Parameters
    ----------
    image_shape : tuple of int
    config : SSIMConfig

    Returns
    -------
    int
        ``2**20``.
    """
    from . import numba_vjp

    return int(numba_vjp.VJP_MAX_TILE_PAIRS)


def warm_up() -> float:
    """Compile every kernel (or load it from Numba's on-disk cache), on tiny inputs.

    Returns
    -------
    float
        The seconds it took.
    """
    import time

    from ..config import SSIMConfig

    start = time.perf_counter()
    X = (np.arange(2 * 5 * 5, dtype=np.float64).reshape(2, 5, 5, 1) % 7)
    for window in ("uniform", "gaussian"):
        config = SSIMConfig(window=window, size=3, data_range=7.0)
        for dtype in ("float64", "float32"):
            distance_block(X, X, "eq2", config, dtype=dtype)
    return time.perf_counter() - start
