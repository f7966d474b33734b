"""All-pairs SSIM computations, tile by tile: the distance matrix
``D(i, j) = ||D'_ij||_F`` and the gradients of functions of it.

Both run a tile plan (:mod:`ssimref.tiling`) through an executor
(:mod:`ssimref.executor`) on an engine (:mod:`ssimref.engines`): the plan cuts the pairs
into tiles that fit ``working_memory``, the engine computes a tile's block, the executor
writes it into the output (or, for gradients, adds its contribution).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .backend import (Array, ArrayLike, Namespace, arrays_for, as_array, float_dtype,
                      is_numpy_array, namespace)
from .config import SSIMConfig, resolve_config
from .kinds import KindName
from .engines import (ENGINES, ElementwiseCotangent, check_backend, choose_engine,
                      distance_block, get_engine)
from .executor import HostWriter, SerialExecutor, TileTask, get_executor, serial
from .gradients import distance_weight
from .moments import in_range_units
from .tiling import PairPlan, Tile, chunk_plan, plan_pairs, resolve_working_memory, upper_mask
from .validation import (channels_back, check_channel_axis, check_kind, check_not_masked,
                         check_stacks)

__all__ = ["distance_matrix", "distance_matrix_vjp", "pairwise_value_and_vjp",
           "distance_tiles"]


def _check_out(out: Array | None, shape: tuple[int, int], dtype: Any, xp: Namespace) -> Array:
    if out is None:
        return xp.empty(shape, dtype=float_dtype(xp, dtype))
    if tuple(out.shape) != shape:
        raise ValueError(f"out must have shape {shape}, got {tuple(out.shape)}")
    want = None if dtype is None else float_dtype(xp, dtype)
    have = str(out.dtype)
    if not have.endswith(("float64", "float32")):
        raise TypeError(f"out must be a float64 or float32 array, got dtype {out.dtype}")
    if want is not None and out.dtype != want:
        raise ValueError(f"out has dtype {out.dtype} but dtype={dtype!r} was asked for; "
                         "leave dtype=None to use out's dtype")
    if getattr(getattr(out, "flags", None), "writeable", True) is False:
        raise ValueError("out is read-only; pass a writeable array (or memmap mode 'w+'/'r+')")
    return out


def distance_matrix(X: ArrayLike, Y: ArrayLike | None = None, kind: KindName = "eq2",
                    config: SSIMConfig | None = None, *, squared: bool = False,
                    dtype: Any = None, working_memory: float | None = None,
                    out: Array | None = None, progress: bool | None = False, backend: str = "auto",
                    channel_axis: int | None = None, executor: Any = None,
                    **conventions: Any) -> Array:
    """All-pairs SSIM distances ``D(i, j) = ||D'(x_i, y_j)||_F``.

    Parameters
    ----------
    X : array_like, shape (n, H, W) or (n, H, W, C)
        A stack of images, channels last unless ``channel_axis`` says otherwise; any
        array-API array (NumPy, CuPy, ...).
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
    progress : bool or None, default False
        Show a tqdm progress bar over pairs; None: only when stderr is a terminal and
        the job runs longer than a second (:func:`ssimref.executor.progress_bar`).
    backend : {"auto", "reference", "numba", "cupy"}, default "auto"
        Engine for the pairs (see :func:`ssimref.engines.choose_engine`): "reference" is
        the array-API code below; "numba" (NumPy inputs, CPU) and "cupy" (CuPy inputs,
        GPU) are fused engines that never form per-pair maps and agree with the
        reference to ``1e-12`` relative on ``D^2`` above an absolute floor of
        ``8 n_windows 2**-53 (f / k2**2 + 1 / k1)`` (docs/engines.md). "auto" picks
        cupy for CuPy inputs, numba for NumPy inputs when Numba is installed, else the
        reference. The name of an engine plug-in
        (:func:`ssimref.engines.register_engine`) selects it. Resolved once, in this
        process: every tile runs on that engine.
    channel_axis : int, optional
        scikit-image's argument: the axis of 4-D stacks that holds the channels (1 for
        ``(n, C, H, W)``). None (default): channels last, and a last axis longer than 4
        is refused as the likely sign of channel-first data.
    executor : None, "serial", "dask", dask.distributed.Client or executor, optional
        Who runs the tiles (:func:`ssimref.executor.get_executor`): this process (None,
        the default), or a Dask cluster ("dask" for the current default client, or a
        client): each tile is then one task on a worker, the images are sent once to
        every worker, and the workers write their blocks straight into ``out``, which
        must then be a zarr array; the numba engine runs on CPU workers,
        ``backend="cupy"`` runs the tiles on GPU workers (docs/scale.md).
    **conventions
        Fields of :class:`SSIMConfig` overriding ``config``.

    Returns
    -------
    Array, shape (n, m), or (n, n) when Y is None
        ``out`` when given, else a new array of X's array library; with a Dask executor
        and no ``out``, a :class:`dask.array.Array` whose chunks are the tiles, computed
        and held in the workers' memory (``.compute()`` brings it here).

    Raises
    ------
    ValueError
        For an unknown ``kind``, invalid conventions, stacks of other dimensions or of
        different image shapes, empty stacks, NaN or Inf, a window larger than the
        images, floating-point images without ``data_range``, a non-positive
        ``working_memory``, an ``out`` of the wrong shape, dtype or read-only (or, with a
        Dask executor, not a zarr array with the tiles as chunks), and an unknown or
        unavailable ``backend`` (or one that cannot run on these arrays).
    TypeError
        For stacks of different array libraries, boolean or non-real dtypes, an
        unsupported ``dtype`` or ``out`` dtype, or an unknown convention keyword.
    KeyboardInterrupt
        Propagated between tiles; ``out`` then holds the tiles written so far.

    See Also
    --------
    distance_tiles : the plan and the tile function, for executors and resumable jobs.
    distance_matrix_vjp : its gradient.
    ssimref.distance : one pair.
    ssimref.paired_distance : matched pairs.
    ssimref.kernels.ssim_kernel : the SSIM kernel ``-1/2 H D^p H`` from it.
    ssimref.engines.choose_engine : how ``backend="auto"`` decides.

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
    xp, X, Y, config = check_stacks(X, Y, config, channel_axis=channel_axis)
    runner = get_executor(executor)
    distributed = not isinstance(runner, SerialExecutor)
    working_memory = resolve_working_memory(working_memory)
    symmetric = Y is None
    shape = (X.shape[0], (X if Y is None else Y).shape[0])
    if distributed and out is None:
        out_dtype = "float64" if dtype is None else str(float_dtype(np, dtype).__name__)
    else:
        out = _check_out(out, shape, dtype, xp)
        out_dtype = str(out.dtype).split(".")[-1]
    plan, task = distance_tiles(X, Y, kind, config, squared=squared, dtype=out_dtype,
                                backend=backend, working_memory=working_memory,
                                tiles=None if out is None else chunk_plan(out, symmetric),
                                distributed=distributed, xp=xp)
    stager = None if distributed or out is None or not is_numpy_array(out) \
        or is_numpy_array(X) else getattr(get_engine(task.options["engine"]), "host_stager",
                                          None)
    if stager is None:
        return runner.fill(plan, task, out, progress=progress)
    # a device engine and a host out: copies and writes overlap the next tiles
    return runner.fill(plan, task, out, progress=progress, writer=HostWriter(out, stager()))


