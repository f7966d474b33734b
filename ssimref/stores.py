"""Resumable outputs: matrices written tile by tile, with a record per completed tile.

A long job (an all-pairs distance matrix, a kernel) writes its result into a store whose
tiles are those of its plan (:mod:`ssimref.tiling`); after a tile's block is written the
executor (:mod:`ssimref.executor`) writes that tile's **record**, one small object per
tile (never a shared attribute that concurrent writers would overwrite). A tile counts as
complete only when its record exists, so a job killed at any point (a worker lost, the
client killed, Ctrl-C, SIGTERM) loses at most the tiles in flight: on resume the plan is
run again and only the tiles without a record are computed. Blocks are deterministic, so
a resumed matrix equals an uninterrupted one bit for bit.

Two stores, one layout of ideas:

**zarr** (``D.zarr``, needs the ``dask`` extra's zarr 3): a group whose attribute
``ssimref`` holds the format, ``complete`` (false until the job is done) and the job's
**fingerprint** (what was computed: kind, conventions, dtype, squared, shape, engine,
power, and the SHA-256, shape and dtype of the images); arrays:

- ``matrix``: the result, chunks = the tiles, fill value NaN (a value never computed
  reads NaN, never 0), each chunk with a CRC32C checksum (a damaged chunk is an error
  when read);
- ``records/<array>``: int64, shape ``(tile rows, tile columns, 3)``, one chunk per tile
  ``(run, pid, unix time ns)``: the run that wrote it, the writing process, when;
- working arrays of multi-step jobs (the kernel's squared distances, its row means),
  deleted when the job completes.

Chunk writes are atomic (zarr's local store writes a temporary file and renames it), and
a tile and its mirror are whole chunks, so concurrent workers never share a chunk. The
store is marked incomplete until the job is done, and :func:`open_matrix` (and
:func:`ssimref.io.load_images`) refuse to read an incomplete store as a result.

**npy** (``D.npy``): the matrix is computed into ``.D.npy.partial/matrix.npy`` (a
memmap) with ``job.json`` (the fingerprint) and ``tiles/<array>/r{i}-c{j}`` record files
beside it, and renamed onto ``D.npy`` only when complete. Records are written after the
memmap is flushed to disk, in batches at most a second apart (a kill loses at most the
tiles of the last second).

On resume a store is refused, with a message naming the problem and the fix, when it is
not ssimref's (a foreign zarr store), cannot be read (corrupted metadata or records), or
was started with another configuration (images, kind, conventions, dtype, squared,
engine, power). Nothing is overwritten without ``force``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .backend import Array, to_numpy
from .tiling import PairPlan

__all__ = ["FORMAT", "images_fingerprint", "ZarrLedger", "FileLedger", "ZarrStore",
           "NpyStore", "open_store", "open_matrix", "StoreError", "is_zarr_path",
           "require_zarr", "remove_output", "annotate_result"]

#: Format name in every store's metadata.
FORMAT = "ssimref.matrix-store"
VERSION = 1
_RECORD = 3  # run, pid, unix time in ns


class StoreError(ValueError):
    """A store that cannot be used as asked (foreign, corrupted, incomplete, or started
    with another configuration)."""


def is_zarr_path(path: str | Path) -> bool:
    """Whether ``path`` names a zarr store.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    bool
        It ends in ``.zarr``.
    """
    return Path(str(path).rstrip("/")).suffix == ".zarr"


def images_fingerprint(images: Array) -> dict[str, Any]:
    """What identifies an image stack in a job's fingerprint.

    Parameters
    ----------
    images : Array
        Of any array library (copied to the host).

    Returns
    -------
    dict
        ``{"sha256": hex digest of the bytes in C order, "shape": list, "dtype": str}``.
    """
    a = np.ascontiguousarray(to_numpy(images))
    digest = hashlib.sha256()
    flat = a.reshape(-1).view(np.uint8)
    step = 1 << 24
    for start in range(0, flat.size, step):
        digest.update(flat[start:start + step].data)
    return {"sha256": digest.hexdigest(), "shape": list(a.shape), "dtype": str(a.dtype)}


def _differences(stored: dict, wanted: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(stored) | set(wanted)):
        a, b = stored.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: stored {a!r}, now {b!r}")
    return out


def _check_job(path: Path, stored: dict, wanted: dict) -> None:
    diff = _differences(stored, wanted)
    if diff:
        raise StoreError(f"cannot resume {path}: it was started with another configuration ("
                         + "; ".join(diff[:6]) + ("; ..." if len(diff) > 6 else "")
                         + "); run with the same images and options, or pass --force "
                         "(force=True) to start again")


def _run_id() -> int:
    return secrets.randbits(62) + 1


# ------------------------------------------------------------------------------ ledgers
class ZarrLedger:
    """Records of completed tiles in a zarr array, one chunk (object) per tile, written by
    whoever wrote the tile (a Dask worker or this process). Picklable.

    Parameters
    ----------
    array : zarr.Array
        int64, shape ``(tile rows, tile columns, 3)``, chunks ``(1, 1, 3)``.
    run : int
        This run's identifier (> 0), stored in each record it writes.
    """

    def __init__(self, array: Any, run: int) -> None:
        self.array = array
        self.run = int(run)

    def completed(self) -> set[tuple[int, int]]:
        """The tiles recorded as complete.

        Returns
        -------
        set of (int, int)
        """
        values = np.asarray(self.array[...])
        rows, cols = np.nonzero(values[..., 0])
        return {(int(i), int(j)) for i, j in zip(rows, cols)}

    def mark(self, index: tuple[int, int], report: Any = None) -> None:
        """Record tile ``index`` (after its chunks are written): ``(run, pid, time ns)``.

        Parameters
        ----------
        index : (int, int)
        report : TileReport, optional
            Not stored.
        """
        self.array[index[0], index[1]] = np.array([self.run, os.getpid(), time.time_ns()],
                                                  dtype=np.int64)

    def close(self) -> None:
        """Nothing is pending: each record is written by :meth:`mark`."""

    def records(self) -> np.ndarray:
        """All records.

        Returns
        -------
        numpy.ndarray, shape (tile rows, tile columns, 3), int64
            Run, pid, unix time in ns; zeros where no tile is recorded.
        """
        return np.asarray(self.array[...])


class FileLedger:
    """Records of completed tiles as files ``r{i}-c{j}`` in a folder, for one process
    (the serial executor).

    Each record (JSON: run, pid, time, seconds) is written atomically after ``flush()``
    (the memmap's: the tile's values are on disk first), in batches at most ``interval``
    seconds apart; :meth:`close` writes what is pending.

    Parameters
    ----------
    folder : str or Path
        Created when missing.
    run : int
        This run's identifier.
    flush : callable, optional
        Called before records are written.
    interval : float, default 1.0
        Seconds between batches.
    """

    def __init__(self, folder: str | Path, run: int, flush: Callable[[], Any] | None = None,
                 interval: float = 1.0) -> None:
        self.folder = Path(folder)
        self.run = int(run)
        self.flush = flush
        self.interval = float(interval)
        self._pending: list = []
        self._last = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)

    def completed(self) -> set[tuple[int, int]]:
        """The tiles recorded as complete.

        Returns
        -------
        set of (int, int)
        """
        done = set()
        for p in self.folder.iterdir():
            name = p.name
            if name.startswith("r") and "-c" in name and not name.endswith(".tmp"):
                i, _, j = name[1:].partition("-c")
                if i.isdigit() and j.isdigit():
                    done.add((int(i), int(j)))
        return done

    def mark(self, index: tuple[int, int], report: Any = None) -> None:
        """Record tile ``index`` (written at the next batch).

        Parameters
        ----------
        index : (int, int)
        report : TileReport, optional
            Its seconds are stored.
        """
        self._pending.append((tuple(index), report))
        if time.monotonic() - self._last >= self.interval:
            self.close()

    def close(self) -> None:
        """Flush the output, then write the pending records."""
        if not self._pending:
            return
        if self.flush is not None:
            self.flush()
        for (i, j), report in self._pending:
            path = self.folder / f"r{i}-c{j}"
            tmp = self.folder / f"r{i}-c{j}.tmp"
            tmp.write_text(json.dumps({"run": self.run, "pid": os.getpid(),
                                       "time_ns": time.time_ns(),
                                       "seconds": None if report is None
                                       else round(report.seconds, 6)}))
            os.replace(tmp, path)
        self._pending = []
        self._last = time.monotonic()

    def records(self) -> dict[tuple[int, int], dict]:
        """All records.

        Returns
        -------
        dict
            ``{(i, j): {"run", "pid", "time_ns", "seconds"}}``.
        """
        return {(i, j): json.loads((self.folder / f"r{i}-c{j}").read_text())
                for i, j in self.completed()}


# ------------------------------------------------------------------------------- stores
def require_zarr() -> ModuleType:
    """The zarr module.

    Returns
    -------
    module
        zarr (>= 3).

    Raises
    ------
    ImportError
        Without zarr 3, naming the extra that installs it.
    """
    try:
        import zarr
    except ImportError:
        raise ImportError("zarr stores need zarr 3: pip install 'ssimref[dask]' (Python "
                          ">= 3.11)") from None
    if int(zarr.__version__.split(".")[0]) < 3:
        raise ImportError(f"zarr stores need zarr >= 3, found {zarr.__version__}")
    return zarr


def _tile_count(path: Path, ledger_array: Any) -> str:
    try:
        values = np.asarray(ledger_array[...])
        total = dict(ledger_array.attrs).get("tiles", values.shape[0] * values.shape[1])
        return f"{int(np.count_nonzero(values[..., 0]))} of {total}"
    except Exception:  # noqa: BLE001 - only for a message
        return "?"


class ZarrStore:
    """A zarr group holding a job's arrays, records and fingerprint (module docstring).
    Create or reopen one with :meth:`prepare`.

    Parameters
    ----------
    path : str or Path
    group : zarr.Group
        Open for writing.
    run : int
        This run's identifier (in the records it writes).
    """

    def __init__(self, path: str | Path, group: Any, run: int) -> None:
        self.path = Path(path)
        self.group = group
        self.run = run

    # ------------------------------------------------------------------ opening
    @classmethod
    def read_meta(cls, path: str | Path, mode: str = "r+") -> tuple[Any, dict]:
        """The group and metadata of an existing store.

        Parameters
        ----------
        path : str or Path
        mode : str, default "r+"
            zarr's open mode.

        Returns
        -------
        (zarr.Group, dict)
            The group and its ``ssimref`` attribute.

        Raises
        ------
        StoreError
            For a store that cannot be read, is not ssimref's, or has an unknown version.
        """
        zarr = require_zarr()
        path = Path(path)
        try:
            group = zarr.open_group(str(path), mode=mode)
        except Exception as exc:  # JSON, zarr format or node type errors
            raise StoreError(f"{path} is not a readable zarr group ({type(exc).__name__}: "
                             f"{exc}); it may be damaged: pass --force (force=True) to "
                             "replace it, or choose another output") from None
        meta = dict(group.attrs).get("ssimref")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise StoreError(f"{path} is a zarr store that ssimref did not write (no "
                             f"'{FORMAT}' metadata); choose another output, or pass --force "
                             "(force=True) to replace it")
        if meta.get("version") != VERSION or not isinstance(meta.get("job"), dict):
            raise StoreError(f"{path}: unknown ssimref store version {meta.get('version')!r} "
                             "or damaged metadata; pass --force (force=True) to replace it")
        return group, meta

    @classmethod
    def prepare(cls, path: str | Path, job: dict, *, resume: bool = False,
                force: bool = False) -> tuple[ZarrStore, bool | str]:
        """The store at ``path`` for ``job``.

        A missing store is created. An existing one is continued with ``resume`` when it
        is ssimref's and of the same ``job``; replaced with ``force``; refused otherwise.

        Parameters
        ----------
        path : str or Path
        job : dict
            The fingerprint (JSON-able).
        resume : bool, default False
        force : bool, default False

        Returns
        -------
        store : ZarrStore
        resumed : bool or "complete"
            True when an incomplete job is continued, "complete" when there is nothing
            left to do.

        Raises
        ------
        StoreError
            On resume, for a foreign, damaged or differently configured store (without
            ``force``).
        FileExistsError
            For an existing output without ``resume`` or ``force``, or a folder that is
            not a zarr store.
        FileNotFoundError
            When the folder of ``path`` does not exist.
        """
        zarr = require_zarr()
        path = Path(path)
        if path.exists() or path.is_symlink():
            if resume:
                try:
                    group, meta = cls.read_meta(path)
                    _check_job(path, meta["job"], job)
                    store = cls(path, group, _run_id())
                    return store, ("complete" if meta.get("complete") else True)
                except StoreError:
                    if not force:
                        raise
            elif not force:
                what = cls.describe(path)
                raise FileExistsError(f"{path} exists ({what}); pass --resume to continue an "
                                      "incomplete job, or --force (force=True) to replace it")
            remove_output(path)
        if not path.parent.exists():
            raise FileNotFoundError(f"folder {path.parent} does not exist")
        group = zarr.open_group(str(path), mode="w-")
        group.attrs["ssimref"] = {"format": FORMAT, "version": VERSION, "complete": False,
                                  "job": job, "state": {}}
        return cls(path, group, _run_id()), False

    @classmethod
    def describe(cls, path: str | Path) -> str:
        """What an existing store holds, for messages.

        Parameters
        ----------
        path : str or Path

        Returns
        -------
        str
            "a complete result", "an incomplete job, k of N tiles complete" or "not an
            ssimref store".
        """
        try:
            group, meta = cls.read_meta(path, mode="r")
        except (StoreError, ImportError):
            return "not an ssimref store"
        if meta.get("complete"):
            return "a complete result"
        try:
            count = _tile_count(Path(path), group["records/matrix"])
        except Exception:  # noqa: BLE001 - only for a message
            count = "?"
        return f"an incomplete job, {count} tiles complete"

    # ------------------------------------------------------------------ contents
    @property
    def meta(self) -> dict:
        """The store's ``ssimref`` metadata."""
        return dict(self.group.attrs)["ssimref"]

    def _set_meta(self, **fields: Any) -> None:
        meta = self.meta
        meta.update(fields)
        self.group.attrs["ssimref"] = meta

    @property
    def state(self) -> dict:
        """The finished steps of the job (:meth:`set_state`)."""
        return dict(self.meta.get("state", {}))

    def set_state(self, **fields: Any) -> None:
        """Record finished steps of the job.

        Parameters
        ----------
        **fields
            E.g. ``stats=True``.
        """
        self._set_meta(state={**self.state, **fields})

    def matrix(self, name: str, plan: PairPlan, dtype: Any) -> Any:
        """The array ``name``, created when missing.

        Parameters
        ----------
        name : str
        plan : PairPlan
            Its shape ``(n, m)`` and chunks (the tiles).
        dtype : dtype-like

        Returns
        -------
        zarr.Array
            Fill value NaN, a CRC32C checksum per chunk.

        Raises
        ------
        StoreError
            When an existing array does not match.
        """
        require_zarr()
        from zarr.codecs import Crc32cCodec

        shape, chunks = (plan.n, plan.m), (plan.tile_rows, plan.tile_cols)
        if name in self.group:
            array = self.group[name]
            if (tuple(array.shape), tuple(array.chunks), str(array.dtype)) != \
                    (shape, chunks, str(np.dtype(dtype))):
                raise StoreError(f"{self.path}/{name} has shape {tuple(array.shape)}, chunks "
                                 f"{tuple(array.chunks)}, dtype {array.dtype}; expected "
                                 f"{shape}, {chunks}, {np.dtype(dtype)}: the store is damaged;"
                                 " pass --force to start again")
            return array
        return self.group.create_array(name, shape=shape, chunks=chunks, dtype=dtype,
                                       fill_value=np.nan, compressors=[Crc32cCodec()])

    def ledger(self, name: str, plan: PairPlan) -> ZarrLedger:
        """The records of the tiles of array ``name``, created when missing.

        Parameters
        ----------
        name : str
        plan : PairPlan

        Returns
        -------
        ZarrLedger

        Raises
        ------
        StoreError
            When existing records do not match the plan or cannot be read.
        """
        key = f"records/{name}"
        shape = (*plan.grid, _RECORD)
        if key in self.group:
            array = self.group[key]
            if tuple(array.shape) != shape:
                raise StoreError(f"{self.path}/{key} has shape {tuple(array.shape)}, expected "
                                 f"{shape}: the store is damaged; pass --force to start again")
        else:
            array = self.group.create_array(key, shape=shape, chunks=(1, 1, _RECORD),
                                            dtype="int64", fill_value=0,
                                            attributes={"tiles": len(plan)})
        ledger = ZarrLedger(array, self.run)
        try:
            ledger.completed()
        except Exception as exc:  # a damaged record chunk
            raise StoreError(f"{self.path}/{key}: records cannot be read ({exc}); the store "
                             "is damaged; pass --force to start again") from None
        return ledger

    def tile_plan(self, name: str, symmetric: bool) -> PairPlan | None:
        """The plan of an existing array (its chunks).

        Parameters
        ----------
        name : str
        symmetric : bool

        Returns
        -------
        PairPlan or None
            None when the array does not exist.
        """
        if name not in self.group:
            return None
        array = self.group[name]
        (n, m), (r, c) = tuple(array.shape), tuple(array.chunks)
        return PairPlan(n, m, r, c, symmetric)

    def save_vector(self, name: str, values: Array) -> None:
        """Store a float64 vector (e.g. the kernel's row means) as array ``name``.

        Parameters
        ----------
        name : str
        values : Array
        """
        a = np.asarray(to_numpy(values), dtype=np.float64)
        if name in self.group:
            del self.group[name]
        array = self.group.create_array(name, shape=a.shape, chunks=a.shape or None,
                                        dtype="float64")
        array[...] = a

    def load_vector(self, name: str) -> np.ndarray:
        """A vector stored by :meth:`save_vector`.

        Parameters
        ----------
        name : str

        Returns
        -------
        numpy.ndarray
        """
        return np.asarray(self.group[name][...])

    def finish(self, result: dict, drop: Iterable[str] = ()) -> None:
        """Complete the store.

        Parameters
        ----------
        result : dict
            What the matrix is (stored in the metadata).
        drop : iterable of str
            Working arrays to delete (with their records).
        """
        for name in drop:
            for key in (name, f"records/{name}"):
                if key in self.group:
                    del self.group[key]
        self._set_meta(complete=True, result=result)

    def kept(self, name: str = "matrix") -> str:
        """What an interrupted job keeps, for its message.

        Parameters
        ----------
        name : str, default "matrix"
            The array whose tiles are counted.

        Returns
        -------
        str
        """
        key = f"records/{name}"
        count = _tile_count(self.path, self.group[key]) if key in self.group else "0 of ?"
        return f"{self.path} (incomplete: {count} tiles of {name} complete)"


