"""Generative moment-matching networks, and the MMD statistics they train with.

Generative moment-matching networks (Li et al. 2015; Ren et al. 2016) trained with the
MMD and CMMD of :mod:`ssimref.mmd` (re-exported here with its permutation tests). The
networks are built from :mod:`ssimref.generative` (MLPs with hand-written backpropagation,
optimisers, checkpoints; :mod:`ssimref.gmmn.mlp` and its siblings re-export them):
GMMN / GMMN+AE / conditional GMMN (:mod:`ssimref.gmmn.model`),
resumable training runs (:mod:`ssimref.gmmn.train`), evaluation on held-out digits
(:mod:`ssimref.gmmn.evaluate`) and the RBF-versus-SSIM experiment
(:mod:`ssimref.gmmn.experiment`).
"""

from ..mmd import (ESTIMATORS, MMDTestResult, cmmd2, cmmd2_and_grad, cmmd_weights, mmd2,
                   mmd2_and_grad, mmd_test)
from ..generative.mlp import MLP
from .model import GMMN, Autoencoder
from ..generative.optim import SGD, Adam
from .train import TrainConfig, load_run, train

__all__ = ["mmd2", "mmd2_and_grad", "ESTIMATORS", "cmmd2", "cmmd2_and_grad", "cmmd_weights",
           "mmd_test", "MMDTestResult", "MLP", "SGD", "Adam", "GMMN", "Autoencoder",
           "TrainConfig", "train", "load_run"]
