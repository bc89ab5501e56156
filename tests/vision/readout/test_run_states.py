"""``jepalab runs``: a finished, a stopped, a failed (diverged) and a collapsed run read as such, with their steps,
last loss, speed and probe; a running trainer is told from a killed one by its process on this host and by its
heartbeat on another; --json gives the same rows."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pretrain_helpers import run_pretrain, step_losses

from jepalab.cli import main
from jepalab.vision import TrainingDiverged
from jepalab.vision.readout.run_states import list_runs, run_state, runs_table
from jepalab.vision.training.run_status import RunStatus, read_status


@pytest.fixture(scope="module")
def runs_below(reference_runs: dict[str, Path], fmnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a finished and evaluated run, a collapsed one, one stopped at step 3 and one that diverged."""
    root = tmp_path_factory.mktemp("runs")
    shutil.copytree(reference_runs["ijepa"], root / "finished")
    (root / "finished" / "eval.json").write_text(json.dumps({"checkpoints": [{"step": 8, "probe": 0.625}]}))
    shutil.copytree(reference_runs["mae"], root / "sweep" / "collapsed")
    summary = json.loads((root / "sweep" / "collapsed" / "summary.json").read_text())
    summary["collapse"]["collapsed"] = ["encoder"]
    (root / "sweep" / "collapsed" / "summary.json").write_text(json.dumps(summary))
    run_pretrain("ijepa", fmnist_root, root / "sweep" / "stopped", stop_after=3)
    with pytest.raises(TrainingDiverged):
        run_pretrain("ijepa", fmnist_root, root / "failed", "optim.lr=1e30")
    return root


def test_finished_stopped_failed_and_collapsed_runs(runs_below: Path) -> None:
    rows = {row["run"]: row for row in list_runs(runs_below)}
    assert sorted(rows) == ["failed", "finished", "sweep/collapsed", "sweep/stopped"]
    assert {name: row["state"] for name, row in rows.items()} == {
        "failed": "failed", "finished": "finished", "sweep/collapsed": "collapsed", "sweep/stopped": "stopped"}
    finished = rows["finished"]
    assert (finished["method"], finished["dataset"], finished["step"], finished["total"]) == ("ijepa", "fashion-mnist",
                                                                                            8, 8)
    assert finished["loss"] == step_losses(runs_below / "finished")[7] and finished["probe"] == 0.625
    assert finished["images_per_s"] > 0 and finished["error"] is None
    stopped = rows["sweep/stopped"]
    assert (stopped["step"], stopped["total"], stopped["probe"]) == (3, 8, None)
    assert rows["failed"]["error"].startswith("TrainingDiverged: training stopped: loss is")
    table = runs_table(list(rows.values()))
    assert "8/8" in table and "62.50%" in table and "error: TrainingDiverged" in table


def test_a_running_trainer_is_told_from_a_killed_one(runs_below: Path, tmp_path: Path) -> None:
    """Same host: the trainer's process exists; another host: its heartbeat is recent."""
    run = tmp_path / "run"
    shutil.copytree(runs_below / "sweep" / "stopped", run)
    with RunStatus(run, 3, 8):
        assert run_state(run) == ("running", None)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    status = {**read_status(run), "state": "running", "pid": int(gone.stdout)}  # a process that has ended
    (run / "status.json").write_text(json.dumps(status))
    assert run_state(run) == ("stopped", None)
    elsewhere = {**status, "host": f"not-{socket.gethostname()}", "updated": time.time() - 60}
    (run / "status.json").write_text(json.dumps(elsewhere))
    assert run_state(run, stale_after=600) == ("running", None)
    assert run_state(run, stale_after=30) == ("stopped", None)


def test_the_command_prints_the_table_and_json(runs_below: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", str(runs_below), "--json"]) == 0
    assert [row["state"] for row in json.loads(capsys.readouterr().out)] == ["failed", "finished", "collapsed",
                                                                            "stopped"]
    assert main(["runs", str(runs_below)]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["run", "method", "dataset", "step", "state", "loss",
                                                               "images/s", "probe"]
    assert main(["runs", str(runs_below / "nowhere")]) == 2
