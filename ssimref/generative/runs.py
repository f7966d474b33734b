"""Training runs of every model by name: :func:`train`, :func:`load_run`, :data:`MODELS`.

========  ==================================  ==============================================
name      config                              model
========  ==================================  ==============================================
vae       :class:`~.autoencoders.VAEConfig`   variational autoencoder
aae       :class:`~.autoencoders.AAEConfig`   adversarial autoencoder
gan       :class:`~.gan.GANConfig`            GAN (Goodfellow et al.)
lsgan     :class:`~.gan.LSGANConfig`          least-squares GAN (Mao et al.)
cgan      :class:`~.gan.CGANConfig`           class-conditional GAN (Mirza and Osindero)
pix2pix   :class:`~.gan.Pix2PixConfig`        image-conditional GAN restoring corrupted
                                              digits (Isola et al.)
gmmn      :class:`ssimref.gmmn.TrainConfig`   GMMN, GMMN+AE, conditional GMMN
========  ==================================  ==============================================
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..backend import device_namespace
from .checkpoint import load_checkpoint
from .data import load_splits
from .trainer import fit, prepare_run_dir, read_config_json

__all__ = ["MODELS", "ModelSpec", "train", "load_run", "Run", "build_model", "config_class"]


@dataclass(frozen=True)
class ModelSpec:
    """A model of the registry: its name, one-line help, and where its classes live."""

    name: str
    help: str
    module: str
    config: str
    model: str

    def config_class(self):
        import importlib
        return getattr(importlib.import_module(self.module, __package__), self.config)

    def model_class(self):
        import importlib
        return getattr(importlib.import_module(self.module, __package__), self.model)


MODELS = {spec.name: spec for spec in (
    ModelSpec("vae", "variational autoencoder (bce, l2 or SSIM reconstruction)",
              ".autoencoders", "VAEConfig", "VAE"),
    ModelSpec("aae", "adversarial autoencoder (prior on codes; bce, l2 or SSIM "
              "reconstruction)", ".autoencoders", "AAEConfig", "AAE"),
    ModelSpec("gan", "GAN (cross-entropy losses; optional matched SSIM/l1/l2 fidelity)",
              ".gan", "GANConfig", "GAN"),
    ModelSpec("lsgan", "least-squares GAN (a-b-c coding; optional matched fidelity)",
              ".gan", "LSGANConfig", "GAN"),
    ModelSpec("cgan", "class-conditional GAN", ".gan", "CGANConfig", "GAN"),
    ModelSpec("pix2pix", "image-conditional GAN restoring corrupted digits (l1, l2 or "
              "SSIM fidelity)", ".gan", "Pix2PixConfig", "GAN"),
    ModelSpec("gmmn", "generative moment-matching network (RBF or SSIM kernel; data or "
              "code space; conditional)", "..gmmn.train", "TrainConfig", "GMMNTrainer"),
)}


def _spec(name):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name]


def config_class(name):
    """The config dataclass of model ``name``."""
    return _spec(name).config_class()


def run_config(name, run_dir, *, resume, **given):
    """The config of a run of model ``name``: the one stored in ``run_dir`` with the
    options ``given`` applied (``resume``), or a new config from ``given``.

    Raises
    ------
    FileNotFoundError
        ``resume`` on a folder without ``config.json``.
    ValueError, TypeError
        For options the model's config refuses.
    """
    cls = config_class(name)
    if not resume:
        return cls(**given)
    data = read_config_json(run_dir, f"--resume: {run_dir} holds no config.json; start the "
                            "run without --resume")
    return replace(cls.from_dict(data), **given)


def build_model(name, config, splits=None):
    """The model ``name`` built from ``config`` (parameters not yet initialised)."""
    spec = _spec(name)
    splits = splits if splits is not None else load_splits(config.dataset)
    cls = spec.model_class()
    xp = device_namespace(config.device)
    if spec.model == "GAN":
        return cls(config, splits, xp, name=name)
    return cls(config, splits, xp)


@dataclass
class Run:
    """A trained run in memory: its model name, config, model (parameters loaded),
    data splits and checkpoint metadata."""

    name: str
    config: object
    model: object
    splits: object
    meta: dict


def train(name, run_dir, config=None, *, resume=False, force=False, progress=False,
          callback=None, blas_threads=1):
    """Train (or resume) a run of model ``name`` in ``run_dir``.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`.
    run_dir : str or Path
    config : the model's config dataclass, optional
        Required for a new run; on ``resume`` the folder's ``config.json`` holds it and a
        given config may differ only in ``steps``.
    resume, force, progress, callback, blas_threads
        As for :func:`ssimref.generative.trainer.fit`.

    Returns
    -------
    dict
        ``run``, ``steps``, ``losses`` (the last step's), ``seconds``.

    Raises
    ------
    ValueError
        Unknown model, a config of another model, options the model does not take.
    FileExistsError
        A non-empty folder without ``resume`` or ``force``.
    TrainingInterrupted
        On SIGINT or SIGTERM (a checkpoint is written first).
    """
    spec = _spec(name)
    cls = spec.config_class()
    if config is not None and type(config) is not cls:
        raise ValueError(f"model {name!r} takes a {cls.__name__}, got "
                         f"{type(config).__name__}")
    # a new run's options and data are checked (by building the model) before the
    # folder is touched
    model = build_model(name, config) if config is not None and not resume else None
    run_dir, config = prepare_run_dir(run_dir, config, cls, resume=resume, force=force,
                                      model_name=name)
    model = model or build_model(name, config)
    command = (f"ssimref gmmn train -o {run_dir} --resume" if name == "gmmn" else
               f"ssimref train {name} -o {run_dir} --resume")
    return fit(model, run_dir, resume=resume, progress=progress, callback=callback,
               command=command, blas_threads=blas_threads)


def load_run(run_dir, device=None) -> Run:
    """The run in ``run_dir`` with the parameters of its last checkpoint.

    Raises
    ------
    FileNotFoundError
        ``run_dir`` is not a run folder, or holds no checkpoint.
    """
    run_dir = Path(run_dir)
    data = read_config_json(run_dir, f"{run_dir} is not a run folder (no config.json); "
                                     "train one with 'ssimref train MODEL -o RUN'")
    name = data.get("model", "gmmn")
    config = config_class(name).from_dict(data)
    if device is not None:
        config = replace(config, device=device)
    model = build_model(name, config)
    arrays, meta = load_checkpoint(run_dir)
    model.load_arrays(arrays)
    return Run(name, config, model, model.splits, meta)
