"""MMD, conditional MMD, two-sample tests and generative moment-matching networks.

Networks with hand-written backpropagation (:mod:`ssimref.gmmn.mlp`,
:mod:`ssimref.gmmn.optim`), GMMN / GMMN+AE / conditional GMMN (:mod:`ssimref.gmmn.model`),
resumable training runs (:mod:`ssimref.gmmn.train`), evaluation on held-out digits
(:mod:`ssimref.gmmn.evaluate`) and the RBF-versus-SSIM experiment
(:mod:`ssimref.gmmn.experiment`).
"""

from .mlp import MLP
from .model import GMMN, Autoencoder
from .optim import SGD, Adam
from .train import TrainConfig, load_run, train

__all__ = ["MLP", "SGD", "Adam", "GMMN", "Autoencoder", "TrainConfig", "train", "load_run"]
