"""Where a measurement spread over sessions stands: each planned run's state (recorded with the results, finished,
running, stopped, failed, not started), the step its next session resumes from, and the training time left, from
the seconds per step its sessions measured on runs of the same method and shape; for a confirmatory
measurement, git's check of its registration order so far."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jepalab.vision.experiments.registration import RegistrationError, registration_record, trained_revisions
from jepalab.vision.experiments.registry import experiment
from jepalab.vision.experiments.settings import ExperimentSettings
from jepalab.vision.experiments.store import run_folder, run_step_flops
from jepalab.vision.readout.run_states import run_state
from jepalab.vision.training.checkpoint import CheckpointError, read_record

__all__ = ["RunProgress", "measurement_progress", "progress_table", "registration_lines"]


@dataclass(frozen=True)
class RunProgress:
    """One planned run: ``group`` (method and shape: runs that cost the same per step), ``state``, the step its
    next session starts from (``total`` once trained), ``seconds_left`` (None where no speed is known) and how that
    speed was found (``measured`` on the group's sessions, or ``by FLOPs`` at the rate the other groups achieved)."""

    run: str
    labels: dict[str, Any]
    group: str
    state: str
    step: int
    total: int | None
    seconds_left: float | None
    speed_from: str | None


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


def _sessions(runs: Sequence[Path]) -> list[tuple[int, float, float]]:
    """(steps, wall seconds, FLOPs per step) of every training session the runs' run.json files record."""
    found = []
    for run in runs:
        record = _read_json(run / "run.json")
        for session in record.get("sessions", []):
            steps = session["steps"][1] - session["steps"][0]
            found.append((steps, float(session["wall_s"]), float(record.get("flops_per_step_first") or 0)))
    return found


def _speeds(groups: dict[str, tuple[Any, list[Path]]]) -> dict[str, tuple[float, str] | None]:
    """Seconds per step of each group: measured (Σ wall / Σ steps of its sessions), else its step's FLOPs at the
    FLOP rate the measured sessions achieved together, else None."""
    sessions = {group: _sessions(runs) for group, (_, runs) in groups.items()}
    every = [s for found in sessions.values() for s in found if s[2] > 0]
    rate = sum(steps * flops for steps, _, flops in every) / sum(wall for _, wall, _ in every) if every else None
    speeds: dict[str, tuple[float, str] | None] = {}
    for group, (cfg, _) in groups.items():
        steps = sum(s[0] for s in sessions[group])
        if steps > 0:
            speeds[group] = (sum(s[1] for s in sessions[group]) / steps, "measured")
        else:
            speeds[group] = (run_step_flops(cfg) / rate, f"by FLOPs at {rate / 1e12:.3f} TFLOP/s") if rate else None
    return speeds


def _group(cfg: Any) -> str:
    shape = cfg.model.resolved()
    return f"{cfg.method} depth {shape.depth} width {shape.dim} batch {cfg.optim.global_batch}"


def _planned_total(cfg: Any) -> int | None:
    """Steps of a run not started: epochs × whole batches of its image limit (None without a limit)."""
    return cfg.optim.epochs * (cfg.data.limit // cfg.optim.global_batch) if cfg.data.limit else None


def _place(run: str, store: Path, record: Path | None) -> Path:
    """Where run ``run`` is read: its light copy in ``record`` once recorded there, else its folder in ``store``."""
    return record / run if record is not None and _recorded(record / run) else store / run


def _trained_at(run: Path) -> set[str]:
    """The code revisions that have trained ``run`` so far (run.json: its first and every session's)."""
    found = _read_json(run / "run.json")
    return trained_revisions(found.get("environment", {}).get("git_revision"), found.get("sessions", []))


def registration_lines(outs: dict[str, Path], settings: ExperimentSettings, store: Path,
                       record: Path | None) -> list[str]:
    """Per results folder, git's record that its plan.json was committed before every code revision that has
    trained its runs so far (:func:`~.registration.registration_record`), or what is wrong: checked while the
    measurement runs, not only when it is decided."""
    lines = []
    for name, out in outs.items():
        revisions = {revision for _, cfg in experiment(name).runs(settings)
                     for revision in _trained_at(_place(run_folder(store, cfg).name, store, record))}
        try:
            found = registration_record(out, revisions)
        except RegistrationError as error:
            lines.append(f"  {name}: NOT REGISTERED BEFORE ITS TRAINING: {error}")
            continue
        lines.append(f"  {name}: " + (f"not checked ({found['reason']})" if not found["checked"] else
                                       f"plan.json committed at {found['plan_commit'][:12]} "
                                       f"({found['plan_committed']}), contained in all {len(revisions)} revision(s) "
                                       "that have trained its runs so far"))
    return ["registration order (git):", *lines]


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
    places = {run: _place(run, store, record) for run in planned}
    groups: dict[str, tuple[Any, list[Path]]] = {}
    for run, (_, cfg) in planned.items():
        groups.setdefault(_group(cfg), (cfg, []))[1].append(places[run])
    speeds = _speeds(groups)
    rows = []
    for run, (labels, cfg) in planned.items():
        place, group = places[run], _group(cfg)
        total = _read_json(place / "run.json").get("steps", {}).get("total") or _planned_total(cfg)
        if place.parent == record:
            state, step = "recorded", total or 0
        elif not (place / "config.yaml").is_file():
            state, step = "not started", 0
        else:
            state = run_state(place)[0]
            step = (total or 0) if state in ("finished", "collapsed") else _resume_step(place)
        speed = speeds[group]
        left = None if total is None or speed is None else (total - step) * speed[0]
        rows.append(RunProgress(run, labels, group, state, step, total, left, speed and speed[1]))
    return rows


def progress_table(rows: Sequence[RunProgress]) -> str:
    """One line per run, then the count of recorded runs and the training time left by group (hours), each with
    where its speed came from."""
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
        left = f"{sum(known) / 3600:.1f} h ({mine[0].speed_from})" if mine and len(known) == len(mine) else \
            "0 h" if not mine else "unknown"
        lines.append(f"  {group}: {len(mine)} run(s) to record, training time left {left}")
    total = [r.seconds_left for r in rows if r.state != "recorded"]
    if None not in total:
        lines.append(f"training time left: {sum(total) / 3600:.1f} h of run time")
    return "\n".join(lines)