class NpyStore:
    """A job writing ``path`` (.npy): its arrays, records and fingerprint in the folder
    ``.NAME.partial`` beside it; the result is renamed onto ``path`` when complete.
    Create or reopen one with :meth:`prepare`.

    Parameters
    ----------
    path : str or Path
        The final ``.npy``.
    folder : str or Path
        The partial folder.
    run : int
    """

    def __init__(self, path: str | Path, folder: str | Path, run: int) -> None:
        self.path = Path(path)
        self.folder = Path(folder)
        self.run = run
        self._memmaps: dict = {}

    @staticmethod
    def partial_folder(path: str | Path) -> Path:
        """Where the job writing ``path`` keeps its work.

        Parameters
        ----------
        path : str or Path

        Returns
        -------
        Path
            ``.NAME.partial`` beside ``path``.
        """
        path = Path(path)
        return path.with_name(f".{path.name}.partial")

    @classmethod
    def prepare(cls, path: str | Path, job: dict, *, resume: bool = False,
                force: bool = False) -> tuple[NpyStore, bool | str]:
        """The partial job for ``path``, as :meth:`ZarrStore.prepare`.

        Parameters
        ----------
        path : str or Path
        job : dict
        resume : bool, default False
        force : bool, default False

        Returns
        -------
        store : NpyStore
        resumed : bool
            True when a partial job is continued.

        Raises
        ------
        StoreError
            On resume, for a damaged or differently configured partial job (without
            ``force``).
        FileExistsError
            For an existing ``path`` without ``force``, or a partial job without
            ``resume`` or ``force``.
        FileNotFoundError
            When the folder of ``path`` does not exist.
        """
        path = Path(path)
        folder = cls.partial_folder(path)
        if not path.parent.exists():
            raise FileNotFoundError(f"folder {path.parent} does not exist")
        if path.exists() and not force:
            raise FileExistsError(f"{path} exists; pass --force (force=True) to overwrite it")
        if folder.exists():
            if resume:
                stored = cls._read_job(folder)
                try:
                    if stored is None:
                        raise StoreError(f"{folder} (the partial job of {path}) cannot be "
                                         "read: its job.json is missing or damaged; pass "
                                         "--force to start again")
                    _check_job(path, stored, job)
                    return cls(path, folder, _run_id()), True
                except StoreError:
                    if not force:
                        raise
            elif not force:
                raise FileExistsError(f"{path} has an incomplete job in {folder}; pass "
                                      "--resume to continue it, or --force to start again")
            shutil.rmtree(folder)
        folder.mkdir()
        (folder / "job.json.tmp").write_text(json.dumps(
            {"format": FORMAT, "version": VERSION, "job": job}, indent=1, sort_keys=True))
        os.replace(folder / "job.json.tmp", folder / "job.json")
        return cls(path, folder, _run_id()), False

    @staticmethod
    def _read_job(folder: Path) -> dict | None:
        try:
            meta = json.loads((folder / "job.json").read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or \
                meta.get("version") != VERSION or not isinstance(meta.get("job"), dict):
            return None
        return meta["job"]

    @property
    def state(self) -> dict:
        """The finished steps of the job (:meth:`set_state`)."""
        try:
            return json.loads((self.folder / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def set_state(self, **fields: Any) -> None:
        """Record finished steps of the job.

        Parameters
        ----------
        **fields
            E.g. ``stats=True``.
        """
        tmp = self.folder / "state.json.tmp"
        tmp.write_text(json.dumps({**self.state, **fields}))
        os.replace(tmp, self.folder / "state.json")

    def matrix(self, name: str, plan: PairPlan, dtype: Any) -> np.memmap:
        """The memmap ``name``, created when missing.

        Parameters
        ----------
        name : str
        plan : PairPlan
            Its shape ``(n, m)``.
        dtype : dtype-like

        Returns
        -------
        numpy.memmap
            Created filled with NaN (a value never computed reads NaN).

        Raises
        ------
        StoreError
            When an existing memmap cannot be read or does not match.
        """
        path = self.folder / f"{name}.npy"
        shape = (plan.n, plan.m)
        if path.exists():
            try:
                array = np.load(path, mmap_mode="r+", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise StoreError(f"{path} cannot be read ({exc}); pass --force to start "
                                 "again") from None
            if tuple(array.shape) != shape or array.dtype != np.dtype(dtype):
                raise StoreError(f"{path} holds {array.shape} {array.dtype}, expected {shape} "
                                 f"{np.dtype(dtype)}; pass --force to start again")
        else:
            tmp = self.folder / f"{name}.npy.tmp"
            array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
            for rows in range(0, shape[0], max(1, (1 << 24) // max(1, shape[1]))):
                array[rows:rows + (1 << 24) // max(1, shape[1])] = np.nan
            array.flush()
            del array
            os.replace(tmp, path)
            array = np.load(path, mmap_mode="r+", allow_pickle=False)
        self._memmaps[name] = array
        return array

    def ledger(self, name: str, plan: PairPlan) -> FileLedger:
        """The records of the tiles of ``name`` (after :meth:`matrix`, whose memmap they
        flush first).

        Parameters
        ----------
        name : str
        plan : PairPlan

        Returns
        -------
        FileLedger
        """
        array = self._memmaps.get(name)
        return FileLedger(self.folder / "tiles" / name, self.run,
                          flush=None if array is None else array.flush)

    def tile_plan(self, name: str, symmetric: bool) -> PairPlan | None:
        """The plan saved for ``name`` (:meth:`save_plan`).

        Parameters
        ----------
        name : str
        symmetric : bool

        Returns
        -------
        PairPlan or None
        """
        try:
            tiles = json.loads((self.folder / "tiles.json").read_text()).get(name)
        except (OSError, ValueError):
            return None
        if tiles is None:
            return None
        n, m, rows, cols = (int(v) for v in tiles)
        return PairPlan(n, m, rows, cols, symmetric)

    def save_plan(self, name: str, plan: PairPlan) -> None:
        """Remember the tiles of ``name`` (a resumed job must use the same).

        Parameters
        ----------
        name : str
        plan : PairPlan
        """
        try:
            tiles = json.loads((self.folder / "tiles.json").read_text())
        except (OSError, ValueError):
            tiles = {}
        tiles[name] = [plan.n, plan.m, plan.tile_rows, plan.tile_cols]
        tmp = self.folder / "tiles.json.tmp"
        tmp.write_text(json.dumps(tiles))
        os.replace(tmp, self.folder / "tiles.json")

    def save_vector(self, name: str, values: Array) -> None:
        """Store a float64 vector as ``name.npy`` (atomically).

        Parameters
        ----------
        name : str
        values : Array
        """
        tmp = self.folder / f"{name}.npy.tmp"
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(to_numpy(values), dtype=np.float64), allow_pickle=False)
        os.replace(tmp, self.folder / f"{name}.npy")

    def load_vector(self, name: str) -> np.ndarray:
        """A vector stored by :meth:`save_vector`.

        Parameters
        ----------
        name : str

        Returns
        -------
        numpy.ndarray
        """
        return np.load(self.folder / f"{name}.npy", allow_pickle=False)

    def finish(self, result: dict, drop: Iterable[str] = ()) -> None:
        """Rename the result onto the final path and remove the partial folder.

        Parameters
        ----------
        result : dict
            Not stored here (the job writes the ``.json`` sidecar).
        drop : iterable of str
            Ignored: the whole folder goes.
        """
        for array in self._memmaps.values():
            array.flush()
        self._memmaps.clear()
        os.replace(self.folder / "matrix.npy", self.path)
        shutil.rmtree(self.folder)

    def kept(self, name: str = "matrix") -> str:
        """What an interrupted job keeps, for its message.

        Parameters
        ----------
        name : str, default "matrix"

        Returns
        -------
        str
        """
        folder = self.folder / "tiles" / name
        count = len(FileLedger(folder, 0).completed()) if folder.exists() else 0
        return f"{self.folder} ({count} tiles of {name} complete; {self.path} not written)"


def open_store(path: str | Path, job: dict, *, resume: bool = False,
               force: bool = False) -> tuple[ZarrStore | NpyStore, bool | str]:
    """:meth:`ZarrStore.prepare` or :meth:`NpyStore.prepare`, by the suffix of ``path``.

    Parameters
    ----------
    path : str or Path
        ``.zarr`` or ``.npy``.
    job : dict
    resume, force : bool

    Returns
    -------
    (store, resumed)

    Raises
    ------
    ValueError
        For another suffix; and the errors of the ``prepare`` methods.
    """
    if is_zarr_path(path):
        return ZarrStore.prepare(path, job, resume=resume, force=force)
    if Path(path).suffix == ".npy":
        return NpyStore.prepare(path, job, resume=resume, force=force)
    raise ValueError(f"output {path} must end in .npy (NumPy format) or .zarr (a zarr store)")


def remove_output(path: str | Path) -> None:
    """Delete an output to be replaced (``force``): a file, or a folder that is a zarr
    store.

    Parameters
    ----------
    path : str or Path

    Raises
    ------
    FileExistsError
        For a folder that is not a zarr store (never deleted).
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        if not (path / "zarr.json").exists() and not (path / ".zgroup").exists() and \
                not (path / ".zarray").exists():
            raise FileExistsError(f"{path} is a folder that is not a zarr store; ssimref "
                                  "does not delete it even with --force: remove it yourself "
                                  "or choose another output")
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def open_matrix(path: str | Path) -> Any:
    """A result matrix written by ssimref.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` or a ``.zarr`` store.

    Returns
    -------
    numpy.memmap or zarr.Array
        Read-only memmap; the store's array ``matrix``.

    Raises
    ------
    StoreError
        For a zarr store that is not ssimref's, damaged, or incomplete (an interrupted
        job: finish it with ``--resume``).
    """
    if not is_zarr_path(path):
        return np.load(path, mmap_mode="r", allow_pickle=False)
    group, meta = ZarrStore.read_meta(path, mode="r")
    if not meta.get("complete"):
        raise StoreError(f"{path} is incomplete (an interrupted job, "
                         f"{ZarrStore.describe(path).split(', ', 1)[-1]}): finish it with "
                         "the same command and --resume before reading it")
    return group["matrix"]


def annotate_result(path: str | Path, fields: dict) -> None:
    """Add ``fields`` to what a completed result records about itself.

    Parameters
    ----------
    path : str or Path
        A zarr store (its ``result`` metadata) or a ``.npy`` (its JSON sidecar).
    fields : dict
        JSON-able.
    """
    if is_zarr_path(path):
        group, meta = ZarrStore.read_meta(path)
        meta["result"] = {**meta.get("result", {}), **fields}
        group.attrs["ssimref"] = meta
        return
    sidecar = Path(path).with_suffix(".json")
    meta = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    tmp = sidecar.with_name(f".{sidecar.name}.tmp")
    tmp.write_text(json.dumps({**meta, **fields}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, sidecar)
