"""Slow, loop-based, obviously correct SSIM quantities.

The oracle is the project's reference for its own fast code and for other SSIM
implementations. It deliberately shares no computation with :mod:`ssimref` (it imports
nothing from it): it reads the fields of a configuration (an :class:`~ssimref.SSIMConfig`
or a :class:`~ssimref.verification.conventions.Convention`), builds its own window
weights, and evaluates the textbook formulas window by window with plain Python numbers,
exact :class:`fractions.Fraction` on request.

- :mod:`.windows`: window weights and the covariance normalisation.
- :mod:`.maps`: SSIM, ``s1``, ``s2`` and the squared distances per window, their means
  and sums, distance matrices (ssimref's conventions: valid windows, any stride).
- :mod:`.borders`: padding (NumPy's modes) and downsampling (``ssim.m``, piq) as index
  loops.
- :mod:`.variants`: SSIM under another implementation's
  :class:`~ssimref.verification.conventions.Convention`.
- :mod:`.kernels`: double-centred kernels, MMD^2 and CMMD^2 with exact Gaussian
  elimination.

Every public name of these modules is importable from here
(``from ssimref.verification import oracle; oracle.ssim(x, y, config)``).
"""

from .borders import downsample_image, pad_image
from .kernels import (centring_matrix, cmmd2, cmmd2_from_samples, double_centred_kernel,
                      kernel_matrix, mmd2, mmd2_from_kernel_matrix, solve)
from .maps import (distance, distance_map, distance_matrix, squared_distance,
                   squared_distance_map, ssim, ssim_components, ssim_map)
from .variants import variant_ssim, variant_ssim_map
from .windows import covariance_factor, weight_sum, window_weights

__all__ = ["window_weights", "weight_sum", "covariance_factor", "ssim_components", "ssim_map", "ssim",
           "squared_distance_map", "distance_map", "squared_distance", "distance",
           "distance_matrix", "pad_image", "downsample_image", "variant_ssim_map",
           "variant_ssim", "centring_matrix", "double_centred_kernel", "kernel_matrix",
           "mmd2", "mmd2_from_kernel_matrix", "solve", "cmmd2", "cmmd2_from_samples"]
