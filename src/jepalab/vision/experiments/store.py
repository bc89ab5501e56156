"""The run store shared by experiments: one folder per resolved pretraining config (``<method>-<hash>``), trained
once and evaluated once per evaluation protocol, whichever experiments ask for it (the clean runs of noisy-features
serve variance-subspaces, its strongest-distractor runs serve depth). Runs resume from their checkpoint; a launcher
(:mod:`.launchers`) runs their jobs: processes on this machine (``jobs`` at once) or a cluster's job array. A job
holds its run's lock while it trains, evaluates or measures it, so commands sharing a store train each run once."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from jepalab.config import config_to_dict, load_config
from jepalab.rundir import to_jsonable, write_json
from jepalab.vision.experiments.launchers import LaunchOptions, RunWork, launcher
from jepalab.vision.experiments.settings import ExperimentSettings
from jepalab.vision.methods.config import KEY_FIELDS_ADDED, RUNTIME_FIELDS, PretrainConfig
from jepalab.vision.readout.evaluation import EvalSettings, current_settings, evaluate_run
from jepalab.vision.readout.run import Run
from jepalab.vision.training.distributed import resolve_device
from jepalab.vision.training.loop import pretrain
from jepalab.vision.training.run_lock import RunLock

__all__ = ["KEY_SECTIONS_FROZEN", "LIGHT_FILES", "claim", "complete", "execute", "measure", "restore_light",
           "run_folder", "run_job", "run_key", "save_light", "steps_done", "train_and_eval", "train_run",
           "training_flops", "with_threads"]

Say = Callable[[str], None]


KEY_SECTIONS_FROZEN = {
    "mask": {"num_targets": None, "target_scale": [0.15, 0.2], "target_aspect": [0.75, 1.5],
             "context_scale": [0.85, 1.0], "min_keep": None, "allow_overlap": False, "full_grid": None},
    "ijepa": {"predictor_dim": 384, "predictor_depth": 6, "predictor_heads": None, "loss": "smooth_l1", "ema": "auto"},
    "mae": {"mask_ratio": 0.75, "decoder_dim": 512, "decoder_depth": 8, "decoder_heads": 16, "norm_pix_loss": True,
            "cls_token": True},
    "ecijepa": {"conditioning": "tokens", "eval_condition": "none"},
}
"""A constant in every key: the four method sections every config held, at their then defaults, when run folders
were first keyed. A run's own sections replace theirs, so a key depends only on what the run reads, and no run
folder keyed since then was renamed when a config came to hold only its method's sections."""


def run_key(cfg: PretrainConfig) -> str:
    """12 hex digits of the SHA-256 of the config without its runtime fields (threads, device, progress, ...), its
    method's sections over :data:`KEY_SECTIONS_FROZEN`, and fields added later left out while at their default."""
    data = {**copy.deepcopy(KEY_SECTIONS_FROZEN), **config_to_dict(cfg)}
    for dotted in RUNTIME_FIELDS:
        section, name = dotted.split(".")
        data.get(section, {}).pop(name, None)
    for dotted, default in KEY_FIELDS_ADDED.items():
        section, name = dotted.split(".")
        if to_jsonable(data.get(section, {}).get(name)) == default:
            data[section].pop(name)
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
    ``snapshot_every`` step, each of ``snapshot_steps`` and the last for "all", the last for "last"; None when
    unknown."""
    summary, cfg = _read_json(run / "summary.json"), load_config(PretrainConfig, run / "config.yaml")
    if not summary or which not in ("last", "all"):
        return None
    total, every = int(summary["total_steps"]), cfg.train.snapshot_every
    periodic = range(every, total + 1, every) if every else ()
    snapshots = [*periodic, *cfg.train.snapshot_steps] if which == "all" else []
    return sorted({*snapshots, total})


def _evaluation_current(run: Path, which: str, settings: EvalSettings) -> dict[str, Any] | None:
    """The run's eval.json if it was made with ``settings`` on the checkpoints ``which`` selects, else None."""
    result = _read_json(run / "eval.json")
    if result is None or current_settings(result.get("settings") or {}) != to_jsonable(vars(settings)):
        return None
    expected = _expected_steps(run, which)
    if expected is None:
        expected = Run(run).select(which)
    return result if [c["step"] for c in result["checkpoints"]] == expected else None


