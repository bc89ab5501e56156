"""Where a measurement spread over sessions stands: each planned run's state (recorded with the results, finished,
running, stopped, failed, not started), the step its next session resumes from, and the training time left, from
the seconds per step its finished sessions measured on runs of the same method and shape."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jepalab.vision.experiments.registry import experiment
from jepalab.vision.experiments.settings import ExperimentSettings
from jepalab.vision.experiments.store import run_folder
from jepalab.vision.readout.run_states import run_state
from jepalab.vision.training.checkpoint import CheckpointError, read_record

__all__ = ["RunProgress", "measurement_progress", "progress_table"]


@dataclass(frozen=True)
class RunProgress:
    """One planned run: ``group`` (method and shape: runs that cost the same per step), ``state``, the step its
    next session starts from (``total`` once trained), and ``seconds_left`` (None while its group is unmeasured)."""

    run: str
    labels: dict[str, Any]
    group: str
    state: str
    step: int
    total: int | None
    seconds_left: float | None


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _recorded(run: Path) -> bool:
    return bool(_read_json(run / "summary.json").get("finished")) and (run / "eval.json").is_file()


def _resume_step(run: Path) -> int:
    """The step of the run's last checkpoint (0 without a readable one: it starts again)."""
    try:
        return int(read_record(run / "checkpoint.safetensors")["step"])
    except CheckpointError:
        return 0


def _seconds_per_step(runs: Sequence[Path]) -> float | None:
    """Σ wall / Σ steps over every training session the runs' run.json files record; None without one."""
    sessions = [s for run in runs for s in _read_json(run / "run.json").get("sessions", [])]
    steps = sum(s["steps"][1] - s["steps"][0] for s in sessions)
    return sum(s["wall_s"] for s in sessions) / steps if steps > 0 else None


def _group(cfg: Any) -> str:
    shape = cfg.model.resolved()
    return f"{cfg.method} depth {shape.depth} width {shape.dim} batch {cfg.optim.global_batch}"


def measurement_progress(names: Sequence[str], settings: ExperimentSettings, store: Path,
                         record: Path | None) -> list[RunProgress]:
    """A :class:`RunProgress` per distinct run the experiments ``names`` plan, in planned order: ``recorded`` when
    ``record`` (the light copies committed with the results) holds it finished and evaluated, else its state in
    ``store`` (``not started`` without a folder there)."""
    planned: dict[str, tuple[dict[str, Any], Any]] = {}
    for name in names:
        for labels, cfg in experiment(name).runs(settings):
            folder = run_folder(store, cfg).name
            planned[folder] = ({**planned.get(folder, ({}, cfg))[0], **labels}, cfg)
    places = {run: (record / run if record is not None and _recorded(record / run) else store / run)
              for run in planned}
    groups: dict[str, list[Path]] = {}
    for run, (_, cfg) in planned.items():
        groups.setdefault(_group(cfg), []).append(places[run])
    speed = {group: _seconds_per_step(runs) for group, runs in groups.items()}
    totals = {group: max((int(_read_json(r / "run.json").get("steps", {}).get("total", 0)) for r in runs),
                         default=0) or None for group, runs in groups.items()}
    rows = []
    for run, (labels, cfg) in planned.items():
        place, group = places[run], _group(cfg)
        total = _read_json(place / "run.json").get("steps", {}).get("total") or totals[group]
        if place.parent == record:
            state, step = "recorded", total or 0
        elif not (place / "config.yaml").is_file():
            state, step = "not started", 0
        else:
            state = run_state(place)[0]
            step = (total or 0) if state in ("finished", "collapsed") else _resume_step(place)
        left = None if total is None or speed[group] is None else (total - step) * speed[group]
        rows.append(RunProgress(run, labels, group, state, step, total, left))
    return rows


def progress_table(rows: Sequence[RunProgress]) -> str:
    """One line per run, then the count of recorded runs and the training time left by group (hours)."""
    width = max([len("run"), *(len(r.run) for r in rows)]) + 2
    lines = [f"{'run':<{width}}{'state':<13}{'resumes at':>16}  labels"]
    for r in rows:
        step = f"{r.step}/{r.total if r.total is not None else '?'}"
        labels = " ".join(f"{key}={value}" for key, value in r.labels.items())
        lines.append(f"{r.run:<{width}}{r.state:<13}{step:>16}  {labels}")
    recorded = sum(r.state == "recorded" for r in rows)
    lines.append(f"recorded {recorded} of {len(rows)}; trained, not yet recorded: "
                 f"{sum(r.state in ('finished', 'collapsed') for r in rows)}")
    for group in dict.fromkeys(r.group for r in rows):
        mine = [r for r in rows if r.group == group and r.state != "recorded"]
        known = [r.seconds_left for r in mine if r.seconds_left is not None]
        left = f"{sum(known) / 3600:.1f} h" if len(known) == len(mine) else "unmeasured"
        lines.append(f"  {group}: {len(mine)} run(s) to record, training time left {left}")
    total = [r.seconds_left for r in rows if r.state != "recorded"]
    if None not in total:
        lines.append(f"training time left: {sum(total) / 3600:.1f} h of run time")
    return "\n".join(lines)
