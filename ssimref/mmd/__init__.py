"""Maximum mean discrepancy: MMD^2 estimators and conditional MMD with hand-derived
gradients, and kernel two-sample tests, for any kernel of :mod:`ssimref.kernels`.

- :mod:`ssimref.mmd.estimators`: biased, unbiased and linear-time MMD^2 and their gradients
  with respect to the generated sample (Gretton et al. 2012; the GMMN loss of Li et al.
  2015);
- :mod:`ssimref.mmd.conditional`: conditional MMD (Ren et al. 2016);
- :mod:`ssimref.mmd.two_sample`: permutation two-sample tests from one pooled kernel
  matrix;
- :mod:`ssimref.mmd.weighted`: the weighted form ``sum_ij W_ij k(z_i, z_j)`` all of them
  reduce to, evaluated tile by tile within ``working_memory``.

This package holds the statistics only; training generative models with them is
:mod:`ssimref.gmmn`.
"""

from .conditional import cmmd2, cmmd2_and_grad, cmmd_weights
from .estimators import ESTIMATORS, mmd2, mmd2_and_grad
from .two_sample import MMDTestResult, mmd_test

__all__ = ["mmd2", "mmd2_and_grad", "ESTIMATORS", "cmmd2", "cmmd2_and_grad", "cmmd_weights",
           "mmd_test", "MMDTestResult"]
