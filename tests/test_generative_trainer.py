"""The shared trainer: interrupted + resumed runs equal uninterrupted ones bit for bit
(every model family, with a schedule and clipping), SIGINT/SIGTERM stop at a step boundary
with a checkpoint and the resume command, run-folder rules."""

import json
import os
import signal

import numpy as np
import pytest

from ssimref.generative.checkpoint import load_checkpoint
from ssimref.generative.runs import config_class, load_run, train
from ssimref.generative.trainer import TrainingInterrupted

BASE = dict(steps=12, batch=16, log_every=2, sample_every=5, checkpoint_every=4,
            eval_samples=30, ssim_size=5)
CASES = {
    "vae-ssim": ("vae", dict(recon="ssim-eq2", mix="l2", hidden=(32,), latent=4,
                             schedule="cosine", warmup=2, clip_norm=5.0)),
    "aae-mixture": ("aae", dict(recon="ssim-eq1", prior="mixture10", hidden=(32,), latent=3,
                                adversarial="ls")),
    "gan-matched": ("gan", dict(fidelity="ssim-eq2", hidden=(32,), disc_hidden=(32,),
                                noise_dim=4, schedule="step", lr_step_size=5)),
    "pix2pix-blur": ("pix2pix", dict(fidelity="ssim-eq1-uncentered", corruption="blur",
                                     hidden=(32,), disc_hidden=(16,))),
    "cgan": ("cgan", dict(hidden=(16,), disc_hidden=(16,), noise_dim=3, clip_norm=0.5)),
}


def _config(case, **kw):
    name, extra = CASES[case]
    return name, config_class(name)(**{**BASE, **extra, **kw})


def _lines(run):
    return [{k: v for k, v in r.items() if k != "seconds"}
            for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]


def _assert_same_run(a, b):
    x, meta_x = load_checkpoint(a)
    y, meta_y = load_checkpoint(b)
    assert sorted(x) == sorted(y) and meta_x["rng"] == meta_y["rng"]
    for k in x:
        np.testing.assert_array_equal(x[k], y[k], err_msg=k)
    assert _lines(a) == _lines(b)
    grids = sorted(p.name for p in (a / "samples").iterdir())
    assert grids == sorted(p.name for p in (b / "samples").iterdir())
    for g in grids:
        assert (a / "samples" / g).read_bytes() == (b / "samples" / g).read_bytes()


@pytest.mark.parametrize("case,stop_at", [("vae-ssim", 6), ("aae-mixture", 0),
                                          ("gan-matched", 5), ("pix2pix-blur", 10),
                                          ("cgan", 2)])
def test_killed_and_resumed_equals_uninterrupted(tmp_path, case, stop_at):
    """A run killed right after logging step ``stop_at`` (an exception from the callback,
    as a crash would) and resumed from its last checkpoint (step 4 * floor(stop_at / 4))
    ends with the same parameters, optimiser states, RNG state, metrics and grids."""
    name, config = _config(case)
    train(name, tmp_path / "straight", config)

    class Killed(Exception):
        pass

    def kill(phase, step, record):
        if step == stop_at:
            raise Killed
    with pytest.raises(Killed):
        train(name, tmp_path / "killed", config, callback=kill)
    assert load_checkpoint(tmp_path / "killed")[1]["step"] == 4 * (stop_at // 4)
    train(name, tmp_path / "killed", resume=True)
    _assert_same_run(tmp_path / "straight", tmp_path / "killed")
    meta = load_checkpoint(tmp_path / "killed")[1]
    assert meta["done"] and meta["step"] == 12


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_at_a_step_boundary_with_a_checkpoint(tmp_path, sig):
    """The signal arrives while step 5 is logged; the run finishes that step, writes a
    checkpoint of step 5 (between the regular ones at 4 and 8), says how to resume, and
    the resumed run equals an uninterrupted one."""
    name, config = _config("gan-matched")
    train(name, tmp_path / "straight", config)

    def send(phase, step, record):
        if step == 5:
            os.kill(os.getpid(), sig)
    with pytest.raises(TrainingInterrupted) as info:
        train(name, tmp_path / "stopped", config, callback=send)
    stop = info.value
    assert stop.step == 5 and stop.signal_name == signal.Signals(sig).name
    message = str(stop)
    assert "step 5" in message and "ssimref train gan -o" in message and "--resume" in message
    assert load_checkpoint(tmp_path / "stopped")[1]["step"] == 5
    assert signal.getsignal(sig) is not None  # handlers restored after the run
    train(name, tmp_path / "stopped", resume=True)
    _assert_same_run(tmp_path / "straight", tmp_path / "stopped")


def test_gmmn_interruption_message_names_its_command(tmp_path):
    from ssimref.gmmn.train import TrainConfig
    from ssimref.gmmn.train import train as gmmn_train

    def send(phase, step, record):
        if step == 4:
            os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match=r"ssimref gmmn train -o .* --resume"):
        gmmn_train(tmp_path / "g", TrainConfig(steps=10, batch=16, log_every=2,
                                               hidden=(8,)), callback=send)
    assert load_checkpoint(tmp_path / "g")[1]["step"] == 4


