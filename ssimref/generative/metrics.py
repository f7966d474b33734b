"""Cheap metrics logged during training (the full evaluation is
:mod:`ssimref.generative.evaluate`)."""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..kernels import RBFMixture
from ..mmd import mmd2
from .data import rbf_variances
from .losses import ImageDistance

__all__ = ["validation_metrics", "reconstruction_errors"]


def validation_metrics(model, samples):
    """``val_mmd2_rbf``: unbiased MMD^2 between ``samples`` ``(n, H, W)`` and the
    validation split, with the data set's RBF mixture on pixel vectors (lower is better;
    it can be slightly negative)."""
    splits = model.splits
    X = np.asarray(to_numpy(samples), dtype=np.float64).reshape(len(samples), -1)
    Y = splits.validation.reshape(len(splits.validation), -1)
    return {"val_mmd2_rbf": float(mmd2(X, Y, RBFMixture(variances=rbf_variances(splits)),
                                       estimator="unbiased"))}


def reconstruction_errors(reconstructions, images, ssim):
    """``val_recon_l2``: mean per-pixel squared error, and ``val_recon_ssim``: mean
    per-window squared Eq. (2) distance (``D^2`` over the window positions) between
    reconstructions and their images ``(n, H, W)`` (lower is better for both)."""
    images = np.asarray(images, dtype=np.float64)
    n = images.shape[0]
    flat_r = np.asarray(to_numpy(reconstructions), dtype=np.float64).reshape(n, -1)
    flat_x = images.reshape(n, -1)
    l2 = ImageDistance("l2", images.shape[1:], ssim)(flat_r, flat_x, np)[0]
    eq2 = ImageDistance("ssim-eq2", images.shape[1:], ssim)(flat_r, flat_x, np)[0]
    return {"val_recon_l2": float(np.mean(l2)), "val_recon_ssim": float(np.mean(eq2))}
