"""GMMN training runs on the shared trainer: configuration, run folder, resume.

The models (:class:`~ssimref.gmmn.model.GMMN`, the code-space
:class:`~ssimref.gmmn.model.Autoencoder`) are trained by :func:`ssimref.generative.trainer.fit`
through :class:`GMMNTrainer`: in code space an ``autoencoder`` phase (``ae_steps`` steps
of the autoencoder's squared error), then the ``gmmn`` phase (``steps`` steps of the
(C)MMD loss of the generator). A run folder holds::

    config.json          the TrainConfig (every choice of the run)
    metrics.jsonl        one JSON object per logged step: phase, step, loss, mmd2, ...
    samples/step-*.png   grids of samples from a fixed noise batch, every sample_every steps
    checkpoint.json      + ckpt-*.npz: parameters, optimiser state, RNG state (see
                         :mod:`ssimref.generative.checkpoint`)

All randomness of a run (initialisation, batches, prior draws, dropout masks) comes from
one NumPy ``Generator`` seeded with ``seed`` and saved in every checkpoint, so a run
resumed from its last checkpoint ends bit for bit where an uninterrupted run ends (same
machine, same library versions). Grids and validation metrics use separate fixed noise
that does not touch that generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..backend import device_namespace, to_numpy
from ..config import COVARIANCES, WINDOWS, SSIMConfig
from ..kernels import RBFMixture, SSIMDistanceKernel
from ..mmd import mmd2
from ..kinds import KIND_NAMES as KINDS
from ..generative.checkpoint import load_checkpoint
from ..generative.config import RunConfig, option, ssim_field_errors
from ..generative.data import rbf_variances as dataset_rbf_variances
from ..generative.trainer import (GenerativeModel, Phase, fit, prepare_run_dir,
                                  read_config_json)
from .data import load_digit_splits
from .model import LOSSES, GMMN, Autoencoder
from ..generative.optim import make_optimizer

__all__ = ["TrainConfig", "train", "load_run", "Run", "build_kernel", "KERNELS", "SPACES",
           "ssim_config", "grid_samples", "GMMNTrainer", "validation_mmd2"]

KERNELS = ("rbf", "ssim")
SPACES = ("data", "code")
ESTIMATORS = ("biased", "unbiased", "linear")


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    """Every choice of a GMMN training run (stored as ``config.json`` in the run folder).

    Defaults: Li et al.'s GMMN scaled to the data. Generator ``10 -> 64 -> 256 -> 256 ->
    pixels`` (ReLU, sigmoid output; Li et al.: ``10-64-256-256-1024-784``), prior
    ``U[-1, 1]^10``, loss ``sqrt(MMD^2)`` (biased). RBF mixture variances: the data set's
    (:func:`ssimref.generative.data.rbf_variances`: Li et al.'s (2, ..., 80) on 28x28
    digits, the same divided by 10 on 8x8 digits, so that the largest is near the median
    squared distance between digits). SSIM kernel: the paper's distance kernel
    ``-1/2 H D H`` with Eq. (2), power 1, 5x5 Gaussian windows (sigma 1.5, sample
    covariance, data range 1). Code space: autoencoder ``pixels -> 256 -> 16 -> 256 ->
    pixels`` (ReLU hidden, sigmoid codes and outputs, input dropout 0.1) trained first for
    ``ae_steps`` steps; generator output 16. Adam (lr 1e-3) rather than Li et al.'s SGD
    with momentum: it needs no per-kernel tuning of the learning rate (``optimizer="sgd"``
    is available).
    """

    kernel: str = option("rbf", "rbf: Li et al.'s RBF mixture; ssim: the paper's SSIM "
                         "distance kernel (power 1)", choices=KERNELS)
    space: str = option("data", "data: generate pixels; code: generate autoencoder codes",
                        choices=SPACES)
    conditional: bool = option(False, "condition on the digit label (CMMD, Ren et al. 2016)")
    batch: int = option(100, "minibatch size, generated and data")
    noise_dim: int = option(10, "dimension of the uniform prior U[-1, 1]^h")
    hidden: tuple = option((64, 256, 256), "hidden widths of the generator")
    loss: str = option("sqrt", "sqrt: sqrt(MMD^2) as Li et al.; mmd2: MMD^2", choices=LOSSES)
    estimator: str = option("biased", "MMD^2 estimator (unconditional models)",
                            choices=ESTIMATORS)
    lam: float = option(1e-3, "CMMD regulariser lambda")
    rbf_variances: tuple = option((), "RBF mixture variances on pixels (empty: the data "
                                  "set's default)")
    code_variances: tuple = option((0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
                                   "RBF mixture variances on codes")
    ssim_kind: str = option("eq2", "SSIM distance of the kernel", choices=KINDS)
    ssim_window: str = option("gaussian", "SSIM window", choices=WINDOWS)
    ssim_size: int = option(5, "SSIM window side")
    ssim_sigma: float = option(1.5, "SSIM Gaussian sigma")
    ssim_covariance: str = option("sample", "SSIM covariance normalisation",
                                  choices=COVARIANCES)
    code_dim: int = option(16, "autoencoder code dimension (code space)")
    ae_hidden: int = option(256, "autoencoder hidden width")
    ae_steps: int = option(1500, "autoencoder training steps (code space)")
    ae_batch: int = option(100, "autoencoder minibatch size")
    ae_lr: float = option(1e-3, "autoencoder Adam learning rate")
    ae_dropout: float = option(0.1, "autoencoder input dropout")

    def __post_init__(self):
        super().__post_init__()
        for name in ("ae_steps",):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("ae_batch", "noise_dim", "code_dim", "ae_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.conditional and self.estimator != "biased":
            raise ValueError("conditional models use CMMD (a biased V-statistic); leave "
                             "estimator='biased'")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "rbf_variances", tuple(float(v) for v in self.rbf_variances))
        object.__setattr__(self, "code_variances",
                           tuple(float(v) for v in self.code_variances))
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must hold widths >= 1, got {self.hidden}")
        for name in ("rbf_variances", "code_variances"):
            values = getattr(self, name)
            if not all(math.isfinite(v) and v > 0 for v in values):
                raise ValueError(f"{name} must be finite numbers > 0, got {values}")
        if not self.code_variances:
            raise ValueError("code_variances must hold at least one variance")
        if not (math.isfinite(self.ae_lr) and self.ae_lr > 0):
            raise ValueError(f"ae_lr must be a finite number > 0, got {self.ae_lr}")
        if not 0 <= self.ae_dropout < 1:
            raise ValueError(f"ae_dropout must be in [0, 1), got {self.ae_dropout}")
        if not (math.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"lam (the CMMD regulariser) must be a finite number >= 0, got "
                             f"{self.lam}")
        ssim_config(self)  # validates the SSIM conventions


def ssim_config(config: TrainConfig) -> SSIMConfig:
    """The SSIM conventions of the run's SSIM kernel (images in [0, 1])."""
    with ssim_field_errors():
        return SSIMConfig(window=config.ssim_window, size=config.ssim_size,
                          sigma=config.ssim_sigma, covariance=config.ssim_covariance,
                          data_range=1.0)


