"""The results folder's provenance.json written by the experiment runner."""

from __future__ import annotations

import json
from pathlib import Path

from jepalab.vision.experiments.runner import _provenance
from jepalab.vision.experiments.settings import ExperimentSettings


def _run(folder: Path, sessions: list[dict], done: int, last_session_steps: int, last_wall: float) -> Path:
    folder.mkdir()
    record = {"precision": "fp32", "environment": {"git_revision": "abc"}}
    record |= {"sessions": sessions} if sessions else {}
    (folder / "run.json").write_text(json.dumps(record))
    (folder / "summary.json").write_text(json.dumps({"steps_done": done, "steps_this_session": last_session_steps,
                                                     "wall_s": last_wall, "images_per_s": 100.0}))
    return folder


def test_provenance_counts_the_steps_no_recorded_session_timed(tmp_path: Path) -> None:
    """A run whose first session left no record (killed under code that wrote it only on a normal end) has its
    untimed steps named, per run and in total, beside the wall time that is recorded."""
    second_half = [{"steps": [600, 1000], "wall_s": 40.0}]
    whole = [{"steps": [0, 300], "wall_s": 30.0}, {"steps": [300, 1000], "wall_s": 70.0}]
    runs = [({"seed": 1}, _run(tmp_path / "cut", second_half, 1000, 400, 40.0)),
            ({"seed": 2}, _run(tmp_path / "whole", whole, 1000, 700, 70.0)),
            ({"seed": 3}, _run(tmp_path / "old", [], 1000, 250, 25.0))]
    session = {"images_trained": 0, "wall_s": 1.0}
    provenance = _provenance(tmp_path, runs, session, ExperimentSettings(device="cpu"))
    assert provenance["runs_train_wall_s"] == 40.0 + 100.0 + 25.0
    assert provenance["runs_train_steps_without_wall_s"] == 600 + 0 + 750
    assert [r.get("steps_without_wall_s") for r in provenance["runs"]] == [600, None, 750]
