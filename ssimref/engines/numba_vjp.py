"""Fused vector-Jacobian blocks of SSIM distances on the CPU, compiled with Numba.

For a tile of row images ``x_i`` and column images ``y_j`` and cotangents ``W_ij`` of
``S_ij = D^2(x_i, y_j)`` (the squared distance :func:`ssimref.engines.numba_engine.squared_block`
computes), this returns ``dX_i = sum_j W_ij dS_ij/dx_i`` and ``dY_j = sum_i W_ij dS_ij/dy_j``
without any array of shape ``pairs x pixels`` (or ``pairs x windows``).

Derivation (:mod:`ssimref.gradients` has the chain rule). Per pair and window, with the
per-image terms of :mod:`ssimref.engines.precompute` (``a = mu^2 + c1/2``,
``v = (var + c2/2) / f``, ``m0`` the local mean of the mean-shifted image ``x0``), the
forward pass gives ``md0 = m0_i - m0_j``, ``md = md0 + shift_i - shift_j`` (the local mean
of ``d = x - y``), ``n1 = md^2``, ``n2 = max(E_w[d0^2] - md0^2, 0)`` (``var_d / f``),
``A = a_i + a_j``, ``B = v_i + v_j``, ``t1 = n1 / A``, ``t2 = n2 / B``. With
``g1 = dg/dt1``, ``g2 = dg/dt2`` of the kind's ``g(t1, t2)`` and ``w2 = 2 W_ij``::

    h1 = w2 g1 / A          cg = w2 g2 / B         (cg = 2 f dS/dvar_d, times W_ij)
    u = h1 t1               vv = cg t2             e = h1 md - cg md0

(the covariance factor ``f`` cancels). The adjoint window sum ``T`` (the transpose of the
local mean, :func:`ssimref.moments.window_sums_transpose`) carries window coefficients to
pixels, and the gradient of one pair is, pixel by pixel::

    dS/dx_i = T(e - u mu_i + vv m0_i) - x0_i T(vv) + d0 T(cg)
    dS/dy_j = T(-e - u mu_j + vv m0_j) - y0_j T(vv) - d0 T(cg)      (d0 = x0_i - y0_j)

Everything but the last term is linear in per-window coefficients of one image, so it is
summed over the other image per window first and spread to pixels once per image (two
window maps per image: ``R = sum(e - u mu + vv m0)`` and ``V = sum(vv)``). Only the cross
term ``d0 T(cg)`` needs pixel work per pair; it is formed row by row and added straight
into the accumulators, never stored. Using ``d0`` itself (not ``x0_i T(cg) - y0_j T(cg)``
summed apart) keeps it exactly 0 for identical images, whose every coefficient is exactly
0 as well (``md = md0 = n1 = n2 = 0``), so identical pairs contribute exactly 0.

Per pair the kernel recomputes the forward window sums of ``d0^2`` (as the forward engine
does: running sums for uniform stride-1 windows, a ring of squared rows and separable
weighted sums otherwise, direct sums for non-overlapping windows), derives the six
coefficients with one division per window, and streams the adjoint of ``cg`` back to pixel
rows: horizontally (running sums or a weighted sum over a dilated row), then vertically
from a ring of the last ``size`` window rows, each pixel row being finished as soon as no
later window covers it.

Layout and determinism. Column images are packed in groups of ``LANES`` (32, image index
last) as in the forward engine; row images are scalars. Rows are dealt to chunks
(row ``i`` to chunk ``i mod nchunks``, which balances triangular tiles); a chunk walks its
tasks group-major (a group's terms stay in cache while rows stream past). A row's
gradient belongs to the one chunk that holds the row, and is accumulated over groups in
order, its 32 lanes summed by a fixed tree. Column gradients go to a per-chunk
buffer (lane-wise, no reduction needed), reduced over chunks in chunk order at the end.
The number of chunks is fixed (:data:`VJP_CHUNKS`, at most one per 16 rows), not tied to
the thread count, so the same inputs give the same bits whatever the number of Numba threads
(a distributed run's workers and this process agree bit for bit).

Which side is which: ``wrt_y=False`` (the MMD blocks that hold ``Y`` fixed) runs ``Y`` as
rows and ``X`` as columns, so the only gradient is lane-wise (no lane sums at all).

One pass (:func:`fused_value_and_vjp`). When the cotangent is an elementwise rule of ``S``
with an upstream ``G`` (:class:`ssimref.engines.ElementwiseCotangent`), a first pass over
each task computes its window sums of ``d0^2`` once, keeps them in a per-thread store
(``C Ho Wo`` rows of 32 lanes), sums ``S`` lane by lane and forms ``W`` by the rule; the
second pass is the VJP above, reading the kept sums. So a value and gradient costs the
VJP and the window terms of ``S``, not a separate forward block as well.

Accuracy: as the forward engine (float64, ``fastmath`` off, no FMA contraction); the
contract is :func:`ssimref.engines.vjp_accuracy_floor` (docs/engines.md).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ..kinds import KINDS
from .numba_engine import LANES, image_terms, weighted_sum

assert LANES == 32, "_lane_tree sums exactly 32 lanes"

__all__ = ["vjp_block", "fused_value_and_vjp", "fuses", "RULES", "FUSED_MAX_STORE",
           "paired_squared", "paired_vjp", "vjp_bytes_per_pair",
           "vjp_bytes_per_image", "VJP_MAX_TILE_PAIRS",
           "VJP_CHUNKS", "vjp_warm_up"]


# fastmath off, FMA contraction included, as in numba_engine (docs/engines.md).
_JIT = dict(cache=True, error_model="numpy", boundscheck=False, fastmath=False)

#: Chunks of rows of a tile (at most one per 16 rows), whatever the number of threads: each
#: chunk owns a buffer for the column gradients, reduced in chunk order, so the chunks,
#: not the threads, fix the order of the sums (the same bits on any number of threads);
#: 16 balance up to 16 threads and a shared machine (docs/engines.md).
VJP_CHUNKS = 16

#: About two seconds of work at the W1 speed of the VJP on two cores.
VJP_MAX_TILE_PAIRS = 1 << 20


# ----------------------------------------------------------------------- per window
@njit(inline="always", **_JIT)
def _coefficients(E, m0i, ai, vi, m0j, aj, vj, dsh, w2, e1, e3):
    """``(cg, e, u, vv)`` of one window (module docstring) from the window's ``E_w[d0^2]``
    and the two images' terms; ``w2`` is twice the pair's cotangent (times the window
    scale), ``(e1, e3)`` the kind's coefficients: ``g1 = e1 - e3 t2``, ``g2 = 1 - e3 t1``
    (:mod:`ssimref.kinds`), written without branches so that the lane loops vectorise
    (a product with ``e3 = 0`` is an exact 0). One division."""
    md0 = m0i - m0j
    n2 = E - md0 * md0
    n2 = n2 if n2 > 0.0 else 0.0
    md = md0 + dsh
    n1 = md * md
    a = ai + aj
    b = vi + vj
    r = 1.0 / (a * b)
    inv_a = b * r
    inv_b = a * r
    t1 = n1 * inv_a
    t2 = n2 * inv_b
    h1 = w2 * (e1 - e3 * t2) * inv_a
    cg = w2 * (1.0 - e3 * t1) * inv_b
    u = h1 * t1
    vv = cg * t2
    e = h1 * md - cg * md0
    return cg, e, u, vv


@njit(inline="always", **_JIT)
def _squared_term(E, m0i, ai, vi, m0j, aj, vj, dsh, e1, e3):
    """The squared distance of one window, ``(n1 (e1 v - e3 n2) + n2 a) / (a v)`` (the
    kind table's ``g = e1 t1 + t2 - e3 t1 t2`` with one division, without branches)."""
    md0 = m0i - m0j
    n2 = E - md0 * md0
    n2 = n2 if n2 > 0.0 else 0.0
    md = md0 + dsh
    n1 = md * md
    a = ai + aj
    v = vi + vj
    return (n1 * (e1 * v - e3 * n2) + n2 * a) / (a * v)


@njit(inline="always", **_JIT)
def _coefficient_row(E, eoff, scale, m0r, ar, vr, i, shi, m0c, ac, vc, shc, g, c, r0, dsh, wl,
                     e1, e3, cgout, coff, cstride, rw, rv, cwin, want_rows, want_cols):
    """The coefficients of one window row of a (row image ``i``, column group ``g``) task:
    for each window ``q`` (position ``r0 + q`` of the terms) and lane ``l``, ``cg`` into
    ``cgout[coff + q * cstride, l]``, the row side's ``R``/``V`` terms into ``rw``, ``rv``
    (to be summed over the lanes), the column side's added into ``cwin``. ``E[eoff + q]``
    (a row of lanes): the window sums of ``d0^2`` (times ``scale`` here); ``shi`` and
    ``shc[g, c]``: the images' shifts. One loop per mode, each without branches, so that
    LLVM vectorises it over the lanes; arrays are indexed in place (no views, whose
    reference counts cost atomic operations)."""
    wo = rw.shape[0]
    nl = rw.shape[1]
    if want_rows and want_cols:
        for q in range(wo):
            row = r0 + q
            m0i, ai, vi = m0r[i, row], ar[i, row], vr[i, row]
            mui = m0i + shi
            dst = coff + q * cstride
            for l in range(nl):
                m0j = m0c[g, row, l]
                cgv, e, u, vv = _coefficients(E[eoff + q, l] * scale, m0i, ai, vi, m0j,
                                              ac[g, row, l], vc[g, row, l], dsh[l], wl[l],
                                              e1, e3)
                cgout[dst, l] = cgv
                rw[q, l] = e - u * mui + vv * m0i
                rv[q, l] = vv
                cwin[0, row, l] += vv * m0j - e - u * (m0j + shc[g, c, l])
                cwin[1, row, l] += vv
    elif want_cols:
        for q in range(wo):
            row = r0 + q
            m0i, ai, vi = m0r[i, row], ar[i, row], vr[i, row]
            dst = coff + q * cstride
            for l in range(nl):
                m0j = m0c[g, row, l]
                cgv, e, u, vv = _coefficients(E[eoff + q, l] * scale, m0i, ai, vi, m0j,
                                              ac[g, row, l], vc[g, row, l], dsh[l], wl[l],
                                              e1, e3)
                cgout[dst, l] = cgv
                cwin[0, row, l] += vv * m0j - e - u * (m0j + shc[g, c, l])
                cwin[1, row, l] += vv
    else:
        for q in range(wo):
            row = r0 + q
            m0i, ai, vi = m0r[i, row], ar[i, row], vr[i, row]
            mui = m0i + shi
            dst = coff + q * cstride
            for l in range(nl):
                cgv, e, u, vv = _coefficients(E[eoff + q, l] * scale, m0i, ai, vi, m0c[g, row, l],
                                              ac[g, row, l], vc[g, row, l], dsh[l], wl[l],
                                              e1, e3)
                cgout[dst, l] = cgv
                rw[q, l] = e - u * mui + vv * m0i
                rv[q, l] = vv


# ----------------------------------------------------------------------- helpers
@njit(inline="always", **_JIT)
def _lane_chain(buf, k, j):
    """Lanes ``j, j + 4, ..., j + 28`` of row ``k``, added pairwise."""
    return (((buf[k, j] + buf[k, j + 4]) + (buf[k, j + 8] + buf[k, j + 12]))
            + ((buf[k, j + 16] + buf[k, j + 20]) + (buf[k, j + 24] + buf[k, j + 28])))


@njit(**_JIT)
def _lane_tree(buf, n):
    """Sum the 32 lanes of ``buf[:n]`` (shape (n, LANES)) into ``buf[:n, 0]`` by a fixed
    tree: four interleaved chains of eight lanes added pairwise, then the four chains
    added pairwise. The same order every time; scalar code with four independent chains
    (cheaper than halving loops, which are mostly set-up for 32 lanes)."""
    for k in range(n):
        buf[k, 0] = ((_lane_chain(buf, k, 0) + _lane_chain(buf, k, 1))
                     + (_lane_chain(buf, k, 2) + _lane_chain(buf, k, 3)))


@njit(**_JIT)
def _spread(win, z0, dst, taps, stride, height, width, channels, hc):
    """``dst += T(win[0]) - z0 * T(win[1])`` lane-wise: the per-image part of a gradient
    from its two window maps (``win`` (2, C*Ho*Wo, nl), ``z0`` the mean-shifted image and
    ``dst`` (C*H*W, nl), ``hc`` scratch (2, W, nl)). Separable: each window row is spread
    along the row, then onto the ``size`` pixel rows it covers."""
    nl = dst.shape[1]
    size = taps.shape[0]
    ho = (height - size) // stride + 1
    wo = (width - size) // stride + 1
    for c in range(channels):
        px = c * height * width
        pw = c * ho * wo
        for p in range(ho):
            for w in range(width):
                for l in range(nl):
                    hc[0, w, l] = 0.0
                    hc[1, w, l] = 0.0
            for q in range(wo):
                row = pw + p * wo + q
                for k in range(size):
                    g = taps[k]
                    w = q * stride + k
                    for l in range(nl):
                        hc[0, w, l] += g * win[0, row, l]
                        hc[1, w, l] += g * win[1, row, l]
            for k in range(size):
                g = taps[k]
                r = px + (p * stride + k) * width
                for w in range(width):
                    for l in range(nl):
                        dst[r + w, l] += g * (hc[0, w, l] - z0[r + w, l] * hc[1, w, l])


# ----------------------------------------------------------------------- fused cotangents
#: Codes of the elementwise cotangent rules (:class:`ssimref.engines.ElementwiseCotangent`).
RULES = {"linear": 0, "sqrt": 1, "exp": 2}

#: Largest per-thread store of a task's window sums of ``d0^2`` (bytes) for which the
#: fused value-and-VJP kernels run (beyond it, the forward block and the VJP run apart).
FUSED_MAX_STORE = 1 << 21


@njit(inline="always", **_JIT)
def _rule_weight(S, G, rule, coef, floor):
    """The cotangent of ``S`` for the upstream ``G`` under an elementwise rule (``h(S)``:
    ``coef S``, ``coef sqrt(S)`` or ``exp(-coef S)``), written as the kernels' NumPy
    cotangents write it (the same operations in the same order); 0 for ``S <= floor``
    (those pairs are refined and sent back by the caller)."""
    if S <= floor:
        return 0.0
    if rule == 0:
        return coef * G
    if rule == 1:
        return (coef * G) / (2.0 * np.sqrt(S))
    return ((-coef) * np.exp(-coef * S)) * G


@njit(inline="always", **_JIT)
def _task_weights(acc, wp, i, g, rule, coef, floor, two_scale, values, wl):
    """Store a task's ``S`` (``acc``) in ``values[i, g]`` and its weights ``2 scale W``
    into ``wl``; returns whether any weight is nonzero."""
    nl = wl.shape[0]
    nonzero = False
    for l in range(nl):
        values[i, g, l] = acc[l]
        w = _rule_weight(acc[l], wp[i, g, l], rule, coef, floor) * two_scale
        wl[l] = w
        nonzero = nonzero or w != 0.0
    return nonzero


@njit(inline="always", **_JIT)
def _sliding_start(x0r, i, x0c, g, px, width, size, col):
    """Column sums of ``d0^2`` over the first ``size`` pixel rows into ``col`` (W, nl)."""
    nl = x0c.shape[2]
    for w in range(width):
        for l in range(nl):
            col[w, l] = 0.0
        for k in range(size):
            xv = x0r[i, px + k * width + w]
            for l in range(nl):
                d = xv - x0c[g, px + k * width + w, l]
                col[w, l] += d * d


@njit(inline="always", **_JIT)
def _sliding_row(x0r, i, x0c, g, px, p, width, wo, size, col, s, hs):
    """Window row ``p`` of a uniform stride-1 window: slide the column sums down one row
    (``p > 0``), then running sums along the row into ``hs`` (wo, nl)."""
    nl = x0c.shape[2]
    if p > 0:
        rin = px + (p + size - 1) * width
        rout = px + (p - 1) * width
        for w in range(width):
            xa = x0r[i, rin + w]
            xb = x0r[i, rout + w]
            for l in range(nl):
                da = xa - x0c[g, rin + w, l]
                db = xb - x0c[g, rout + w, l]
                col[w, l] += da * da - db * db
    for l in range(nl):
        s[l] = 0.0
    for k in range(size - 1):
        for l in range(nl):
            s[l] += col[k, l]
    for q in range(wo):
        last = q + size - 1
        for l in range(nl):
            window = s[l] + col[last, l]
            s[l] = window - col[q, l]
            hs[q, l] = window


@njit(inline="always", **_JIT)
def _separable_row(x0r, i, x0c, g, px, top, filled, width, wo, stride, taps, overlap, ring,
                   ring_flat, offsets, colb, colb2, hsum, hsum2):
    """The weighted sums of ``d0^2`` over the windows of the window row starting at pixel
    row ``top`` into ``hsum2`` (wo, nl); overlapping windows square each pixel row once
    into a ring (``filled``: rows squared so far, returned updated)."""
    nl = x0c.shape[2]
    size = taps.shape[0]
    span = width * nl
    for idx in range(wo * nl):
        hsum[idx] = 0.0
    if overlap:
        while filled < top + size:
            r = px + filled * width
            slot = filled % size
            for w in range(width):
                xv = x0r[i, r + w]
                for l in range(nl):
                    d = xv - x0c[g, r + w, l]
                    ring[slot, w, l] = d * d
            filled += 1
        for k in range(size):
            offsets[k] = ((top + k) % size) * span
        weighted_sum(colb, span, ring_flat, offsets, taps, size)
        if stride == 1:
            for k in range(size):
                offsets[k] = k * nl
            weighted_sum(hsum, wo * nl, colb, offsets, taps, size)
        else:
            for q in range(wo):
                for k in range(size):
                    gk = taps[k]
                    src = q * stride + k
                    for l in range(nl):
                        hsum2[q, l] += gk * colb2[src, l]
    else:
        for k in range(size):
            r = px + (top + k) * width
            for q in range(wo):
                for kw in range(size):
                    w = q * stride + kw
                    xv = x0r[i, r + w]
                    gk = taps[k] * taps[kw]
                    for l in range(nl):
                        d = xv - x0c[g, r + w, l]
                        hsum2[q, l] += gk * (d * d)
    return filled


# ----------------------------------------------------------------------- tile kernels
@njit(parallel=True, **_JIT)
def _vjp_sliding(x0r, m0r, ar, vr, shr, x0c, m0c, ac, vc, shc, wp, task_i, task_g, starts,
                 height, width, size, scale, e1, e3, want_rows, want_cols,
                 row_win, row_pix, col_part, fused, rule, coef, floor, values):
    """Uniform window, stride 1: running sums for the forward window sums of ``d0^2`` and
    for both directions of the adjoint of ``cg``. ``fused``: as :func:`_vjp_separable`."""
    channels = shr.shape[1]
    nl = x0c.shape[2]
    ho = height - size + 1
    wo = width - size + 1
    npos = ho * wo
    ones = np.ones(size)
    nchunks = starts.shape[0] - 1
    for chunk in prange(nchunks):
        col = np.empty((width, nl))
        s = np.empty(nl)
        hs = np.empty((wo, nl))
        run = np.empty(nl)
        dsh = np.empty(nl)
        wl = np.empty(nl)
        cg = np.empty((wo, nl))
        rw = np.empty((wo, nl))
        rv = np.empty((wo, nl))
        z = np.empty((width, nl))
        ring = np.empty((size, width, nl))
        vrun = np.empty((width, nl))
        cwin = np.zeros((2, channels * npos if want_cols else 0, nl))
        hc = np.empty((2, width, nl))
        acc = np.empty(nl)
        efull = np.empty((channels * npos if fused else 0, nl))
        current = -1
        for t in range(starts[chunk], starts[chunk + 1]):
            i = task_i[t]
            g = task_g[t]
            if want_cols and g != current:
                if current >= 0:
                    _spread(cwin, x0c[current], col_part[chunk, current], ones, 1,
                            height, width, channels, hc)
                    cwin[:] = 0.0
                current = g
            if fused:  # first pass: window sums, S and the weights
                for l in range(nl):
                    acc[l] = 0.0
                for c in range(channels):
                    px = c * height * width
                    pw = c * npos
                    for l in range(nl):
                        dsh[l] = shr[i, c] - shc[g, c, l]
                    _sliding_start(x0r, i, x0c, g, px, width, size, col)
                    for p in range(ho):
                        _sliding_row(x0r, i, x0c, g, px, p, width, wo, size, col, s, hs)
                        for q in range(wo):
                            row = pw + p * wo + q
                            m0i, ai, vi = m0r[i, row], ar[i, row], vr[i, row]
                            for l in range(nl):
                                ev = hs[q, l]
                                efull[row, l] = ev
                                acc[l] += _squared_term(ev * scale, m0i, ai, vi, m0c[g, row, l],
                                                        ac[g, row, l], vc[g, row, l], dsh[l],
                                                        e1, e3)
                if not _task_weights(acc, wp, i, g, rule, coef, floor, 2.0 * scale, values,
                                     wl):
                    continue
            else:
                for l in range(nl):
                    wl[l] = wp[i, g, l]
            for c in range(channels):
                px = c * height * width
                pw = c * npos
                shi = shr[i, c]
                for l in range(nl):
                    dsh[l] = shi - shc[g, c, l]
                if not fused:  # column sums of d0^2 over the first `size` rows
                    _sliding_start(x0r, i, x0c, g, px, width, size, col)
                ring[:] = 0.0
                vrun[:] = 0.0
                for h in range(height):
                    if h < ho:
                        p = h
                        if fused:  # the window sums kept by the first pass
                            E = efull
                            eoff = pw + p * wo
                        else:
                            _sliding_row(x0r, i, x0c, g, px, p, width, wo, size, col, s, hs)
                            E = hs
                            eoff = 0
                        _coefficient_row(E, eoff, scale, m0r, ar, vr, i, shi, m0c, ac, vc,
                                         shc, g, c, pw + p * wo, dsh, wl, e1, e3, cg, 0, 1,
                                         rw, rv, cwin, want_rows, want_cols)
                        if want_rows:
                            _lane_tree(rw, wo)
                            _lane_tree(rv, wo)
                            for q in range(wo):
                                row_win[i, 0, pw + p * wo + q] += rw[q, 0]
                                row_win[i, 1, pw + p * wo + q] += rv[q, 0]
                        # adjoint of window row p: along the row (running sum over the
                        # windows covering each column), then down (running sum over the
                        # last `size` window rows, kept in a ring)
                        slot = p % size
                        for l in range(nl):
                            run[l] = 0.0
                        for w in range(width):
                            if w < wo:
                                for l in range(nl):
                                    run[l] += cg[w, l]
                            if w >= size:
                                for l in range(nl):
                                    run[l] -= cg[w - size, l]
                            for l in range(nl):
                                vrun[w, l] += run[l] - ring[slot, w, l]
                                ring[slot, w, l] = run[l]
                    else:  # below the last window row: rows only leave
                        slot = h % size
                        for w in range(width):
                            for l in range(nl):
                                vrun[w, l] -= ring[slot, w, l]
                    # pixel row h is final: its cross term d0 T(cg)
                    rb = px + h * width
                    if want_cols and not want_rows:  # straight into the column buffer
                        for w in range(width):
                            xv = x0r[i, rb + w]
                            for l in range(nl):
                                col_part[chunk, g, rb + w, l] -= (
                                    (xv - x0c[g, rb + w, l]) * vrun[w, l])
                        continue
                    for w in range(width):
                        xv = x0r[i, rb + w]
                        for l in range(nl):
                            z[w, l] = (xv - x0c[g, rb + w, l]) * vrun[w, l]
                    if want_cols:
                        part = col_part[chunk, g]
                        for w in range(width):
                            for l in range(nl):
                                part[rb + w, l] -= z[w, l]
                    if want_rows:
                        _lane_tree(z, width)
                        for w in range(width):
                            row_pix[i, rb + w] += z[w, 0]
        if want_cols and current >= 0:
            _spread(cwin, x0c[current], col_part[chunk, current], ones, 1, height, width,
                    channels, hc)


@njit(parallel=True, **_JIT)
def _vjp_separable(x0r, m0r, ar, vr, shr, x0c, m0c, ac, vc, shc, wp, task_i, task_g, starts,
                   height, width, taps, stride, scale, e1, e3, want_rows, want_cols,
                   row_win, row_pix, col_part, fused, rule, coef, floor, values):
    """Any window: separable weighted sums for the forward (a ring of squared rows when
    windows overlap, direct sums otherwise) and for the adjoint (a weighted sum over a
    dilated row of ``cg``, then over a ring of the last ``size`` spread rows; for
    non-overlapping windows each pixel takes its one window's coefficient directly).
    ``fused``: ``wp`` holds the upstream ``G``; a first pass over each task computes and
    keeps its window sums, ``S`` (into ``values``) and the weights from the rule
    (:func:`_rule_weight`); the second pass reads the sums instead of recomputing them."""
    channels = shr.shape[1]
    nl = x0c.shape[2]
    size = taps.shape[0]
    ho = (height - size) // stride + 1
    wo = (width - size) // stride + 1
    npos = ho * wo
    overlap = stride < size
    nchunks = starts.shape[0] - 1
    span = width * nl
    for chunk in prange(nchunks):
        ring_flat = np.empty(size * span)
        ring = ring_flat.reshape((size, width, nl))
        offsets = np.empty(size, dtype=np.int64)
        colb = np.empty(span)
        colb2 = colb.reshape((width, nl))
        hsum = np.empty(wo * nl)
        hsum2 = hsum.reshape((wo, nl))
        # cg of a window row, dilated: window q at row size - 1 + q * stride, zeros between
        cgd_flat = np.zeros((width + size - 1) * nl)
        cgd = cgd_flat.reshape((width + size - 1, nl))
        hring_flat = np.empty(size * span)
        trow = np.empty(span)
        trow2 = trow.reshape((width, nl))
        sel_taps = np.empty(size)
        sel_off = np.empty(size, dtype=np.int64)
        rw = np.empty((wo, nl))
        rv = np.empty((wo, nl))
        z = np.empty((max(width, wo * size), nl))
        dsh = np.empty(nl)
        wl = np.empty(nl)
        acc = np.empty(nl)
        efull = np.empty((channels * npos if fused else 0, nl))
        cwin = np.zeros((2, channels * npos if want_cols else 0, nl))
        hc = np.empty((2, width, nl))
        current = -1
        for t in range(starts[chunk], starts[chunk + 1]):
            i = task_i[t]
            g = task_g[t]
            if want_cols and g != current:
                if current >= 0:
                    _spread(cwin, x0c[current], col_part[chunk, current], taps, stride,
                            height, width, channels, hc)
                    cwin[:] = 0.0
                current = g
            if fused:  # ---- first pass: window sums, S and the weights
                for l in range(nl):
                    acc[l] = 0.0
                for c in range(channels):
                    px = c * height * width
                    pw = c * npos
                    for l in range(nl):
                        dsh[l] = shr[i, c] - shc[g, c, l]
                    filled = 0
                    for p in range(ho):
                        filled = _separable_row(x0r, i, x0c, g, px, p * stride, filled,
                                                width, wo, stride, taps, overlap, ring,
                                                ring_flat, offsets, colb, colb2, hsum, hsum2)
                        for q in range(wo):
                            row = pw + p * wo + q
                            m0i, ai, vi = m0r[i, row], ar[i, row], vr[i, row]
                            for l in range(nl):
                                ev = hsum2[q, l]
                                efull[row, l] = ev
                                acc[l] += _squared_term(ev * scale, m0i, ai, vi, m0c[g, row, l],
                                                        ac[g, row, l], vc[g, row, l], dsh[l],
                                                        e1, e3)
                if not _task_weights(acc, wp, i, g, rule, coef, floor, 2.0 * scale, values,
                                     wl):
                    continue
            else:
                for l in range(nl):
                    wl[l] = wp[i, g, l]
            for c in range(channels):
                px = c * height * width
                pw = c * npos
                shi = shr[i, c]
                for l in range(nl):
                    dsh[l] = shi - shc[g, c, l]
                filled = 0
                for p in range(ho):
                    top = p * stride
                    # ---- forward: weighted sums of d0^2 over window row p (kept from the
                    # first pass when fused)
                    if fused:
                        E = efull
                        eoff = pw + p * wo
                    else:
                        filled = _separable_row(x0r, i, x0c, g, px, top, filled, width, wo,
                                                stride, taps, overlap, ring, ring_flat,
                                                offsets, colb, colb2, hsum, hsum2)
                        E = hsum2
                        eoff = 0
                    # ---- coefficients of window row p
                    _coefficient_row(E, eoff, scale, m0r, ar, vr, i, shi, m0c, ac, vc, shc,
                                     g, c, pw + p * wo, dsh, wl, e1, e3, cgd, size - 1,
                                     stride, rw, rv, cwin, want_rows, want_cols)
                    if want_rows:
                        _lane_tree(rw, wo)
                        _lane_tree(rv, wo)
                        for q in range(wo):
                            row_win[i, 0, pw + p * wo + q] += rw[q, 0]
                            row_win[i, 1, pw + p * wo + q] += rv[q, 0]
                    # ---- adjoint of cg and the cross term d0 T(cg)
                    if overlap:
                        # along the row: hc[w] = sum_k taps[k] cg[(w - k) / stride]
                        for k in range(size):
                            offsets[k] = (size - 1 - k) * nl
                        slot = p % size
                        weighted_sum(hring_flat[slot * span:(slot + 1) * span], span,
                                  cgd_flat, offsets, taps, size)
                        last = top + stride if p < ho - 1 else top + size
                        for h in range(top, last):
                            # pixel row h is final: the window rows covering it
                            count = 0
                            first = h - size + 1
                            first = 0 if first <= 0 else (first + stride - 1) // stride
                            for pp in range(first, min(ho - 1, h // stride) + 1):
                                sel_taps[count] = taps[h - pp * stride]
                                sel_off[count] = (pp % size) * span
                                count += 1
                            weighted_sum(trow, span, hring_flat, sel_off, sel_taps, count)
                            rb = px + h * width
                            if want_cols and not want_rows:  # straight into the buffer
                                for w in range(width):
                                    xv = x0r[i, rb + w]
                                    for l in range(nl):
                                        col_part[chunk, g, rb + w, l] -= (
                                            (xv - x0c[g, rb + w, l]) * trow2[w, l])
                                continue
                            for w in range(width):
                                xv = x0r[i, rb + w]
                                for l in range(nl):
                                    z[w, l] = (xv - x0c[g, rb + w, l]) * trow2[w, l]
                            if want_cols:
                                part = col_part[chunk, g]
                                for w in range(width):
                                    for l in range(nl):
                                        part[rb + w, l] -= z[w, l]
                            if want_rows:
                                _lane_tree(z, width)
                                for w in range(width):
                                    row_pix[i, rb + w] += z[w, 0]
                    else:
                        for k in range(size):
                            rb = px + (top + k) * width
                            for q in range(wo):
                                src = size - 1 + q * stride
                                for kw in range(size):
                                    w = q * stride + kw
                                    gk = taps[k] * taps[kw]
                                    xv = x0r[i, rb + w]
                                    zr = q * size + kw
                                    for l in range(nl):
                                        z[zr, l] = (xv - x0c[g, rb + w, l]) * (gk * cgd[src, l])
                            if want_cols:
                                part = col_part[chunk, g]
                                for q in range(wo):
                                    for kw in range(size):
                                        w = q * stride + kw
                                        zr = q * size + kw
                                        for l in range(nl):
                                            part[rb + w, l] -= z[zr, l]
                            if want_rows:
                                _lane_tree(z, wo * size)
                                for q in range(wo):
                                    for kw in range(size):
                                        row_pix[i, rb + q * stride + kw] += z[q * size + kw, 0]
        if want_cols and current >= 0:
            _spread(cwin, x0c[current], col_part[chunk, current], taps, stride, height,
                    width, channels, hc)


@njit(parallel=True, **_JIT)
def _finish_rows(row_win, row_pix, x0r, taps, stride, height, width, channels):
    """Row gradients in place in ``row_pix``: the cross sums plus the per-image part."""
    t = row_pix.shape[0]
    for i in prange(t):
        hc = np.empty((2, width, 1))
        npos = row_win.shape[2]
        win = row_win[i].reshape((2, npos, 1))
        _spread(win, x0r[i].reshape((-1, 1)), row_pix[i].reshape((-1, 1)), taps, stride,
                height, width, channels, hc)


@njit(parallel=True, **_JIT)
def _reduce_chunks(col_part, out):
    """``out = sum over chunks of col_part``, chunk by chunk in order (threads take
    groups)."""
    nchunks, groups, depth, nl = col_part.shape
    for g in prange(groups):
        dst = out[g]
        for k in range(nchunks):
            src = col_part[k, g]
            for idx in range(depth):
                for l in range(nl):
                    dst[idx, l] += src[idx, l]


# ----------------------------------------------------------------------- matched pairs
@njit(parallel=True, **_JIT)
def _paired(x0a, m0a, aa, va, sha, x0b, m0b, ab, vb, shb, wp, height, width, taps, stride,
            scale, e1, e3, want_grad, values, gx, gy):
    """Matched pairs ``(a_k, b_k)``, both packed in groups of lanes (pair ``k`` in lane
    ``k % LANES`` of group ``k // LANES``); threads take whole groups, so every output
    belongs to one thread. ``values`` (groups, nl) gets ``S``; with ``want_grad`` the
    gradients of ``sum_k w_k S_k`` (``wp``: twice the weights times the window scale)
    go to ``gx``, ``gy`` (groups, C*H*W, nl)."""
    groups, _, nl = x0a.shape
    channels = sha.shape[1]
    size = taps.shape[0]
    ho = (height - size) // stride + 1
    wo = (width - size) // stride + 1
    npos = ho * wo
    overlap = stride < size
    span = width * nl
    for g in prange(groups):
        ring_flat = np.empty(size * span)
        ring = ring_flat.reshape((size, width, nl))
        offsets = np.empty(size, dtype=np.int64)
        colb = np.empty(span)
        colb2 = colb.reshape((width, nl))
        hsum2 = np.empty((wo, nl))
        cgd_flat = np.zeros((width + size - 1) * nl)
        cgd = cgd_flat.reshape((width + size - 1, nl))
        hring_flat = np.empty(size * span)
        trow = np.empty(span)
        trow2 = trow.reshape((width, nl))
        sel_taps = np.empty(size)
        sel_off = np.empty(size, dtype=np.int64)
        dsh = np.empty(nl)
        acc = np.zeros(nl)
        wina = np.zeros((2, channels * npos, nl))
        winb = np.zeros((2, channels * npos, nl))
        hc = np.empty((2, width, nl))
        for c in range(channels):
            px = c * height * width
            pw = c * npos
            for l in range(nl):
                dsh[l] = sha[g, c, l] - shb[g, c, l]
            filled = 0
            for p in range(ho):
                top = p * stride
                for q in range(wo):
                    for l in range(nl):
                        hsum2[q, l] = 0.0
                if overlap:
                    while filled < top + size:
                        r = px + filled * width
                        slot = filled % size
                        for w in range(width):
                            for l in range(nl):
                                d = x0a[g, r + w, l] - x0b[g, r + w, l]
                                ring[slot, w, l] = d * d
                        filled += 1
                    for k in range(size):
                        offsets[k] = ((top + k) % size) * span
                    weighted_sum(colb, span, ring_flat, offsets, taps, size)
                    for q in range(wo):
                        for k in range(size):
                            gk = taps[k]
                            src = q * stride + k
                            for l in range(nl):
                                hsum2[q, l] += gk * colb2[src, l]
                else:
                    for k in range(size):
                        r = px + (top + k) * width
                        for q in range(wo):
                            for kw in range(size):
                                w = q * stride + kw
                                gk = taps[k] * taps[kw]
                                for l in range(nl):
                                    d = x0a[g, r + w, l] - x0b[g, r + w, l]
                                    hsum2[q, l] += gk * (d * d)
                for q in range(wo):
                    row = pw + p * wo + q
                    dst = size - 1 + q * stride
                    for l in range(nl):
                        m0i = m0a[g, row, l]
                        m0j = m0b[g, row, l]
                        E = hsum2[q, l] * scale
                        acc[l] += _squared_term(E, m0i, aa[g, row, l], va[g, row, l], m0j,
                                                ab[g, row, l], vb[g, row, l], dsh[l], e1, e3)
                        if want_grad:
                            cgv, e, u, vv = _coefficients(
                                E, m0i, aa[g, row, l], va[g, row, l], m0j, ab[g, row, l],
                                vb[g, row, l], dsh[l], wp[g, l], e1, e3)
                            cgd[dst, l] = cgv
                            wina[0, row, l] += e - u * (m0i + sha[g, c, l]) + vv * m0i
                            wina[1, row, l] += vv
                            winb[0, row, l] += vv * m0j - e - u * (m0j + shb[g, c, l])
                            winb[1, row, l] += vv
                if not want_grad:
                    continue
                if overlap:
                    for k in range(size):
                        offsets[k] = (size - 1 - k) * nl
                    slot = p % size
                    weighted_sum(hring_flat[slot * span:(slot + 1) * span], span, cgd_flat,
                              offsets, taps, size)
                    last = top + stride if p < ho - 1 else top + size
                    for h in range(top, last):
                        count = 0
                        first = h - size + 1
                        first = 0 if first <= 0 else (first + stride - 1) // stride
                        for pp in range(first, min(ho - 1, h // stride) + 1):
                            sel_taps[count] = taps[h - pp * stride]
                            sel_off[count] = (pp % size) * span
                            count += 1
                        weighted_sum(trow, span, hring_flat, sel_off, sel_taps, count)
                        rb = px + h * width
                        for w in range(width):
                            for l in range(nl):
                                zz = (x0a[g, rb + w, l] - x0b[g, rb + w, l]) * trow2[w, l]
                                gx[g, rb + w, l] += zz
                                gy[g, rb + w, l] -= zz
                else:
                    for k in range(size):
                        rb = px + (top + k) * width
                        for q in range(wo):
                            src = size - 1 + q * stride
                            for kw in range(size):
                                w = q * stride + kw
                                gk = taps[k] * taps[kw]
                                for l in range(nl):
                                    zz = (x0a[g, rb + w, l] - x0b[g, rb + w, l]) * (
                                        gk * cgd[src, l])
                                    gx[g, rb + w, l] += zz
                                    gy[g, rb + w, l] -= zz
        for l in range(nl):
            values[g, l] = acc[l]
        if want_grad:
            _spread(wina, x0a[g], gx[g], taps, stride, height, width, channels, hc)
            _spread(winb, x0b[g], gy[g], taps, stride, height, width, channels, hc)


# ----------------------------------------------------------------------- host side
def _window_weights(config):
    """1-D taps and the factor applied after the 2-D sum: ones and ``1/size^2`` for a
    uniform window (sum, then scale, as the reference does), the Gaussian taps and 1."""
    taps = config.taps()
    if config.window == "uniform":
        return np.ones(config.size), taps[0] * taps[0]
    return np.asarray(taps, dtype=np.float64), 1.0


def _chunk_count(rows):
    """:data:`VJP_CHUNKS`, or one per 16 rows of a smaller tile (its column buffers stay
    small next to its pairs): a function of the rows alone."""
    return int(max(1, min(rows // 16, VJP_CHUNKS)))


def _chunk_tasks(nonzero, nchunks):
    """Tasks (row, group) of each chunk: row ``i`` belongs to chunk ``i % nchunks``;
    within a chunk, group-major; only tasks with a nonzero cotangent. Returns
    ``(task_i, task_g, starts)``."""
    rows = nonzero.shape[0]
    task_i, task_g, starts = [], [], [0]
    for k in range(nchunks):
        mine = np.arange(k, rows, nchunks)
        g, local = np.nonzero(nonzero[mine].T)  # group-major order
        task_i.append(mine[local])
        task_g.append(g)
        starts.append(starts[-1] + g.size)
    return (np.concatenate(task_i).astype(np.int64), np.concatenate(task_g).astype(np.int64),
            np.asarray(starts, dtype=np.int64))


def _pack_weights(W, scale):
    """``2 scale W`` (rows, cols) packed as (rows, groups, LANES), zero on padding lanes."""
    rows, cols = W.shape
    groups = -(-cols // LANES)
    packed = np.zeros((rows, groups * LANES))
    np.multiply(W, 2.0 * scale, out=packed[:, :cols])
    return packed.reshape(rows, groups, LANES)


def _unpack(packed, t, image_shape):
    """(groups, C*H*W, LANES) -> (t, H, W, C)."""
    h, w, c = image_shape
    flat = np.moveaxis(packed, -1, 1).reshape(-1, c, h, w)[:t]
    return np.ascontiguousarray(flat.transpose(0, 2, 3, 1))


def _rows_to_images(rows, image_shape):
    h, w, c = image_shape
    return np.ascontiguousarray(rows.reshape(-1, c, h, w).transpose(0, 2, 3, 1))


def _tile_gradients(row_terms, col_terms, W, config, kind, want_rows, want_cols,
                    image_shape, tb, fused=None):
    """Run the tile kernel: rows (scalar side), packed columns; returns the row gradients
    (t_r, H, W, C) and the column gradients (tb, H, W, C), each or None, and ``S``
    (t_r, tb) or None. ``fused``: None (``W`` is the cotangent of ``S``), or
    ``(rule, coef, floor, upper)``: ``W`` is the upstream of an elementwise rule, every
    pair is computed (with ``upper``, every pair ``i < j``) and ``S`` returned."""
    height, width, channels = image_shape
    ta = W.shape[0]
    taps, scale = _window_weights(config)
    if fused is None:
        wp = _pack_weights(W, scale)
        tasks = np.any(wp != 0.0, axis=2)
        rule, coef, floor = 0, 0.0, 0.0
        values = np.zeros((0, 0, 0))
    else:
        rule, coef, floor, upper = fused
        wp = _pack_weights(W, 0.5)  # the upstream itself (times exactly 1)
        groups = wp.shape[1]
        if upper:  # tasks with a column j > i
            last = np.minimum(ta - 1, np.arange(groups) * LANES + LANES - 1)
            tasks = last[None, :] > np.arange(ta)[:, None]
        else:
            tasks = np.ones((ta, groups), dtype=bool)
        values = np.zeros((ta, groups, LANES))
    groups = wp.shape[1]
    nchunks = _chunk_count(ta)
    task_i, task_g, starts = _chunk_tasks(tasks, nchunks)
    ho, wo = config.positions(height, width)
    npos = channels * ho * wo
    depth = channels * height * width
    row_win = np.zeros((ta, 2, npos) if want_rows else (0, 2, npos))
    row_pix = np.zeros((ta, depth) if want_rows else (0, depth))
    col_part = np.zeros((nchunks, groups, depth, LANES) if want_cols else (0, 0, 0, 0))
    e1, e3 = float(KINDS[kind].e1), float(KINDS[kind].e3)
    with numba.parallel_chunksize(1):
        if config.window == "uniform" and config.stride == 1:
            _vjp_sliding(*row_terms, *col_terms, wp, task_i, task_g, starts, height, width,
                         config.size, scale, e1, e3, want_rows, want_cols, row_win, row_pix,
                         col_part, fused is not None, rule, coef, floor, values)
        else:
            _vjp_separable(*row_terms, *col_terms, wp, task_i, task_g, starts, height,
                           width, taps, config.stride, scale, e1, e3, want_rows, want_cols,
                           row_win, row_pix, col_part, fused is not None, rule, coef, floor,
                           values)
        dX = dY = None
        if want_rows:
            _finish_rows(row_win, row_pix, row_terms[0], taps, config.stride, height, width,
                         channels)
            dX = _rows_to_images(row_pix, image_shape)
        if want_cols:
            out = np.zeros(col_part.shape[1:])
            _reduce_chunks(col_part, out)
            del col_part
            dY = _unpack(out, tb, image_shape)
    S = None if fused is None else values.reshape(ta, groups * LANES)[:, :tb]
    return dX, dY, S


def fuses(image_shape, config) -> bool:
    """Whether :func:`fused_value_and_vjp` runs for these images: each thread keeps a
    task's window sums (``8 LANES C Ho Wo`` bytes), up to :data:`FUSED_MAX_STORE`."""
    h, w, c = image_shape
    ho, wo = config.positions(h, w)
    return 8 * LANES * c * ho * wo <= FUSED_MAX_STORE


def fused_value_and_vjp(Xa, Yb, G, rule, coef, floor, kind, config, *, upper=False,
                        wrt_y=True):
    """``S = D^2`` of a tile and the gradients of ``sum_ij W_ij S_ij`` for the cotangent
    ``W`` of an elementwise rule, in one pass per (row, column group): the window sums of
    ``d0^2`` are computed once, kept for the VJP, and give ``S``, then ``W`` lane by lane.

    Parameters
    ----------
    Xa, Yb, kind, config, upper, wrt_y
        As for :func:`vjp_block` (``Yb`` is ignored when ``upper``).
    G : ndarray (ta, tb), float64
        The upstream of the rule (with ``upper``, only ``i < j`` counts).
    rule : {"linear", "sqrt", "exp"}
        ``W = G h'(S)`` for ``h(S) = coef S``, ``coef sqrt(S)`` (``W = 0`` at ``S = 0``)
        or ``exp(-coef S)`` (:class:`ssimref.engines.ElementwiseCotangent`).
    coef : float
    floor : float
        Pairs with ``S <= floor`` get ``W = 0`` here: the caller refines them
        (:func:`ssimref.engines.reference.refine_near_zero`) and sends their cotangents
        back through :func:`vjp_block`.

    Returns
    -------
    S : ndarray (ta, tb), float64
        The fused kernels' ``S`` (not refined near 0); with ``upper`` exactly symmetric
        with a zero diagonal.
    dX, dY
        As for :func:`vjp_block`.
    """
    image_shape = tuple(Xa.shape[1:])
    G = np.asarray(G, dtype=np.float64)
    spec = (RULES[rule], float(coef), float(floor), upper)
    if upper:
        rows, cols = image_terms(Xa, config)
        dX, dY, S = _tile_gradients(rows, cols, np.triu(G, 1), config, kind, True, True,
                                    image_shape, Xa.shape[0], spec)
        dX += dY
        S = np.triu(S, 1)
        return S + S.T, dX, None
    if wrt_y:
        rows, _ = image_terms(Xa, config, packed=False)
        _, cols = image_terms(Yb, config, rows=False)
        return _rotate(_tile_gradients(rows, cols, G, config, kind, True, True, image_shape,
                                       Yb.shape[0], spec))
    rows, _ = image_terms(Yb, config, packed=False)
    _, cols = image_terms(Xa, config, rows=False)
    _, dX, S = _tile_gradients(rows, cols, np.ascontiguousarray(G.T), config, kind, False,
                               True, image_shape, Xa.shape[0], spec)
    return np.ascontiguousarray(S.T), dX, None


def _rotate(result):
    dX, dY, S = result
    return S, dX, dY


def vjp_block(Xa, Yb, W, kind, config, *, upper=False, wrt_y=True):
    """Gradients of ``sum_ij W_ij S_ij`` for a tile, ``S_ij = D^2(x_i, y_j)``.

    Parameters
    ----------
    Xa : ndarray (ta, H, W, C), float64, C-contiguous
    Yb : ndarray (tb, H, W, C), float64, C-contiguous; ``Xa`` itself when ``upper``
    W : ndarray (ta, tb), float64
        Cotangents of ``S`` (finite; trusted, as everything here).
    kind : {"eq1", "eq2", "eq1-uncentered"}
    config : SSIMConfig
    upper : bool, default False
        Diagonal tile: only pairs ``i < j`` count (``W``'s diagonal and lower triangle are
        ignored) and ``dX`` is the gradient with respect to the single stack (both roles).
    wrt_y : bool, default True
        Also return ``dY`` (otherwise None).

    Returns
    -------
    dX : ndarray (ta, H, W, C), float64
        ``sum_j W_ij dS_ij / dx_i``.
    dY : ndarray (tb, H, W, C), float64, or None
        ``sum_i W_ij dS_ij / dy_j``; None when ``upper`` or not ``wrt_y``.

    Notes
    -----
    The same as ``PairForward(Xa[:, None], Yb[None, :], kind, config, np).vjp(W)`` to the
    accuracy contract (:func:`ssimref.engines.vjp_accuracy_floor`); exactly 0 from identical pairs;
    bit-reproducible, whatever the number of Numba threads.
    """
    image_shape = tuple(Xa.shape[1:])
    W = np.asarray(W, dtype=np.float64)
    if upper:
        W = np.triu(W, 1)
        rows, cols = image_terms(Xa, config)
        dX, dY, _ = _tile_gradients(rows, cols, W, config, kind, True, True, image_shape,
                                    Xa.shape[0])
        dX += dY
        return dX, None
    if wrt_y:
        rows, _ = image_terms(Xa, config, packed=False)
        _, cols = image_terms(Yb, config, rows=False)
        return _tile_gradients(rows, cols, W, config, kind, True, True, image_shape,
                               Yb.shape[0])[:2]
    # X fixed on the lanes: its gradient is lane-wise, and Y needs none
    rows, _ = image_terms(Yb, config, packed=False)
    _, cols = image_terms(Xa, config, rows=False)
    _, dX, _ = _tile_gradients(rows, cols, np.ascontiguousarray(W.T), config, kind, False,
                               True, image_shape, Xa.shape[0])
    return dX, None


def _paired_run(X, Y, w, kind, config, want_grad):
    image_shape = tuple(X.shape[1:])
    n = X.shape[0]
    height, width, channels = image_shape
    taps, scale = _window_weights(config)
    _, a = image_terms(X, config, rows=False)
    _, b = image_terms(Y, config, rows=False)
    groups = a[0].shape[0]
    wp = np.zeros(groups * LANES)
    if want_grad:
        wp[:n] = 2.0 * scale * w
    wp = wp.reshape(groups, LANES)
    depth = channels * height * width
    values = np.empty((groups, LANES))
    shape = (groups, depth, LANES) if want_grad else (0, 0, 0)
    gx, gy = np.zeros(shape), np.zeros(shape)
    _paired(*a, *b, wp, height, width, taps, config.stride, scale, float(KINDS[kind].e1),
            float(KINDS[kind].e3),
            want_grad, values, gx, gy)
    if not want_grad:
        return values.reshape(-1)[:n], None, None
    return values.reshape(-1)[:n], _unpack(gx, n, image_shape), _unpack(gy, n, image_shape)


def paired_squared(X, Y, kind, config):
    """``S_i = D^2(X[i], Y[i])`` for matched pairs: float64 (n,). ``X``, ``Y``: float64
    (n, H, W, C), C-contiguous (trusted). As the forward engine's values, to its
    accuracy contract."""
    return _paired_run(X, Y, None, kind, config, False)[0]


def paired_vjp(X, Y, w, kind, config):
    """Gradients ``(dX, dY)`` of ``sum_i w_i D^2(X[i], Y[i])``: float64 arrays shaped
    like ``X`` and ``Y``. ``w``: (n,) float64 (trusted). Each pair is computed by one
    thread, so the result does not depend on the thread count."""
    _, dX, dY = _paired_run(X, Y, np.asarray(w, dtype=np.float64), kind, config, True)
    return dX, dY


# ----------------------------------------------------------------------- budgets
def vjp_bytes_per_pair(image_shape, config) -> int:
    """Working bytes per pair of a tile: the caller's cotangent block, its packed copy
    (``2 W`` with padding lanes) and the task mask."""
    return 8 * 2 + 1


def vjp_bytes_per_image(image_shape, config) -> int:
    """Working bytes per image of a tile, whichever side it is on: its float64 copy (made
    by the caller), its per-image terms (shifted image, local mean, ``a``, ``v``), its
    gradient (and the caller's copy of it), the row side's two window maps and cross
    sums, and the column side's per-chunk gradient buffers (:data:`VJP_CHUNKS`
    of them) and their sum. Per-thread scratch (a few rows of 32 lanes, plus two
    window maps of 32 lanes: about ``8 * 32 * (2 C Ho Wo + 3 size W)`` bytes, and in the
    one pass the store of window sums, ``8 * 32 * C Ho Wo``) comes on top, once per
    thread."""
    h, w, c = image_shape
    ho, wo = config.positions(h, w)
    pix, win = h * w * c, ho * wo * c
    chunks = VJP_CHUNKS
    return 8 * (pix + (pix + 3 * win + c) + 2 * pix + max(2 * win + pix, (chunks + 1) * pix))


def vjp_warm_up():
    """Compile every kernel (or load it from Numba's cache) on tiny inputs; returns the
    seconds it took."""
    import time

    from ..config import SSIMConfig

    start = time.perf_counter()
    X = np.arange(3 * 6 * 6, dtype=np.float64).reshape(3, 6, 6, 1) % 7
    W = np.ones((3, 3))
    for window, stride in (("uniform", 1), ("gaussian", 1), ("uniform", 3)):
        config = SSIMConfig(window=window, size=3, stride=stride, data_range=7.0)
        vjp_block(X, X, W, "eq2", config, upper=True)
        vjp_block(X, X[:2], W[:, :2], "eq2", config, wrt_y=False)
        paired_vjp(X, X[::-1].copy(), np.ones(3), "eq2", config)
        paired_squared(X, X[::-1].copy(), "eq2", config)
    return time.perf_counter() - start