def save_light(store: Path, record: Path, runs: Collection[str] | None = None) -> list[str]:
    """Copy the light files of every finished, evaluated run of ``store`` (those named in ``runs`` when given) into
    ``record/<run>/`` (a folder meant for git: no checkpoints); returns the runs copied (all of them already there
    when ``record`` is ``store``)."""
    copied, same = [], record.resolve() == store.resolve()
    for run in sorted(p for p in store.iterdir() if p.is_dir()) if store.is_dir() else []:
        if runs is not None and run.name not in runs:
            continue
        if (_read_json(run / "summary.json") or {}).get("finished") and (run / "eval.json").is_file():
            if not same:
                (record / run.name).mkdir(parents=True, exist_ok=True)
                for name in _light_files(run):
                    shutil.copy2(run / name, record / run.name / name)
            copied.append(run.name)
    return copied


def restore_light(record: Path, store: Path) -> list[str]:
    """Seed ``store`` with the recorded light runs it lacks (a fresh machine resumes where the last one stopped:
    finished runs are neither trained nor evaluated again); returns the runs restored."""
    restored = []
    if record.resolve() == store.resolve():
        return restored
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


def run_step_flops(cfg: PretrainConfig) -> float:
    """One training step's FLOPs (forward + backward) at a seeded draw of the run's masks."""
    import torch

    from jepalab.vision.methods import method_spec
    from jepalab.vision.training.flops import step_flops

    spec = method_spec(cfg.method)
    masks = spec.mask_sampler(cfg)(cfg.optim.global_batch, torch.Generator().manual_seed(0))
    return float(step_flops(cfg, spec, 1, cfg.optim.global_batch, masks))


def training_flops(cfg: PretrainConfig) -> float:
    """A run's training FLOPs, for ordering: one step's (:func:`run_step_flops`) × epochs × its image limit."""
    return run_step_flops(cfg) * cfg.optim.epochs * (cfg.data.limit or 1)


def steps_done(run: Path) -> int:
    """The steps a run's last training session ended at (summary.json; 0 before any)."""
    return int((_read_json(run / "summary.json") or {}).get("steps_done", 0))


def with_threads(cfg: PretrainConfig, threads: int | None) -> PretrainConfig:
    """``cfg`` training on ``threads`` CPU threads, unless it sets its own or ``threads`` is None."""
    if cfg.train.threads is None and threads is not None:
        return replace(cfg, train=replace(cfg.train, threads=threads))
    return cfg


def train_run(cfg: PretrainConfig, run: Path, should_stop: Callable[[], bool] | None = None) -> None:
    """Train ``cfg`` in ``run`` from where it stopped, with its saved config once it has one (a run killed before
    its first checkpoint starts again); nothing when finished. ``should_stop`` as :func:`pretrain`'s."""
    if (_read_json(run / "summary.json") or {}).get("finished"):
        return
    saved = run / "config.yaml"
    resume = saved.is_file()
    pretrain(load_config(PretrainConfig, saved) if resume else cfg, run, resume=resume, should_stop=should_stop)


def claim(run: Path) -> RunLock:
    """``run``'s lock (created if new) for this command's work on it: a run held by another command (a second
    ``jepalab experiment`` on the same store, a ``jepalab pretrain --resume``) is waited for, then taken over as that
    command left it: a run it finished is not trained again."""
    run.mkdir(parents=True, exist_ok=True)
    return RunLock(run, "jepalab experiment", wait=lambda message: print(message, flush=True))


