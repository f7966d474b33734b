"""``ssimref train|sample|evaluate``: a round trip, one-line errors before any work, and
SIGTERM on a training process (it stops at a step boundary, writes a checkpoint and
prints the command that resumes it)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ssimref.cli import main
from ssimref.generative.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--steps", "6", "--batch", "16", "--hidden", "16", "--ssim-size", "5",
        "--eval-samples", "20", "--sample-every", "3", "--no-progress"]


def test_train_sample_evaluate_round_trip(tmp_path, capsys):
    run = tmp_path / "runs" / "c"
    argv = ["train", "cgan", *TINY, "--noise-dim", "4", "--disc-hidden", "8",
            "--fidelity", "ssim-eq2", "-o", str(run)]
    assert main(argv) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "cgan" and config["hidden"] == [16]
    assert config["fidelity"] == "ssim-eq2" and config["conditioning"] == "class"
    assert main(argv) == 2 and "exists" in capsys.readouterr().err
    assert main(["train", "cgan", "--steps", "8", "--resume", "--no-progress",
                 "-o", str(run)]) == 0
    assert load_checkpoint(run)[1]["step"] == 8
    assert main(["train", "cgan", "--lr", "0.1", "--resume", "-o", str(run)]) == 2
    assert "the options lr differ" in capsys.readouterr().err
    assert main(["sample", str(run), "-n", "12", "--label", "3",
                 "-o", str(tmp_path / "threes.npy")]) == 0
    threes = np.load(tmp_path / "threes.npy", allow_pickle=False)
    assert threes.shape == (12, 8, 8) and 0 <= threes.min() and threes.max() <= 1
    assert main(["sample", str(run), "-o", str(tmp_path / "grid.png")]) == 0
    assert main(["evaluate", str(run), "-n", "40", "--permutations", "10"]) == 0
    out = capsys.readouterr().out
    assert "fd:" in out and "lower is better" in out and "class_accuracy" in out
    assert "[real digits:" in out  # the real data's value beside each metric
    assert (run / "figure.png").exists()
    assert main(["evaluate", str(run)]) == 2


@pytest.mark.parametrize("argv,message", [
    (["train", "diffusion", "-o", "R"], "invalid choice: 'diffusion'"),
    (["train", "gan", "--recon", "bce", "-o", "R"], "gan does not take --recon"),
    (["train", "vae", "--fidelity", "l1", "-o", "R"], "vae does not take --fidelity"),
    (["train", "vae", "--recon", "ssim", "-o", "R"], "invalid choice: 'ssim'"),
    (["train", "vae", "--mix", "l2", "-o", "R"], "--mix l2 adds a pixel loss"),
    (["train", "vae", "--ssim-size", "4", "-o", "R"], "size must be odd"),
    (["train", "gan", "--noise-dim", "0", "-o", "R"], "--noise-dim must be >= 1"),
    (["train", "vae", "--dataset", "BAD", "-o", "R"], "outside [0, 1]"),
    (["sample", "NOTHING", "-o", "x.png"], "not a run folder"),
])
def test_bad_options_give_one_line_before_any_work(tmp_path, argv, message, capsys):
    np.savez(tmp_path / "bad.npz", images=np.linspace(0, 16, 40 * 64).reshape(40, 8, 8))
    argv = [str(tmp_path / "bad.npz") if a == "BAD" else
            str(tmp_path / "R") if a == "R" else str(tmp_path / a) if a == "NOTHING" else a
            for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert lines[0].startswith("ssimref: error: ")
    assert not (tmp_path / "R").exists()


def test_sigterm_stops_training_with_a_checkpoint_and_the_resume_command(tmp_path):
    run = tmp_path / "g"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssimref", "train", "gan", "--steps", "100000", "--batch",
         "16", "--hidden", "16", "--disc-hidden", "8", "--log-every", "1",
         "--checkpoint-every", "100000", "--sample-every", "100000", "--no-progress",
         "-o", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 4:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err  # 143, as SIGTERM's default
    step = load_checkpoint(run)[1]["step"]
    assert step >= 3
    assert f"resume from step {step} with: ssimref train gan -o {run} --resume" in err
    assert len(err.strip().splitlines()) == 1
    logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert logged[-1] == step  # the last logged step is the checkpointed one
    assert main(["train", "gan", "--steps", str(step + 2), "--resume", "--no-progress",
                 "-o", str(run)]) == 0
    assert load_checkpoint(run)[1]["step"] == step + 2
