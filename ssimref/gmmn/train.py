"""Training runs: configuration, run folder, metrics, sample grids, checkpoints, resume.

A run folder holds::

    config.json          the TrainConfig (every choice of the run)
    metrics.jsonl        one JSON object per logged step: phase, step, loss, mmd2, ...
    samples/step-*.png   grids of samples from a fixed noise batch, every sample_every steps
    checkpoint.json      + ckpt-*.npz: parameters, optimiser state, RNG state (see
                         :mod:`ssimref.gmmn.checkpoint`)

All randomness of a run (initialisation, batches, prior draws, dropout masks) comes from
one NumPy ``Generator`` seeded with ``seed`` and saved in every checkpoint, so a run
resumed from its last checkpoint ends bit for bit where an uninterrupted run ends (same
machine, same library versions). Grids and validation metrics use separate fixed noise
that does not touch that generator.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..backend import DEVICES, device_namespace, to_numpy
from ..config import SSIMConfig
from ..io import atomic_path, save_json
from ..kernels.differentiable import RBFMixture, SSIMDistanceKernel
from ..generative.checkpoint import (CHECKPOINT_JSON, load_checkpoint, make_rng, rng_state,
                                     save_checkpoint)
from .data import DATASETS, load_digit_splits
from ..generative.grid import save_grid
from .mmd import mmd2
from .model import LOSSES, GMMN, Autoencoder
from ..generative.optim import make_optimizer

__all__ = ["TrainConfig", "train", "load_run", "Run", "build_kernel", "KERNELS", "SPACES",
           "ssim_config", "grid_samples"]

KERNELS = ("rbf", "ssim")
SPACES = ("data", "code")
ESTIMATORS = ("biased", "unbiased", "linear")
OWN_FILES = ("config.json", "metrics.jsonl", CHECKPOINT_JSON, "evaluation.json")


@dataclass(frozen=True)
class TrainConfig:
    """Every choice of a training run (stored as ``config.json`` in the run folder).

    Defaults: Li et al.'s GMMN scaled to 8x8 digits in [0, 1]. Generator
    ``10 -> 64 -> 256 -> 256 -> 64`` (ReLU, sigmoid output; Li et al.:
    ``10-64-256-256-1024-784``), prior ``U[-1, 1]^10``, loss ``sqrt(MMD^2)`` (biased).
    RBF mixture variances (0.2, 0.5, 1, 2, 4, 8): Li et al.'s (2, ..., 80) divided by 10, so
    that the largest is near the median squared distance between digits (9.4) as 80 is for
    MNIST. SSIM kernel: the paper's distance kernel ``-1/2 H D H`` with Eq. (2), power 1,
    5x5 Gaussian windows (sigma 1.5, sample covariance, data range 1) on the 8x8 images.
    Code space: autoencoder ``64 -> 256 -> 16 -> 256 -> 64`` (ReLU hidden, sigmoid codes and
    outputs, input dropout 0.1) trained first for ``ae_steps`` steps; generator output 16.
    Adam (lr 1e-3) rather than Li et al.'s SGD with momentum: it needs no per-kernel tuning
    of the learning rate (``optimizer="sgd"`` is available).
    """

    dataset: str = "digits"
    kernel: str = "rbf"
    space: str = "data"
    conditional: bool = False
    steps: int = 2000
    batch: int = 100
    seed: int = 0
    device: str = "cpu"
    noise_dim: int = 10
    hidden: tuple = (64, 256, 256)
    loss: str = "sqrt"
    estimator: str = "biased"
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    lam: float = 1e-3
    rbf_variances: tuple = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
    code_variances: tuple = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
    ssim_kind: str = "eq2"
    ssim_window: str = "gaussian"
    ssim_size: int = 5
    ssim_sigma: float = 1.5
    ssim_covariance: str = "sample"
    code_dim: int = 16
    ae_hidden: int = 256
    ae_steps: int = 1500
    ae_batch: int = 100
    ae_lr: float = 1e-3
    ae_dropout: float = 0.1
    log_every: int = 10
    sample_every: int = 250
    checkpoint_every: int = 100
    eval_samples: int = 300

    def __post_init__(self):
        for name, allowed in (("dataset", DATASETS), ("kernel", KERNELS), ("space", SPACES),
                              ("device", DEVICES), ("loss", LOSSES),
                              ("estimator", ESTIMATORS), ("optimizer", ("adam", "sgd"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got "
                                 f"{getattr(self, name)!r}")
        for name in ("steps", "ae_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("batch", "ae_batch", "noise_dim", "code_dim", "ae_hidden", "log_every",
                     "sample_every", "checkpoint_every", "eval_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.conditional and self.estimator != "biased":
            raise ValueError("conditional models use CMMD (a biased V-statistic); leave "
                             "estimator='biased'")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "rbf_variances", tuple(float(v) for v in self.rbf_variances))
        object.__setattr__(self, "code_variances",
                           tuple(float(v) for v in self.code_variances))
        ssim_config(self)  # validates the SSIM conventions

    @classmethod
    def from_dict(cls, data):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown}")
        return cls(**data)


def ssim_config(config: TrainConfig) -> SSIMConfig:
    """The SSIM conventions of the run's SSIM kernel (images in [0, 1])."""
    return SSIMConfig(window=config.ssim_window, size=config.ssim_size,
                      sigma=config.ssim_sigma, covariance=config.ssim_covariance,
                      data_range=1.0)


