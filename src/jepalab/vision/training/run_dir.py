"""Pretraining run folders: the saved config (and what may change on resume), the folder a session writes into,
and what a run's ``metrics.jsonl`` says about collapse."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jepalab.config import ConfigError, config_to_dict, load_config, save_config
from jepalab.eval import COLLAPSE_RANK_SHARE
from jepalab.rundir import atomic_write_text, new_run_dir
from jepalab.vision.training.curves import read_metrics
from jepalab.vision.training.distributed import DistInfo, broadcast_object
from jepalab.vision.training.pretrain_config import RUNTIME_FIELDS, PretrainConfig

__all__ = ["CHECKPOINT", "collapse_summary", "load_run_config", "prepare_run_dir", "truncate_metrics"]

CHECKPOINT = "checkpoint.safetensors"


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


def prepare_run_dir(cfg: PretrainConfig, out: str | Path | None, resume: bool, info: DistInfo,
                    say: Callable[[str], None]) -> tuple[Path, bool]:
    """(run folder, whether to restore its checkpoint). ``resume``: ``out`` must hold a run with the same config;
    without a checkpoint yet it starts again from step 0 (and says so). Otherwise a new folder (``out`` or
    ``runs/pretrain-<method>-<time>``) that holds no run, with the resolved ``config.yaml``."""
    if resume:
        if out is None:
            raise ValueError("--resume needs the run folder")
        run = Path(out)
        changed = _numeric_differences(load_run_config(run), cfg)
        if changed:
            raise ConfigError(f"the config differs from the one {run} was started with: {', '.join(changed)}")
        if (run / CHECKPOINT).exists():
            return run, True
        say(f"{run} has no {CHECKPOINT} yet: starting it from step 0 with its saved config")
        if info.main:
            (run / "metrics.jsonl").unlink(missing_ok=True)
        return run, False
    if info.main:
        if out is None:
            run = new_run_dir("runs", f"pretrain-{cfg.method}")
        else:
            run = Path(out)
            if (run / CHECKPOINT).exists() or (run / "metrics.jsonl").exists():
                raise FileExistsError(f"{run} already holds a run; pass --resume {run} to continue it, or use "
                                      "another --out")
            run.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run / "config.yaml")
    return Path(broadcast_object(str(run) if info.main else None, info)), False  # type: ignore[arg-type]


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
