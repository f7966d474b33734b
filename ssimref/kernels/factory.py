"""Differentiable kernels by name: the one place the Python API and the command line turn a
name into a kernel object."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

from ..backend import ArrayLike
from ..config import SSIMConfig
from ..kinds import KindName
from .protocol import Kernel
from .rbf import RBFMixture
from .ssim_distance import MeanSSIMKernel, SSIMDistanceKernel, SSIMRBFKernel

__all__ = ["KERNEL_NAMES", "KernelName", "make_kernel", "KERNEL_OPTIONS",
           "check_kernel_options"]

#: The kernel names.
KernelName: TypeAlias = Literal["ssim", "ssim-rbf", "mean-ssim", "rbf"]
#: Names :func:`make_kernel` accepts.
KERNEL_NAMES: tuple[KernelName, ...] = ("ssim", "ssim-rbf", "mean-ssim", "rbf")


#: The options of :func:`make_kernel` each kernel uses (``working_memory`` aside, which
#: every caller may use too); the others do nothing for it.
KERNEL_OPTIONS: dict[str, tuple[str, ...]] = {
    "ssim": ("kind", "power", "config", "channel_axis"),
    "ssim-rbf": ("kind", "config", "scales", "channel_axis"),
    "mean-ssim": ("config", "channel_axis"),
    "rbf": ("scales",),
}


def check_kernel_options(name: str, given: dict[str, str]) -> None:
    """Refuse options that would do nothing for the kernel ``name``.

    Parameters
    ----------
    name : {"ssim", "ssim-rbf", "mean-ssim", "rbf"}
    given : dict of str to str
        The options the caller set (keys of :data:`KERNEL_OPTIONS`' tuples: "kind",
        "power", "config", "scales", "channel_axis"), each mapped to how the caller spells
        it in messages (e.g. ``{"config": "--window", "power": "--power"}``).

    Raises
    ------
    ValueError
        For an unknown kernel, or an option the kernel does not use; the message names
        the option as the caller spells it.
    """
    if name not in KERNEL_OPTIONS:
        raise ValueError(f"kernel must be one of {KERNEL_NAMES}, got {name!r}")
    takes = KERNEL_OPTIONS[name]
    unused = [spelling for option, spelling in given.items() if option not in takes]
    if unused:
        what = {"ssim": "the SSIM distance kernel -1/2 D^power",
                "ssim-rbf": "exp(-gamma D^2), its bandwidth from one scale",
                "mean-ssim": "mean SSIM over windows (its own distance, no power)",
                "rbf": "a Gaussian mixture on the pixels, no SSIM"}[name]
        raise ValueError(f"{', '.join(unused)} {'does' if len(unused) == 1 else 'do'} "
                         f"nothing with kernel {name} ({what}); leave "
                         f"{'it' if len(unused) == 1 else 'them'} out or choose another "
                         "kernel")


def make_kernel(name: KernelName, X: ArrayLike | None = None, Y: ArrayLike | None = None, *,
                kind: KindName = "eq2", power: int = 1, config: SSIMConfig | None = None,
                scales: Sequence[float] = (1.0,), working_memory: float | None = None,
                backend: str = "auto", channel_axis: int | None = None,
                **conventions: Any) -> Kernel:
    """A differentiable kernel (:mod:`ssimref.kernels.protocol`) by name.

    Parameters
    ----------
    name : {"ssim", "ssim-rbf", "mean-ssim", "rbf"}
        "ssim": :class:`SSIMDistanceKernel` ``-1/2 D^power`` (the paper's kernel; its MMD
        is half the energy distance); "ssim-rbf": :class:`SSIMRBFKernel`
        ``exp(-gamma D^2)`` with ``gamma = 1 / (2 scales[0] med^2)``, ``med`` the median
        SSIM distance of the pooled sample; "mean-ssim": :class:`MeanSSIMKernel`; "rbf":
        :class:`RBFMixture` on flattened pixels with variances ``scales_k med^2``, ``med``
        the median Euclidean distance of the pooled sample.
    X, Y : array_like, optional
        The samples whose pooled median sets the bandwidth ("ssim-rbf", "rbf"; required
        there).
    kind : {"eq2", "eq1", "eq1-uncentered"}, default "eq2"
        SSIM distance of the SSIM kernels.
    power : {1, 2}, default 1
        For "ssim".
    config : SSIMConfig, optional
        SSIM conventions (keyword overrides as for :func:`ssimref.distance_matrix`).
    scales : sequence of float > 0, default (1.0,)
        Median-heuristic scales: one per mixture component for "rbf", exactly one for
        "ssim-rbf"; not used by the other kernels.
    working_memory : float, optional
        MiB for the SSIM kernels' tiles.
    backend : {"auto", "reference", "numba", "cupy"}, default "auto"
        Engine of the SSIM kernels (:func:`ssimref.engines.choose_engine`).
    channel_axis : int, optional
        The channel axis of the image stacks, for the SSIM kernels (as for
        :func:`ssimref.distance_matrix`); "rbf" flattens each image and needs none.
    **conventions
        Fields of :class:`ssimref.SSIMConfig` overriding ``config``.

    Returns
    -------
    Kernel

    Raises
    ------
    ValueError
        For an unknown name, a median-heuristic kernel without ``X``, and the errors of
        the kernel's constructor (invalid ``kind``, ``power``, conventions or scales, a
        median of 0, an unknown ``backend``).
    TypeError
        For an unknown convention keyword.

    See Also
    --------
    ssimref.mmd.mmd2, ssimref.mmd.mmd_test : what the kernels are for.
    """
    if name not in KERNEL_NAMES:
        raise ValueError(f"kernel must be one of {KERNEL_NAMES}, got {name!r}")
    if name == "ssim":
        return SSIMDistanceKernel(kind, power, config, working_memory=working_memory,
                                  backend=backend, channel_axis=channel_axis, **conventions)
    if name == "mean-ssim":
        return MeanSSIMKernel(config, working_memory=working_memory, backend=backend,
                              channel_axis=channel_axis, **conventions)
    if X is None:
        raise ValueError(f"kernel {name!r} takes its bandwidth from the samples' median "
                         "distance: pass X (and Y)")
    if name == "ssim-rbf":
        if len(scales) != 1:
            raise ValueError(f"kernel 'ssim-rbf' takes one scale (its gamma is 1 / (2 scale "
                             f"med^2)), got {len(scales)}: {tuple(scales)}")
        return SSIMRBFKernel.from_median(X, Y, kind, config, scale=scales[0],
                                         working_memory=working_memory, backend=backend,
                                         channel_axis=channel_axis, **conventions)
    return RBFMixture.from_median(X, Y, scales=tuple(scales))
