"""``ssimref experiment paper``: the verdict rule and the paired comparison against hand
computations and SciPy's paired t statistic; the --quick experiment end to end (every
condition in results.json with finite metrics, tables and figures; a second call trains
nothing); interruption and resume; designs that differ are refused without --force."""

import json
import math
import os
import re
import signal

import numpy as np
import pytest

from ssimref.cli import main
from ssimref.experiments import (collect_paper, paired_comparison, paper_design, run_paper,
                                 verdict, write_report)
from ssimref.experiments.paper import (FAMILY_NAMES, REPORT_MARKERS, execution_order,
                                       family_verdict, plan_paper)
from ssimref.generative.trainer import TrainingInterrupted


# ------------------------------------------------------------------ the rule
def test_verdict_rule_by_hand():
    # gains 1, 2, 3: mean 2, sd 1, standard error 1/sqrt(3) = 0.577; 2 > 1.15
    assert verdict([1.0, 2.0, 3.0]) == "supported"
    assert verdict([-1.0, -2.0, -3.0]) == "not supported"
    # every seed better, but mean 1.73 < 2 x 1.63 (sd 2.83): undecided
    assert verdict([0.1, 5.0, 0.1]) == "undecided"
    # mixed signs: undecided whatever the mean
    assert verdict([10.0, 12.0, -0.1]) == "undecided"
    # two seeds 1 and 3: mean 2, standard error |3 - 1| / 2 = 1 exactly; 2 > 2 is false
    assert verdict([1.0, 3.0]) == "undecided"
    assert verdict([1.01, 3.0]) == "supported"  # mean 2.005 > 2 x 0.995
    # one seed has no standard error; non-finite gains decide nothing
    assert verdict([5.0]) == "undecided"
    assert verdict([1.0, 2.0, math.nan]) == "undecided"
    assert verdict([1.0, 1.0, 1.0]) == "supported"  # standard error 0


def test_paired_comparison_matches_scipy_paired_t():
    """mean / standard error of the paired difference is scipy's paired t statistic."""
    from scipy.stats import ttest_rel
    rng = np.random.default_rng(5)
    base = rng.uniform(20, 40, 5)
    ssim = base - rng.uniform(-1, 3, 5)
    out = paired_comparison(ssim, base, "lower")
    t = ttest_rel(ssim, base).statistic
    assert out["difference"]["mean"] / out["difference"]["se"] == pytest.approx(t, rel=1e-12)
    assert out["gain"]["mean"] == pytest.approx(-out["difference"]["mean"], rel=1e-14)
    assert out["wins"] == int(np.sum(ssim < base))
    assert out["n"] == 5


def test_paired_comparison_senses():
    # higher is better: gains are ssim - base
    out = paired_comparison([0.9, 0.8], [0.7, 0.5], "higher")
    assert out["gain"]["mean"] == pytest.approx(0.25) and out["wins"] == 2
    # best at 1: |0.9 - 1| < |1.5 - 1| and |1.05 - 1| < |0.7 - 1|
    out = paired_comparison([0.9, 1.05], [1.5, 0.7], "one")
    assert out["wins"] == 2
    assert out["gain"]["mean"] == pytest.approx(((0.5 - 0.1) + (0.3 - 0.05)) / 2)
    with pytest.raises(ValueError, match="paired"):
        paired_comparison([1.0, 2.0], [1.0], "lower")
    with pytest.raises(ValueError, match="sense"):
        paired_comparison([1.0, 2.0], [1.0, 3.0], "sideways")


def test_family_verdict_needs_agreement():
    assert family_verdict(["supported", "supported"]) == "supported"
    assert family_verdict(["not supported"]) == "not supported"
    assert family_verdict(["supported", "not supported"]) == "undecided"
    assert family_verdict(["supported", "undecided"]) == "undecided"