def distance_tiles(X: Array, Y: Array | None, kind: str, config: SSIMConfig, *,
                   squared: bool = False, dtype: str = "float64", backend: str = "auto",
                   working_memory: float | None = None, tiles: PairPlan | None = None,
                   distributed: bool = False,
                   xp: Namespace | None = None) -> tuple[PairPlan, TileTask]:
    """The tile plan and the tile function of an all-pairs distance matrix, for an
    executor (:mod:`ssimref.executor`). Trusted input: validated stacks and config.

    Parameters
    ----------
    X : Array, shape (n, H, W, C)
    Y : Array, shape (m, H, W, C), or None
        None for the symmetric matrix of ``X``.
    kind : str
    config : SSIMConfig
        With its data range.
    squared : bool, default False
        Blocks of ``D^2`` instead of ``D``.
    dtype : {"float64", "float32"}
        dtype of the blocks (every entry accumulated in float64, rounded once).
    backend : str, default "auto"
        Resolved here, once: "auto" picks the engine for the arrays of this process
        (:func:`ssimref.engines.choose_engine`), and every tile runs on that engine,
        wherever it runs, so that all tiles are the same computation.
    working_memory : float, optional
        MiB per tile.
    tiles : PairPlan, optional
        The plan to follow (a stored job's, or the chunks of a zarr ``out``) instead of
        one sized by ``working_memory``.
    distributed : bool, default False
        The tiles run in other processes: an explicit built-in ``backend`` is checked
        where the tiles run (a client without a GPU can plan for GPU workers), the tile
        images are moved to the engine's device there, and an engine plug-in travels
        with the tiles.
    xp : Namespace, optional
        Of ``X`` (looked up when None).

    Returns
    -------
    plan : PairPlan
    task : TileTask
        ``task(tile)`` is the tile's block, of the engine's array library;
        ``task.options["engine"]`` the engine's name.

    Raises
    ------
    ValueError
        For an unknown ``backend``, or one that cannot run here (not distributed).
    """
    xp = namespace(X) if xp is None else xp
    if distributed and backend in ENGINES and backend != "auto":
        name = backend
    else:
        name = choose_engine(backend, xp)
    engine = get_engine(name)
    image_shape = tuple(X.shape[1:])
    if tiles is None:
        tiles = plan_pairs(X.shape[0], None if Y is None else Y.shape[0],
                           bytes_per_pair=engine.bytes_per_pair(image_shape, config),
                           bytes_per_image=engine.bytes_per_image(image_shape, config),
                           max_pairs=engine.max_tile_pairs(image_shape, config),
                           working_memory=resolve_working_memory(working_memory))
    plugin = engine if distributed and name not in ENGINES else None
    task = TileTask(_distance_tile, (X,) if Y is None else (X, Y),
                    dict(kind=kind, config=config, squared=bool(squared), dtype=str(dtype),
                         engine=name, move=distributed, plugin=plugin), fills=True)
    return tiles, task


