"""Evaluation that the training losses do not grade, for any run of
:mod:`ssimref.generative.runs`.

Samples (``n`` of them; prior draws, class-balanced labels for class-conditional models,
restorations of the corrupted test digits for image-conditional ones) are compared with
the held-out test split. Every metric states its direction (:data:`DIRECTIONS`):

- ``fd``: Frechet distance between Gaussians fitted (mean, covariance with ``ddof=1``) to
  the feature-classifier activations (:mod:`~ssimref.generative.classifier`) of the samples
  and of the test digits, ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)``
  (FID's formula in this small classifier's 128 features; lower is better);
- ``class_accuracy``: the classifier's accuracy on class-conditional samples (or on
  restorations, against the true labels; higher is better);
- ``class_kl``: KL divergence (nats) of the predicted class histogram from uniform
  (0: every class equally often; lower is better);
- ``mmd2_rbf`` / ``mmd2_ssim`` with ``p_rbf`` / ``p_ssim``: unbiased MMD^2 between samples
  and test digits with the RBF mixture on pixels and with the SSIM distance kernel (Eq.
  (2), power 1), each with a permutation p-value (:func:`ssimref.mmd.mmd_test`): every run
  is graded by both kernels, not only by the one it was trained with (MMD^2: lower is
  better; p: higher means "not distinguishable from the test digits");
- ``sharpness_ratio``: mean gradient energy of the samples over that of the test digits,
  gradient energy being the mean over pixels of the squared forward differences along
  rows and columns (best at 1: blur gives less than 1, noise more); ``laplacian_ratio``:
  the same with the variance of the 5-point Laplacian;
- ``nn_ssim``: mean over samples of the largest mean SSIM to any training image, beside
  ``nn_ssim_test``, the test digits' own value (near it is healthy; well above it means
  copies of training images);
- autoencoders: ``recon_l2`` (mean per-pixel squared error), ``recon_ssim`` (mean
  per-window squared Eq. (2) distance) and ``recon_mean_ssim`` of the test digits'
  reconstructions (decoding the posterior mean for a VAE); ``recon_fd``, the Frechet
  distance above between the reconstructions and the test digits themselves, and
  ``recon_class_accuracy``, the classifier's accuracy on the reconstructions (true labels):
  reconstruction measures that no reconstruction loss (bce, l2 or SSIM) optimises;
- image-conditional models: ``restore_l2``, ``restore_ssim``, ``restore_mean_ssim`` of
  the restorations against the clean test digits, beside ``corrupted_*``, the same
  numbers for the corrupted inputs themselves.

SSIM conventions of the evaluation (:func:`evaluation_ssim`): Gaussian windows, sigma
1.5, sample covariance, data range 1; 7x7 on images of 14 pixels or more, 5x5 on smaller
ones (the 8x8 digits). They are fixed per data set, not taken from a run, so that every
run is measured the same way.

:func:`reference_metrics` gives the same numbers for ``n`` real training digits in place
of the samples: the yardstick of the table.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from ..backend import to_numpy
from ..config import SSIMConfig
from ..io import check_writable, save_json
from ..kernels import RBFMixture, SSIMDistanceKernel
from ..mmd import mmd_test
from ..pairwise import distance_matrix
from .classifier import load_classifier
from .data import rbf_variances
from .grid import grid_image, save_panels
from .losses import ImageDistance

__all__ = ["frechet_distance", "feature_statistics", "feature_frechet_distance",
           "gradient_energy", "laplacian_variance", "nearest_ssim", "evaluation_ssim",
           "evaluate_images", "evaluate_run", "reference_metrics", "run_figure", "DIRECTIONS",
           "format_metrics"]

DIRECTIONS = {
    "fd": "lower is better",
    "class_accuracy": "higher is better",
    "class_kl": "lower is better (0: classes uniform)",
    "mmd2_rbf": "lower is better",
    "p_rbf": "higher: less distinguishable from the test digits",
    "mmd2_ssim": "lower is better",
    "p_ssim": "higher: less distinguishable from the test digits",
    "sharpness_ratio": "best at 1 (blur < 1 < noise)",
    "laplacian_ratio": "best at 1 (blur < 1 < noise)",
    "nn_ssim": "compare with nn_ssim_test; far above it: copies of training images",
    "nn_ssim_test": "the test digits' own value (yardstick of nn_ssim)",
    "recon_l2": "lower is better", "recon_ssim": "lower is better",
    "recon_mean_ssim": "higher is better",
    "recon_fd": "lower is better",
    "recon_class_accuracy": "higher is better",
    "restore_l2": "lower is better", "restore_ssim": "lower is better",
    "restore_mean_ssim": "higher is better",
    "corrupted_l2": "the corrupted inputs' value (yardstick)",
    "corrupted_ssim": "the corrupted inputs' value (yardstick)",
    "corrupted_mean_ssim": "the corrupted inputs' value (yardstick)",
}


def evaluation_ssim(image_shape):
    """The SSIM conventions of the evaluation (see the module docstring)."""
    size = 7 if min(image_shape) >= 14 else 5
    return SSIMConfig(window="gaussian", size=size, sigma=1.5, covariance="sample",
                      data_range=1.0)


def frechet_distance(mu1, cov1, mu2, cov2):
    """Frechet (2-Wasserstein) distance squared between ``N(mu1, cov1)`` and
    ``N(mu2, cov2)``: ``|mu1 - mu2|^2 + tr(cov1) + tr(cov2) - 2 tr((C1 cov2 C1)^1/2)``
    with ``C1 = cov1^1/2`` (symmetric square roots by eigendecomposition; eigenvalues
    below 0 from round-off are set to 0).

    Parameters
    ----------
    mu1, mu2 : arrays (d,)
    cov1, cov2 : arrays (d, d), symmetric positive semi-definite

    Returns
    -------
    float, >= 0 up to round-off
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    cov1, cov2 = np.asarray(cov1, dtype=np.float64), np.asarray(cov2, dtype=np.float64)
    w, v = np.linalg.eigh((cov1 + cov1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    middle = root1 @ cov2 @ root1
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * cross)


def feature_statistics(features):
    """Mean ``(d,)`` and covariance ``(d, d)`` (``ddof=1``) of feature rows."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False, ddof=1)


def feature_frechet_distance(images, reference, classifier):
    """:func:`frechet_distance` between Gaussians fitted to the ``classifier``'s features
    of ``images`` ``(n, H, W)`` and of ``reference`` ``(m, H, W)`` (the ``fd`` of the
    module docstring; lower is better, 0 for identical stacks up to round-off).

    Parameters
    ----------
    images, reference : arrays (n, H, W), (m, H, W), values in [0, 1]; n, m >= 2
    classifier : FeatureClassifier
        From :func:`ssimref.generative.classifier.load_classifier`.

    Returns
    -------
    float
    """
    return frechet_distance(*feature_statistics(classifier.features(np.asarray(images))),
                            *feature_statistics(classifier.features(np.asarray(reference))))


def gradient_energy(images):
    """Per image, the mean over pixels of the squared forward differences along rows and
    along columns (``(n,)``)."""
    images = np.asarray(images, dtype=np.float64)
    dy = np.diff(images, axis=1)
    dx = np.diff(images, axis=2)
    return (np.sum(dy * dy, axis=(1, 2)) + np.sum(dx * dx, axis=(1, 2))) / \
        (images.shape[1] * images.shape[2])


def laplacian_variance(images):
    """Per image, the variance of the 5-point Laplacian over interior pixels (``(n,)``)."""
    x = np.asarray(images, dtype=np.float64)
    lap = (x[:, :-2, 1:-1] + x[:, 2:, 1:-1] + x[:, 1:-1, :-2] + x[:, 1:-1, 2:]
           - 4.0 * x[:, 1:-1, 1:-1])
    return lap.reshape(len(x), -1).var(axis=1)


def nearest_ssim(samples, train, config):
    """Per sample, the largest mean SSIM to any training image: ``1 - D^2 / P`` with
    ``D`` the Eq. (1)-uncentred distance (per window ``1 - s1 s2``) and ``P`` the number
    of window positions."""
    D2 = to_numpy(distance_matrix(samples, train, kind="eq1-uncentered", config=config,
                                  squared=True))
    positions = math.prod(config.positions(*samples.shape[1:3]))
    return 1.0 - D2.min(axis=1) / positions


def _pair_errors(outputs, targets, config, prefix):
    n = targets.shape[0]
    a, b = outputs.reshape(n, -1), targets.reshape(n, -1)
    shape = targets.shape[1:]
    eq2 = ImageDistance("ssim-eq2", shape, config)(a, b, np)[0]
    unc = ImageDistance("ssim-eq1-uncentered", shape, config)(a, b, np)[0]
    return {f"{prefix}_l2": float(np.mean((a - b) ** 2)),
            f"{prefix}_ssim": float(np.mean(eq2)),
            f"{prefix}_mean_ssim": float(1.0 - np.mean(unc))}


def evaluate_images(samples, splits, classifier, *, labels=None, permutations=200, seed=0,
                    split="test"):
    """The sample metrics of the module docstring for ``samples`` ``(n, H, W)`` in
    [0, 1] against the held-out ``split`` (``"test"``, or ``"validation"`` for choices
    such as learning rates); ``labels``: the classes the samples should show.
    ``nn_ssim_test`` is then the held-out split's own value."""
    samples = np.asarray(to_numpy(samples), dtype=np.float64)
    test = np.asarray(splits.split(split)[0])
    config = evaluation_ssim(splits.image_shape)
    out = {"n": int(len(samples))}
    out["fd"] = feature_frechet_distance(samples, test, classifier)
    predicted = classifier.predict(samples)
    freq = np.bincount(predicted, minlength=splits.n_classes) / len(predicted)
    nonzero = freq > 0
    out["class_kl"] = float(np.sum(freq[nonzero] * np.log(freq[nonzero] * splits.n_classes)))
    if labels is not None:
        out["class_accuracy"] = float(np.mean(predicted == np.asarray(labels)))
    flat = samples.reshape(len(samples), -1)
    rbf = mmd_test(flat, test.reshape(len(test), -1),
                   RBFMixture(variances=rbf_variances(splits)), permutations=permutations,
                   seed=seed)
    ssim = mmd_test(samples, test, SSIMDistanceKernel(kind="eq2", power=1, config=config),
                    permutations=permutations, seed=seed)
    out.update(mmd2_rbf=rbf.statistic, p_rbf=rbf.p_value, mmd2_ssim=ssim.statistic,
               p_ssim=ssim.p_value)
    out["sharpness_ratio"] = float(gradient_energy(samples).mean() /
                                   gradient_energy(test).mean())
    out["laplacian_ratio"] = float(laplacian_variance(samples).mean() /
                                   laplacian_variance(test).mean())
    out["nn_ssim"] = float(nearest_ssim(samples, splits.train, config).mean())
    out["nn_ssim_test"] = _nn_ssim_heldout(splits, split)
    return out


_NN_HELDOUT = {}


def _nn_ssim_heldout(splits, split):
    key = (splits.name, split)
    if key not in _NN_HELDOUT:
        config = evaluation_ssim(splits.image_shape)
        _NN_HELDOUT[key] = float(nearest_ssim(np.asarray(splits.split(split)[0]),
                                              splits.train, config).mean())
    return _NN_HELDOUT[key]


@functools.lru_cache(maxsize=8)
def reference_metrics(dataset, n=500, permutations=200, seed=0, split="test"):
    """The metrics for ``n`` real training digits in place of samples, against the
    held-out ``split``: the yardstick of a table. ``nn_ssim`` is the held-out digits'
    value (training digits are their own nearest neighbours) and ``class_accuracy`` the
    classifier's accuracy on the held-out digits (it was trained on the training
    digits)."""
    from .data import load_splits
    splits = load_splits(dataset)
    classifier = load_classifier(splits)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(splits.train), size=min(n, len(splits.train)), replace=False)
    out = evaluate_images(splits.train[idx], splits, classifier,
                          labels=splits.train_labels[idx], permutations=permutations,
                          seed=seed, split=split)
    out["nn_ssim"] = out["nn_ssim_test"]  # training digits are their own nearest neighbours
    # and the classifier was trained on them: its accuracy on held-out digits instead
    out["class_accuracy"] = classifier.accuracy(*splits.split(split))
    return out