def build_kernel(config: TrainConfig):
    """The kernel object of a run and whether it acts on images (else on vectors)."""
    if config.kernel == "ssim":
        return SSIMDistanceKernel(kind=config.ssim_kind, power=1,
                                  config=ssim_config(config)), True
    variances = config.code_variances if config.space == "code" else config.rbf_variances
    return RBFMixture(variances=variances), False


@dataclass
class Run:
    """A run's models rebuilt in memory (see :func:`load_run`)."""

    config: TrainConfig
    xp: object
    splits: object
    gmmn: GMMN
    autoencoder: Autoencoder | None
    meta: dict | None = None


def _build(config: TrainConfig, xp):
    splits = load_digit_splits(config.dataset)
    height, width = splits.image_shape
    n_pixels = height * width
    kernel, on_images = build_kernel(config)
    autoencoder = None
    if config.space == "code":
        autoencoder = Autoencoder(n_pixels, config.ae_hidden, config.code_dim,
                                  config.ae_dropout)
    gmmn = GMMN(kernel, noise_dim=config.noise_dim, hidden=config.hidden,
                out_dim=config.code_dim if autoencoder else n_pixels,
                image_shape=(height, width), kernel_on_images=on_images,
                decoder=autoencoder.decoder if autoencoder else None,
                n_classes=splits.n_classes if config.conditional else 0, loss=config.loss,
                estimator=config.estimator, lam=config.lam)
    return Run(config, xp, splits, gmmn, autoencoder)


def _arrays(run, optimizers):
    arrays = {f"generator.{k}": v for k, v in run.gmmn.generator.params.items()}
    if run.autoencoder is not None:
        arrays.update({f"autoencoder.{k}": v for k, v in run.autoencoder.params.items()})
    for name, opt in optimizers.items():
        arrays.update({f"optimizer.{name}.{k}": v for k, v in opt.state.items()})
    return arrays


def _restore(run, optimizers, arrays):
    xp = run.xp

    def take(prefix):
        start = len(prefix) + 1
        return {k[start:]: xp.asarray(v) for k, v in arrays.items()
                if k.startswith(prefix + ".")}

    run.gmmn.generator.params = take("generator")
    if run.autoencoder is not None:
        run.autoencoder.params = take("autoencoder")
    for name, opt in optimizers.items():
        opt.load_state(take(f"optimizer.{name}"))


def _read_config(run_dir, missing):
    """The TrainConfig stored in a run folder; FileNotFoundError(``missing``) without one."""
    path = run_dir / "config.json"
    if not path.exists():
        raise FileNotFoundError(missing)
    return TrainConfig.from_dict(_config_from_json(json.loads(path.read_text())))


def load_run(run_dir, device=None) -> Run:
    """Rebuild the models of a run folder from its ``config.json`` and last checkpoint."""
    run_dir = Path(run_dir)
    config = _read_config(run_dir, f"{run_dir} is not a run folder (no config.json); train "
                                   "one with 'ssimref gmmn train ... -o RUN'")
    if device is not None:
        config = replace(config, device=device)
    run = _build(config, device_namespace(config.device))
    arrays, meta = load_checkpoint(run_dir)
    _restore(run, {}, arrays)
    run.meta = meta
    return run


def _config_from_json(data):
    data = dict(data)
    data.pop("ssimref", None)
    return data