def test_schedule_and_clipping_act_on_the_updates(tmp_path):
    """One plain SGD step (momentum 0) under warm-up (factor 1/4 at step 0) and a global
    norm bound far below the gradient's norm moves every parameter by exactly
    ``-(lr / 4) g bound / ||g||``, with ``g`` recomputed here from the same draws."""
    from ssimref.generative.optim import global_norm
    from ssimref.generative.runs import build_model
    name, config = _config("vae-ssim", steps=1, warmup=4, schedule="constant", clip_norm=1e-3,
                           log_every=1, lr=1e-2, optimizer="sgd", momentum=0.0)
    train(name, tmp_path / "run", config)
    assert _lines(tmp_path / "run")[-1]["grad_norm_vae"] > 1e-3
    trained = load_run(tmp_path / "run").model
    fresh = build_model(name, config)
    rng = np.random.default_rng(config.seed)
    fresh.init(rng)
    data = fresh.phase_data(fresh.phases()[0])["images"]
    idx = rng.choice(data.shape[0], size=config.batch, replace=False)
    _, grads = fresh.loss_and_grads({"images": data[idx]}, rng, "vae")
    flat = {f"{net}.{k}": g for net, gs in grads.items() for k, g in gs.items()}
    norm = global_norm(flat, np)
    assert norm > 1e-3
    for net, gs in grads.items():
        for k, g in gs.items():
            expected = fresh.networks[net].params[k] - (1e-2 / 4) * g * (1e-3 / norm)
            np.testing.assert_allclose(trained.networks[net].params[k], expected,
                                       rtol=1e-12, atol=1e-15, err_msg=f"{net}.{k}")


def test_run_folder_rules(tmp_path):
    name, config = _config("cgan", steps=2)
    train(name, tmp_path / "r", config)
    with pytest.raises(FileExistsError, match="--resume"):
        train(name, tmp_path / "r", config)
    with pytest.raises(ValueError, match=r"\['batch'\]"):
        train(name, tmp_path / "r", _config("cgan", steps=2, batch=8)[1], resume=True)
    with pytest.raises(ValueError, match="holds a 'cgan' run"):
        train("gan", tmp_path / "r", resume=True)
    with pytest.raises(ValueError, match="takes a GANConfig"):
        train("gan", tmp_path / "x", config)
    train(name, tmp_path / "r", _config("cgan", steps=4)[1], resume=True)  # extend
    assert load_checkpoint(tmp_path / "r")[1]["step"] == 4
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        load_run(tmp_path / "nothing")
    run = load_run(tmp_path / "r")
    assert run.name == "cgan" and run.meta["step"] == 4


def test_checkpoint_names_networks_and_optimiser_groups(tmp_path):
    name, config = _config("aae-mixture", steps=2)
    train(name, tmp_path / "r", config)
    arrays, meta = load_checkpoint(tmp_path / "r")
    prefixes = {k.split(".layer")[0] for k in arrays if ".layer" in k}
    assert prefixes == {"encoder", "decoder", "discriminator",
                        "optimizer.reconstruction.m.encoder",
                        "optimizer.reconstruction.v.encoder",
                        "optimizer.reconstruction.m.decoder",
                        "optimizer.reconstruction.v.decoder",
                        "optimizer.discriminator.m", "optimizer.discriminator.v",
                        "optimizer.regularization.m.encoder",
                        "optimizer.regularization.v.encoder"}
    assert int(arrays["optimizer.regularization.t"]) == 2
    assert json.loads((tmp_path / "r" / "config.json").read_text())["model"] == "aae"


@pytest.mark.gpu
@pytest.mark.parametrize("case", sorted(CASES))
def test_gpu_training_matches_cpu(tmp_path, case):
    """The same code on CuPy: a few steps give the CPU's parameters to round-off."""
    from .conftest import cupy_with_device
    if cupy_with_device() is None:
        pytest.skip("CuPy or a CUDA device missing")
    from dataclasses import replace
    name, config = _config(case, steps=4)
    train(name, tmp_path / "cpu", config)
    train(name, tmp_path / "gpu", replace(config, device="gpu"))
    a, meta_a = load_checkpoint(tmp_path / "cpu")
    b, meta_b = load_checkpoint(tmp_path / "gpu")
    assert meta_a["rng"] == meta_b["rng"]
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-7, atol=1e-10, err_msg=k)
    run = load_run(tmp_path / "gpu", device="gpu")
    assert run.model.sample(3, np.random.default_rng(0),
                            np.arange(3) if run.model.conditional else None).shape[0] == 3
