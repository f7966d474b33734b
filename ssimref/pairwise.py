"""The all-pairs SSIM distance matrix ``D(i, j) = ||D'_ij||_F``, computed tile by tile."""

from __future__ import annotations

import math

from tqdm.auto import tqdm

from .backend import choose_engine, float_dtype, is_numpy_array, is_numpy_namespace, to_numpy
from .config import resolve_config
from .distances import squared_window_distance
from .engines import accuracy_floor, load_engine
from .similarity import pair_defects
from .validation import check_kind, check_stacks

__all__ = ["distance_matrix", "default_working_memory"]

_MIB = 2**20


def default_working_memory() -> float:
    """scikit-learn's ``working_memory`` setting in MiB (1024 unless changed with
    ``sklearn.set_config`` or ``sklearn.config_context``)."""
    try:
        from sklearn import get_config
        return float(get_config()["working_memory"])
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return 1024.0


def _bytes_per_pair(image_shape, config) -> int:
    """Peak float64 bytes one pair of a tile holds in the reference computation: the
    difference image, its shifted copy and square, the row-filtered intermediates and the
    per-window moments and defects."""
    h, w, c = image_shape
    ho, wo = config.positions(h, w)
    return 8 * (4 * h * w * c + 3 * ho * w * c + 12 * ho * wo * c)


# Tiles larger than this are slower, not faster: the reference pass streams several
# arrays of a tile's size, which then no longer stay in cache (measured on 28x28 patches
# and 8x8 digits: 32 MiB tiles 2-4x faster than 1024 MiB ones). working_memory caps it.
_FAST_TILE_MIB = 32.0


