"""One trainer for every generative model: phases, alternating updates, schedules,
clipping, checkpoints with exact resume, metrics, sample grids, a progress bar and one
interruption policy.

A model (a :class:`GenerativeModel`) declares

- its networks (``name -> MLP``; their parameters are checkpointed as ``{name}.{param}``),
- its optimiser groups (``group -> networks updated together``; a group is also the name
  of the stage that updates it),
- its phases (:class:`Phase`: a name, a number of steps, a batch size and the stages of
  one step, e.g. ``("discriminator", "generator")`` for a GAN, run in that order on the
  same data batch),

and computes ``loss_and_grads(batch, rng, stage)``: the losses of the stage (floats) and
the gradients of its networks. The trainer does the rest, identically for every model:

- **randomness**: one NumPy ``Generator`` seeded with the run's seed draws initial
  parameters, batch indices (``rng.choice(n, batch, replace=False)``) and whatever the
  model draws in ``loss_and_grads`` (noise, dropout masks); grids and validation metrics
  use inputs drawn once from a separate generator seeded ``[seed, 1]``;
- **updates**: per stage, the group's gradients are clipped to a global norm
  (``clip_norm``; off at 0), the learning rate is the group's base rate times the
  schedule's factor for the step (:class:`~ssimref.generative.optim.Schedule`, a pure
  function of the step), and the group's optimiser steps;
- **files** of the run folder: ``config.json``; ``model.json`` (the networks and any
  weight resolved when the model was built, e.g. a calibrated SSIM weight);
  ``metrics.jsonl`` (one JSON object per
  logged step: ``phase``, ``step``, the losses, ``seconds``, and the validation metrics
  every ``sample_every`` steps and at step 0); ``samples/step-NNNNNN.png``;
  ``checkpoint.json`` + ``ckpt-*.npz`` (:mod:`~ssimref.generative.checkpoint`: parameters,
  optimiser states, the generator's state, written atomically);
- **exact resume**: a run resumed from a checkpoint ends bit for bit where an
  uninterrupted run ends (same machine, library versions and thread count): the
  checkpoint holds every state the next step reads, and the metric lines written after it
  are dropped and written again;
- **interruption**: SIGINT (Ctrl-C) or SIGTERM stops the run at the next step boundary,
  writes a checkpoint and raises :class:`TrainingInterrupted`, whose message names the
  step and the command that resumes it. A second signal stops at once (the previous
  checkpoint stays valid: every file is replaced atomically).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..backend import to_numpy
from ..io import atomic_path, save_json
from .checkpoint import CHECKPOINT_JSON, load_checkpoint, make_rng, rng_state, save_checkpoint
from .grid import save_grid
from .optim import Schedule, clip_grad_norm, make_optimizer

__all__ = ["Phase", "GenerativeModel", "fit", "TrainingInterrupted", "prepare_run_dir",
           "read_config_json", "read_metrics", "OWN_FILES"]

OWN_FILES = ("config.json", "model.json", "metrics.jsonl", CHECKPOINT_JSON,
             "evaluation.json", "figure.png")


@dataclass(frozen=True)
class Phase:
    """One phase of training: ``steps`` steps, each running ``stages`` in order on one
    batch of ``batch`` items; ``grids``: write sample grids and validation metrics."""

    name: str
    steps: int
    batch: int
    stages: tuple
    grids: bool = True


class TrainingInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM at a step boundary, its checkpoint written.

    Attributes: ``run_dir``, ``phase``, ``step`` (the step the run resumes from),
    ``signal_name``, ``command`` (the command line that resumes it).
    """

    def __init__(self, run_dir, phase, step, signal_name, command):
        self.run_dir, self.phase, self.step = Path(run_dir), phase, int(step)
        self.signal_name, self.command = signal_name, command
        super().__init__(f"{signal_name}: stopped after step {step} ({phase} phase); "
                         f"checkpoint written to {run_dir}; resume from step {step} with: "
                         f"{command}")

    def __str__(self):
        return self.args[0]


