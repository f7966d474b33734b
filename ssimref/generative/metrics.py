"""Cheap metrics logged during training (the full evaluation is
:mod:`ssimref.generative.evaluate`)."""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..kernels.differentiable import RBFMixture
from .data import rbf_variances

__all__ = ["validation_metrics"]


def validation_metrics(model, samples):
    """``val_mmd2_rbf``: unbiased MMD^2 between ``samples`` ``(n, H, W)`` and the
    validation split, with the data set's RBF mixture on pixel vectors (lower is better;
    it can be slightly negative)."""
    from ..gmmn import mmd2
    splits = model.splits
    X = np.asarray(to_numpy(samples), dtype=np.float64).reshape(len(samples), -1)
    Y = splits.validation.reshape(len(splits.validation), -1)
    return {"val_mmd2_rbf": float(mmd2(X, Y, RBFMixture(variances=rbf_variances(splits)),
                                       estimator="unbiased"))}
