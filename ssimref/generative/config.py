"""Run configurations: one frozen dataclass per model, one field per choice of a run.

Every field carries its help text (and its allowed values) in its metadata, so that the
command line (:mod:`ssimref.generative.commands`) generates its flags from the dataclass:
flag, type, default and help have one source. :class:`RunConfig` holds what every model
shares (data, steps, optimiser, schedule, clipping, logging); :class:`SSIMOptions` the
SSIM conventions of a loss (every :class:`ssimref.SSIMConfig` field, as ``ssim_<field>``);
:class:`ReconOptions` the reconstruction term of the autoencoders.
"""

from __future__ import annotations

import contextlib

import math
import typing
from dataclasses import MISSING, dataclass, field, fields

from ..backend import DEVICES
from ..config import COVARIANCES, WINDOWS, SSIMConfig
from .data import DATASET_NAMES
from .optim import SCHEDULES

__all__ = ["RunConfig", "SSIMOptions", "ReconOptions", "option", "ssim_field_errors",
           "IMAGE_LOSSES", "RECON_LOSSES", "MIX_LOSSES", "config_fields", "check_choices"]

# image distances between matched images, as per-element means (see losses.py)
IMAGE_LOSSES = ("l1", "l2", "ssim-eq1", "ssim-eq1-uncentered", "ssim-eq2")
RECON_LOSSES = ("bce", "l2", "ssim-eq1", "ssim-eq1-uncentered", "ssim-eq2")
MIX_LOSSES = ("none", "l2", "bce")