class GenerativeModel:
    """Base class of the trainable models (see the module docstring).

    Subclasses set :attr:`networks` and :attr:`groups` in ``__init__`` and implement
    :meth:`phases`, :meth:`phase_data`, :meth:`loss_and_grads`, :meth:`fixed_inputs`,
    :meth:`grid_images` and :meth:`validation`.
    """

    name = "model"

    def __init__(self, config, splits, xp):
        self.config, self.splits, self.xp = config, splits, xp
        self.networks = {}
        self.groups = {}

    @property
    def image_shape(self):
        return self.splits.image_shape

    @property
    def pixels(self):
        return int(np.prod(self.splits.image_shape))

    # ------------------------------------------------------------ to implement
    def phases(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def phase_data(self, phase):  # pragma: no cover - abstract
        """Arrays indexed by batch (first axis: the phase's training items)."""
        raise NotImplementedError

    def loss_and_grads(self, batch, rng, stage):  # pragma: no cover - abstract
        """``(losses, grads)``: a dict of floats, and ``network -> {param: gradient}``."""
        raise NotImplementedError

    def fixed_inputs(self, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def grid_images(self, fixed):  # pragma: no cover - abstract
        raise NotImplementedError

    def validation(self, fixed):  # pragma: no cover - abstract
        return {}

    # ---------------------------------------------------------------- defaults
    def init(self, rng):
        """Fresh parameters for every network, in the order of :attr:`networks`."""
        for net in self.networks.values():
            net.init(rng, self.xp)

    def group_lr(self, group):
        """Base learning rate of an optimiser group (the config's ``lr``; ``lr_d`` for a
        discriminator where the config has one)."""
        if group == "discriminator" and getattr(self.config, "lr_d", 0):
            return self.config.lr_d
        return self.config.lr

    def make_optimizers(self):
        c = self.config
        out = {}
        for group in self.groups:
            if c.optimizer == "sgd":
                out[group] = make_optimizer("sgd", lr=self.group_lr(group), momentum=c.momentum)
            else:
                out[group] = make_optimizer("adam", lr=self.group_lr(group), beta1=c.beta1,
                                            beta2=c.beta2)
        return out

    def arrays(self):
        return {f"{net}.{k}": v for net, mlp in self.networks.items()
                for k, v in mlp.params.items()}

    def load_arrays(self, arrays):
        """Set every network's parameters from checkpoint arrays (NumPy, moved to xp)."""
        for net, mlp in self.networks.items():
            start = len(net) + 1
            params = {k[start:]: self.xp.asarray(v) for k, v in arrays.items()
                      if k.startswith(net + ".")}
            if not params:
                raise ValueError(f"the checkpoint holds no parameters of network {net!r}")
            mlp.params = params

    def grid_columns(self):
        return 10

    def describe(self):
        """What ``model.json`` records: the model, its networks (layers and parameter
        counts) and any weight resolved when the model was built."""
        return {"model": self.name,
                "networks": {name: {"layers": repr(net.layers),
                                    "parameters": int(sum(int(np.prod(v.shape))
                                                          for v in net.params.values()))}
                             for name, net in self.networks.items()},
                "groups": {k: list(v) for k, v in self.groups.items()}}


def _relative(group, net):
    if net == group:
        return ""
    if net.startswith(group + "."):
        return net[len(group) + 1:] + "."
    return net + "."


def _take(value, idx, xp):
    if isinstance(value, np.ndarray) and value.dtype.kind in "iub":
        return value[idx]
    return xp.take(value, xp.asarray(idx), axis=0)


class _SignalStop:
    """Turns SIGINT and SIGTERM into a request to stop at the next step boundary (a
    second signal raises KeyboardInterrupt at once). Only in the main thread."""

    def __init__(self):
        self.requested = None
        self._previous = {}

    def _handler(self, signum, frame):
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def read_metrics(path):
    """Complete JSON lines of a metrics file (a torn last line from a kill is dropped)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def read_config_json(run_dir, missing):
    """The dict of a run folder's ``config.json``; FileNotFoundError(``missing``) without
    one."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(missing)
    return json.loads(path.read_text())


def prepare_run_dir(run_dir, config, config_cls, *, resume, force, model_name):
    """Check and set up a run folder; return ``(run_dir, config)``.

    New run: the folder must be empty or missing (``force`` deletes the run's own files
    there). Resume: the folder's ``config.json`` is the config; a given ``config`` must
    agree with it except for ``steps`` (a run can be extended).
    """
    run_dir = Path(run_dir)
    if resume:
        data = read_config_json(run_dir, f"--resume: {run_dir} holds no config.json; start "
                                         "the run without --resume")
        stored = data.get("model", "gmmn")
        if stored != model_name:
            raise ValueError(f"--resume: {run_dir} holds a {stored!r} run, not {model_name!r}")
        saved = config_cls.from_dict(data)
        if config is not None:
            differs = [f.name for f in fields(config_cls) if f.name != "steps"
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


def _before(record, names, phase, step):
    """Whether a metrics record precedes the checkpoint (phase, step). A record of a step
    that has a checkpoint is written before it, except a phase's step-0 record, which
    follows the checkpoint taken when the previous phase ends."""
    key, at = (names.index(record["phase"]), record["step"]), (names.index(phase), step)
    return key < at or (key == at and step > 0)


def fit(model, run_dir, *, resume=False, progress=False, callback=None, command=None,
        blas_threads=1):
    """Train ``model`` in the prepared ``run_dir`` (see :func:`prepare_run_dir`).

    Parameters
    ----------
    model : GenerativeModel
        Built from the run's config; its parameters are initialised here.
    run_dir : Path
    resume : bool
        Continue from the folder's checkpoint (a fresh start when it has none).
    progress : bool or None
        A tqdm bar per phase with the latest losses (None: only when stderr is a terminal
        and the phase runs longer than a second).
    callback : callable(phase, step, record), optional
        Called after every metrics line (tests use it to interrupt a run).
    command : str, optional
        The command that resumes this run, for the interruption message.
    blas_threads : int or None, default 1
        BLAS threads while training (None: leave the library's setting). The networks'
        matrices are small; one thread is fastest on a shared machine, and a fixed count
        keeps the bits reproducible.

    Returns
    -------
    dict
        ``run``, ``steps``, ``losses`` (the last step's), ``seconds`` (of training, all
        sessions together).

    Raises
    ------
    TrainingInterrupted
        On SIGINT or SIGTERM, after writing a checkpoint.
    """
    if blas_threads is None:
        return _fit(model, Path(run_dir), resume, progress, callback, command)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        return _fit(model, Path(run_dir), resume, progress, callback, command)


def write_config(run_dir, config, model_name):
    save_json(Path(run_dir) / "config.json",
              dict(asdict(config), model=model_name, ssimref=__version__), force=True)


def _fit(model, run_dir, resume, progress, callback, command):
    config, xp = model.config, model.xp
    command = command or f"ssimref train {model.name} -o {run_dir} --resume"
    rng = np.random.default_rng(config.seed)
    model.init(rng)
    optimizers = model.make_optimizers()
    phases = model.phases()
    names = [p.name for p in phases]
    first, start, elapsed = 0, 0, 0.0
    metrics_path = run_dir / "metrics.jsonl"
    if resume and (run_dir / CHECKPOINT_JSON).exists():
        arrays, meta = load_checkpoint(run_dir)
        model.load_arrays(arrays)
        for group, opt in optimizers.items():
            prefix = f"optimizer.{group}."
            opt.load_state({k[len(prefix):]: xp.asarray(v) for k, v in arrays.items()
                            if k.startswith(prefix)})
        rng = make_rng(meta["rng"])
        first, start, elapsed = names.index(meta["phase"]), meta["step"], meta["seconds"]
        kept = [r for r in read_metrics(metrics_path)
                if _before(r, names, meta["phase"], start)]
        with atomic_path(metrics_path, force=True) as tmp:
            tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
    else:
        metrics_path.write_text("")
    write_config(run_dir, config, model.name)  # (on resume only `steps` can have changed)
    save_json(run_dir / "model.json", dict(model.describe(), ssimref=__version__), force=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    fixed = model.fixed_inputs(np.random.default_rng([config.seed, 1]))
    clock = time.perf_counter()

    def seconds():
        return round(elapsed + time.perf_counter() - clock, 3)

    def checkpoint(phase, step, done=False):
        arrays = model.arrays()
        for group, opt in optimizers.items():
            arrays.update({f"optimizer.{group}.{k}": v for k, v in opt.state.items()})
        save_checkpoint(run_dir, step, arrays, {"phase": phase, "rng": rng_state(rng),
                                                "seconds": seconds(), "done": done})

    def grid(step):
        save_grid(run_dir / "samples" / f"step-{step:06d}.png",
                  to_numpy(model.grid_images(fixed)), ncols=model.grid_columns(), force=True)

    def log(fh, record, bar):
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        if bar is not None:
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items()
                             if isinstance(v, float) and k != "seconds"
                             and not k.startswith("val_")}, refresh=False)
        if callback is not None:
            callback(record["phase"], record["step"], record)

    losses, step = {}, start
    if not (run_dir / CHECKPOINT_JSON).exists():
        checkpoint(names[0], 0)  # a fresh run is resumable from its first step on
    with _SignalStop() as stop, open(metrics_path, "a") as fh:
        for index in range(first, len(phases)):
            phase = phases[index]
            last_phase = index == len(phases) - 1
            step = start if index == first else 0
            data = model.phase_data(phase)
            n_items = next(iter(data.values())).shape[0]
            if phase.batch > n_items:
                raise ValueError(f"batch {phase.batch} is larger than the {n_items} training "
                                 f"items of phase {phase.name!r}")
            schedule = Schedule(config.schedule, total=phase.steps, warmup=config.warmup,
                                final=config.lr_final, step_size=config.lr_step_size,
                                gamma=config.lr_gamma)
            bar = _bar(progress, phase.steps, step, phase.name)
            if phase.grids and step == 0:
                grid(0)
                log(fh, {"phase": phase.name, "step": 0, "seconds": seconds(),
                         **model.validation(fixed)}, None)
            while step < phase.steps:
                if stop.requested:
                    checkpoint(phase.name, step)
                    _close(bar)
                    raise TrainingInterrupted(run_dir, phase.name, step, stop.requested,
                                              command)
                idx = rng.choice(n_items, size=phase.batch, replace=False)
                batch = {k: _take(v, idx, xp) for k, v in data.items()}
                factor = schedule.factor(step)
                losses = {}
                for stage in phase.stages:
                    values, grads = model.loss_and_grads(batch, rng, stage)
                    losses.update(values)
                    norm = _update(model, optimizers, stage, grads,
                                   model.group_lr(stage) * factor, config.clip_norm)
                    if config.clip_norm:
                        losses[f"grad_norm_{stage}"] = norm
                step += 1
                _tick(bar)
                record = {"phase": phase.name, "step": step, **losses}
                validated = phase.grids and (step % config.sample_every == 0
                                             or step == phase.steps)
                if validated:
                    grid(step)
                    record.update(model.validation(fixed))
                if step % config.log_every == 0 or step == phase.steps or validated:
                    record["seconds"] = seconds()
                    log(fh, record, bar)
                if step % config.checkpoint_every == 0 or step == phase.steps:
                    checkpoint(phase.name, step, done=last_phase and step == phase.steps)
            _close(bar)
            if not last_phase:
                checkpoint(phases[index + 1].name, 0)
        if not phases[-1].steps or (first == len(phases) - 1 and step == start):
            checkpoint(phases[-1].name, step, done=True)  # nothing left: final state on disk
    return {"run": str(run_dir), "steps": step, "losses": losses, "seconds": seconds()}


def _update(model, optimizers, group, grads, lr, clip):
    xp = model.xp
    nets = model.groups[group]
    stray = set(grads) - set(nets)
    if stray:
        raise RuntimeError(f"stage {group!r} returned gradients of {sorted(stray)}, which "
                           f"its optimiser group {nets} does not update")
    flat_params, flat_grads, where = {}, {}, {}
    for net in nets:
        if net not in grads:
            continue
        prefix = _relative(group, net)
        params = model.networks[net].params
        for k, g in grads[net].items():
            flat_grads[prefix + k] = g
            flat_params[prefix + k] = params[k]
            where[prefix + k] = (net, k)
    norm = None
    if clip:
        flat_grads, norm = clip_grad_norm(flat_grads, clip, xp)
    optimizers[group].step(flat_params, flat_grads, xp, lr)
    for key, (net, k) in where.items():
        model.networks[net].params[k] = flat_params[key]
    return norm


def _bar(enabled, total, initial, desc):
    if enabled is False:
        return None
    from ..executor import progress_bar
    return progress_bar(total, enabled, desc, unit="step", initial=initial)


def _tick(bar):
    if bar is not None:
        bar.update(1)


def _close(bar):
    if bar is not None:
        bar.close()
