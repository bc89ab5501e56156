"""The run store shared by experiments: one folder per resolved pretraining config (``<method>-<hash>``), trained
once and evaluated once per evaluation protocol, whichever experiments ask for it (the clean runs of noisy-features
serve variance-subspaces, its strongest-distractor runs serve depth). Runs resume from their checkpoint; ``jobs``
runs train at once, each in its own process."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from jepalab.config import config_to_dict, load_config
from jepalab.rundir import to_jsonable, write_json
from jepalab.vision.experiments.settings import ExperimentSettings
from jepalab.vision.readout.evaluation import EvalSettings, evaluate_run
from jepalab.vision.readout.run import Run
from jepalab.vision.training.distributed import resolve_device
from jepalab.vision.training.loop import pretrain
from jepalab.vision.training.pretrain_config import RUNTIME_FIELDS, PretrainConfig
from jepalab.vision.training.run_dir import CHECKPOINT

__all__ = ["LIGHT_FILES", "execute", "restore_light", "run_folder", "run_key", "save_light"]

Say = Callable[[str], None]


def run_key(cfg: PretrainConfig) -> str:
    """12 hex digits of the SHA-256 of the config without its runtime fields (threads, device, progress, ...)."""
    data = config_to_dict(cfg)
    for dotted in RUNTIME_FIELDS:
        section, name = dotted.split(".")
        data.get(section, {}).pop(name, None)
    return hashlib.sha256(json.dumps(to_jsonable(data), sort_keys=True).encode()).hexdigest()[:12]


def run_folder(store: Path, cfg: PretrainConfig) -> Path:
    """``store/<method>-<run_key>``: the one folder of this config."""
    return store / f"{cfg.method}-{run_key(cfg)}"


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


LIGHT_FILES = ("config.yaml", "run.json", "summary.json", "metrics.jsonl", "eval.json")
"""What a finished, evaluated run leaves besides its checkpoints: enough to reuse it without training or evaluating
again (:func:`save_light`, :func:`restore_light`); with them, every ``*.measure.json`` an experiment left there."""
MEASURES = "*.measure.json"


def _light_files(run: Path) -> list[str]:
    return [*LIGHT_FILES, *sorted(p.name for p in run.glob(MEASURES))]


def _expected_steps(run: Path, which: str) -> list[int] | None:
    """The checkpoint steps ``which`` selects, from the run's summary and config (no checkpoint read): every
    ``snapshot_every`` step and the last for "all", the last for "last"; None when unknown."""
    summary, cfg = _read_json(run / "summary.json"), load_config(PretrainConfig, run / "config.yaml")
    if not summary or which not in ("last", "all"):
        return None
    total, every = int(summary["total_steps"]), cfg.train.snapshot_every
    snapshots = list(range(every, total + 1, every)) if every and which == "all" else []
    return sorted({*snapshots, total})


def _evaluation_current(run: Path, which: str, settings: EvalSettings) -> dict[str, Any] | None:
    """The run's eval.json if it was made with ``settings`` on the checkpoints ``which`` selects, else None."""
    result = _read_json(run / "eval.json")
    if result is None or result.get("settings") != to_jsonable(vars(settings)):
        return None
    expected = _expected_steps(run, which)
    if expected is None:
        expected = Run(run).select(which)
    return result if [c["step"] for c in result["checkpoints"]] == expected else None


def save_light(store: Path, record: Path) -> list[str]:
    """Copy the light files of every finished, evaluated run of ``store`` into ``record/<run>/`` (a folder meant for
    git: no checkpoints); returns the runs copied."""
    copied = []
    for run in sorted(p for p in store.iterdir() if p.is_dir()) if store.is_dir() else []:
        if (_read_json(run / "summary.json") or {}).get("finished") and (run / "eval.json").is_file():
            (record / run.name).mkdir(parents=True, exist_ok=True)
            for name in _light_files(run):
                shutil.copy2(run / name, record / run.name / name)
            copied.append(run.name)
    return copied


