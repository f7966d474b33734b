"""The experiment the paper left undone: RBF versus SSIM kernels in moment matching.

Conditions: kernel (RBF mixture, SSIM distance kernel) x space (data, autoencoder code)
x (unconditional, conditional on the digit label), each trained with several seeds under
the same steps, batch size and optimiser, then evaluated on the held-out test digits with
:mod:`ssimref.gmmn.evaluate`. Outputs in the experiment folder:

- one run folder per condition and seed (resumable: a finished run is not retrained);
- ``results.json``: every run's metrics and wall times, the reference row, the settings;
- ``table.md``: mean and standard deviation over seeds of every metric, per condition;
- ``samples.png``: the final sample grids of the first seed, side by side.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..io import atomic_path, save_json
from ..generative.checkpoint import CHECKPOINT_JSON
from .data import load_digit_splits
from .evaluate import METRICS, evaluate_run, reference_metrics
from ..generative.grid import grid_image, save_panels
from .train import TrainConfig, grid_samples, load_run, train

__all__ = ["CONDITIONS", "run_experiment", "condition_name", "summarise", "format_table"]

CONDITIONS = tuple((kernel, space, conditional) for conditional in (False, True)
                   for space in ("data", "code") for kernel in ("rbf", "ssim"))


def condition_name(kernel, space, conditional):
    return f"{kernel}-{space}-{'cond' if conditional else 'uncond'}"


def _finished(run_dir, steps):
    record = Path(run_dir) / CHECKPOINT_JSON
    if not record.exists():
        return False
    meta = json.loads(record.read_text())
    return bool(meta.get("done")) and meta["step"] == steps and meta["phase"] == "gmmn"


def run_experiment(out_dir, *, seeds=(0, 1, 2), steps=1000, batch=64, ae_steps=1500,
                   conditions=CONDITIONS, n_eval=500, parzen_samples=2000, base=None,
                   progress=False, force=False, log=print):
    """Train and evaluate every condition with every seed; write the outputs listed in
    the module docstring into ``out_dir``. Returns the results dict.

    ``base`` is the TrainConfig whose other settings every run shares (the defaults when
    None). Runs already finished in ``out_dir`` are evaluated again but not retrained;
    unfinished ones are resumed. ``force`` starts every run afresh.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = base or TrainConfig()
    base = replace(base, steps=steps, batch=batch, ae_steps=ae_steps)
    started = time.perf_counter()
    runs, trained = [], 0
    for kernel, space, conditional in conditions:
        for seed in seeds:
            name = f"{condition_name(kernel, space, conditional)}-s{seed}"
            run_dir = out_dir / name
            config = replace(base, kernel=kernel, space=space, conditional=conditional,
                             seed=seed)
            t0 = time.perf_counter()
            if force or not (run_dir / "config.json").exists():
                train(run_dir, config, force=True, progress=progress)
                trained += 1
            elif not _finished(run_dir, steps):
                train(run_dir, config, resume=True, progress=progress)
                trained += 1
            t1 = time.perf_counter()
            metrics = evaluate_run(run_dir, n=n_eval, parzen_samples=parzen_samples)
            t2 = time.perf_counter()
            first = _first_loss(run_dir)
            runs.append({"name": name, "kernel": kernel, "space": space,
                         "conditional": conditional, "seed": seed, "metrics": metrics,
                         "first_loss": first, "final_loss": _last_loss(run_dir),
                         "session_train_seconds": round(t1 - t0, 2),
                         "evaluate_seconds": round(t2 - t1, 2)})
            log(f"{name}: train {metrics['train_seconds']:.1f} s, evaluate {t2 - t1:.1f} s, "
                f"mmd2_rbf {metrics['mmd2_rbf']:.4g}, mmd2_ssim {metrics['mmd2_ssim']:.4g}, "
                f"parzen {metrics['parzen_ll']:.1f}")
    reference = reference_metrics(n=n_eval)
    shared = {k: v for k, v in asdict(base).items()
              if k not in ("kernel", "space", "conditional", "seed")}
    results = {"settings": dict(shared, seeds=list(seeds), n_eval=n_eval,
                                parzen_samples=parzen_samples,
                                conditions=[condition_name(*c) for c in conditions]),
               "runs": runs, "reference": reference,
               "summary": summarise(runs, conditions),
               "wall_seconds": round(time.perf_counter() - started, 1),
               "runs_trained_in_this_call": trained,
               "machine": {"platform": platform.platform(), "processor": platform.processor(),
                           "python": platform.python_version(), "numpy": np.__version__},
               "ssimref": __version__,
               "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    save_json(out_dir / "results.json", results, force=True)
    with atomic_path(out_dir / "table.md", force=True) as tmp:
        tmp.write_text(format_table(results) + "\n")
    _panels(out_dir, conditions, seeds[0], base.dataset)
    return results


def _metrics_log(run_dir):
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _first_loss(run_dir):
    losses = [r["loss"] for r in _metrics_log(run_dir)
              if r["phase"] == "gmmn" and r.get("loss") is not None]
    return losses[0] if losses else None


def _last_loss(run_dir):
    losses = [r["loss"] for r in _metrics_log(run_dir)
              if r["phase"] == "gmmn" and r.get("loss") is not None]
    return losses[-1] if losses else None


def summarise(runs, conditions=CONDITIONS):
    """Mean, standard deviation (ddof 1) and count over seeds of every metric and of the
    training time, per condition."""
    summary = {}
    for condition in conditions:
        name = condition_name(*condition)
        group = [r for r in runs if condition_name(r["kernel"], r["space"],
                                                   r["conditional"]) == name]
        if not group:
            continue
        entry = {}
        for metric in (*METRICS, "train_seconds"):
            values = [r["metrics"][metric] for r in group if r["metrics"].get(metric)
                      is not None]
            if values:
                entry[metric] = {"mean": float(np.mean(values)),
                                 "sd": float(np.std(values, ddof=1)) if len(values) > 1
                                 else None, "n": len(values)}
        summary[name] = entry
    return summary


_HEADERS = {"mmd2_rbf": "MMD² RBF (x1e3)", "mmd2_ssim": "MMD² SSIM (x1e3)",
            "parzen_ll": "Parzen LL (nats)", "nearest_ssim": "NN SSIM",
            "class_kl": "class KL (nats)", "class_accuracy": "class acc.",
            "train_seconds": "train s"}
_SCALE = {"mmd2_rbf": 1e3, "mmd2_ssim": 1e3}


def _cell(entry, metric):
    if metric not in entry:
        return "–"
    scale = _SCALE.get(metric, 1.0)
    mean, sd = entry[metric]["mean"] * scale, entry[metric]["sd"]
    digits = 1 if metric in ("parzen_ll", "train_seconds") or scale != 1.0 else 3
    text = f"{mean:.{digits}f}"
    if sd is not None:
        text += f" ± {sd * scale:.{digits}f}"
    return text


def format_table(results):
    """A Markdown table: one row per condition (mean ± sd over seeds) and the reference
    row of real digits."""
    columns = [*METRICS, "train_seconds"]
    lines = ["| condition | " + " | ".join(_HEADERS[c] for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name, entry in results["summary"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(entry, c) for c in columns) + " |")
    ref = {k: {"mean": v, "sd": None} for k, v in results["reference"].items()
           if isinstance(v, float)}
    lines.append("| real digits (reference) | " +
                 " | ".join(_cell(ref, c) for c in columns) + " |")
    return "\n".join(lines)


def _panels(out_dir, conditions, seed, base_dataset):
    panels = []
    for condition in conditions:
        name = condition_name(*condition)
        run_dir = out_dir / f"{name}-s{seed}"
        if run_dir.exists():
            panels.append((name, grid_image(grid_samples(load_run(run_dir)), ncols=10,
                                            scale=3)))
    if panels:
        splits = load_digit_splits(base_dataset)
        panels.append(("real digits (test split)", grid_image(splits.test[:100], ncols=10,
                                                               scale=3)))
        save_panels(out_dir / "samples.png", panels, columns=4, force=True)
