"""SSIM kernels for kernel methods: double centring (the paper's ``K = -1/2 H D H``),
out-of-sample centring, a scikit-learn transformer, alternative SSIM kernels, tools to
diagnose and repair positive semidefiniteness, and differentiable kernel objects (``gram``,
``gram_vjp``, ``paired``, ``paired_vjp``) for MMD, CMMD and GMMN.

The theory behind them (why these kernels are PSD, characteristic for ``p = 1``, and not
"universal") is in docs/theory.md.
"""

from .alternatives import mean_ssim_kernel, median_heuristic, ssim_rbf_kernel
from .centering import center_out_of_sample, double_center
from .factory import KERNEL_NAMES, make_kernel
from .protocol import Kernel
from .rbf import RBFMixture
from .ssim_distance import MeanSSIMKernel, SSIMDistanceKernel, SSIMRBFKernel
from .psd import IndefiniteKernelWarning, PSDReport, psd_report, repair_psd
from .ssim_kernel import SSIMKernel, ssim_kernel
from .nystroem import SSIMNystroem

__all__ = ["double_center", "center_out_of_sample", "ssim_kernel", "SSIMKernel",
           "ssim_rbf_kernel", "mean_ssim_kernel", "median_heuristic", "psd_report",
           "repair_psd", "PSDReport", "IndefiniteKernelWarning", "Kernel", "RBFMixture",
           "SSIMDistanceKernel", "SSIMRBFKernel", "MeanSSIMKernel", "make_kernel",
           "KERNEL_NAMES", "SSIMNystroem"]
