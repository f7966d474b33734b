"""Arguments and checks shared by the commands of the ``ssimref`` command line."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ..backend import ENGINES
from ..config import COVARIANCES, WINDOWS, SSIMConfig, resolve_config
from ..executor import PROGRESS_DELAY
from ..io import ALPHA_MODES, ImageSet, check_writable
from ..tiling import default_working_memory
from ..validation import check_channel_axis

__all__ = ["OneLineParser", "at_least", "PRESETS", "add_image_arguments", "add_config_arguments",
           "add_compute_arguments", "config_from_args", "check_npy_output",
           "check_plot_output", "split_field", "source_fields", "add_job_arguments",
           "check_matrix_output",
           "executor_from_args", "describe_run", "images_of", "add_progress_argument",
           "shown_default", "cli_wording"]

def shown_default(value: Any) -> str:
    """A default as ``--help`` writes it: numbers as written (1.5, 1e-06), booleans as on
    and off, sequences space-separated (none when empty), strings as they are.

    Parameters
    ----------
    value : Any

    Returns
    -------
    str
    """
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return " ".join(shown_default(v) for v in value) or "none"
    return str(value)


def cli_wording(message: str, parser: argparse.ArgumentParser) -> str:
    """A library message in the command line's words: the Python names of its parameters
    as the options that set them (``size=9`` as ``--size 9``, ``channel_axis=None`` as
    ``no --channel-axis``, ``working_memory`` as ``--working-memory``, ``backend must`` as
    ``--backend must``), the library's ``images`` as IMAGES, and lists or tuples of names
    without Python's brackets and quotes.

    Parameters
    ----------
    message : str
        An exception's message from the library.
    parser : argparse.ArgumentParser
        The parser of ``ssimref``, whose options (of every command) name the parameters.

    Returns
    -------
    str
    """
    import re

    from . import iter_parsers
    flags: dict[str, str] = {}
    switches: set[str] = set()
    for _, each in iter_parsers(parser):
        for action in each._actions:
            long = [o for o in action.option_strings if o.startswith("--")]
            if long and action.dest not in ("help", "version"):
                flags.setdefault(action.dest, long[0])
                if isinstance(action, argparse._StoreTrueAction):
                    switches.add(action.dest)
    for dest in switches:  # force=True is the switch itself, force=False its absence
        message = re.sub(rf"\b{dest}=True\b", flags[dest], message)
        message = re.sub(rf"\b{dest}=False\b", f"no {flags[dest]}", message)
    for dest, flag in flags.items():
        message = re.sub(rf"\bleave {dest}=None\b", f"leave out {flag}", message)
        message = re.sub(rf"\b{dest}=None\b", f"no {flag}", message)
        message = re.sub(rf"\b{dest}=(['\"]?)([^\s,;)'\"]+)\1", rf"{flag} \2", message)
        message = re.sub(rf"(?<![-\w']){dest} must\b", f"{flag} must", message)
        if "_" in dest:  # a Python name, never an English word
            message = re.sub(rf"(?<![-\w']){dest}\b(?!')", flag, message)
    for name, words in (("test_images", "the --test images"), ("images", "IMAGES")):
        message = re.sub(rf"(?<=\bof ){name}\b", words, message)  # the library's arguments
    # "--force (--force)" and "--alpha (--alpha drop)": the flag once, with its value
    message = re.sub(r"(--[\w-]+) \(\1((?: [^)\s]+)?)\)", r"\1\2", message)
    return re.sub(r"[\[(]((?:'[^']*'(?:, )?)+)[\])]",
                  lambda m: ", ".join(re.findall(r"'([^']*)'", m.group(1))), message)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage block), exit
    status 2, like every other error of the command line; ``--help`` shows the usage."""

    def error(self, message: str) -> NoReturn:
        """Print ``ssimref: error: PROG: MESSAGE`` and exit with status 2.

        Parameters
        ----------
        message : str
            argparse's message.

        Returns
        -------
        NoReturn
            It always exits.

        Raises
        ------
        SystemExit
            With status 2.
        """
        print(f"ssimref: error: {self.prog}: {message} (see {self.prog} --help)",
              file=sys.stderr)
        sys.exit(2)


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
    parser.add_argument(name, help=help_text or "a .npy/.npz file, a .zarr store (an image "
                        "array, or a group with one; needs the 'dask' extra), a folder of "
                        "PNG, JPEG, BMP or TIFF images (same size; read in natural order, "
                        "img2 before img10; 16-bit PNG and TIFF stay 16-bit, data range "
                        "65535), or a bundled data set: 'digits' "
                        "(sklearn's 8x8 digits, data range 16) or 'mnist5k' (5,000 MNIST "
                        "digits 28x28, uint8; needs the 'data' extra), optionally with "
                        "':train', ':validation' or ':test' for one part of its fixed split "
                        "(e.g. mnist5k:test)")
    parser.add_argument("--color", action="store_true",
                        help="read image folders as RGB (channels last) instead of grayscale "
                        "(default: grayscale, ITU-R 601-2 luma)")
    parser.add_argument("--alpha", choices=ALPHA_MODES, default="opaque",
                        help="an image file's alpha channel: opaque (default) drops it when "
                        "every pixel is fully opaque and refuses partly transparent images; "
                        "drop ignores it; keep keeps it as the last channel")
    parser.add_argument("--key", help="array name inside a .npz file or zarr group holding "
                        "several (default: the only array, or the one named 'images')")
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
    d = SSIMConfig()
    group = parser.add_argument_group("SSIM conventions (see ssimref.SSIMConfig)")
    group.add_argument("--preset", choices=sorted(PRESETS),
                       help="start from a named convention, then apply the flags below "
                       "(default: none; the defaults below)")
    group.add_argument("--window", choices=WINDOWS,
                       help=f"window shape (default: {d.window}, or the preset's)")
    group.add_argument("--size", type=int,
                       help=f"window side in pixels (default {d.size}, or the preset's)")
    group.add_argument("--sigma", type=float,
                       help=f"Gaussian sigma (default {d.sigma:g}, or the preset's)")
    group.add_argument("--stride", type=int,
                       help=f"step between windows (default {d.stride}, or the preset's)")
    group.add_argument("--data-range", type=float, dest="data_range",
                       help="intensity range L (default: from the images: 255 for uint8, "
                       "65535 for uint16, 16 for digits; required for float and other "
                       "integer images)")
    group.add_argument("--k1", type=float,
                       help=f"c1 = (k1 L)^2 (default {d.k1:g}, or the preset's)")
    group.add_argument("--k2", type=float,
                       help=f"c2 = (k2 L)^2 (default {d.k2:g}, or the preset's)")
    group.add_argument("--covariance", choices=COVARIANCES,
                       help="normalisation of the window variances and covariance "
                       f"(default: {d.covariance}, or the preset's)")


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
                        help="MiB for tiles (default: scikit-learn's working_memory setting, "
                        f"now {default_working_memory():g} MiB)")
    if backend:
        parser.add_argument("--backend", default="auto", choices=ENGINES,
                            help="engine for the pairs: auto (numba on the CPU when "
                            "installed), reference, numba, or cupy (GPU; the matrix is "
                            "streamed to the output file tile by tile)")
    if progress:
        add_progress_argument(parser)