def option(default, help, choices=None, flag=None):
    """A dataclass field with its command-line help (and allowed values) as metadata."""
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if flag is not None:
        metadata["flag"] = flag
    if isinstance(default, (list, tuple)):
        return field(default=tuple(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def config_fields(cls):
    """``(name, type, default, metadata)`` of every field of a config dataclass, with the
    annotation resolved to a Python type (``int``, ``float``, ``str``, ``bool``,
    ``tuple``)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        kind = hints[f.name]
        kind = typing.get_origin(kind) or kind
        default = f.default if f.default is not MISSING else None
        out.append((f.name, kind, default, dict(f.metadata)))
    return out


def check_choices(config):
    """Raise ValueError naming the field and its allowed values for any field whose
    value is not among its ``choices``."""
    for f in fields(config):
        allowed = f.metadata.get("choices")
        if allowed is not None and getattr(config, f.name) not in allowed:
            raise ValueError(f"{f.name} must be one of {allowed}, got "
                             f"{getattr(config, f.name)!r}")


def _positive(config, names, low=1):
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be >= {low}, got {value!r}")


@dataclass(frozen=True)
class RunConfig:
    """What every training run shares (stored in the run folder's ``config.json``).

    Subclasses add their model's fields and may change these defaults.
    """

    dataset: str = option("digits", "training data: digits (scikit-learn's 8x8 digits), "
                          "mnist5k (5,000 28x28 MNIST digits), or a .npz/.npy file of "
                          "images in [0, 1] (with 'labels' for conditional models)")
    steps: int = option(2000, "training steps")
    batch: int = option(64, "minibatch size")
    seed: int = option(0, "seed of every random draw of the run")
    device: str = option("cpu", "cpu (NumPy) or gpu (CuPy)", choices=DEVICES)
    optimizer: str = option("adam", "adam or sgd (with momentum)", choices=("adam", "sgd"))
    lr: float = option(1e-3, "learning rate")
    momentum: float = option(0.9, "SGD momentum")
    beta1: float = option(0.9, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    schedule: str = option("constant", "learning-rate schedule", choices=SCHEDULES)
    warmup: int = option(0, "steps of linear learning-rate warm-up")
    lr_final: float = option(0.0, "last learning-rate factor of the cosine and linear "
                             "schedules")
    lr_step_size: int = option(1000, "steps between decays of the step schedule")
    lr_gamma: float = option(0.5, "decay factor of the step schedule")
    clip_norm: float = option(0.0, "clip each network group's gradient to this global "
                              "norm (0: no clipping)")
    log_every: int = option(10, "steps between lines of metrics.jsonl")
    sample_every: int = option(250, "steps between sample grids and validation metrics")
    checkpoint_every: int = option(100, "steps between checkpoints")
    eval_samples: int = option(300, "samples for the validation metrics during training")

    def __post_init__(self):
        for f in fields(self):  # lists from JSON become tuples
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
        check_choices(self)
        if not isinstance(self.dataset, str) or not (
                self.dataset in DATASET_NAMES or self.dataset.endswith((".npz", ".npy"))):
            raise ValueError(f"dataset must be one of {DATASET_NAMES} or a .npz/.npy file, "
                             f"got {self.dataset!r}")
        _positive(self, ("batch", "log_every", "sample_every", "checkpoint_every",
                         "eval_samples", "lr_step_size"))
        _positive(self, ("steps", "warmup", "seed"), low=0)
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if not (0 <= self.momentum < 1 and 0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"momentum, beta1 and beta2 must be in [0, 1), got "
                             f"{self.momentum}, {self.beta1}, {self.beta2}")
        if not 0 <= self.lr_final <= 1 or not 0 < self.lr_gamma <= 1:
            raise ValueError(f"need 0 <= lr_final <= 1 and 0 < lr_gamma <= 1, got "
                             f"{self.lr_final}, {self.lr_gamma}")
        if not self.clip_norm >= 0:
            raise ValueError(f"clip_norm must be >= 0 (0: off), got {self.clip_norm!r}")

    @classmethod
    def from_dict(cls, data):
        """The config of a ``config.json`` (``ssimref`` and ``model`` keys ignored)."""
        data = {k: v for k, v in data.items() if k not in ("ssimref", "model")}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown}")
        return cls(**data)


@dataclass(frozen=True)
class SSIMOptions:
    """The SSIM conventions of a loss term: every :class:`ssimref.SSIMConfig` field.

    Defaults: Gaussian 7x7 window, sigma 1.5, stride 1, sample covariance, data range 1
    (images in [0, 1]), k1 = 0.01, k2 = 0.03.
    """

    ssim_window: str = option("gaussian", "SSIM window", choices=WINDOWS)
    ssim_size: int = option(7, "SSIM window side in pixels")
    ssim_sigma: float = option(1.5, "SSIM Gaussian window sigma")
    ssim_stride: int = option(1, "step between SSIM windows")
    ssim_data_range: float = option(1.0, "SSIM data range L (1 for images in [0, 1])")
    ssim_k1: float = option(0.01, "SSIM k1 (c1 = (k1 L)^2)")
    ssim_k2: float = option(0.03, "SSIM k2 (c2 = (k2 L)^2)")
    ssim_covariance: str = option("sample", "SSIM covariance normalisation",
                                  choices=COVARIANCES)

    def ssim_config(self) -> SSIMConfig:
        """The :class:`ssimref.SSIMConfig` of these fields (validates them; errors name
        the ``ssim_`` field)."""
        with ssim_field_errors():
            return SSIMConfig(window=self.ssim_window, size=self.ssim_size,
                              sigma=self.ssim_sigma, stride=self.ssim_stride,
                              data_range=self.ssim_data_range, k1=self.ssim_k1,
                              k2=self.ssim_k2, covariance=self.ssim_covariance)


@contextlib.contextmanager
def ssim_field_errors():
    """Re-raise :class:`ssimref.SSIMConfig`'s errors under the names of the ``ssim_``
    fields that hold its arguments in a training config ("sigma must be ..." becomes
    "ssim_sigma must be ...")."""
    try:
        yield
    except ValueError as exc:
        message = str(exc)
        first = message.split(" ", 1)[0]
        if first in {f.name for f in fields(SSIMConfig)}:
            raise ValueError(f"ssim_{message}") from None
        raise ValueError(f"ssim_* options: {message}") from None


@dataclass(frozen=True)
class ReconOptions:
    """The reconstruction term of an autoencoder (see :mod:`ssimref.generative.losses`)."""

    recon: str = option("bce", "reconstruction loss: bce, l2, or an SSIM distance "
                        "(ssim-eq1, ssim-eq1-uncentered, ssim-eq2)", choices=RECON_LOSSES)
    recon_squared: bool = option(True, "SSIM reconstruction term D^2 (the sum over windows "
                                 "of squared window distances); false: D")
    ssim_weight: float = option(0.0, "weight of the SSIM term (0: calibrated so that it "
                                "equals the l2 term for the training mean image)")
    mix: str = option("none", "add this pixel loss to an SSIM reconstruction term",
                      choices=MIX_LOSSES)
    mix_weight: float = option(1.0, "weight of the added pixel loss")

    def check_recon(self):
        if self.mix != "none" and not self.recon.startswith("ssim"):
            raise ValueError(f"mix={self.mix!r} adds a pixel loss to an SSIM reconstruction "
                             f"term, but recon is {self.recon!r}; use recon=ssim-eq1, "
                             "ssim-eq1-uncentered or ssim-eq2, or mix='none'")
        if self.ssim_weight < 0 or self.mix_weight < 0:
            raise ValueError(f"ssim_weight and mix_weight must be >= 0, got "
                             f"{self.ssim_weight}, {self.mix_weight}")