def _distance_tile(tile: Tile, X: Array, Y: Array | None = None, *, kind: str,
                   config: SSIMConfig, squared: bool, dtype: str, engine: str, move: bool,
                   plugin: Any = None, out: Any = None) -> Array:
    """One tile's block of ``D`` (or ``D^2``) on ``engine``, in ``dtype``: the tile's
    images (moved to the engine's device first when ``move``) handed to the engine
    (:func:`ssimref.engines.distance_block`: in float64 in units of the data range, one
    square root, one rounding), written into ``out`` (the tile's view of a NumPy output)
    where the engine can."""
    Xa = X[tile.rows, ...]
    Yb = None if tile.diagonal else (X if Y is None else Y)[tile.cols, ...]
    if move:
        Xa = arrays_for(engine, Xa)
        Yb = None if Yb is None else arrays_for(engine, Yb)
    xp = namespace(Xa)
    if plugin is None:
        choose_engine(engine, xp)  # the engine can run here, on these arrays
    # converted to units of the data range by distance_block (docs/conventions.md,
    # "Numerics"): every engine computes with pixels divided by L and c1 = k1^2, c2 = k2^2
    return distance_block(plugin or get_engine(engine), Xa, Xa if Yb is None else Yb, kind,
                          config, upper=tile.diagonal, squared=squared, dtype=dtype,
                          out=out)


