"""Pretraining run folders: the saved config (and what may change on resume), the folder a session writes into and
its lock, the data a resumed run may read, a failed write said in one line, and what a run's ``metrics.jsonl`` says
about collapse."""

from __future__ import annotations

import contextlib
import errno
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jepalab.config import ConfigError, config_to_dict, load_config, save_config
from jepalab.data.fingerprint import fingerprint_changes
from jepalab.eval import COLLAPSE_RANK_SHARE
from jepalab.rundir import WriteFailed, atomic_write_text, new_run_dir, write_json
from jepalab.vision.methods.config import RUNTIME_FIELDS, PretrainConfig
from jepalab.vision.training.checkpoint import CheckpointError, read_record
from jepalab.vision.training.curves import read_metrics
from jepalab.vision.training.distributed import DistInfo, broadcast_object
from jepalab.vision.training.run_lock import RunInUse, RunLock

__all__ = ["CHECKPOINT", "DataChanged", "check_data", "collapse_summary", "hold_run", "load_run_config",
           "locate_run_dir", "prepare_run_dir", "truncate_metrics", "write_failure"]

CHECKPOINT = "checkpoint.safetensors"
_DATA_KEYS = ("data_fingerprint", "dataset", "steps")  # what run.json says of the data: replaced on a change


class DataChanged(ValueError):
    """The data a resumed run would read differs from the data it started with; the message says how."""