def evaluate_run(run_dir, n=500, permutations=200, device=None, write=True, force=False,
                 figure=True, split="test"):
    """Evaluate the model of a run folder (see the module docstring).

    Parameters
    ----------
    run_dir : str or Path
    n : int
        Samples (at most the test split's size for image-conditional models).
    permutations : int
        Relabellings of each MMD permutation test.
    device : {"cpu", "gpu"}, optional
        Where the model computes (the run's device when None).
    write : bool
        Write ``evaluation.json`` (and ``figure.png`` when ``figure``) into the folder
        (``evaluation-validation.json`` and no figure for the validation split).
    force : bool
        Overwrite an existing evaluation file.
    split : {"test", "validation"}
        The held-out digits compared with: the test split for reporting, the validation
        split for choices made before it (learning rates, early stopping).

    Returns
    -------
    dict
        ``model``, ``step``, ``done``, ``metrics``, ``directions``, ``reference`` (the
        real digits' values), ``settings``.
    """
    from threadpoolctl import threadpool_limits

    from .runs import load_run
    run_dir = Path(run_dir)
    if split not in ("test", "validation"):
        raise ValueError(f"split must be 'test' or 'validation', got {split!r}")
    target = run_dir / ("evaluation.json" if split == "test" else
                        "evaluation-validation.json")
    if write and run_dir.is_dir():  # a missing run folder: load_run says what it needs
        check_writable(target, force=force, name="the evaluation file")
        if figure and split == "test":
            check_writable(run_dir / "figure.png", force=True, name="the figure")
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    run = load_run(run_dir, device=device)
    model, splits = run.model, run.splits
    rng = np.random.default_rng([run.config.seed, 2])
    with threadpool_limits(limits=1, user_api="blas"):
        classifier = load_classifier(splits)
        labels = None
        held, held_labels = splits.split(split)
        held = np.asarray(held)
        image_conditional = getattr(model, "conditioning", None) == "image"
        if image_conditional:
            n = min(n, len(held))
            labels = held_labels[:n]
            samples = np.asarray(to_numpy(model.restore(model.corrupted(split)[:n], rng)))
        else:
            if getattr(model, "conditional", False):
                labels = np.arange(n) % splits.n_classes
            samples = np.asarray(model.sample(n, rng, labels))
        metrics = evaluate_images(samples, splits, classifier, labels=labels,
                                  permutations=permutations, seed=run.config.seed,
                                  split=split)
        config = evaluation_ssim(splits.image_shape)
        if hasattr(model, "reconstruct"):
            recon = np.asarray(to_numpy(model.reconstruct(held)))
            metrics.update(_pair_errors(recon, held, config, "recon"))
            metrics["recon_fd"] = feature_frechet_distance(recon, held, classifier)
            metrics["recon_class_accuracy"] = float(np.mean(
                classifier.predict(recon) == np.asarray(held_labels)))
        if image_conditional:
            metrics.update(_pair_errors(samples, held[:n], config, "restore"))
            metrics.update(_pair_errors(model.corrupted(split)[:n], held[:n], config,
                                        "corrupted"))
        reference = reference_metrics(splits.name, n=min(n, len(splits.train)),
                                      permutations=permutations, split=split)
    out = {"model": run.name, "run": str(run_dir), "step": run.meta["step"],
           "done": bool(run.meta.get("done", False)),
           "train_seconds": run.meta.get("seconds"), "metrics": metrics,
           "directions": {k: DIRECTIONS[k] for k in metrics if k in DIRECTIONS},
           "reference": reference,
           "settings": {"n": n, "permutations": permutations, "split": split,
                        "ssim": {"window": config.window, "size": config.size,
                                 "sigma": config.sigma, "covariance": config.covariance,
                                 "data_range": config.data_range},
                        "classifier_test_accuracy": classifier.test_accuracy}}
    if write:
        save_json(target, out, force=True)
        if figure and split == "test":
            run_figure(run, run_dir / "figure.png", samples=samples, force=True)
    return out


