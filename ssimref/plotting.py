"""PNG figures of kernels and embeddings (the optional ``plot`` extra: matplotlib).

Figures are drawn on matplotlib's object API with the Agg canvas, so no global pyplot
state or display is touched, and written atomically (:func:`ssimref.io.atomic_path`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .backend import ArrayLike
from .io import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PathLike = str | os.PathLike[str]

__all__ = ["have_matplotlib", "require_matplotlib", "save_kernel_heatmap",
           "save_embedding_plot"]

#: Largest number of rows/columns drawn in a heatmap; larger matrices are subsampled
#: with a regular stride (a 50,000 x 50,000 kernel is never read in full for a picture).
MAX_HEATMAP_SIDE = 2000


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported.

    Returns
    -------
    bool
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def require_matplotlib(what: str = "plots") -> None:
    """Refuse to go on without matplotlib.

    Parameters
    ----------
    what : str, default "plots"
        What needs it, for the message.

    Raises
    ------
    ImportError
        When matplotlib is missing; the message names the ``plot`` extra.
    """
    if not have_matplotlib():
        raise ImportError(f"{what} need matplotlib; install the 'plot' extra "
                          "(pip install 'ssimref[plot]')")


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: PathLike, force: bool) -> None:
    with atomic_path(path, force) as tmp:
        figure.savefig(tmp, format="png", bbox_inches="tight")


def save_kernel_heatmap(K: ArrayLike, path: PathLike, *, title: str = "",
                        order: ArrayLike | None = None, force: bool = False) -> None:
    """Draw a kernel matrix as a heatmap PNG.

    Colours are symmetric about 0 and scaled to the 99.5th percentile of ``|K|``; at most
    ``MAX_HEATMAP_SIDE`` rows and columns are drawn (a regular subsample beyond).

    Parameters
    ----------
    K : NumPy array or memmap, shape (n, m)
        Kernel values (a memmap is read only at the drawn rows and columns).
    path : str or Path
        Output ``.png``.
    title : str, default ""
    order : array_like of int, optional
        Row/column order for a square ``K`` (e.g. indices sorted by class label).
    force : bool, default False
        Overwrite an existing file.

    Raises
    ------
    ImportError
        Without matplotlib.
    FileExistsError, FileNotFoundError
        As for :func:`ssimref.io.atomic_path`.

    See Also
    --------
    save_embedding_plot
    """
    require_matplotlib("heatmaps")
    n, m = K.shape
    rows = np.arange(n) if order is None else np.asarray(order)
    cols = np.arange(m) if order is None or n != m else np.asarray(order)
    row_step = max(1, -(-len(rows) // MAX_HEATMAP_SIDE))
    col_step = max(1, -(-len(cols) // MAX_HEATMAP_SIDE))
    rows, cols = rows[::row_step], cols[::col_step]
    shown = np.asarray(K[np.ix_(rows, cols)], dtype=np.float64)
    # The diagonal (self-similarities) dwarfs the rest; scale colours to the bulk.
    limit = float(np.quantile(np.abs(shown), 0.995)) or float(np.max(np.abs(shown))) or 1.0
    figure = _figure(6.0, 5.0)
    ax = figure.add_subplot()
    image = ax.imshow(shown, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    figure.colorbar(image, ax=ax, extend="both")
    ax.set_title(title)
    ax.set_xlabel("image" + (f" (one in {col_step})" if col_step > 1 else ""))
    ax.set_ylabel("image" + (f" (one in {row_step})" if row_step > 1 else ""))
    _save(figure, path, force)


def save_embedding_plot(Z: ArrayLike, labels: ArrayLike | None, path: PathLike, *,
                        title: str = "", force: bool = False) -> None:
    """Scatter plot of a 2-D embedding coloured by label, as PNG.

    Parameters
    ----------
    Z : array_like, shape (n, 2)
        Points (e.g. a KernelPCA embedding).
    labels : array_like, shape (n,), or None
        One colour and legend entry per distinct label; one colour for all when None.
    path : str or Path
        Output ``.png``.
    title : str, default ""
    force : bool, default False
        Overwrite an existing file.

    Raises
    ------
    ImportError
        Without matplotlib.
    FileExistsError, FileNotFoundError
        As for :func:`ssimref.io.atomic_path`.

    See Also
    --------
    save_kernel_heatmap
    """
    require_matplotlib("embedding plots")
    Z = np.asarray(Z, dtype=np.float64)
    figure = _figure(6.0, 5.5)
    ax = figure.add_subplot()
    if labels is None:
        ax.scatter(Z[:, 0], Z[:, 1], s=6)
    else:
        labels = np.asarray(labels)
        for value in np.unique(labels):
            pts = Z[labels == value]
            ax.scatter(pts[:, 0], pts[:, 1], s=6, label=str(value))
        ax.legend(markerscale=2.5, fontsize="small", title="label", loc="best")
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    ax.set_title(title)
    _save(figure, path, force)
