"""Each training session's record in run.json: opened at its start, brought up to date at each checkpoint, closed at
its end; one that a kill ends keeps what it trained up to its last checkpoint, with ``ended`` null."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jepalab.vision.training.sessions import close_session, open_session, update_session


def _sessions(run: Path) -> list[dict]:
    return json.loads((run / "run.json").read_text())["sessions"]


def test_a_killed_session_keeps_its_last_checkpoint_and_the_next_one_is_recorded_beside_it(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"params": 7}))
    open_session(tmp_path, 0)
    (opened,) = _sessions(tmp_path)
    assert opened["ended"] is None and opened["steps"] == [0, 0] and opened["images_per_s"] is None
    assert opened["git_revision"] and opened["cpu"] and "flags" in opened and opened["started"]
    assert update_session(tmp_path, 40, 8.0, 16) == {"steps": [0, 40], "wall_s": 8.0, "images_per_s": 80.0}
    # killed here, after step 40's checkpoint: the next session resumes from it
    open_session(tmp_path, 40)
    update_session(tmp_path, 60, 2.0, 16)
    closed = close_session(tmp_path, 64, 3.0, 16, top={"collapse": {"collapsed": []}})
    assert closed["images_per_s"] == pytest.approx(24 * 16 / 3.0) and closed["ended"]
    killed, last = _sessions(tmp_path)
    assert killed["ended"] is None and killed["steps"] == [0, 40] and killed["wall_s"] == 8.0
    assert last["steps"] == [40, 64] and last["wall_s"] == 3.0 and last["ended"] == closed["ended"]
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["params"] == 7 and record["collapse"] == {"collapsed": []}


def test_a_session_killed_before_its_first_checkpoint_records_no_steps(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text("{}")
    open_session(tmp_path, 120)
    open_session(tmp_path, 120)
    first, second = _sessions(tmp_path)
    assert first["steps"] == second["steps"] == [120, 120] and first["wall_s"] == 0.0