def _tile_sides(n, m, symmetric, image_shape, config, working_memory):
    budget = min(working_memory, _FAST_TILE_MIB)
    pairs = max(1, int(budget * _MIB) // _bytes_per_pair(image_shape, config))
    if symmetric:
        side = max(1, min(n, math.isqrt(pairs)))
        return side, side
    rows = max(1, min(n, math.isqrt(pairs)))
    return rows, max(1, min(m, pairs // rows))


def _engine_tile_sides(n, m, symmetric, working_memory, per_pair, per_image, max_pairs):
    """Tile sides ``(ta, tb)`` for a fused engine: its pairs (``per_pair`` bytes each)
    and its images' terms (``per_image`` bytes each) fit ``working_memory`` MiB, with at
    most ``max_pairs`` pairs per tile."""
    budget = int(working_memory * _MIB)
    # the largest side s with s^2 per_pair + 2 s per_image <= budget
    side = int((math.sqrt(per_image**2 + per_pair * budget) - per_image) / per_pair)
    side = max(1, min(side, math.isqrt(max_pairs)))
    if symmetric:
        return min(n, side), min(n, side)
    rows = min(n, side)
    cols = (budget - rows * per_image) // (rows * per_pair + per_image)
    return rows, max(1, min(m, cols, max_pairs // rows))


def _check_out(out, shape, dtype, xp):
    if out is None:
        return xp.empty(shape, dtype=float_dtype(xp, dtype))
    if tuple(out.shape) != shape:
        raise ValueError(f"out must have shape {shape}, got {tuple(out.shape)}")
    want = None if dtype is None else float_dtype(xp, dtype)
    have = str(out.dtype)
    if not have.endswith(("float64", "float32")):
        raise TypeError(f"out must be a float64 or float32 array, got dtype {out.dtype}")
    if want is not None and not have.endswith(str(want).split(".")[-1]):
        raise ValueError(f"out has dtype {out.dtype} but dtype={dtype!r} was asked for; "
                         "leave dtype=None to use out's dtype")
    if getattr(getattr(out, "flags", None), "writeable", True) is False:
        raise ValueError("out is read-only; pass a writeable array (or memmap mode 'w+'/'r+')")
    return out


def _squared_block(Xa, Yb, kind, config, xp):
    """Sum over windows of the squared per-window distance, for all pairs of two tiles
    ``(ta, H, W, C)`` and ``(tb, H, W, C)`` (float64): an array ``(ta, tb)``."""
    t1, t2 = pair_defects(Xa[:, None, ...], Yb[None, :, ...], config, xp)
    return xp.sum(squared_window_distance(t1, t2, kind), axis=(-3, -2, -1))


def _refine_near_zero(block, Xa, Yb, upper, floor, kind, config, xp):
    """Recompute with the reference the pairs a fused engine put within its accuracy floor
    of 0 (docs/engines.md): there the engine's absolute error is largest relative to the
    value, and the reference is exactly 0 for images that agree on every window. Such
    pairs are rare (near-duplicates), so this costs nothing on ordinary data."""
    near = to_numpy((block > 0) & (block <= floor))
    if not near.any():
        return block
    for i, j in zip(*near.nonzero()):
        if upper and i > j:
            continue
        value = _squared_block(Xa[i:i + 1, ...], Yb[j:j + 1, ...], kind, config, xp)[0, 0]
        block[i, j] = value
        if upper:
            block[j, i] = value
    return block


def _symmetrise_diagonal_block(block, xp):
    side = block.shape[0]
    rows = xp.arange(side)[:, None]
    cols = xp.arange(side)[None, :]
    block = xp.where(rows < cols, block, block.T)
    return xp.where(rows == cols, xp.zeros_like(block), block)


def distance_matrix(X, Y=None, kind="eq2", config=None, *, squared=False, dtype=None,
                    working_memory=None, out=None, progress=False, backend="auto",
                    **conventions):
    """All-pairs SSIM distances ``D(i, j) = ||D'(x_i, y_j)||_F``.

    Parameters
    ----------
    X : array_like, shape (n, H, W) or (n, H, W, C)
        A stack of images, channels last; any array-API array (NumPy, CuPy, ...).
    Y : array_like, shape (m, H, W) or (m, H, W, C), optional
        A second stack of images of the same image shape. When omitted (or ``Y is X``) the
        symmetric matrix of ``X`` against itself is computed: each unordered pair once,
        the result exactly symmetric with an exactly zero diagonal.
    kind : {"eq2", "eq1", "eq1-uncentered"}, default "eq2"
        Per-window distance (see :mod:`ssimref.distances`).
    config : SSIMConfig, optional
        Conventions; keyword overrides (``data_range=255``, ``window="uniform"``, ...)
        as for :func:`ssimref.ssim_components`.
    squared : bool, default False
        Return ``D**2`` (sums of squared per-window distances).
    dtype : {None, "float64", "float32"}
        dtype of the result (float64 when None, or ``out``'s dtype). Every entry is
        accumulated in float64 and rounded once.
    working_memory : float, optional
        Upper bound in MiB on the memory tiles use; scikit-learn's ``working_memory``
        setting (1024 MiB by default) when None. Peak memory is this plus the output plus
        one float64 copy of a tile's images. The reference engine uses at most 32 MiB
        tiles even when allowed more: larger ones fall out of cache and run slower.
    out : array, shape (n, m) or (n, n), optional
        Where to write the result, e.g. a ``numpy.memmap`` (``numpy.lib.format.open_memmap``)
        for a matrix larger than RAM. A NumPy ``out`` may receive results computed on
        another array library (each tile is copied to the host as it is done).
    progress : bool, default False
        Show a tqdm progress bar over pairs.
    backend : {"auto", "reference", "numba", "cupy"}, default "auto"
        Engine for the pairs (see :func:`ssimref.backend.choose_engine`): "reference" is
        the array-API code below; "numba" (NumPy inputs, CPU) and "cupy" (CuPy inputs,
        GPU) are fused engines that never form per-pair maps and agree with the
        reference to ``1e-12`` relative on ``D^2`` above an absolute floor of
        ``8 n_windows 2**-53 (f / k2**2 + 1 / k1)`` (docs/engines.md). "auto" picks
        cupy for CuPy inputs, numba for NumPy inputs when Numba is installed, else the
        reference.

    Returns
    -------
    array, shape (n, m), or (n, n) when Y is None
        ``out`` when given, else a new array of X's array library.

    Notes
    -----
    ``D(i, j)^2 = sum over window positions p (and channels) of d_p(x_i, y_j)^2``; one
    square root per entry. No array of shape ``n x m x positions`` is built at once: pairs
    are processed in tiles that fit ``working_memory``.

    References
    ----------
    Ghojogh, Karray, Crowley, ICIAR 2020, Section 2 (``D(i, j) := ||D'_ij||_F``).

    Examples
    --------
    >>> import numpy as np
    >>> from ssimref import distance_matrix
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(5, 16, 16), dtype=np.uint8)
    >>> D = distance_matrix(X, kind="eq2", window="uniform", size=7)
    >>> D.shape, bool((D == D.T).all()), float(D[0, 0])
    ((5, 5), True, 0.0)
    """
    config = resolve_config(config, **conventions)
    check_kind(kind)
    if Y is X:
        Y = None
    xp, X, Y, config = check_stacks(X, Y, config)
    engine = choose_engine(backend, xp)
    symmetric = Y is None
    Yw = X if symmetric else Y
    n, m = X.shape[0], Yw.shape[0]
    out = _check_out(out, (n, m), dtype, xp)
    host_out = is_numpy_array(out) and not is_numpy_namespace(xp)
    if working_memory is None:
        working_memory = default_working_memory()
    elif not (working_memory > 0):
        raise ValueError(f"working_memory must be > 0 MiB, got {working_memory!r}")
    image_shape = tuple(X.shape[1:])
    if engine == "reference":
        def squared_block(Xa, Yb, diagonal):
            return _squared_block(Xa, Yb, kind, config, xp)
        ta, tb = _tile_sides(n, m, symmetric, image_shape, config, working_memory)
    else:
        fused = load_engine(engine)
        floor = accuracy_floor(config, image_shape)

        def squared_block(Xa, Yb, diagonal):
            block = fused.squared_block(Xa, Yb, kind, config, upper=diagonal)
            return _refine_near_zero(block, Xa, Yb, diagonal, floor, kind, config, xp)
        ta, tb = _engine_tile_sides(n, m, symmetric, working_memory,
                                    fused.bytes_per_pair(image_shape, config),
                                    fused.bytes_per_image(image_shape, config),
                                    fused.MAX_TILE_PAIRS)

    blocks = [(i, j) for i in range(0, n, ta) for j in range(0, m, tb)
              if not symmetric or j >= i]
    total = n * (n - 1) // 2 if symmetric else n * m
    bar = _progress_bar(total, progress)
    try:
        for i, j in blocks:
            i1, j1 = min(i + ta, n), min(j + tb, m)
            Xa = xp.astype(X[i:i1, ...], xp.float64)
            Yb = Xa if (symmetric and i == j) else xp.astype(Yw[j:j1, ...], xp.float64)
            block = squared_block(Xa, Yb, symmetric and i == j)
            if symmetric and i == j and engine == "reference":
                block = _symmetrise_diagonal_block(block, xp)  # engines return it so
            if not squared:
                block = xp.sqrt(block)
            block = xp.astype(block, float_dtype(xp, str(out.dtype)), copy=False)
            _write(out, (slice(i, i1), slice(j, j1)), block, host_out)
            if symmetric and i != j:
                _write(out, (slice(j, j1), slice(i, i1)), block.T, host_out)
            bar.update((i1 - i) * (i1 - i - 1) // 2 if (symmetric and i == j)
                       else (i1 - i) * (j1 - j))
    finally:
        bar.close()
    return out


def _write(out, index, block, host_out):
    out[index] = to_numpy(block) if host_out else block


def _progress_bar(total, enabled):
    return tqdm(total=total, unit="pair", unit_scale=True, disable=not enabled,
                desc="SSIM distances")
