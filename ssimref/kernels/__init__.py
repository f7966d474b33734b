"""SSIM kernels, centring, PSD tools and scikit-learn estimators (to come)."""

# Differentiable kernel objects (gram, gram_vjp, paired, paired_vjp) for MMD, CMMD and GMMN.
from .differentiable import (Kernel, MeanSSIMKernel, RBFMixture, SSIMDistanceKernel,  # noqa: E402,F401
                             SSIMRBFKernel)
