"""The digits demo (``ssimref demo``): SSIM kernels in scikit-learn on its bundled digits.

1. Stratified 5-fold cross-validated accuracy of SVCs with the SSIM kernel
   ``-1/2 H D H`` (Eq. (1) exact and Eq. (2)), an RBF SVC and a linear SVC on raw pixels.
2. Robustness: every model trained on clean digits of one stratified split and tested on
   the held-out digits with their lighting changed or noise added.
3. A 2-D KernelPCA embedding of all digits and a heatmap of the SSIM kernel, as PNG files
   (when matplotlib is installed), plus ``results.json`` with every number printed.

SSIM conventions: 3x3 uniform windows, stride 1, sample covariance ``1/(q-1)`` (the
paper's), data range 16, ``k1 = 0.01``, ``k2 = 0.03``. On 8x8 images a 7x7 window leaves
only 4 positions, each covering almost the whole digit, so SSIM degenerates into a global
statistic; 3x3 is the smallest odd window with a meaningful local variance and gives 36
positions. A Gaussian of sigma 1.5 over 3 taps is nearly flat (weights 0.31, 0.38, 0.31),
so the window is uniform, for which the sample covariance is exactly the paper's.

Distances are computed once for all images and sliced per fold; each fold's kernel is
centred on its training block and the held-out rows with the training statistics,
exactly what :class:`ssimref.kernels.SSIMKernel` does inside a Pipeline (which would
recompute the distances for every fold).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .config import SSIMConfig
from .io import check_writable, load_images, save_json
from .kernels.centering import centered_kernel, centered_test_kernel
from .kinds import KindName
from .pairwise import distance_matrix
from .plotting import have_matplotlib, save_embedding_plot, save_kernel_heatmap

__all__ = ["DEMO_CONFIG", "DISTORTIONS", "run_demo"]

DEMO_CONFIG = SSIMConfig(window="uniform", size=3, stride=1, covariance="sample",
                         data_range=16.0)

KINDS: tuple[KindName, ...] = ("eq1", "eq2")
FOLDS = 5
TEST_FRACTION = 0.3
NOISE_SIGMA = 2.0

#: name -> (description, function of (images, rng)); every result is clipped to 0..16.
DISTORTIONS: dict[str, tuple[str, Callable[[Any, np.random.Generator], Any]]] = {
    "clean": ("unchanged", lambda x, rng: x),
    "contrast 0.6, brightness +4": ("0.6 x + 4", lambda x, rng: 0.6 * x + 4.0),
    "contrast 0.5": ("0.5 x", lambda x, rng: 0.5 * x),
    "brightness +5": ("x + 5", lambda x, rng: x + 5.0),
    f"noise sigma {NOISE_SIGMA:g}": (f"x + N(0, {NOISE_SIGMA:g}^2) per pixel",
                                     lambda x, rng: x + rng.normal(0.0, NOISE_SIGMA, x.shape)),
}

MODELS = ("SSIM eq1", "SSIM eq2", "RBF pixels", "linear pixels")


def _distort(name: str, images: npt.NDArray[Any],
             rng: np.random.Generator) -> npt.NDArray[np.float64]:
    return np.clip(DISTORTIONS[name][1](images, rng), 0.0, 16.0)


def _ssim_svc_accuracy(D: npt.NDArray[np.float64], train: npt.NDArray[np.intp],
                       test: npt.NDArray[np.intp], y_train: npt.NDArray[Any],
                       y_test: npt.NDArray[Any],
                       D_test: npt.NDArray[np.float64] | None = None) -> float:
    """Accuracy of ``SVC(kernel="precomputed")`` on ``-1/2 H D H`` (p = 1)."""
    from sklearn.svm import SVC

    K_train, centerer = centered_kernel(D[np.ix_(train, train)], 1.0, with_centerer=True)
    block = D[np.ix_(test, train)] if D_test is None else D_test
    K_test = centered_test_kernel(block, centerer, 1.0)
    model = SVC(kernel="precomputed").fit(K_train, y_train)
    return float(model.score(K_test, y_test))


def _pixel_models() -> dict[str, Any]:
    from sklearn.svm import SVC

    return {"RBF pixels": SVC(kernel="rbf", gamma="scale"),
            "linear pixels": SVC(kernel="linear")}


def _check_folder(folder: Path, force: bool) -> None:
    if folder.exists():
        if not folder.is_dir():
            raise FileExistsError(f"{folder} exists and is not a folder; choose another "
                                  "--output")
        if not force:
            raise FileExistsError(f"folder {folder} exists; pass --force to overwrite the "
                                  "demo's files in it, or choose another --output")
        check_writable(folder / "results.json", force=True, name="--output")
    else:
        check_writable(folder, name="--output")


def _table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)  # noqa: E731
                               for i, (v, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def run_demo(output: str | os.PathLike[str] = "ssimref-demo", *, force: bool = False,
             seed: int = 0, limit: int | None = None, plots: bool = True,
             progress: bool | None = False,
             echo: Callable[[str], object] = print) -> dict[str, Any]:
    """Run the digits demo and write its files into the folder ``output``.

    Parameters
    ----------
    output : str or Path, default "ssimref-demo"
        Folder for ``results.json`` and the PNG plots; created if missing (its parent
        must exist); an existing folder is refused unless ``force``.
    force : bool, default False
        Overwrite the demo's files in an existing folder.
    seed : int, default 0
        Seeds the folds, the split and the noise.
    limit : int, optional
        Use a stratified subset of this many digits (quick runs); all 1797 by default.
    plots : bool, default True
        Draw the PNG plots (skipped with a note when matplotlib is missing).
    progress : bool or None, default False
        Progress bars for the distance matrices (None: on a terminal, for matrices that
        take longer than a second).
    echo : callable, default print
        Where the tables go.

    Returns
    -------
    dict
        Everything written to ``results.json``.

    Raises
    ------
    FileExistsError
        When ``output`` exists (as a folder, without ``force``; or as a file).
    FileNotFoundError
        When the parent folder of ``output`` does not exist.
    PermissionError
        When the folder cannot be written.
    ValueError
        For a ``limit`` outside 50..1797.
    KeyboardInterrupt
        On Ctrl-C or SIGTERM (:mod:`ssimref.interrupt`), after removing the folder when
        this call created it (an error does the same).

    See Also
    --------
    ssimref.kernels.SSIMKernel : the transformer the demo's centring reproduces.

    References
    ----------
    Ghojogh, Karray, Crowley, ICIAR 2020, Section 2 (the SSIM kernel ``-1/2 H D H``).
    """
    from sklearn.model_selection import train_test_split

    start = time.perf_counter()
    folder = Path(output)
    _check_folder(folder, force)
    data = load_images("digits")
    images, labels = data.images, data.labels
    assert labels is not None  # the digits are labelled
    if limit is not None:
        if not 50 <= int(limit) <= len(labels):
            raise ValueError(f"limit must be between 50 and {len(labels)}, got {limit}")
        if int(limit) < len(labels):
            keep, _ = train_test_split(np.arange(len(labels)), train_size=int(limit),
                                       stratify=labels, random_state=seed)
            keep = np.sort(keep)
            images, labels = images[keep], labels[keep]
    created = not folder.exists()
    if created:
        folder.mkdir()
    try:
        return _demo(folder, images, labels, start, force=force, seed=seed, plots=plots,
                     progress=progress, echo=echo)
    except BaseException:  # an error or an interruption: remove the folder it started
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _demo(folder: Path, images: npt.NDArray[Any], labels: npt.NDArray[Any], start: float, *,
          force: bool, seed: int, plots: bool, progress: bool | None,
          echo: Callable[[str], object]) -> dict[str, Any]:
    from sklearn.model_selection import StratifiedKFold, train_test_split

    n = len(labels)
    flat = images.reshape(n, -1)
    config = DEMO_CONFIG
    conventions = (f"window uniform 3x3, stride 1, covariance sample 1/(q-1), data range 16, "
                   f"k1 {config.k1:g}, k2 {config.k2:g}")
    echo(f"ssimref demo: SSIM kernels on scikit-learn's digits ({n} images 8x8, values "
         f"0..16)\nSSIM: {conventions}\nkernel: K = -1/2 H D H (power 1), D = SSIM "
         "distance matrix; SVC(kernel='precomputed', C=1)")

    timings: dict[str, float] = {}
    D: dict[str, npt.NDArray[np.float64]] = {}
    for kind in KINDS:
        t0 = time.perf_counter()
        D[kind] = distance_matrix(images, kind=kind, config=config, progress=progress)
        timings[f"distance matrix {kind} ({n} x {n})"] = time.perf_counter() - t0

    # 1. Cross-validation on clean digits.
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    scores: dict[str, list[float]] = {model: [] for model in MODELS}
    t0 = time.perf_counter()
    for train, test in folds.split(flat, labels):
        for kind in KINDS:
            scores[f"SSIM {kind}"].append(_ssim_svc_accuracy(
                D[kind], train, test, labels[train], labels[test]))
        for name, model in _pixel_models().items():
            model.fit(flat[train], labels[train])
            scores[name].append(float(model.score(flat[test], labels[test])))
    timings["table 1 fits"] = time.perf_counter() - t0
    table1 = {model: {"mean": float(np.mean(s)), "std": float(np.std(s)), "folds": s}
              for model, s in scores.items()}
    names = {"SSIM eq1": "SVC, SSIM kernel, Eq. (1) exact", "SSIM eq2":
             "SVC, SSIM kernel, Eq. (2)", "RBF pixels": "SVC, RBF on pixels (gamma 'scale')",
             "linear pixels": "SVC, linear on pixels"}
    echo(f"\nTable 1. Stratified {FOLDS}-fold cross-validation (shuffled, seed {seed}): "
         "accuracy, mean +- std over folds")
    echo(_table(["model", "accuracy"],
                [[names[m], f"{table1[m]['mean']:.4f} +- {table1[m]['std']:.4f}"]
                 for m in MODELS]))

    # 2. Train on clean digits, test on changed ones.
    t0 = time.perf_counter()
    train, test = train_test_split(np.arange(n), test_size=TEST_FRACTION, stratify=labels,
                                   random_state=seed)
    rng = np.random.default_rng(seed)
    pixel_models = {name: model.fit(flat[train], labels[train])
                    for name, model in _pixel_models().items()}
    table2 = {}
    for condition in DISTORTIONS:
        changed = _distort(condition, images[test], rng)
        row = {}
        for kind in KINDS:
            D_test = None if condition == "clean" else distance_matrix(
                changed, images[train], kind=kind, config=config, progress=progress)
            row[f"SSIM {kind}"] = _ssim_svc_accuracy(D[kind], train, test, labels[train],
                                                     labels[test], D_test)
        for name, model in pixel_models.items():
            row[name] = float(model.score(changed.reshape(len(test), -1), labels[test]))
        table2[condition] = row
    timings["table 2"] = time.perf_counter() - t0
    echo(f"\nTable 2. Trained on clean digits, tested on changed ones: stratified split, "
         f"{len(train)} train / {len(test)} test (seed {seed}); changed pixels clipped to "
         "0..16")
    echo(_table(["test digits", *MODELS],
                [[f"{c} ({DISTORTIONS[c][0]})", *(f"{table2[c][m]:.4f}" for m in MODELS)]
                 for c in DISTORTIONS]))

    # 3. Plots.
    files = []
    if plots and have_matplotlib():
        from sklearn.decomposition import KernelPCA

        t0 = time.perf_counter()
        K = centered_kernel(D["eq2"], 1.0)
        embedding = KernelPCA(n_components=2, kernel="precomputed",
                              random_state=seed).fit_transform(K)
        save_embedding_plot(embedding, labels, folder / "kernel_pca.png", force=force,
                            title="KernelPCA of the SSIM kernel (Eq. (2), 3x3 windows)")
        order = np.argsort(labels, kind="stable")
        save_kernel_heatmap(K, folder / "kernel_heatmap.png", order=order, force=force,
                            title="SSIM kernel -1/2 H D H (Eq. (2)), digits sorted by label")
        files = ["kernel_pca.png", "kernel_heatmap.png"]
        timings["plots"] = time.perf_counter() - t0
    elif plots:
        echo("\nmatplotlib is not installed: plots skipped (pip install 'ssimref[plot]')")

    timings["total"] = time.perf_counter() - start
    results = {
        "what": "ssimref demo: SSIM-kernel SVC on scikit-learn's digits",
        "images": n, "seed": seed, "config": asdict(config),
        "kernel": "K = -1/2 H D H, power 1; SVC(kernel='precomputed', C=1)",
        "table1": {"folds": FOLDS, "shuffle": True, "accuracy": table1},
        "table2": {"train": len(train), "test": len(test), "test_fraction": TEST_FRACTION,
                   "distortions": {c: DISTORTIONS[c][0] for c in DISTORTIONS},
                   "clip": [0, 16], "accuracy": table2},
        "files": files, "seconds": {k: round(v, 3) for k, v in timings.items()},
    }
    save_json(folder / "results.json", results, force=force)
    written = ", ".join(["results.json", *files])
    echo(f"\nwrote {written} into {folder}/ in {timings['total']:.1f} s")
    return results