def pairwise_value_and_vjp(
        X: Array, Y: Array | None, G: Array, kind: str, config: SSIMConfig,
        cotangent: Callable[[Array, Array], tuple[Array | None, Array]], *,
        wrt_y: bool = False, working_memory: float | None = None,
        keep_values: bool = False, backend: str = "auto",
        elementwise: tuple[str, float] | None = None,
) -> tuple[Array | None, Array, Array | None]:
    """The one loop behind every all-pairs gradient: a function of the ``S = D^2`` matrix
    and the gradient of ``sum_ij G_ij`` times its cotangent, tile by tile.

    Trusted input, validated by the public callers.

    Parameters
    ----------
    X : Array, shape (n, H, W, C), float64
        In the data's own units: each tile is divided by the data range
        (:func:`ssimref.moments.in_range_units`) and its gradients by it again.
    Y : Array, shape (m, H, W, C), float64, or None for ``Y = X``
    G : Array, shape (n, m), float64
        Upstream weights. With ``Y`` None both roles of each image count: ``G + G^T`` is
        applied to each unordered pair once.
    kind, config
        The distance (config with its data range set).
    cotangent : callable
        ``cotangent(S_tile, G_tile) -> (value_tile, W_tile)``: the function's values on a
        tile (or None) and the cotangent ``W`` of ``S`` on it.
    wrt_y : bool
        Also return the gradient with respect to ``Y``.
    working_memory : float, optional
        MiB for the tiles.
    keep_values : bool
        Assemble the values into an (n, m) matrix (mirrored when symmetric).
    backend : str, default "auto"
        The engine (:func:`ssimref.engines.choose_engine`, with ``vjp=True``).
    elementwise : (rule, coef), optional
        ``cotangent(S, G)`` is elementwise in ``S`` with upstream ``G`` and this rule
        (:class:`ssimref.engines.ElementwiseCotangent`): engines may then evaluate it in
        their kernels.

    Returns
    -------
    values : Array, shape (n, m), or None
    dX : Array, shaped like X
    dY : Array, shaped like Y, or None (always None when ``Y`` is None)

    Raises
    ------
    ValueError
        For a ``backend`` that is unknown, cannot run on these arrays or computes no
        gradients.

    See Also
    --------
    ssimref.paired.paired_value_and_vjp : the loop over matched pairs.
    """
    xp = namespace(X)
    engine = get_engine(choose_engine(backend, xp, vjp=True))
    symmetric = Y is None
    Yw: Array = X if Y is None else Y
    n, m = X.shape[0], Yw.shape[0]
    image_shape = tuple(X.shape[1:])
    plan = plan_pairs(n, None if symmetric else m,
                      bytes_per_pair=engine.vjp_bytes_per_pair(image_shape, config),
                      bytes_per_image=engine.vjp_bytes_per_image(image_shape, config),
                      max_pairs=engine.vjp_max_tile_pairs(image_shape, config),
                      working_memory=resolve_working_memory(working_memory))
    if symmetric:
        G = G + G.T  # each unordered pair once, both roles at once
    values = xp.empty((n, m), dtype=xp.float64) if keep_values else None
    dX = xp.zeros(X.shape, dtype=xp.float64)
    dY = dX if symmetric else (xp.zeros(Yw.shape, dtype=xp.float64) if wrt_y else None)
    units, L = config.in_range_units(), config.data_range
    assert L is not None  # set at the public edge

    def tile_cotangent(Gt: Array) -> Callable[[Array], tuple[Any, Array]]:
        if elementwise is None:
            return lambda S: cotangent(S, Gt)
        return ElementwiseCotangent(lambda S: cotangent(S, Gt), elementwise[0],
                                    elementwise[1], Gt)

    def tile_vjp(tile: Tile) -> tuple[Array, Array, Array | None]:
        Gt = G[tile.rows, tile.cols]
        Xa = X[tile.rows, ...]
        if tile.diagonal:
            Gt = upper_mask(Gt, xp)
        # in units of the data range (docs/conventions.md, "Numerics")
        Xa = in_range_units(Xa, config, xp)
        Yb = Xa if tile.diagonal else in_range_units(Yw[tile.cols, ...], config, xp)
        value, gx, gy = engine.value_and_vjp_block(
            Xa, Yb, kind, units, tile_cotangent(Gt), upper=tile.diagonal,
            wrt_y=dY is not None and not tile.diagonal)
        # gradients in units of the data range, then d/dx = (1/L) d/du
        return value, gx / L, (None if gy is None else gy / L)

    def accumulate(tile: Tile, result: tuple[Array, Array, Array | None]) -> None:
        value, gx, gy = result
        dX[tile.rows, ...] += gx
        if gy is not None and dY is not None:
            dY[tile.cols, ...] += gy
        if values is not None:
            values[tile.rows, tile.cols] = value
            if symmetric and not tile.diagonal:
                values[tile.cols, tile.rows] = value.T

    serial.reduce(plan, tile_vjp, accumulate)
    return values, dX, (None if symmetric else dY)