def load_run_config(run: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PretrainConfig:
    """The config of an existing run, with ``overrides`` allowed only on fields that do not change the numbers."""
    saved = Path(run) / "config.yaml"
    if not saved.is_file():
        raise FileNotFoundError(f"{run} is not a pretraining run folder (no config.yaml)")
    cfg = load_config(PretrainConfig, saved, overrides)
    fixed = _numeric_differences(load_config(PretrainConfig, saved), cfg)
    if fixed:
        raise ConfigError(f"cannot change {', '.join(fixed)} when resuming {run}; only {', '.join(RUNTIME_FIELDS)} "
                          "may differ")
    return cfg


def _numeric_differences(a: PretrainConfig, b: PretrainConfig) -> list[str]:
    """Dotted keys whose values differ between two configs, runtime fields excepted."""
    return [key for key in _differences(config_to_dict(a), config_to_dict(b)) if key not in RUNTIME_FIELDS]


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            keys += _differences(a[key], b[key], f"{prefix}{key}.")
        elif a.get(key) != b.get(key):
            keys.append(f"{prefix}{key}")
    return keys


def locate_run_dir(cfg: PretrainConfig, out: str | Path | None, resume: bool, info: DistInfo) -> Path:
    """The folder a session writes into, created if new: ``out``, or a new ``runs/pretrain-<method>-<time>``;
    ``resume`` needs ``out`` to be a run folder. Nothing in it is changed yet (its lock comes first)."""
    if resume:
        if out is None:
            raise ValueError("--resume needs the run folder")
        if not (Path(out) / "config.yaml").is_file():
            raise FileNotFoundError(f"{out} is not a pretraining run folder (no config.yaml)")
        return Path(out)
    if info.main:
        run = new_run_dir("runs", f"pretrain-{cfg.method}") if out is None else Path(out)
        run.mkdir(parents=True, exist_ok=True)
    return Path(broadcast_object(str(run) if info.main else None, info))  # type: ignore[arg-type]


@contextlib.contextmanager
def hold_run(run: Path, info: DistInfo) -> Iterator[None]:
    """Hold ``run``'s lock (:mod:`.run_lock`) for a training session, taken by rank 0, which then removes the
    temporary files a killed writer left; when another process holds it, every rank raises :class:`RunInUse` with
    rank 0's message."""
    lock = RunLock(run, "jepalab pretrain", enabled=info.main)
    refusal = None
    try:
        lock.__enter__()
    except RunInUse as error:
        refusal = str(error)
    refusal = broadcast_object(refusal, info)
    if refusal is not None:  # rank 0's: no rank holds the lock
        raise RunInUse(refusal)
    try:
        if info.main:
            for leftover in run.glob(".*.tmp"):  # an atomic write cut short by SIGKILL: nobody else writes here now
                leftover.unlink()
        yield
    finally:
        lock.__exit__(None, None, None)


def prepare_run_dir(cfg: PretrainConfig, run: Path, resume: bool, info: DistInfo, say: Callable[[str], None]) -> bool:
    """Whether to restore ``run``'s checkpoint. ``resume``: ``run`` must hold a run with the same config; without a
    checkpoint yet it starts again from step 0 (and says so). Otherwise ``run`` must hold no run yet; it gets the
    resolved ``config.yaml``."""
    if resume:
        changed = _numeric_differences(load_run_config(run), cfg)
        if changed:
            raise ConfigError(f"the config differs from the one {run} was started with: {', '.join(changed)}")
        if (run / CHECKPOINT).exists():
            return True
        say(f"{run} has no {CHECKPOINT} yet: starting it from step 0 with its saved config")
        if info.main:
            (run / "metrics.jsonl").unlink(missing_ok=True)
        return False
    if info.main:
        if (run / CHECKPOINT).exists() or (run / "metrics.jsonl").exists():
            raise FileExistsError(f"{run} already holds a run; pass --resume {run} to continue it, or use another "
                                  "--out")
        save_config(cfg, run / "config.yaml")
    return False


def check_data(run: Path, record: dict[str, Any], allow_change: bool, info: DistInfo,
               say: Callable[[str], None]) -> None:
    """Compare the data fingerprint of ``record`` (this session's run.json) with the one ``run`` started with: a
    change raises :class:`DataChanged` naming it, unless ``allow_change``, which continues and records it in
    run.json (rank 0). A run whose run.json has no fingerprint (from before they were recorded) gets this one."""
    facts = json.loads((run / "run.json").read_text())
    then, now = facts.get("data_fingerprint"), record["data_fingerprint"]
    changes = fingerprint_changes(then, now) if then is not None else []
    if then is not None and not changes:
        return
    step = read_record(run / CHECKPOINT)["step"]
    if then is None:
        say(f"{run}/run.json has no data fingerprint (the run started before they were recorded): recording the "
            f"data's now, at step {step}")
        update = {"data_fingerprint": now, "data_fingerprint_recorded_at_step": step}
    else:
        total = facts.get("steps", {}).get("total")
        if total != record["steps"]["total"]:
            changes.append(f"its schedules would change: {record['steps']['total']} steps planned now, {total} "
                           "when the run started")
        if not allow_change:
            raise DataChanged(f"the data of {run} changed since the run started: {'; '.join(changes)}. Restore the "
                              "data, or pass --allow-data-change to continue on it (the change is recorded in "
                              "run.json)")
        say(f"continuing {run} on changed data (--allow-data-change): {'; '.join(changes)}")
        change = {"at_step": step, "changes": changes, "before": {key: facts.get(key) for key in _DATA_KEYS}}
        update = {**{key: record[key] for key in _DATA_KEYS}, "data_changes": [*facts.get("data_changes", []), change]}
    if info.main:
        write_json(run / "run.json", {**facts, **update})


def write_failure(error: WriteFailed, run: Path, step: int) -> WriteFailed:
    """``error`` of a training session said in one line: the file, the bytes, the step, the last good checkpoint
    and the fix."""
    try:
        kept = f"the last good checkpoint ({run / CHECKPOINT}, step {read_record(run / CHECKPOINT)['step']}) is intact"
    except CheckpointError:
        kept = "no checkpoint was written yet"
    cause = {errno.ENOSPC: "free space", errno.EDQUOT: "free space or raise the quota"}.get(error.errno or 0,
                                                                                              "fix the cause")
    return WriteFailed(error.errno, f"{error}, at step {step}; {kept}: {cause}, then `jepalab pretrain --resume "
                                    f"{run}`", error.path, error.size)


def truncate_metrics(path: Path, step: int) -> None:
    """Drop records written after checkpoint ``step`` (a killed run may have logged a few more)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            if record["step"] < step or (record.get("kind") == "diag" and record["step"] <= step):
                kept.append(line)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))


def collapse_summary(run: Path) -> dict[str, Any]:
    """From a run's diagnostics records: the encoders collapsed at the last one, the first step each collapsed
    at, and the centred RankMe at the last record."""
    _, records = read_metrics(run)
    first: dict[str, int] = {}
    for record in records:
        for name in record.get("collapsed", []):
            first.setdefault(name, record["step"])
    last = records[-1] if records else {}
    return {"rule": f"centred RankMe < {COLLAPSE_RANK_SHARE:g} × width on the diagnostics batch",
            "collapsed": last.get("collapsed", []), "first_collapse_step": first,
            "rankme_centred_last": {k.split(".")[0]: v for k, v in last.items() if k.endswith(".rankme_centred")}}