def train_and_eval(cfg: PretrainConfig, run: Path, settings: ExperimentSettings,
                   should_stop: Callable[[], bool] | None = None) -> dict[str, Any] | None:
    """Train ``cfg`` in ``run`` (resuming or skipping finished work) and evaluate it, holding its lock (:func:`claim`);
    returns eval.json, or None when ``should_stop`` ended the training session first (nothing is evaluated)."""
    with claim(run):
        train_run(cfg, run, should_stop)
        if should_stop is not None and should_stop():
            return None
        result = _evaluation_current(run, settings.evaluate, settings.eval)
        if result is None:
            result = evaluate_run(run, settings.evaluate, settings.eval, device=resolve_device(settings.device),
                                  progress=False)
    return result


def complete(run: Path, settings: ExperimentSettings) -> bool:
    """Whether ``run`` is trained to its end and evaluated as ``settings`` asks (nothing left for a job)."""
    finished = (_read_json(run / "summary.json") or {}).get("finished")
    return bool(finished) and _evaluation_current(run, settings.evaluate, settings.eval) is not None


def measure(run: Path, settings: ExperimentSettings, measures: Sequence[str]) -> None:
    """The extra measurements the experiments ``measures`` make of a trained, evaluated run."""
    from jepalab.vision.experiments.registry import experiment

    if measures:
        with claim(run):
            for name in measures:
                experiment(name).measure_run(run, settings)


def run_job(work: RunWork, settings: ExperimentSettings, threads: int | None = None,
            should_stop: Callable[[], bool] | None = None) -> int:
    """One run trained (``threads``: CPU threads unless its config sets them), evaluated and measured; returns the
    images this job trained (none of those another command trained while this one waited for the run). Once
    ``should_stop()`` is true the training session ends at the next step with a checkpoint and the job ends there
    (a job that starts stopped does nothing); the run resumes from that step the next time."""
    if should_stop is not None and should_stop():
        return 0
    with claim(work.run):
        before = steps_done(work.run)
        if train_and_eval(with_threads(work.cfg, threads), work.run, settings, should_stop) is not None:
            measure(work.run, settings, work.measures)
        return (steps_done(work.run) - before) * work.cfg.optim.global_batch


def execute(configs: Sequence[PretrainConfig], store: Path, settings: ExperimentSettings, say: Say,
            measures: dict[Path, tuple[str, ...]] | None = None,
            launch: LaunchOptions | None = None) -> tuple[dict[Path, dict[str, Any]], dict[str, Any]] | None:
    """Train and evaluate every distinct config in ``store`` through the launcher ``launch`` names (default: local
    processes, ``settings.jobs`` at a time), then make the measurements ``measures[folder]`` names (experiments'
    :meth:`~.registry.Experiment.measure_run`); returns (folder → eval.json, this session's record: runs, images
    trained, wall time, images/s of all runs together), or None while runs are still in flight (``launch.detach``)
    or were stopped on request (the local launcher's stop signal)."""
    launch = launch or LaunchOptions()
    work = [RunWork(run, cfg, (measures or {}).get(run, ())) for run, cfg in
            {run_folder(store, cfg): cfg for cfg in configs}.items()]
    if launch.order == "cheapest-first":
        work.sort(key=lambda item: training_flops(item.cfg))
    began = time.perf_counter()
    images = launcher(launch).launch(work, store, settings, say)
    if images is None:
        return None
    results = {}
    for item in work:  # every run is trained and evaluated now: this reads eval.json and the measurements
        results[item.run] = train_and_eval(item.cfg, item.run, settings)
        measure(item.run, settings, item.measures)
    wall = time.perf_counter() - began
    session = {"runs": len(work), "launcher": launch.launcher, "jobs": settings.jobs, "images_trained": images,
               "wall_s": wall, "images_per_s": images / wall if wall and images else None}
    write_json(store / "last_session.json", session)
    return results, session
