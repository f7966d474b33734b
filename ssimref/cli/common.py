"""Arguments and checks shared by the commands of the ``ssimref`` command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..backend import ENGINES
from ..config import COVARIANCES, WINDOWS, SSIMConfig, resolve_config
from ..io import ImageSet

__all__ = ["PRESETS", "add_image_arguments", "add_config_arguments",
           "add_compute_arguments", "config_from_args", "check_npy_output",
           "check_plot_output", "split_field"]

#: The ``--preset`` names and the :class:`SSIMConfig` constructors they stand for.
PRESETS = {"paper": SSIMConfig.paper, "wang2004": SSIMConfig.wang2004,
           "skimage": SSIMConfig.skimage}


def add_image_arguments(parser: argparse.ArgumentParser, name: str = "images",
                        help_text: str | None = None) -> None:
    """Add an image-set argument, ``--color`` and ``--key`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    name : str, default "images"
        The positional argument's name.
    help_text : str, optional
        Its help (the forms :func:`ssimref.io.load_images` reads, by default).
    """
    parser.add_argument(name, help=help_text or "a .npy/.npz file, a folder of PNG/JPEG "
                        "images (sorted by name, same size), or a bundled data set: 'digits' "
                        "(sklearn's 8x8 digits, data range 16) or 'mnist5k' (5,000 MNIST "
                        "digits 28x28, uint8; needs the 'data' extra), optionally with "
                        "':train', ':validation' or ':test' for one part of its fixed split "
                        "(e.g. mnist5k:test)")
    parser.add_argument("--color", action="store_true",
                        help="read folders as RGB (channels last) instead of grayscale")
    parser.add_argument("--key", help="array name inside a .npz file holding several")
    parser.add_argument("--channel-axis", type=int, dest="channel_axis",
                        help="axis of a .npy/.npz stack that holds the colour channels, e.g. "
                        "1 for (n, C, H, W) (default: the last axis of a 4-D stack, at most "
                        "4 channels; a 3-D stack (n, H, W) has none)")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the SSIM conventions as flags (``--preset``, ``--window``, ...) to ``parser``;
    a flag left out parses as None, meaning "the preset's or the library's default".

    Parameters
    ----------
    parser : argparse.ArgumentParser

    See Also
    --------
    config_from_args : the config the flags describe.
    """
    group = parser.add_argument_group("SSIM conventions (see ssimref.SSIMConfig)")
    group.add_argument("--preset", choices=sorted(PRESETS),
                       help="start from a named convention, then apply the flags below")
    group.add_argument("--window", choices=WINDOWS)
    group.add_argument("--size", type=int, help="window side in pixels (default 7)")
    group.add_argument("--sigma", type=float, help="Gaussian sigma (default 1.5)")
    group.add_argument("--stride", type=int, help="step between windows (default 1)")
    group.add_argument("--data-range", type=float, dest="data_range",
                       help="intensity range L (required for float images)")
    group.add_argument("--k1", type=float)
    group.add_argument("--k2", type=float)
    group.add_argument("--covariance", choices=COVARIANCES)


def add_compute_arguments(parser: argparse.ArgumentParser, backend: bool = True,
                          progress: bool = True) -> None:
    """Add ``--working-memory`` (and ``--backend``, ``--progress``) to ``parser``, for
    commands that compute distances.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    backend, progress : bool, default True
        Add those flags too.
    """
    parser.add_argument("--working-memory", type=float, dest="working_memory",
                        help="MiB for tiles (scikit-learn's working_memory when omitted)")
    if backend:
        parser.add_argument("--backend", default="auto", choices=ENGINES,
                            help="engine for the pairs: auto (numba on the CPU when "
                            "installed), reference, numba, or cupy (GPU; the matrix is "
                            "streamed to the output file tile by tile)")
    if progress:
        parser.add_argument("--progress", action="store_true", help="show a progress bar")


def split_field(data: ImageSet) -> dict[str, str]:
    """The sidecar entry naming the split of a bundled data set.

    Parameters
    ----------
    data : ssimref.io.ImageSet

    Returns
    -------
    dict
        ``{"split": data.split}``, or empty for files.
    """
    return {} if data.split is None else {"split": data.split}


def config_from_args(args: argparse.Namespace,
                     default_data_range: float | None = None) -> SSIMConfig:
    """The :class:`SSIMConfig` the flags of :func:`add_config_arguments` describe.

    Parameters
    ----------
    args : argparse.Namespace
    default_data_range : float, optional
        The data range the image source implies (e.g. 16 for the digits), used when
        neither the preset nor ``--data-range`` sets one.

    Returns
    -------
    SSIMConfig

    Raises
    ------
    ValueError
        For conventions :class:`SSIMConfig` refuses.
    """
    base = PRESETS[args.preset](data_range=None) if args.preset else SSIMConfig()
    if base.data_range is None and args.data_range is None and default_data_range is not None:
        base = resolve_config(base, data_range=default_data_range)
    return resolve_config(base, window=args.window, size=args.size, sigma=args.sigma,
                          stride=args.stride, data_range=args.data_range, k1=args.k1,
                          k2=args.k2, covariance=args.covariance)


def check_npy_output(path: str | Path, force: bool) -> tuple[Path, Path]:
    """An output ``.npy`` and its JSON sidecar, checked before any work is done.

    Parameters
    ----------
    path : str or Path
    force : bool
        Allow existing files.

    Returns
    -------
    path, sidecar : Path
        The ``.npy`` and the ``.json`` beside it.

    Raises
    ------
    ValueError
        When ``path`` does not end in ``.npy``.
    FileExistsError
        When either file exists and not ``force``.
    """
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"output {path} must end in .npy (NumPy format, no pickles)")
    sidecar = path.with_suffix(".json")
    for p in (path, sidecar):
        if p.exists() and not force:
            raise FileExistsError(f"{p} exists; pass --force to overwrite it")
    return path, sidecar


def check_plot_output(path: str | Path | None, force: bool) -> Path | None:
    """A ``--plot`` output, checked before any work is done.

    Parameters
    ----------
    path : str or Path or None
    force : bool
        Allow an existing file.

    Returns
    -------
    Path or None
        None when no plot was asked for.

    Raises
    ------
    ValueError
        When ``path`` does not end in ``.png``, or matplotlib is missing.
    FileExistsError
        When it exists and not ``force``.
    """
    if path is None:
        return None
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"--plot {path} must end in .png")
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to overwrite it")
    from ..plotting import require_matplotlib
    try:
        require_matplotlib("--plot")
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    return path
