"""ssimref: SSIM as a first-class distance for kernel methods and generative models.

A float64 reference for the SSIM components ``s1`` and ``s2``, SSIM maps, the SSIM
distances of Ghojogh, Karray and Crowley (ICIAR 2020, Eqs. (1) and (2)), distance maps and
the all-pairs distance matrix, with every convention explicit in :class:`SSIMConfig`.
Runs on NumPy, CuPy or any array-API library.

Public names live in the packages' ``__init__``: :mod:`ssimref` (this module),
:mod:`ssimref.kernels`, :mod:`ssimref.mmd`, :mod:`ssimref.engines` and the module
:mod:`ssimref.datasets`; the other modules are the implementation (docs/architecture.md).
"""

from .config import SSIMConfig
from .distances import distance, distance_map
from .io import ImageSet, load_images
from .jobs import distance_job, kernel_job
from .paired import paired_distance, paired_distance_and_grad
from .pairwise import distance_matrix, distance_matrix_vjp
from .similarity import ssim, ssim_components, ssim_map
from .stores import open_matrix

__version__ = "0.1.0"

__all__ = ["SSIMConfig", "ssim_components", "ssim_map", "ssim", "distance_map", "distance",
           "distance_matrix", "distance_matrix_vjp", "paired_distance",
           "paired_distance_and_grad", "load_images", "ImageSet", "distance_job",
           "kernel_job", "open_matrix", "__version__"]
