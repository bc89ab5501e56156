"""A measurement's progress across sessions: recorded, stopped and unstarted runs, the step a stopped run resumes
from (its checkpoint's, not its last logged step) and the training time left at its group's measured speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from jepalab.cli import main
from jepalab.vision.experiments import ExperimentSettings
from jepalab.vision.experiments.campaign import measurement_progress, progress_table, registration_lines
from jepalab.vision.experiments.registry import experiment
from jepalab.vision.experiments.store import run_folder
from jepalab.vision.methods import method_spec
from jepalab.vision.training.checkpoint import FORMAT
from jepalab.vision.training.flops import step_flops

SETTINGS = ExperimentSettings(dim=32, depth=1, epochs=8, train_images=128, global_batch=16, seeds=(0, 1),
                              context_scales=((0.85, 1.0),))


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _checkpoint_header(path: Path, step: int) -> None:
    """A file with a jepalab checkpoint's safetensors header (no tensors): enough for its record."""
    header = json.dumps({"__metadata__": {"record": json.dumps({"format": FORMAT, "step": step})}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header)


def test_recorded_stopped_and_unstarted_runs_with_the_time_left(tmp_path: Path) -> None:
    store, record = tmp_path / "store", tmp_path / "record"
    runs = {(labels["method"], labels["seed"]): run_folder(store, cfg).name
            for labels, cfg in experiment("context-size").runs(SETTINGS)}
    assert len(runs) == 4
    done = record / runs["ijepa", 0]  # two sessions: 40 + 24 steps in 32 s, 0.5 s a step
    _write(done / "summary.json", {"finished": True})
    _write(done / "eval.json", {})
    _write(done / "run.json", {"steps": {"total": 64}, "flops_per_step_first": 1e9,
                               "sessions": [{"steps": [0, 40], "wall_s": 20.0}, {"steps": [40, 64], "wall_s": 12.0}]})
    stopped = store / runs["ijepa", 1]  # logged to step 50, last checkpoint at 32
    (stopped).mkdir(parents=True)
    (stopped / "config.yaml").write_text("method: ijepa\n")
    _write(stopped / "run.json", {"steps": {"total": 64}})
    _write(stopped / "summary.json", {"finished": False, "steps_done": 50})
    _checkpoint_header(stopped / "checkpoint.safetensors", 32)

    rows = {row.run: row for row in measurement_progress(["context-size"], SETTINGS, store, record)}
    assert [rows[runs[key]].state for key in sorted(runs)] == ["not started", "not started", "recorded", "stopped"]
    assert (rows[runs["ijepa", 0]].step, rows[runs["ijepa", 0]].seconds_left) == (64, 0.0)
    assert (rows[runs["ijepa", 1]].step, rows[runs["ijepa", 1]].seconds_left) == (32, pytest.approx(16.0))
    assert rows[runs["ijepa", 1]].speed_from == "measured"
    # EC-IJEPA never trained: 64 planned steps of its FLOPs at the 2 GFLOP/s the I-JEPA sessions achieved
    cfg = next(cfg for labels, cfg in experiment("context-size").runs(SETTINGS) if labels["method"] == "ecijepa")
    spec = method_spec("ecijepa")
    flops = step_flops(cfg, spec, 1, 16, spec.mask_sampler(cfg)(16, torch.Generator().manual_seed(0)))
    unstarted = rows[runs["ecijepa", 0]]
    assert (unstarted.step, unstarted.total) == (0, 64)
    assert unstarted.seconds_left == pytest.approx(64 * flops / 2e9)
    assert unstarted.speed_from == "by FLOPs at 0.002 TFLOP/s"
    table = progress_table(list(rows.values()))
    assert "recorded 1 of 4; trained, not yet recorded: 0" in table
    assert "ijepa depth 1 width 32 batch 16: 1 run(s) to record, training time left 0.0 h (measured)" in table
    assert "ecijepa depth 1 width 32 batch 16: 2 run(s) to record, training time left" in table
    assert f"training time left: {(16 + 2 * 64 * flops / 2e9) / 3600:.1f} h of run time" in table

    _checkpoint_header(stopped / "checkpoint.safetensors", 64)  # a finished run (status: summary.json)
    _write(stopped / "summary.json", {"finished": True, "steps_done": 64})
    assert next(r for r in measurement_progress(["context-size"], SETTINGS, store, record)
                if r.run == runs["ijepa", 1]).state == "finished"


def test_the_command_trains_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = ["context-size", "dim=32", "depth=1", "epochs=8", "train_images=128", "global_batch=16",
             "context_scales=[[0.85, 1.0]]"]
    assert main(["experiment", *items, "--out", str(tmp_path), "--progress"]) == 0
    out = capsys.readouterr().out
    assert "recorded 0 of 2" in out and out.count("not started") == 2
    assert out.count("training time left unknown") == 2 and "of run time" not in out  # nothing measured yet
    assert not (tmp_path / "runs").exists() and not (tmp_path / "plan.json").exists()


def test_the_registration_order_is_checked_while_the_runs_train(tmp_path: Path) -> None:
    """Each results folder's plan against the revisions that have trained its runs so far: a run resumed at a
    revision older than the plan is named before the measurement is decided."""
    import subprocess

    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "code"], check=True)
    _write(tmp_path / "out" / "plan.json", {})
    subprocess.run([*git, "add", "out/plan.json"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "plan"], check=True)
    before, planned = (subprocess.run([*git, "rev-parse", ref], check=True, capture_output=True, text=True)
                       .stdout.strip() for ref in ("HEAD~1", "HEAD"))
    store, outs = tmp_path / "store", {"context-size": tmp_path / "out"}
    run = store / next(run_folder(store, cfg).name for _, cfg in experiment("context-size").runs(SETTINGS))
    _write(run / "run.json", {"environment": {"git_revision": planned}, "sessions": [{"git_revision": planned}]})
    (line,) = registration_lines(outs, SETTINGS, store, None)[1:]
    assert f"context-size: plan.json committed at {planned[:12]}" in line and "all 1 revision(s)" in line
    _write(run / "run.json", {"environment": {"git_revision": planned},
                              "sessions": [{"git_revision": planned}, {"git_revision": before}]})
    (line,) = registration_lines(outs, SETTINGS, store, None)[1:]
    assert "NOT REGISTERED BEFORE ITS TRAINING" in line and f"trained at {before[:12]}" in line
