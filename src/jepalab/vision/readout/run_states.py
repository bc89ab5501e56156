"""``jepalab runs [DIR]``: every pretraining run folder below DIR (a folder holding config.yaml and run.json) with
its method, dataset, steps done of its total, state, last logged loss, images/s of its last logged window and, once
evaluated, the headline probe of its last evaluated checkpoint (eval.json).

The state comes from ``status.json`` (:mod:`~jepalab.vision.training.run_status`), which every training session
writes: ``failed`` when the last session raised (divergence, a missing dataset, out of memory; its error is kept);
``running`` while a session runs: on this host its process exists, on another host (a cluster node) its heartbeat
(every read-out, at most every 30 s) is younger than ``stale_after`` seconds; a ``running`` record whose trainer
is gone (killed, preempted outright) reads ``stopped``, as does a session that ended before the last step;
``finished`` when every step is done, ``collapsed`` when finished with an encoder whose centred RankMe ended below
the collapse threshold (summary.json). A run without status.json (trained before it existed) is finished or
stopped by its summary.json."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from jepalab.vision.training.curves import read_metrics
from jepalab.vision.training.run_status import STALE_AFTER_S, read_status, trainer_alive

__all__ = ["STATES", "list_runs", "run_row", "run_state", "runs_table"]

STATES = ("running", "finished", "stopped", "failed", "collapsed")


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def run_state(run: Path, now: float | None = None, stale_after: float = STALE_AFTER_S) -> tuple[str, str | None]:
    """(one of :data:`STATES`, the error of a failed run) by the rule of the module docstring."""
    status = read_status(run)
    summary = _read_json(run / "summary.json")
    if status is not None and status["state"] == "failed":
        return "failed", status.get("error")
    if status is not None and status["state"] == "running" and trainer_alive(status, now, stale_after):
        return "running", None
    finished = status["state"] == "finished" if status is not None else bool(summary.get("finished"))
    if not finished:
        return "stopped", None
    return ("collapsed" if (summary.get("collapse") or {}).get("collapsed") else "finished"), None


def _dataset(run: Path, record: dict[str, Any]) -> str:
    """The dataset's name, with the options of the run's config (e.g. a distractor strength)."""
    data = (yaml.safe_load((run / "config.yaml").read_text()) or {}).get("data", {})
    name = (record.get("dataset") or {}).get("name") or data.get("dataset", "?")
    options = data.get("options") or {}
    return name + "".join(f" {key}={value}" for key, value in sorted(options.items()))


def run_row(run: Path, root: Path, now: float | None = None, stale_after: float = STALE_AFTER_S) -> dict[str, Any]:
    """One run's row: run (its path below ``root``), method, dataset, step, total, state, error, loss, images_per_s,
    probe (None where not logged or not evaluated)."""
    record = _read_json(run / "run.json")
    steps, _ = read_metrics(run)
    state, error = run_state(run, now, stale_after)
    timed = [s for s in steps if "images_per_s" in s]
    evaluated = _read_json(run / "eval.json").get("checkpoints") or [{}]
    return {"run": str(run.relative_to(root)) if run != root else run.name, "method": record.get("method"),
            "dataset": _dataset(run, record), "step": steps[-1]["step"] + 1 if steps else 0,
            "total": (record.get("steps") or {}).get("total"), "state": state, "error": error,
            "loss": steps[-1].get("loss") if steps else None,
            "images_per_s": timed[-1]["images_per_s"] if timed else None, "probe": evaluated[-1].get("probe")}


def list_runs(root: str | Path, stale_after: float = STALE_AFTER_S) -> list[dict[str, Any]]:
    """A row (:func:`run_row`) per run folder at or below ``root``, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    now = time.time()
    folders = sorted({p.parent for p in root.rglob("config.yaml") if (p.parent / "run.json").is_file()})
    return [run_row(run, root, now, stale_after) for run in folders]


def runs_table(rows: list[dict[str, Any]]) -> str:
    """The text table of :func:`list_runs` (``-`` where a value is missing); a failed run's error below it."""
    width = max([len("run"), *(len(r["run"]) for r in rows)]) + 2
    data = max([len("dataset"), *(len(r["dataset"]) for r in rows)]) + 2
    lines = [f"{'run':<{width}}{'method':<9}{'dataset':<{data}}{'step':>11}  {'state':<10}{'loss':>10}{'images/s':>10}"
             f"{'probe':>9}"]
    for r in rows:
        step = f"{r['step']}/{r['total'] if r['total'] is not None else '?'}"
        loss = "-" if r["loss"] is None else f"{r['loss']:.4g}"
        speed = "-" if r["images_per_s"] is None else f"{r['images_per_s']:.0f}"
        probe = "-" if r["probe"] is None else f"{r['probe']:.2%}"
        lines.append(f"{r['run']:<{width}}{r['method'] or '?':<9}{r['dataset']:<{data}}{step:>11}  {r['state']:<10}"
                     f"{loss:>10}{speed:>10}{probe:>9}")
        if r["error"]:
            lines.append(f"{'':<{width}}  error: {r['error']}")
    return "\n".join(lines)
