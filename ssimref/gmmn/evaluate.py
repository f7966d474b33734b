"""Evaluation of generative models on held-out digits.

For ``n`` generated images (and, where it applies, their conditioning labels):

- ``mmd2_rbf``: unbiased MMD^2 to the test split with the data-space RBF mixture
  (variances 0.2, 0.5, 1, 2, 4, 8 on pixel vectors in [0, 1]);
- ``mmd2_ssim``: unbiased MMD^2 to the test split with the paper's SSIM distance kernel
  (Eq. (2), power 1: half the energy distance with ``D``), 5x5 Gaussian windows, sigma 1.5,
  sample covariance, data range 1;
- ``parzen_ll``: Li et al.'s Parzen-window log-likelihood of the test split (nats per
  image, mean and its standard error) under an isotropic Gaussian kernel density placed on
  ``parzen_samples`` generated images, its width ``parzen_sigma`` picked on the validation
  split from a grid;
- ``nearest_ssim``: the mean over samples of the mean SSIM of a sample to its most similar
  training image (near 1: copies of training images; the test split's own value is the
  yardstick);
- ``class_kl``: KL divergence (nats) of the class histogram that a logistic-regression
  classifier trained on the real training digits predicts for the samples, from the
  uniform distribution (0 when every class is generated equally often; log 10 = 2.30 when
  one class only);
- ``class_accuracy`` (conditional models): that classifier's accuracy on the samples,
  with the conditioning labels as the truth.

The reference row :func:`reference_metrics` gives the same numbers for real digits.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np

from ..backend import to_numpy
from ..io import save_json
from ..kernels import RBFMixture, SSIMDistanceKernel
from ..generative.data import rbf_variances as dataset_rbf_variances
from ..generative.evaluate import nearest_ssim
from ..tiling import resolve_working_memory, row_batches
from .data import load_digit_splits
from ..mmd import mmd2
from .train import TrainConfig, load_run, ssim_config

__all__ = ["parzen_log_likelihood", "select_parzen_sigma", "nearest_ssim", "evaluate_samples",
           "evaluate_run", "reference_metrics", "format_evaluation", "PARZEN_SIGMAS",
           "METRICS", "DIRECTIONS"]

PARZEN_SIGMAS = tuple(float(s) for s in np.geomspace(0.05, 1.0, 20))
METRICS = ("mmd2_rbf", "mmd2_ssim", "parzen_ll", "nearest_ssim", "class_kl",
           "class_accuracy")
#: Which way each metric is better; the real digits' values (:func:`reference_metrics`)
#: are the yardstick printed beside them.
DIRECTIONS = {
    "mmd2_rbf": "lower is better",
    "mmd2_ssim": "lower is better",
    "parzen_ll": "higher is better (nats per test image)",
    "parzen_ll_se": "standard error of parzen_ll",
    "parzen_sigma": "Parzen width, chosen on the validation split",
    "parzen_centers": "generated images the density is built on",
    "nearest_ssim": "near the real digits' value is healthy; far above it: copies of "
                    "training images",
    "class_kl": "lower is better (0: classes uniform)",
    "class_accuracy": "higher is better",
}


def parzen_log_likelihood(centers, points, sigma, *, working_memory=None):
    """``log p(x)`` of each point under ``p = (1/N) sum_i N(x; c_i, sigma^2 I)``.

    Parameters
    ----------
    centers : array (N, d)
    points : array (M, d)
    sigma : float
    working_memory : float, optional
        MiB for a batch of points (scikit-learn's setting when None).

    Returns
    -------
    array (M,), nats
    """
    from scipy.special import logsumexp
    centers = np.asarray(centers, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    n, d = centers.shape
    c2 = np.sum(centers * centers, axis=1)
    out = np.empty(points.shape[0])
    const = -math.log(n) - 0.5 * d * math.log(2.0 * math.pi * sigma * sigma)
    # a batch row holds its squared distances to every centre and two temporaries
    for rows in row_batches(points.shape[0], 3 * 8 * n,
                            resolve_working_memory(working_memory)):
        p = points[rows]
        d2 = np.maximum(np.sum(p * p, axis=1)[:, None] + c2[None, :] - 2.0 * p @ centers.T,
                        0.0)
        out[rows] = logsumexp(-d2 / (2.0 * sigma * sigma), axis=1) + const
    return out


def select_parzen_sigma(centers, validation, sigmas=PARZEN_SIGMAS):
    """The ``sigma`` of the grid with the highest mean validation log-likelihood."""
    scores = [float(np.mean(parzen_log_likelihood(centers, validation, s))) for s in sigmas]
    return float(sigmas[int(np.argmax(scores))])


@functools.lru_cache(maxsize=2)
def _classifier(dataset):
    from sklearn.linear_model import LogisticRegression
    splits = load_digit_splits(dataset)
    model = LogisticRegression(max_iter=5000)
    model.fit(splits.train.reshape(len(splits.train), -1), splits.train_labels)
    return model


def _mmd2(X, Y, kernel):
    return float(mmd2(X, Y, kernel, estimator="unbiased"))


def evaluate_samples(samples, splits, *, labels=None, parzen_centers=None, dataset="digits",
                     ssim=None, rbf_variances=None):
    """The metrics of the module docstring for generated ``samples``.

    Parameters
    ----------
    samples : array (n, H, W) in [0, 1]
    splits : DigitSplits
    labels : int array (n,), optional
        Conditioning labels (conditional models).
    parzen_centers : array (N, H, W), optional
        Images the Parzen density is built on (``samples`` when None).
    ssim : SSIMConfig, optional
        Conventions of the SSIM kernel and of ``nearest_ssim`` (the training default).
    rbf_variances : tuple, optional
        Variances of the RBF mixture (the data set's default when None).

    Returns
    -------
    dict of floats
    """
    defaults = TrainConfig()
    ssim = ssim or ssim_config(defaults)
    rbf_variances = rbf_variances or dataset_rbf_variances(splits)
    samples = np.asarray(to_numpy(samples), dtype=np.float64)
    flat = samples.reshape(len(samples), -1)
    test = splits.test.reshape(len(splits.test), -1)
    out = {"n": int(len(samples)),
           "mmd2_rbf": _mmd2(flat, test, RBFMixture(variances=rbf_variances)),
           "mmd2_ssim": _mmd2(samples, splits.test,
                              SSIMDistanceKernel(kind="eq2", power=1, config=ssim))}
    centers = flat if parzen_centers is None else \
        np.asarray(to_numpy(parzen_centers), dtype=np.float64).reshape(len(parzen_centers), -1)
    sigma = select_parzen_sigma(centers, splits.validation.reshape(len(splits.validation), -1))
    ll = parzen_log_likelihood(centers, test, sigma)
    out.update(parzen_ll=float(ll.mean()), parzen_ll_se=float(ll.std(ddof=1) /
                                                              math.sqrt(len(ll))),
               parzen_sigma=sigma, parzen_centers=int(len(centers)))
    out["nearest_ssim"] = float(nearest_ssim(samples, splits.train, ssim).mean())
    predicted = _classifier(dataset).predict(flat)
    freq = np.bincount(predicted, minlength=splits.n_classes) / len(predicted)
    nonzero = freq > 0
    out["class_kl"] = float(np.sum(freq[nonzero] * np.log(freq[nonzero] * splits.n_classes)))
    if labels is not None:
        out["class_accuracy"] = float(np.mean(predicted == np.asarray(labels)))
    return out


def reference_metrics(n=500, seed=0, dataset="digits"):
    """The metrics for real digits: ``n`` training images as the samples (MMD^2 and
    classes), all training images as Parzen centres, the test images for
    ``nearest_ssim`` and, with their true labels, ``class_accuracy``."""
    splits = load_digit_splits(dataset)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(splits.train), size=min(n, len(splits.train)), replace=False)
    out = evaluate_samples(splits.train[idx], splits, labels=splits.train_labels[idx],
                           parzen_centers=splits.train, dataset=dataset)
    out["nearest_ssim"] = float(nearest_ssim(splits.test, splits.train, ssim_config(
        TrainConfig())).mean())
    predicted = _classifier(dataset).predict(splits.test.reshape(len(splits.test), -1))
    out["class_accuracy"] = float(np.mean(predicted == splits.test_labels))
    return out


def evaluate_run(run_dir, n=500, parzen_samples=2000, device=None, write=True,
                 force=True, reference=False):
    """Evaluate the model of a run folder (see the module docstring).

    ``n`` samples for the MMDs, the memorisation check and the classifier,
    ``parzen_samples`` for the Parzen density; noise and labels from a generator seeded
    with the run's seed (so an evaluation is reproducible). Writes ``evaluation.json``
    into the run folder when ``write``. With ``reference``, the result also holds
    ``reference`` (:func:`reference_metrics` for the run's data set, the same ``n``) and
    ``directions`` (:data:`DIRECTIONS`).
    """
    run = load_run(run_dir, device=device)
    xp, gmmn, config = run.xp, run.gmmn, run.config
    rng = np.random.default_rng([config.seed, 2])
    total = max(n, parzen_samples)
    labels = (np.arange(total) % run.splits.n_classes) if gmmn.conditional else None
    with _blas_threads(1):
        images = to_numpy(gmmn.sample_images(gmmn.prior(rng, total), xp, labels))
        out = evaluate_samples(images[:n], run.splits,
                               labels=None if labels is None else labels[:n],
                               parzen_centers=images[:parzen_samples],
                               dataset=config.dataset)
    out.update(step=run.meta["step"], done=bool(run.meta.get("done", False)),
               train_seconds=run.meta.get("seconds"))
    if reference:
        out["reference"] = reference_metrics(n=n, dataset=config.dataset)
        out["directions"] = {k: v for k, v in DIRECTIONS.items() if k in out}
    if write:
        save_json(Path(run_dir) / "evaluation.json", out, force=force)
    return out


def format_evaluation(out):
    """Lines ``name: value  (direction)  [real digits: value]`` of an evaluation.

    Parameters
    ----------
    out : dict
        From :func:`evaluate_run` (with ``reference=True`` for the real digits' values).

    Returns
    -------
    list of str
    """
    reference = out.get("reference", {})
    lines = []
    for key, value in out.items():
        if key in ("reference", "directions"):
            continue
        text = f"{value:.6g}" if isinstance(value, float) else f"{value}"
        direction = DIRECTIONS.get(key)
        ref = reference.get(key)
        lines.append(f"{key:>16}: {text}" + (f"  ({direction})" if direction else "")
                     + (f"  [real digits: {ref:.6g}]" if isinstance(ref, float) else ""))
    return lines


def _blas_threads(n):
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=n, user_api="blas")


def load_evaluation(run_dir):
    return json.loads((Path(run_dir) / "evaluation.json").read_text())