def distance_matrix_vjp(X: ArrayLike, Y: ArrayLike | None, G: ArrayLike,
                        kind: KindName = "eq2", config: SSIMConfig | None = None, *,
                        squared: bool = False, working_memory: float | None = None,
                        backend: str = "auto", channel_axis: int | None = None,
                        **conventions: Any) -> tuple[Array, Array | None]:
    """Gradient of ``sum_ij G_ij D_ij`` (or of ``sum_ij G_ij D_ij^2``) with respect to the
    images, where ``D = distance_matrix(X, Y, kind, config)``.

    Parameters
    ----------
    X : array_like, shape (n, H, W) or (n, H, W, C)
    Y : array_like, shape (m, H, W) or (m, H, W, C), or None
        ``None`` means ``Y = X``: the gradient then counts both roles of each image,
        ``dX_i = sum_j (G_ij + G_ji) dD(x_i, x_j)/dx_i``.
    G : array_like, shape (n, m) or (n, n)
        Weights (the cotangent of the distance matrix).
    kind : {"eq2", "eq1", "eq1-uncentered"}
    config : SSIMConfig, optional
        Conventions; keyword overrides as for :func:`ssimref.distance_matrix`.
    squared : bool, default False
        Differentiate ``sum G_ij D_ij^2`` instead.
    working_memory : float, optional
        MiB for tiles (scikit-learn's setting when None).
    backend : {"auto", "reference", "numba", "cupy"}, default "auto"
        Engine for the pairs, chosen as for :func:`ssimref.distance_matrix`. The fused
        engines agree with the reference to ``1e-10`` of each image's largest gradient
        entry plus a floor (:func:`ssimref.engines.vjp_accuracy_floor`, docs/engines.md).
    channel_axis : int, optional
        As for :func:`ssimref.distance_matrix`; the gradients keep the input's layout.
    **conventions
        Fields of :class:`SSIMConfig` overriding ``config``.

    Returns
    -------
    dX : Array, shaped like X, float64
    dY : Array, shaped like Y, float64, or None when Y is None

    Raises
    ------
    ValueError
        For ``G`` of the wrong shape or with NaN/Inf, a non-positive ``working_memory``,
        an unknown or unavailable ``backend``, and the image errors of
        :func:`ssimref.distance_matrix`.
    TypeError
        As for :func:`ssimref.distance_matrix`.

    See Also
    --------
    distance_matrix : the forward computation.
    ssimref.gradients : the derivation.

    Notes
    -----
    Exact (:mod:`ssimref.gradients`), computed tile by tile within ``working_memory``;
    the fused engines never form per-pair pixel maps. Where ``D_ij = 0`` the pair
    contributes 0 (subgradient); no NaN or Inf arises from identical images or identical
    windows.
    """
    config = resolve_config(config, **conventions)
    check_kind(kind)
    check_backend(backend)
    working_memory = resolve_working_memory(working_memory)
    squeeze = channel_axis is None and as_array(X).ndim == 3
    xp, X, Y, config = check_stacks(X, Y, config, channel_axis=channel_axis)
    axis = None if channel_axis is None else check_channel_axis(channel_axis, 4, True)
    n = X.shape[0]
    m = n if Y is None else Y.shape[0]
    check_not_masked(G, "G")
    G = xp.asarray(G)
    if tuple(G.shape) != (n, m):
        raise ValueError(f"G must have shape {(n, m)} (the distance matrix's), got "
                         f"{tuple(G.shape)}")
    G = xp.astype(G, xp.float64)
    if not bool(xp.all(xp.isfinite(G))):
        raise ValueError("G contains NaN or Inf")
    X = xp.astype(X, xp.float64)
    Y = None if Y is None else xp.astype(Y, xp.float64)
    _, dX, dY = pairwise_value_and_vjp(
        X, Y, G, kind, config, lambda S, Gt: distance_weight(S, Gt, squared, xp),
        wrt_y=Y is not None, working_memory=working_memory, backend=backend)
    if squeeze:
        dX = dX[..., 0]
        dY = None if dY is None else dY[..., 0]
    dX = channels_back(dX, axis, xp)
    dY = None if dY is None else channels_back(dY, axis, xp)
    return dX, dY
