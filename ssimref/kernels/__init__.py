"""SSIM kernels for kernel methods: double centring (the paper's ``K = -1/2 H D H``),
out-of-sample centring, a scikit-learn transformer, alternative SSIM kernels, and tools
to diagnose and repair positive semidefiniteness.

The theory behind them (why these kernels are PSD, characteristic for ``p = 1``, and not
"universal") is in docs/theory.md.
"""

from .alternatives import mean_ssim_kernel, median_heuristic, ssim_rbf_kernel
from .centering import center_out_of_sample, double_center
from .psd import IndefiniteKernelWarning, PSDReport, psd_report, repair_psd
from .ssim_kernel import SSIMKernel, ssim_kernel

__all__ = ["double_center", "center_out_of_sample", "ssim_kernel", "SSIMKernel",
           "ssim_rbf_kernel", "mean_ssim_kernel", "median_heuristic", "psd_report",
           "repair_psd", "PSDReport", "IndefiniteKernelWarning"]