def run_figure(run, path, samples=None, force=False):
    """A PNG of a run: up to 100 samples beside 100 real test digits; for autoencoders
    also test digits beside their reconstructions, for image-conditional models clean,
    corrupted and restored test digits."""
    model, splits = run.model, run.splits
    test = np.asarray(splits.test[:100])
    panels = []
    if getattr(model, "conditioning", None) == "image":
        corrupted = model.corrupted("test")[:100]
        restored = to_numpy(model.restore(corrupted))
        panels += [("clean test digits", grid_image(test, ncols=10, scale=2)),
                   ("corrupted inputs", grid_image(corrupted, ncols=10, scale=2)),
                   ("restorations", grid_image(restored, ncols=10, scale=2))]
    else:
        if samples is None:
            rng = np.random.default_rng([run.config.seed, 2])
            labels = np.repeat(np.arange(splits.n_classes), 10)[:100] \
                if getattr(model, "conditional", False) else None
            samples = model.sample(100, rng, labels)
        panels += [(f"{run.name} samples", grid_image(np.asarray(samples)[:100], ncols=10,
                                                       scale=2)),
                   ("real test digits", grid_image(test, ncols=10, scale=2))]
        if hasattr(model, "reconstruct"):
            panels.append(("reconstructions of the test digits",
                           grid_image(to_numpy(model.reconstruct(test)), ncols=10, scale=2)))
    save_panels(path, panels, force=force)


def format_metrics(result):
    """Lines ``name: value  (direction) [real digits: value]`` of an evaluation."""
    lines = []
    for key, value in result["metrics"].items():
        if key == "n":
            continue
        ref = result["reference"].get(key)
        ref_text = f"  [real digits: {ref:.4g}]" if isinstance(ref, float) else ""
        lines.append(f"{key:>20}: {value:.4g}  ({DIRECTIONS.get(key, '')}){ref_text}")
    return lines
