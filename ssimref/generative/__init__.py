"""Generative models with hand-written backpropagation, and what trains and grades them.

Building blocks: layers and MLPs (:mod:`~ssimref.generative.mlp`), optimisers, learning-rate
schedules and gradient clipping (:mod:`~ssimref.generative.optim`), checkpoints without
pickles (:mod:`~ssimref.generative.checkpoint`) and PNG sample grids
(:mod:`~ssimref.generative.grid`).
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .grid import grid_image, save_grid
from .mlp import MLP, LeakyReLU, Linear, ReLU, Sigmoid, Tanh, Dropout
from .optim import SGD, Adam, Schedule, clip_grad_norm

__all__ = ["MLP", "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Dropout", "SGD", "Adam",
           "Schedule", "clip_grad_norm", "save_checkpoint", "load_checkpoint", "grid_image",
           "save_grid"]
