"""MMD, conditional MMD and kernel two-sample tests, with hand-derived gradients for
training generative moment-matching networks (Li et al. 2015; Ren et al. 2016)."""

from .cmmd import cmmd2, cmmd2_and_grad, cmmd_weights
from .mmd import ESTIMATORS, mmd2, mmd2_and_grad
from .two_sample import MMDTestResult, mmd_test

__all__ = ["mmd2", "mmd2_and_grad", "ESTIMATORS", "cmmd2", "cmmd2_and_grad", "cmmd_weights",
           "mmd_test", "MMDTestResult"]