def add_progress_argument(parser: argparse.ArgumentParser, what: str = "a progress bar"
                          ) -> None:
    """Add ``--progress`` and ``--no-progress`` to ``parser`` (``args.progress``: True,
    False, or None for the default).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    what : str, default "a progress bar"
        What is shown, for the help.

    See Also
    --------
    ssimref.executor.progress_bar : what None means.
    """
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help=f"{what} on stderr (default: shown when stderr is a terminal "
                        f"and the job runs longer than {PROGRESS_DELAY:g} s; --progress: "
                        "always, in logs too; --no-progress: never)")


def at_least(value: Any, flag: str, low: float) -> Any:
    """``value`` when it is at least ``low`` (None passes: the option was not given).

    Parameters
    ----------
    value : int or float or None
    flag : str
        The option, for the message.
    low : int or float

    Returns
    -------
    The value.

    Raises
    ------
    ValueError
        When ``value < low``, naming ``flag``.
    """
    if value is not None and not value >= low:
        raise ValueError(f"{flag} must be >= {low:g}, got {value}")
    return value


def images_of(data: ImageSet, args: argparse.Namespace, name: str = "IMAGES") -> Any:
    """The images of ``data`` as a channels-last stack, by ``--channel-axis``.

    Parameters
    ----------
    data : ssimref.io.ImageSet
    args : argparse.Namespace
        With ``channel_axis`` (None: the images as read).
    name : str, default "IMAGES"
        The argument's name, for messages.

    Returns
    -------
    array
        ``data.images``, or a NumPy array with the channel axis moved last.

    Raises
    ------
    ValueError, TypeError
        For a channel axis the stack does not have (as
        :func:`ssimref.validation.check_channel_axis`).
    """
    if getattr(args, "channel_axis", None) is None:
        return data.images
    images = np.asarray(data.images)
    axis = check_channel_axis(args.channel_axis, images.ndim, True, name)
    if axis is None:  # not reached: channel_axis is not None here
        return data.images
    return np.ascontiguousarray(np.moveaxis(images, axis, -1))


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