def test_design_checks():
    design = paper_design()
    assert [f.name for f in design.families] == list(FAMILY_NAMES)
    assert design.seeds == (0, 1, 2) and design.dataset == "mnist5k"
    for family in design.families:
        assert family.baselines and family.ssim_arms and len(family.lrs) >= 2
        # every arm of a family shares steps, batch and grid; the arms differ only in
        # the loss (or kernel) option
        keys = {k for arm in family.arms for k, _ in arm.options}
        assert len(keys) == 1
    assert paper_design(seeds=[4, 7]).seeds == (4, 7)
    with pytest.raises(ValueError, match="seeds"):
        paper_design(seeds=0)
    with pytest.raises(ValueError, match="families"):
        paper_design(families=["gan-on-the-moon"])
    with pytest.raises(ValueError, match="device"):
        paper_design(device="tpu")


# ------------------------------------------------------------------ --quick end to end
@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One --quick experiment through the command line, then a second library call."""
    out = tmp_path_factory.mktemp("paper") / "quick"
    assert main(["experiment", "paper", "--quick", "-o", str(out), "--no-progress"]) == 0
    first = json.loads((out / "results.json").read_text())
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("checkpoint.json")}
    second = run_paper(out, quick=True, figures=False, log=lambda line: None)
    return out, first, second, stamps


def test_quick_has_every_condition_with_finite_metrics(quick):
    out, first, _, _ = quick
    design = paper_design(quick=True)
    assert set(first["families"]) == set(FAMILY_NAMES)
    for family in design.families:
        fam = first["families"][family.name]
        assert set(fam["arms"]) == {arm.name for arm in family.arms}
        for arm in family.arms:
            entry = fam["arms"][arm.name]
            assert entry["lr_grid"] == list(family.lrs)
            assert set(entry["selection"]) == {f"{lr:g}" for lr in family.lrs}
            assert entry["chosen_lr"] == min(family.lrs, key=lambda lr: (
                entry["selection"][f"{lr:g}"], lr))
            assert [r["seed"] for r in entry["runs"]] == list(design.seeds)
            for run in entry["runs"]:
                metrics = run["metrics"]
                assert family.primary in metrics
                assert all(math.isfinite(v) for v in metrics.values()), metrics
        pairs = {(c["ssim"], c["baseline"]) for c in fam["comparisons"]}
        assert pairs == {(s.name, b.name) for s in family.ssim_arms for b in family.baselines}
        assert fam["verdict"] in ("supported", "not supported", "undecided")
    assert first["this_call"]["runs_trained"] == sum(
        len(f.arms) * (len(f.lrs) + len(design.seeds) - 1) for f in design.families)
    assert first["runs"] == first["this_call"]["runs_trained"]
    assert first["sizing"] is None  # the sizing belongs to the full design only
    tables = (out / "tables.md").read_text()
    assert all(f"## {name}:" in tables for name in FAMILY_NAMES)
    for name in ("metrics.png", "samples-gmmn-data.png", "samples-vae.png",
                 "reconstructions-aae.png", "restorations-pix2pix.png",
                 "restorations-lsgan.png"):
        assert (out / name).stat().st_size > 0, name


def test_second_call_trains_nothing(quick):
    out, first, second, stamps = quick
    call = second["this_call"]
    assert (call["runs_trained"], call["runs_evaluated"],
            call["selection_scores_computed"]) == (0, 0, 0)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("checkpoint.json")} == stamps
    assert len(second["calls"]) == 2 and second["calls"][0]["runs_trained"] == first["runs"]
    assert second["all_runs_train_seconds"] == first["all_runs_train_seconds"]
    # the command printed after an interruption (with --resume) runs and trains nothing
    assert main(["experiment", "paper", "--quick", "-o", str(out), "--resume",
                 "--no-progress"]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("checkpoint.json")} == stamps
    third = json.loads((out / "results.json").read_text())
    assert third["this_call"]["runs_trained"] == 0 and len(third["calls"]) == 3
    for name, fam in first["families"].items():
        for arm, entry in fam["arms"].items():
            again = second["families"][name]["arms"][arm]
            assert again["chosen_lr"] == entry["chosen_lr"]
            assert [r["metrics"] for r in again["runs"]] == [r["metrics"] for r in entry["runs"]]


def test_collect_reads_what_run_wrote(quick):
    """collect_paper (read only) finds every run's metrics, choices and verdicts that the
    run itself assembled, and touches no file of the folder."""
    out, first, _, _ = quick
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    collected = collect_paper(out, log=lambda line: None)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert collected["complete"] and collected["runs"] == first["runs"]
    for name, fam in first["families"].items():
        got = collected["families"][name]
        assert got["verdict"] == fam["verdict"]
        assert [c["metrics"] for c in got["comparisons"]] == \
            [c["metrics"] for c in fam["comparisons"]]
        for arm, entry in fam["arms"].items():
            assert got["arms"][arm]["chosen_lr"] == entry["chosen_lr"]
            assert got["arms"][arm]["runs"] == entry["runs"]


def test_report_replaces_only_the_marked_section(quick, tmp_path):
    out = quick[0]
    doc = tmp_path / "docs" / "experiments.md"
    doc.parent.mkdir()
    begin, end = REPORT_MARKERS
    doc.write_text(f"# Title\n\nBefore.\n\n{begin}\nold text\n{end}\n\nAfter.\n")
    assert main(["experiment", "paper", "-o", str(out), "--report", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith(f"# Title\n\nBefore.\n\n{begin}\n")
    assert text.endswith(f"{end}\n\nAfter.\n") and "old text" not in text
    for name in FAMILY_NAMES:
        assert f"| `{name}` |" in text and f"### {name}:" in text
    images = re.findall(r"!\[[^]]*\]\((img/[^)]+)\)", text)
    assert "img/paper-metrics.png" in images
    assert all((doc.parent / path).stat().st_size > 0 for path in images)
    again = text
    write_report(out, doc, log=lambda line: None)  # regenerating changes nothing
    assert doc.read_text() == again
    doc.write_text("no markers\n")
    with pytest.raises(ValueError, match="paper-results:begin"):
        write_report(out, doc, log=lambda line: None)


@pytest.mark.parametrize("argv, message", [
    (["--report", "doc.md", "--quick"], "--quick does nothing with --report"),
    (["--report", "doc.md", "--seeds", "2", "--force"], "--seeds, --force do nothing"),
    (["--plan", "-o", "E"], "-o does nothing with --plan"),
    (["--resume", "--force", "-o", "E"], "give one of them"),
    (["--resume", "-o", "E"], "holds no experiment"),
])
def test_options_that_do_nothing_or_contradict_are_refused(argv, message, tmp_path,
                                                          monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "paper", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_gpu_without_a_device_is_refused_before_any_file(tmp_path):
    from ssimref.backend import device_namespace
    try:
        device_namespace("gpu")
    except ValueError:
        pass
    else:
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="gpu|CuPy|CUDA"):
        run_paper(tmp_path / "g", quick=True, device="gpu")
    assert not (tmp_path / "g").exists()


def test_other_design_or_foreign_folder_refused(quick, tmp_path):
    out = quick[0]
    with pytest.raises(FileExistsError, match="--force"):
        run_paper(out, design=paper_design(quick=True, families=["vae"]), figures=False)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="no design.json"):
        run_paper(tmp_path, quick=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_interrupted_experiment_resumes(tmp_path):
    """SIGTERM during a run stops it at a step boundary with the experiment's resume
    command; the next call trains the rest and ends where an uninterrupted call ends."""
    design = paper_design(quick=True, families=["vae"])
    seen = []

    def kill_in_third_run(phase, step, record):
        seen.append(step)
        if seen.count(0) == 3 and step == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted) as info:
        run_paper(tmp_path / "a", design=design, figures=False, callback=kill_in_third_run,
                  log=lambda line: None)
    assert "ssimref experiment paper -o" in str(info.value)
    assert "--quick" in str(info.value) and info.value.step == 4
    partial = collect_paper(tmp_path / "a", log=lambda line: None)
    assert not partial["complete"] and partial["families"]["vae"]["verdict"] == "pending"
    assert partial["runs"] == 2  # the first arm's two grid runs; the third was interrupted
    calls = json.loads((tmp_path / "a" / "calls.json").read_text())
    assert len(calls) == 1 and calls[0]["runs_trained"] == 2  # written on the way out
    resumed = run_paper(tmp_path / "a", design=design, figures=False, log=lambda line: None)
    assert len(resumed["calls"]) == 2
    n_runs = len(design.families[0].arms) * (2 + 1)
    assert resumed["this_call"]["runs_trained"] == n_runs - 2  # the 3rd resumed, the rest new
    whole = run_paper(tmp_path / "b", design=design, figures=False, log=lambda line: None)
    for arm, entry in whole["families"]["vae"]["arms"].items():
        again = resumed["families"]["vae"]["arms"][arm]
        assert again["selection"] == entry["selection"]
        assert [r["metrics"] for r in again["runs"]] == [r["metrics"] for r in entry["runs"]]


def test_signal_between_runs_keeps_what_is_finished(tmp_path):
    """Under the command line's policy (ssimref.interrupt installed), SIGTERM outside a
    training run (here while the first evaluation is logged) raises Interrupted naming
    what was kept; the next call trains only the rest and ends where a whole call ends."""
    from ssimref import interrupt
    design = paper_design(quick=True, families=["pix2pix"])
    lines = []

    def log(line):
        lines.append(line)
        if "evaluated" in line and len(lines) < 10:
            os.kill(os.getpid(), signal.SIGTERM)

    assert interrupt.install()
    try:
        with pytest.raises(interrupt.Interrupted) as info:
            run_paper(tmp_path / "a", design=design, figures=False, log=log)
    finally:
        interrupt.uninstall()
    # the first evaluation follows the two grid runs of the tuning seed
    assert info.value.signal_name == "SIGTERM" and "2 runs trained" in info.value.kept
    assert not (tmp_path / "a" / "results.json").exists()
    resumed = run_paper(tmp_path / "a", design=design, figures=False, log=lambda line: None)
    n_runs = len(design.families[0].arms) * (2 + 2 - 1)
    assert resumed["this_call"]["runs_trained"] == n_runs - 2
    whole = run_paper(tmp_path / "b", design=design, figures=False, log=lambda line: None)
    for arm, entry in whole["families"]["pix2pix"]["arms"].items():
        again = resumed["families"]["pix2pix"]["arms"][arm]
        assert [r["metrics"] for r in again["runs"]] == [r["metrics"] for r in entry["runs"]]


def test_plan_measures_every_arm():
    design = paper_design(quick=True, families=["gmmn-code", "pix2pix"])
    plan = plan_paper(design, steps=2, log=lambda line: None, evaluate=False)
    assert set(plan["arms"]) == {"gmmn-code/rbf", "gmmn-code/ssim", "pix2pix/l1",
                                 "pix2pix/l2", "pix2pix/ssim-eq2"}
    for entry in plan["arms"].values():
        assert entry["ms_per_step"] > 0 and entry["runs"] == 2 + 2 - 1
    assert plan["arms"]["gmmn-code/ssim"]["autoencoder_ms_per_step"] > 0
    assert plan["total_seconds"] == pytest.approx(plan["train_seconds"])


def test_sizing_covers_the_full_design_and_adds_up():
    """SIZING holds a measured step time for every arm of the full design, and its
    projected training time is runs x (steps x step time + autoencoder steps x its step
    time), summed over the arms (recomputed here from the design)."""
    from ssimref.experiments.paper import SIZING
    design = paper_design()
    names = {f"{f.name}/{a.name}" for f in design.families for a in f.arms}
    assert set(SIZING["ms_per_step"]) == names
    total = 0.0
    per_family = {}
    for family in design.families:
        ae_steps = dict(family.options).get("ae_steps", 0) \
            if dict(family.options).get("space") == "code" else 0
        per_family[family.name] = 0.0
        for arm in family.arms:
            key = f"{family.name}/{arm.name}"
            runs = len(family.lrs) + len(design.seeds) - 1
            seconds = runs * (family.steps * SIZING["ms_per_step"][key]
                              + ae_steps * SIZING["autoencoder_ms_per_step"].get(key, 0.0)) / 1e3
            per_family[family.name] += seconds
            total += seconds
    # the families run cheapest first
    order = [f.name for f in execution_order(design)]
    assert sorted(order) == sorted(FAMILY_NAMES)
    assert [per_family[n] for n in order] == sorted(per_family.values())
    # the projection was computed from unrounded step times; they are stored to 0.1 ms
    assert total == pytest.approx(SIZING["projected_seconds"]["training"], rel=2e-3)
    assert SIZING["projected_seconds"]["total"] <= 2 * 3600