def rbf_variances(config: TrainConfig, splits):
    """The run's RBF mixture variances on pixels (the data set's when not set)."""
    return config.rbf_variances or dataset_rbf_variances(splits)


def build_kernel(config: TrainConfig, splits=None):
    """The kernel object of a run and whether it acts on images (else on vectors)."""
    if config.kernel == "ssim":
        return SSIMDistanceKernel(kind=config.ssim_kind, power=1,
                                  config=ssim_config(config)), True
    if config.space == "code":
        return RBFMixture(variances=config.code_variances), False
    splits = splits if splits is not None else load_digit_splits(config.dataset)
    return RBFMixture(variances=rbf_variances(config, splits)), False


@dataclass
class Run:
    """A run's models rebuilt in memory (see :func:`load_run`)."""

    config: TrainConfig
    xp: object
    splits: object
    gmmn: GMMN
    autoencoder: Autoencoder | None
    meta: dict | None = None
    trainer: GMMNTrainer | None = None


class GMMNTrainer(GenerativeModel):
    """GMMN, GMMN+AE and conditional GMMN as a model of the shared trainer.

    Networks ``autoencoder.encoder`` and ``autoencoder.decoder`` (code space) and
    ``generator``; optimiser groups (and stages) ``autoencoder`` and ``generator``;
    phases ``autoencoder`` (code space only, no grids) and ``gmmn``.
    """

    name = "gmmn"

    def __init__(self, config: TrainConfig, splits, xp):
        super().__init__(config, splits, xp)
        height, width = splits.image_shape
        n_pixels = height * width
        kernel, on_images = build_kernel(config, splits)
        self.autoencoder = None
        if config.space == "code":
            self.autoencoder = Autoencoder(n_pixels, config.ae_hidden, config.code_dim,
                                           config.ae_dropout)
            self.networks["autoencoder.encoder"] = self.autoencoder.encoder
            self.networks["autoencoder.decoder"] = self.autoencoder.decoder
            self.groups["autoencoder"] = ("autoencoder.encoder", "autoencoder.decoder")
        self.gmmn = GMMN(kernel, noise_dim=config.noise_dim, hidden=config.hidden,
                         out_dim=config.code_dim if self.autoencoder else n_pixels,
                         image_shape=(height, width), kernel_on_images=on_images,
                         decoder=self.autoencoder.decoder if self.autoencoder else None,
                         n_classes=splits.n_classes if config.conditional else 0,
                         loss=config.loss, estimator=config.estimator, lam=config.lam)
        self.networks["generator"] = self.gmmn.generator
        self.groups["generator"] = ("generator",)

    @property
    def conditional(self):
        return self.gmmn.conditional

    def phases(self):
        c = self.config
        out = [Phase("gmmn", c.steps, c.batch, ("generator",))]
        if self.autoencoder is not None:
            out.insert(0, Phase("autoencoder", c.ae_steps, c.ae_batch, ("autoencoder",),
                                grids=False))
        return tuple(out)

    def group_lr(self, group):
        return self.config.ae_lr if group == "autoencoder" else self.config.lr

    def make_optimizers(self):
        c = self.config
        options = {"momentum": c.momentum} if c.optimizer == "sgd" else \
            {"beta1": c.beta1, "beta2": c.beta2}
        out = {"generator": make_optimizer(c.optimizer, lr=c.lr, **options)}
        if self.autoencoder is not None:
            out["autoencoder"] = make_optimizer("adam", lr=c.ae_lr)
        return out

    def phase_data(self, phase):
        xp, train = self.xp, self.splits.train
        if phase.name == "autoencoder":
            return {"x": xp.asarray(train.reshape(len(train), -1))}
        data = {"target": _targets(self, xp)}
        if self.conditional:
            data["labels"] = self.splits.train_labels
        return data

    def loss_and_grads(self, batch, rng, stage):
        xp = self.xp
        if stage == "autoencoder":
            loss, grads = self.autoencoder.loss_and_grad(batch["x"], xp, rng)
            split = {net: {k[len(part) + 1:]: v for k, v in grads.items()
                           if k.startswith(part + ".")}
                     for net, part in (("autoencoder.encoder", "encoder"),
                                       ("autoencoder.decoder", "decoder"))}
            return {"loss": loss}, split
        target = batch["target"]
        z = self.gmmn.prior(rng, target.shape[0])
        loss, value, grads = self.gmmn.loss_and_grad(z, target, xp, batch.get("labels"))
        return {"loss": loss, "mmd2": value}, {"generator": grads}

    def fixed_inputs(self, rng):
        noise, labels = _grid_inputs(self, rng)
        val_noise = self.gmmn.prior(rng, self.config.eval_samples)
        val_labels = rng.integers(0, self.splits.n_classes, self.config.eval_samples) \
            if self.conditional else None
        return {"grid_noise": noise, "grid_labels": labels, "val_noise": val_noise,
                "val_labels": val_labels}

    def grid_images(self, fixed):
        return self.gmmn.sample_images(fixed["grid_noise"], self.xp, fixed["grid_labels"])

    def validation(self, fixed):
        return {"val_mmd2_rbf": validation_mmd2(self, fixed["val_noise"],
                                                fixed["val_labels"])}

    def sample(self, n, rng, labels=None):
        """``n`` images ``(n, H, W)`` (host), noise from ``rng``."""
        return to_numpy(self.gmmn.sample_images(self.gmmn.prior(rng, n), self.xp, labels))