def _read_metrics(path):
    """Complete JSON lines of a metrics file (a torn last line from a kill is dropped)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


PHASES = ("autoencoder", "gmmn")


def _before(record, phase, step):
    """Whether a metrics record precedes the checkpoint (phase, step). A record of a step
    that has a checkpoint is written before it, except the generator's step-0 record,
    which follows the checkpoint taken when the autoencoder phase ends."""
    key, at = (PHASES.index(record["phase"]), record["step"]), (PHASES.index(phase), step)
    return key < at or (key == at and step > 0)


def _prepare_folder(run_dir, config, resume, force):
    run_dir = Path(run_dir)
    if resume:
        saved = _read_config(run_dir, f"--resume: {run_dir} holds no config.json; start the "
                                      "run without --resume")
        if config is not None:
            differs = [f.name for f in fields(TrainConfig) if f.name != "steps"
                       and getattr(saved, f.name) != getattr(config, f.name)]
            if differs:
                raise ValueError(f"--resume: the options {differs} differ from the run's "
                                 f"config.json; only --steps may change on resume")
            saved = replace(saved, steps=config.steps)
        return run_dir, saved
    if config is None:
        raise ValueError("config is required for a new run")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not force:
            raise FileExistsError(f"{run_dir} exists and is not empty; pass --resume to "
                                  "continue that run or --force to start it afresh")
        for name in OWN_FILES:
            (run_dir / name).unlink(missing_ok=True)
        for pattern in ("ckpt-*.npz", "samples/step-*.png"):
            for p in run_dir.glob(pattern):
                p.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, config


def train(run_dir, config=None, *, resume=False, force=False, progress=False,
          callback=None, blas_threads=1):
    """Train (or resume) the run in ``run_dir``.

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
    progress : bool
        Show a tqdm progress bar with the loss.
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
    """
    run_dir, config = _prepare_folder(run_dir, config, resume, force)
    if blas_threads is None:
        return _train(run_dir, config, resume, progress, callback)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        return _train(run_dir, config, resume, progress, callback)


def _train(run_dir, config, resume, progress, callback):
    xp = device_namespace(config.device)
    run = _build(config, xp)
    rng = np.random.default_rng(config.seed)
    if run.autoencoder is not None:
        run.autoencoder.init(rng, xp)
    run.gmmn.init(rng, xp)
    optimizers = {"generator": make_optimizer(config.optimizer, lr=config.lr,
                                              **({"momentum": config.momentum}
                                                 if config.optimizer == "sgd" else {}))}
    if run.autoencoder is not None:
        optimizers["autoencoder"] = make_optimizer("adam", lr=config.ae_lr)
    phase, start, elapsed = (PHASES[0] if run.autoencoder is not None else PHASES[1]), 0, 0.0
    metrics_path = run_dir / "metrics.jsonl"
    if resume and (run_dir / CHECKPOINT_JSON).exists():
        arrays, meta = load_checkpoint(run_dir)
        _restore(run, optimizers, arrays)
        rng = make_rng(meta["rng"])
        phase, start, elapsed = meta["phase"], meta["step"], meta["seconds"]
        kept = [r for r in _read_metrics(metrics_path) if _before(r, phase, start)]
        with atomic_path(metrics_path, force=True) as tmp:
            tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
    else:
        metrics_path.write_text("")
    # (on resume only `steps` can have changed)
    save_json(run_dir / "config.json", dict(asdict(config), ssimref=__version__), force=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    fixed = np.random.default_rng([config.seed, 1])  # grids and validation: not `rng`
    grid_noise, grid_labels = _grid_inputs(run, fixed)
    val_noise = run.gmmn.prior(fixed, config.eval_samples)
    val_labels = fixed.integers(0, run.splits.n_classes, config.eval_samples) \
        if config.conditional else None

    clock = time.perf_counter()

    def seconds():
        return round(elapsed + time.perf_counter() - clock, 3)

    def checkpoint(phase, step, done=False):
        save_checkpoint(run_dir, step, _arrays(run, optimizers),
                        {"phase": phase, "rng": rng_state(rng), "seconds": seconds(),
                         "done": done})

    def log(fh, record, bar):
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        if bar is not None and record["loss"] is not None:
            bar.set_postfix(loss=f"{record['loss']:.4g}")
        if callback is not None:
            callback(record["phase"], record["step"], record)

    last_loss = None
    with open(metrics_path, "a") as fh:
        if phase == "autoencoder":
            x_train = xp.asarray(run.splits.train.reshape(len(run.splits.train), -1))
            step = start
            bar = _bar(progress, config.ae_steps, start, "autoencoder")
            while step < config.ae_steps:
                idx = rng.choice(x_train.shape[0], size=config.ae_batch, replace=False)
                batch = xp.take(x_train, xp.asarray(idx), axis=0)
                loss, grads = run.autoencoder.loss_and_grad(batch, xp, rng)
                run.autoencoder.params = optimizers["autoencoder"].step(
                    run.autoencoder.params, grads, xp)
                step += 1
                _tick(bar)
                if step % config.log_every == 0 or step == config.ae_steps:
                    log(fh, {"phase": phase, "step": step, "loss": loss,
                             "seconds": seconds()}, bar)
                if step % config.checkpoint_every == 0 or step == config.ae_steps:
                    checkpoint(phase, step)
            _close(bar)
            phase, start = "gmmn", 0
            checkpoint(phase, 0)

        target = _targets(run, xp)
        labels_train = run.splits.train_labels
        step = start
        bar = _bar(progress, config.steps, start, "gmmn")
        if step == 0:
            _grid(run, run_dir, 0, grid_noise, grid_labels, xp)
            log(fh, {"phase": "gmmn", "step": 0, "loss": None, "seconds": seconds(),
                     "val_mmd2_rbf": validation_mmd2(run, val_noise, val_labels)}, None)
        while step < config.steps:
            idx = rng.choice(target.shape[0], size=config.batch, replace=False)
            z = run.gmmn.prior(rng, config.batch)
            labels = labels_train[idx] if config.conditional else None
            loss, value, grads = run.gmmn.loss_and_grad(
                z, xp.take(target, xp.asarray(idx), axis=0), xp, labels)
            run.gmmn.generator.params = optimizers["generator"].step(
                run.gmmn.generator.params, grads, xp)
            step += 1
            last_loss = loss
            _tick(bar)
            record = {"phase": "gmmn", "step": step, "loss": loss, "mmd2": value}
            if step % config.sample_every == 0 or step == config.steps:
                _grid(run, run_dir, step, grid_noise, grid_labels, xp)
                record["val_mmd2_rbf"] = validation_mmd2(run, val_noise, val_labels)
            if step % config.log_every == 0 or step == config.steps or "val_mmd2_rbf" in record:
                record["seconds"] = seconds()
                log(fh, record, bar)
            if step % config.checkpoint_every == 0 or step == config.steps:
                checkpoint("gmmn", step, done=step == config.steps)
        _close(bar)
        if step == start:  # nothing left to do: make sure the final state is on disk
            checkpoint("gmmn", step, done=True)
    return {"run": str(run_dir), "steps": config.steps, "loss": last_loss,
            "seconds": seconds()}


def _targets(run, xp):
    """The training set as the kernel sees it: pixel vectors, images, codes, or the
    decoded codes (reconstructions) for an image kernel in code space."""
    train = run.splits.train
    x = xp.asarray(train.reshape(len(train), -1))
    if run.autoencoder is None:
        return xp.asarray(train) if run.gmmn.kernel_on_images else x
    codes = run.autoencoder.encode(x, xp)
    if not run.gmmn.kernel_on_images:
        return codes
    return xp.reshape(run.autoencoder.decode(codes, xp), (len(train), *train.shape[1:]))


def validation_mmd2(run, noise, labels):
    """Unbiased MMD^2 between generated images and the validation split, with the data
    space RBF mixture on pixel vectors (comparable across kernels and spaces)."""
    xp = run.xp
    samples = run.gmmn.sample_images(noise, xp, labels)
    X = xp.reshape(samples, (samples.shape[0], -1))
    Y = xp.asarray(run.splits.validation.reshape(len(run.splits.validation), -1))
    return float(mmd2(X, Y, RBFMixture(variances=run.config.rbf_variances),
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


def _grid(run, run_dir, step, noise, labels, xp):
    images = to_numpy(run.gmmn.sample_images(noise, xp, labels))
    save_grid(Path(run_dir) / "samples" / f"step-{step:06d}.png", images, ncols=10,
              force=True)


def _bar(enabled, total, initial, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit="step")


def _tick(bar):
    if bar is not None:
        bar.update(1)


def _close(bar):
    if bar is not None:
        bar.close()
