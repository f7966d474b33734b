"""Generative models with hand-written backpropagation, one trainer for all of them, and
evaluation by metrics that no training loss optimises.

Models (:mod:`~ssimref.generative.runs`): VAE and AAE (:mod:`~ssimref.generative.autoencoders`)
with bce, l2 or the paper's SSIM reconstruction terms; GAN, LSGAN, class- and
image-conditional GANs (:mod:`~ssimref.generative.gan`) with l1, l2 or SSIM fidelity terms;
GMMN (:mod:`ssimref.gmmn`). Building blocks: layers and MLPs
(:mod:`~ssimref.generative.mlp`), optimisers, schedules and clipping
(:mod:`~ssimref.generative.optim`), checkpoints without pickles
(:mod:`~ssimref.generative.checkpoint`), loss terms with their gradients
(:mod:`~ssimref.generative.losses`), the trainer (:mod:`~ssimref.generative.trainer`),
evaluation (:mod:`~ssimref.generative.evaluate`). See ``docs/generative.md``.
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import evaluate_run
from .grid import grid_image, save_grid
from .mlp import MLP, Dropout, LeakyReLU, Linear, ReLU, Sigmoid, Tanh
from .optim import SGD, Adam, Schedule, clip_grad_norm
from .runs import MODELS, config_class, load_run, train
from .trainer import GenerativeModel, Phase, TrainingInterrupted, fit

__all__ = ["MODELS", "config_class", "train", "load_run", "evaluate_run", "fit",
           "GenerativeModel", "Phase", "TrainingInterrupted", "MLP", "Linear", "ReLU",
           "LeakyReLU", "Sigmoid", "Tanh", "Dropout", "SGD", "Adam", "Schedule",
           "clip_grad_norm", "save_checkpoint", "load_checkpoint", "grid_image", "save_grid"]