def _build(config: TrainConfig, xp):
    splits = load_digit_splits(config.dataset)
    trainer = GMMNTrainer(config, splits, xp)
    return Run(config, xp, splits, trainer.gmmn, trainer.autoencoder, trainer=trainer)


_LEGACY = "gmmn"  # config.json files without a "model" key hold GMMN runs


def load_run(run_dir, device=None) -> Run:
    """Rebuild the models of a run folder from its ``config.json`` and last checkpoint."""
    run_dir = Path(run_dir)
    data = read_config_json(run_dir, f"{run_dir} is not a run folder (no config.json); "
                                     "train one with 'ssimref gmmn train ... -o RUN'")
    if data.get("model", _LEGACY) != "gmmn":
        raise ValueError(f"{run_dir} holds a {data['model']!r} run, not a GMMN; load it "
                         "with ssimref.generative.load_run")
    config = TrainConfig.from_dict(data)
    if device is not None:
        config = replace(config, device=device)
    run = _build(config, device_namespace(config.device))
    arrays, meta = load_checkpoint(run_dir)
    run.trainer.load_arrays(arrays)
    run.meta = meta
    return run


def train(run_dir, config=None, *, resume=False, force=False, progress=False,
          callback=None, blas_threads=1):
    """Train (or resume) the GMMN run in ``run_dir``.

    Parameters
    ----------
    run_dir : str or Path
        The run folder (created if missing).
    config : TrainConfig, optional
        Required for a new run. On ``resume`` the folder's ``config.json`` is used; a
        given config must agree with it except for ``steps`` (a run can be extended).
    resume : bool
        Continue from the folder's last checkpoint.
    force : bool
        Start afresh in a non-empty folder (deleting the run's own files there).
    progress : bool or None
        Show a tqdm progress bar with the loss (None: only when stderr is a terminal and
        training runs longer than a second).
    callback : callable(phase, step, record), optional
        Called after every logged step (tests use it to interrupt a run).
    blas_threads : int or None, default 1
        BLAS threads while training (None: leave the library's setting). The networks'
        matrices are small (batch x a few hundred): one thread was 16 times faster than
        two on a loaded 2-core machine, and a fixed count keeps results reproducible.

    Returns
    -------
    dict
        Summary: final loss, steps, wall seconds of training (all sessions together).

    Raises
    ------
    ssimref.generative.TrainingInterrupted
        On SIGINT or SIGTERM, after writing a checkpoint (see
        :func:`ssimref.generative.trainer.fit`).
    """
    run = _build(config, device_namespace(config.device)) \
        if config is not None and not resume else None
    run_dir, config = prepare_run_dir(run_dir, config, TrainConfig, resume=resume,
                                      force=force, model_name="gmmn")
    run = run or _build(config, device_namespace(config.device))
    summary = fit(run.trainer, run_dir, resume=resume, progress=progress, callback=callback,
                  command=f"ssimref gmmn train -o {run_dir} --resume",
                  blas_threads=blas_threads)
    summary["loss"] = summary["losses"].get("loss")
    summary["steps"] = config.steps
    return summary


