"""Each training session's record in a run's run.json (``sessions``): opened when the session starts (command, code
revision, host), brought up to date at every checkpoint and closed with its speed when the session ends. A session
that a kill or an error ends keeps ``"ended": null`` with the steps and wall time up to its last checkpoint: what it
trained and left behind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from jepalab.rundir import command_line, environment, host_facts, write_json

__all__ = ["close_session", "open_session", "update_session"]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _rewrite_last(run: Path, done: int, wall: float, batch: int, extra: dict[str, Any],
                  top: dict[str, Any] | None = None) -> dict[str, Any]:
    """run.json with its last session at step ``done`` after ``wall`` seconds of ``batch`` images a step, plus
    ``extra`` (and ``top`` in the record itself); the session's changes."""
    facts = json.loads((run / "run.json").read_text())
    *earlier, last = facts["sessions"]
    start = last["steps"][0]
    changes = {"steps": [start, done], "wall_s": wall,
               "images_per_s": (done - start) * batch / wall if wall and done > start else None, **extra}
    write_json(run / "run.json", {**facts, **(top or {}), "sessions": [*earlier, {**last, **changes}]})
    return changes


def open_session(run: Path, start: int) -> None:
    """Append a session starting at step ``start`` to ``run``/run.json: the command, the code revision, the host
    (:func:`~jepalab.rundir.host_facts`), ``"ended": null`` until it is closed."""
    facts = json.loads((run / "run.json").read_text())
    session = {"command": command_line(), "started": _now(), "ended": None, "steps": [start, start],
               "wall_s": 0.0, "images_per_s": None, "git_revision": environment()["git_revision"], **host_facts()}
    write_json(run / "run.json", {**facts, "sessions": [*facts.get("sessions", []), session]})


def update_session(run: Path, done: int, wall: float, batch: int) -> dict[str, Any]:
    """The open session now at step ``done`` (its last checkpoint) after ``wall`` seconds; the changes made."""
    return _rewrite_last(run, done, wall, batch, {})


def close_session(run: Path, done: int, wall: float, batch: int, top: dict[str, Any] | None = None) -> dict[str, Any]:
    """Close the open session at step ``done`` after ``wall`` seconds (``top``: entries for run.json itself); the
    session's steps, wall time, images/s and end time."""
    return _rewrite_last(run, done, wall, batch, {"ended": _now()}, top)