def restore_light(record: Path, store: Path) -> list[str]:
    """Seed ``store`` with the recorded light runs it lacks (a fresh machine resumes where the last one stopped:
    finished runs are neither trained nor evaluated again); returns the runs restored."""
    restored = []
    for saved in sorted(p for p in record.iterdir() if p.is_dir()) if record.is_dir() else []:
        target = store / saved.name
        if not (target / "summary.json").is_file():
            target.mkdir(parents=True, exist_ok=True)
            for name in _light_files(saved):
                shutil.copy2(saved / name, target / name)
            restored.append(saved.name)
        else:  # measurements made elsewhere
            for path in saved.glob(MEASURES):
                if not (target / path.name).is_file():
                    shutil.copy2(path, target / path.name)
    return restored


def train_and_eval(cfg: PretrainConfig, run: Path, settings: ExperimentSettings) -> dict[str, Any]:
    """Train ``cfg`` in ``run`` (resuming or skipping finished work) and evaluate it; returns eval.json."""
    if not (_read_json(run / "summary.json") or {}).get("finished"):
        resume = (run / CHECKPOINT).is_file()
        pretrain(load_config(PretrainConfig, run / "config.yaml") if resume else cfg, run, resume=resume)
    result = _evaluation_current(run, settings.evaluate, settings.eval)
    if result is None:
        result = evaluate_run(run, settings.evaluate, settings.eval, device=resolve_device(settings.device),
                              progress=False)
    return result


def _measure(run: Path, settings: ExperimentSettings, measures: Sequence[str]) -> None:
    """The extra measurements the experiments ``measures`` make of a trained, evaluated run."""
    from jepalab.vision.experiments.registry import experiment

    for name in measures:
        experiment(name).measure_run(run, settings)


def _job(cfg: PretrainConfig, run: Path, settings: ExperimentSettings, threads: int | None,
         measures: Sequence[str] = ()) -> int:
    """One run (``threads``: CPU threads unless the config sets them) and its extra measurements; returns the
    images it trained now."""
    if (_read_json(run / "summary.json") or {}).get("finished"):
        train_and_eval(cfg, run, settings)  # evaluation only, if that is missing
        _measure(run, settings, measures)
        return 0
    if cfg.train.threads is None and threads is not None:
        cfg = replace(cfg, train=replace(cfg.train, threads=threads))
    train_and_eval(cfg, run, settings)
    _measure(run, settings, measures)
    return int((_read_json(run / "summary.json") or {}).get("steps_this_session", 0)) * cfg.optim.global_batch


def execute(configs: Sequence[PretrainConfig], store: Path, settings: ExperimentSettings, say: Say,
            measures: dict[Path, tuple[str, ...]] | None = None) -> tuple[dict[Path, dict[str, Any]], dict[str, Any]]:
    """Train and evaluate every distinct config in ``store``, ``settings.jobs`` at a time, then make the
    measurements ``measures[folder]`` names (experiments' :meth:`~.registry.Experiment.measure_run`); returns
    (folder → eval.json, this session's record: runs, images trained, wall time, images/s of all runs together)."""
    unique = {run_folder(store, cfg): cfg for cfg in configs}
    measures = measures or {}
    began = time.perf_counter()
    images = 0
    if settings.jobs > 1:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, cores // settings.jobs)
        context = multiprocessing.get_context("spawn")  # CUDA and OpenMP state must not be forked
        with ProcessPoolExecutor(settings.jobs, mp_context=context) as pool:
            pending = [pool.submit(_job, cfg, run, settings, threads, measures.get(run, ()))
                       for run, cfg in unique.items()]
            images = sum(job.result() for job in pending)
    results = {}
    for index, (run, cfg) in enumerate(unique.items(), 1):
        say(f"[{index}/{len(unique)}] {cfg.method} seed {cfg.seed} → {run}")
        if settings.jobs == 1:
            images += _job(cfg, run, settings, None, measures.get(run, ()))
        results[run] = train_and_eval(cfg, run, settings)
        _measure(run, settings, measures.get(run, ()))
    wall = time.perf_counter() - began
    session = {"runs": len(unique), "jobs": settings.jobs, "images_trained": images, "wall_s": wall,
               "images_per_s": images / wall if wall and images else None}
    write_json(store / "last_session.json", session)
    return results, session