def _targets(model, xp):
    """The training set as the kernel sees it: pixel vectors, images, codes, or the
    decoded codes (reconstructions) for an image kernel in code space."""
    train = model.splits.train
    x = xp.asarray(train.reshape(len(train), -1))
    if model.autoencoder is None:
        return xp.asarray(train) if model.gmmn.kernel_on_images else x
    codes = model.autoencoder.encode(x, xp)
    if not model.gmmn.kernel_on_images:
        return codes
    return xp.reshape(model.autoencoder.decode(codes, xp), (len(train), *train.shape[1:]))


def validation_mmd2(run, noise, labels):
    """Unbiased MMD^2 between generated images and the validation split, with the data
    space RBF mixture on pixel vectors (comparable across kernels and spaces)."""
    xp = run.xp
    samples = run.gmmn.sample_images(noise, xp, labels)
    X = xp.reshape(samples, (samples.shape[0], -1))
    Y = xp.asarray(run.splits.validation.reshape(len(run.splits.validation), -1))
    return float(mmd2(X, Y, RBFMixture(variances=rbf_variances(run.config, run.splits)),
                      estimator="unbiased"))


def _grid_inputs(run, fixed):
    """100 prior draws and, for conditional models, labels 0..9 (ten rows of a 10x10
    grid, one label per row)."""
    noise = run.gmmn.prior(fixed, 100)
    labels = np.repeat(np.arange(run.splits.n_classes), 10) if run.gmmn.conditional \
        else None
    return noise, labels


def grid_samples(run):
    """The 100 images of the run's sample grids (fixed noise from its seed)."""
    noise, labels = _grid_inputs(run, np.random.default_rng([run.config.seed, 1]))
    return to_numpy(run.gmmn.sample_images(noise, run.xp, labels))
