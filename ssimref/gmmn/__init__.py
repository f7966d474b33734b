"""MMD, conditional MMD, kernel two-sample tests and generative moment-matching networks.

MMD and CMMD with hand-derived gradients (:mod:`ssimref.gmmn.mmd`,
:mod:`ssimref.gmmn.cmmd`) and permutation tests (:mod:`ssimref.gmmn.two_sample`) for
training generative moment-matching networks (Li et al. 2015; Ren et al. 2016). The
networks are built from :mod:`ssimref.generative` (MLPs with hand-written backpropagation,
optimisers, checkpoints; :mod:`ssimref.gmmn.mlp` and its siblings re-export them): GMMN / GMMN+AE / conditional GMMN (:mod:`ssimref.gmmn.model`),
resumable training runs (:mod:`ssimref.gmmn.train`), evaluation on held-out digits
(:mod:`ssimref.gmmn.evaluate`) and the RBF-versus-SSIM experiment
(:mod:`ssimref.gmmn.experiment`).
"""

from .cmmd import cmmd2, cmmd2_and_grad, cmmd_weights
from ..generative.mlp import MLP
from .mmd import ESTIMATORS, mmd2, mmd2_and_grad
from .model import GMMN, Autoencoder
from ..generative.optim import SGD, Adam
from .train import TrainConfig, load_run, train
from .two_sample import MMDTestResult, mmd_test

__all__ = ["mmd2", "mmd2_and_grad", "ESTIMATORS", "cmmd2", "cmmd2_and_grad", "cmmd_weights",
           "mmd_test", "MMDTestResult", "MLP", "SGD", "Adam", "GMMN", "Autoencoder",
           "TrainConfig", "train", "load_run"]