def source_fields(data: ImageSet, args: argparse.Namespace) -> dict[str, Any]:
    """The sidecar entries that say which images a result was computed on, and how.

    Parameters
    ----------
    data : ssimref.io.ImageSet
    args : argparse.Namespace
        With ``backend`` and ``channel_axis`` where the command has them.

    Returns
    -------
    dict
        ``source`` (absolute for files, a data set's name as given), ``split`` for a data
        set, ``images`` (:meth:`ssimref.io.ImageSet.record`: shape, dtype, and for a folder
        the ordered file list and ``color``), ``channel_axis`` when given, and
        ``backend_requested`` (the engine that ran is the sidecar's ``engine``).
    """
    record = data.record()
    out: dict[str, Any] = {"source": record["source"], **split_field(data), "images": record}
    if getattr(args, "channel_axis", None) is not None:
        out["channel_axis"] = args.channel_axis
    if getattr(args, "backend", None) is not None:
        out["backend_requested"] = args.backend
    return out


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
        For conventions :class:`SSIMConfig` refuses, and ``--sigma`` with a window that
        is not Gaussian (it would do nothing).
    """
    base = PRESETS[args.preset](data_range=None) if args.preset else SSIMConfig()
    if base.data_range is None and args.data_range is None and default_data_range is not None:
        base = resolve_config(base, data_range=default_data_range)
    config = resolve_config(base, window=args.window, size=args.size, sigma=args.sigma,
                            stride=args.stride, data_range=args.data_range, k1=args.k1,
                            k2=args.k2, covariance=args.covariance)
    if args.sigma is not None and config.window != "gaussian":
        raise ValueError(f"--sigma does nothing with the {config.window} window (it is the "
                         "Gaussian window's width); leave it out or pass --window gaussian")
    return config


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
    OSError
        When the folder does not exist or take new files (as
        :func:`ssimref.io.check_writable`).
    """
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"output {path} must end in .npy (NumPy format, no pickles)")
    sidecar = path.with_suffix(".json")
    for p in (path, sidecar):
        check_writable(p, force=force, name="-o")
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
    OSError
        When it cannot be written (as :func:`ssimref.io.check_writable`).
    """
    if path is None:
        return None
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"--plot {path} must end in .png")
    check_writable(path, force=force, name="--plot")
    from ..plotting import require_matplotlib
    try:
        require_matplotlib("--plot")
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    return path


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--dask`` and ``--resume``, for the commands that write a matrix tile by tile.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    parser.add_argument("--dask", metavar="ADDRESS|local[:N]",
                        help="run the tiles on a Dask cluster, one task per tile, the "
                        "workers writing straight into the output, which must then be a "
                        ".zarr store: 'local' starts a LocalCluster in this process with one "
                        "worker process per CPU ('local:N' for N), 1 thread each; an address "
                        "(tcp://HOST:8786) joins a running scheduler and its workers "
                        "(needs the 'dask' extra; default: this process)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted job at -o: compute only the tiles not "
                        "yet complete (same images and options, checked; the tiles of the "
                        "first run are kept, so the result is the uninterrupted one bit for "
                        "bit); starts afresh when there is nothing to resume")


def check_matrix_output(path: str | Path, *, force: bool, resume: bool, dask: bool,
                        flag: str = "-o",
                        inputs: Sequence[str | None] = ()) -> tuple[Path, Path | None]:
    """A matrix output (``.npy``, or ``.zarr`` needed with ``--dask``) and its JSON
    sidecar, checked before any work.

    Parameters
    ----------
    path : str or Path
    force : bool
        ``--force``: existing outputs may be replaced.
    resume : bool
        ``--resume``: an incomplete job there may be continued.
    dask : bool
        ``--dask`` was given (the workers write: a zarr store is needed).
    flag : str, default "-o"
        The option's name, for messages.
    inputs : sequence of str or None, default ()
        The command's input paths (IMAGES, --test); None entries are skipped.

    Returns
    -------
    (Path, Path or None)
        The output and its sidecar (None for a zarr store, which holds its metadata).

    Raises
    ------
    ValueError
        For another suffix, a ``.npy`` with ``--dask``, a zarr store without zarr 3, or an
        output (or its sidecar) that is one of ``inputs`` (refused even with --force).
    FileNotFoundError
        When the folder does not exist.
    FileExistsError
        For existing outputs without ``--force`` (an incomplete job without ``--resume``
        or ``--force``).
    PermissionError, IsADirectoryError
        When the folder does not take new files, or a ``.npy`` output is a folder.
    """
    from ..stores import NpyStore, ZarrStore, is_zarr_path, require_zarr

    path = Path(path)
    zarr_out = is_zarr_path(path)
    if not zarr_out and path.suffix != ".npy":
        raise ValueError(f"output {flag} {path} must end in .npy (NumPy format, no pickles) "
                         "or .zarr (a zarr store)")
    if dask and not zarr_out:
        raise ValueError(f"output {flag} {path}: with --dask the workers write the matrix, "
                         "so it must be a zarr store (NAME.zarr)")
    if zarr_out:
        try:
            require_zarr()
        except ImportError as exc:
            raise ValueError(f"output {flag} {path}: {exc}") from None
    if not path.parent.exists():
        raise FileNotFoundError(f"folder {path.parent} of output {flag} {path} does not "
                                "exist")
    check_writable(path, name=flag, folder_only=True)
    if not zarr_out and path.is_dir():
        raise IsADirectoryError(f"{flag} {path} is a folder; give a file name")
    sidecar = None if zarr_out else path.with_suffix(".json")
    for given in inputs:
        if given is not None and Path(given).resolve() in {
                p.resolve() for p in (path, sidecar) if p is not None}:
            raise ValueError(f"output {flag} {path} would overwrite the input {given}; "
                             "write the matrix to another file")
    if not force:
        if zarr_out and path.exists() and not resume:
            raise FileExistsError(f"{flag} {path} exists ({ZarrStore.describe(path)}); pass "
                                  "--resume to continue an incomplete job, or --force to "
                                  "replace it")
        partial = None if zarr_out else NpyStore.partial_folder(path)
        if resume and partial is not None and path.exists() and not partial.exists():
            raise FileExistsError(f"{flag} {path} exists and holds no incomplete job "
                                  "(nothing to resume); pass --force to compute it again")
        for p in [path, sidecar] if sidecar is not None else []:
            if p.exists():
                what = f"{flag} {p} exists" if p == path else \
                    f"{p} exists (the sidecar of {flag} {path})"
                raise FileExistsError(f"{what}; pass --force to overwrite it")
        if partial is not None and partial.exists() and not resume:
            raise FileExistsError(f"{flag} {path} has an incomplete job in {partial}; pass "
                                  "--resume to continue it, or --force to start again")
    return path, sidecar


@contextlib.contextmanager
def executor_from_args(args: argparse.Namespace,
                       new_outputs: Sequence[Path] = ()) -> Iterator[Any]:
    """The executor ``--dask`` names, as a context.

    Parameters
    ----------
    args : argparse.Namespace
        With ``dask`` (None or the option's value).
    new_outputs : sequence of Path, default ()
        Outputs this run created (not resumed ones): removed when the cluster cannot be
        reached, so that a failed start leaves nothing behind.

    Yields
    ------
    None or DaskExecutor
        None (this process) without ``--dask``; else a Dask executor on the cluster it
        names, closed (a local cluster shut down) on exit.
    """
    if getattr(args, "dask", None) is None:
        yield None
        return
    from ..executor_dask import DaskExecutor, parse_dask_spec, start_client

    parse_dask_spec(args.dask)  # a malformed value is an error before anything starts
    try:
        client_context = start_client(args.dask)
        client = client_context.__enter__()
    except BaseException:
        from ..stores import remove_output
        for path in new_outputs:
            if path.exists():
                remove_output(path)
        raise
    with contextlib.ExitStack() as stack:
        stack.push(client_context.__exit__)
        yield DaskExecutor(client)


def describe_run(result: Any, executor: Any) -> str:
    """A summary of what a job computed and where.

    Parameters
    ----------
    result : ssimref.jobs.JobResult
    executor : None or DaskExecutor

    Returns
    -------
    str
        E.g. "12 tiles computed (3 already complete) with the numba engine on 2 Dask
        workers".
    """
    computed = result.computed
    before = sum(b for _, b, _ in result.tiles.values())
    where = "in this process" if executor is None else \
        f"on {len(executor.client.scheduler_info()['workers'])} Dask workers"
    done = (f"{computed} tile{'' if computed == 1 else 's'} computed"
            + (f" ({before} already complete)" if before else ""))
    return f"{done} with the {result.engine} engine {where}"
