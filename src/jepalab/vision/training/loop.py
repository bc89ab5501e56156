"""The pretraining loop of every registered method: :func:`pretrain`, read top to bottom as a few named steps.

Step ``s`` is a pure function of (config, seed, s): the data order, crops and masks come from generators seeded by
(seed, stream, s) and the schedules are functions of s. A checkpoint therefore needs the models, the optimiser and
the step counter to continue exactly where a killed run stopped, on any number of ranks. What differs between
methods (model, masks, EMA target, the encoders diagnosed) comes from its :class:`~jepalab.vision.methods.MethodSpec`,
looked up once here and passed along; the step itself is :class:`~.step.TrainStep`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from jepalab.config import config_to_dict
from jepalab.data import BatchLoader, EpochPlan, build_dataset, eval_view, step_generator
from jepalab.data.dataset import ImageDataset
from jepalab.data.fingerprint import data_fingerprint
from jepalab.eval import COLLAPSE_RANK_SHARE, is_collapsed
from jepalab.progress import progress_bar
from jepalab.rundir import WriteFailed, environment, write_json
from jepalab.vision.methods import MethodSpec, method_spec
from jepalab.vision.methods.config import PretrainConfig
from jepalab.vision.models.attention import resolve_attention, use_attention
from jepalab.vision.models.features import collapse_report
from jepalab.vision.models.vit import measure_content_share
from jepalab.vision.training.build import build_model
from jepalab.vision.training.checkpoint import restore_training, save_checkpoint
from jepalab.vision.training.curves import plot_run
from jepalab.vision.training.distributed import DistInfo, all_reduce_mean, init_distributed, shutdown
from jepalab.vision.training.flops import step_flops
from jepalab.vision.training.metrics_log import MetricsLog, require_tensorboard
from jepalab.vision.training.precision import autocast_for, describe_precision, resolve_precision
from jepalab.vision.training.run_dir import (
    CHECKPOINT,
    check_data,
    collapse_summary,
    hold_run,
    locate_run_dir,
    prepare_run_dir,
    truncate_metrics,
    write_failure,
)
from jepalab.vision.training.run_status import RunStatus
from jepalab.vision.training.schedules import build_schedules, schedule_facts
from jepalab.vision.training.sessions import close_session, open_session, update_session
from jepalab.vision.training.step import TrainStep, ViewSampler, mask_summary

__all__ = ["TrainingDiverged", "pretrain"]


class TrainingDiverged(ValueError):
    """The loss became non-finite or exceeded ``train.divergence_factor`` × its first logged value."""


@dataclass
class _Session:
    """The fixed pieces of one training session, handed to the named steps below."""

    cfg: PretrainConfig
    info: DistInfo
    spec: MethodSpec
    run: Path
    dataset: ImageDataset
    plan: EpochPlan
    total: int  # steps of the whole run
    warmup: int  # learning-rate warm-up steps
    model: torch.nn.Module  # the method's model, unwrapped (checkpoints, diagnostics)
    step: TrainStep  # forward, backward, update; holds the optimiser
    autocast: contextlib.AbstractContextManager
    say: Callable[[str], None]
    should_stop: Callable[[], bool] | None = None  # polled after every step: True ends the session early
    status: RunStatus | None = None  # status.json (rank 0)
    done: int = 0  # steps done so far (named when a write fails)


def pretrain(cfg: PretrainConfig, out: str | Path | None = None, resume: bool = False,
             stop_after: int | None = None, dry_run: bool = False,
             should_stop: Callable[[], bool] | None = None, allow_data_change: bool = False) -> Path:
    """Pretrain ``cfg.method`` on ``cfg.data``; returns the run folder (``out``, or a new ``runs/pretrain-*``).

    The folder gets ``config.yaml`` (resolved), ``run.json`` (sizes, FLOPs, masks, the data's fingerprint,
    environment), ``metrics.jsonl`` (every step's loss and schedules; diagnostics), ``checkpoint.safetensors``, plots
    and ``summary.json``. ``resume=True`` continues the run in ``out`` from its checkpoint (from step 0 if it has none
    yet), refusing data that differs from the data it started with unless ``allow_data_change`` (the change is then
    recorded in run.json); ``stop_after`` ends this session (with a checkpoint) once that many steps are done,
    schedules unchanged; so does ``should_stop()`` turning true (polled after every step; a preempted cluster job's
    signal handler). The session holds the folder's lock (:mod:`.run_lock`): another process writing it raises
    :class:`~.run_lock.RunInUse`. A failed write raises :class:`~jepalab.rundir.WriteFailed` naming the file, the
    step and the fix. ``status.json`` says whether the session is running, finished, stopped or failed
    (:mod:`.run_status`). Under ``torchrun`` each process runs this function (DDP; rank 0 writes). ``dry_run`` stops
    after printing the set-up. torch's thread count, denormal handling and attention kernel choice are restored on
    exit.
    """
    info = init_distributed(cfg.train.device)
    threads = torch.get_num_threads()
    finished = False
    try:
        with use_attention(cfg.train.attention):
            run = _pretrain(cfg, out, resume, stop_after, dry_run, info, should_stop, allow_data_change)
        finished = True
        return run
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)  # the process-wide default again: callers' float64 maths needs subnormals
        shutdown(info, wait=finished)


def _pretrain(cfg: PretrainConfig, out: str | Path | None, resume: bool, stop_after: int | None, dry_run: bool,
              info: DistInfo, should_stop: Callable[[], bool] | None, allow_data_change: bool) -> Path:
    say = tqdm.write if info.main else (lambda *_: None)
    if cfg.train.tensorboard:
        require_tensorboard()
    autocast = _configure_process(cfg, info.device)
    dataset = build_dataset(cfg.data)  # first: a missing dataset leaves no run folder behind
    plan = EpochPlan(len(dataset), cfg.optim.global_batch, cfg.seed, info.rank, info.world)  # nor a too-small one
    run = locate_run_dir(cfg, out, resume, info)
    with hold_run(run, info):
        restore = prepare_run_dir(cfg, run, resume, info, say)
        spec = method_spec(cfg.method)  # the one lookup: everything below is handed the spec
        model = build_model(cfg, spec, dataset.channels).to(info.device)
        total, warmup = cfg.optim.epochs * plan.steps_per_epoch, cfg.warmup_steps(plan.steps_per_epoch)
        schedules = build_schedules(cfg, spec.target_ema(cfg), total, warmup)
        views = ViewSampler(cfg, spec, dataset.size, info.rank, info.world)
        step = TrainStep(model, cfg, schedules, views, dataset.mean, dataset.std, info.device,
                         _distributed(model, info), autocast)
        s = _Session(cfg, info, spec, run, dataset, plan, total, warmup, model, step, autocast, say, should_stop)
        diag_images = _diagnostics_batch(s)
        record = _run_record(s, views, diag_images)
        _announce(s, record)
        try:
            if restore:
                check_data(run, record, allow_data_change, info, say)
            elif info.main:
                write_json(run / "run.json", record)
            if not dry_run:
                _session(s, restore, stop_after, diag_images, record)
        except WriteFailed as error:
            raise write_failure(error, run, s.done) from error
    return run


def _session(s: _Session, restore: bool, stop_after: int | None,
             diag_images: torch.Tensor, record: dict[str, Any]) -> None:
    """One training session from the checkpoint (or step 0) to ``stop_after``, the end or a stop request."""
    start, reference = _restore(s) if restore else (0, None)
    s.done = start
    clock = _Clock()
    s.status = RunStatus(s.run, start, s.total, enabled=s.info.main)
    if s.info.main:
        open_session(s.run, start)
    with s.status:
        done = _train(s, start, min(s.total, stop_after or s.total), reference,
                      diag_images if s.info.main else None, record, clock)
        if s.info.main:
            _summarise(s, start, done, record["flops_per_step_first"], time.perf_counter() - clock.began)


def _configure_process(cfg: PretrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    """Threads and denormal handling for this process (both restored by :func:`pretrain`); the autocast context."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # subnormal Adam moments otherwise slow CPU steps down up to 10×
    return autocast_for(cfg.train.precision, device)  # auto: bf16 on a GPU or a CPU with bf16 units


def _diagnostics_batch(s: _Session) -> torch.Tensor:
    """The fixed, seeded images of the collapse diagnostics (uint8, on the device)."""
    chosen = torch.randperm(len(s.dataset), generator=step_generator(s.cfg.seed, "diagnostics", 0))
    images, _ = next(BatchLoader(s.dataset, s.info.device)([chosen[:s.cfg.train.diag_images]]))
    return images


def _run_record(s: _Session, views: ViewSampler, diag_images: torch.Tensor) -> dict[str, Any]:
    """run.json: parameters, FLOPs, data, batch, steps, device, masks, schedules, init content share, environment."""
    cfg, o, d, plan = s.cfg, s.cfg.optim, s.dataset, s.plan
    first_masks = views.global_views(0).masks.rows(0, plan.local_batch)
    share = measure_content_share(s.model.encoder, eval_view(diag_images, cfg.data.image_size, d.mean, d.std))
    return {"method": cfg.method, "parameters": s.spec.parameter_counts(s.model),
            "flops_per_step_first": step_flops(cfg, s.spec, d.channels, plan.local_batch, first_masks) * s.info.world,
            "dataset": {"name": d.name, "split": d.split, "images": len(d), "channels": d.channels,
                        "stored_size": d.size, "mean": d.mean, "std": d.std, "classes": list(d.classes),
                        "source": d.source, "skipped": d.info.get("skipped", [])},
            "data_fingerprint": data_fingerprint(d, cfg.data),
            "batch": {"global": o.global_batch, "per_rank": plan.local_batch, "ranks": s.info.world},
            "steps": {"per_epoch": plan.steps_per_epoch, "total": s.total, "warmup": s.warmup},
            "device": str(s.info.device), "precision": describe_precision(cfg.train.precision, s.info.device),
            "compile": cfg.train.compile_mode if cfg.train.compile else "off", "masks": mask_summary(cfg, s.spec),
            "attention": resolve_attention(cfg.train.attention, s.info.device,
                                           resolve_precision(cfg.train.precision, s.info.device) or torch.float32),
            "schedules": schedule_facts(cfg, s.step.schedules, s.spec.target_ema(cfg), s.total, s.warmup),
            "environment": environment(), "content_share_init": share}


def _announce(s: _Session, record: dict[str, Any]) -> None:
    """Print the set-up: sizes and FLOPs, data and batch, the method's masks and schedules, init and lr."""
    cfg, counts, o = s.cfg, record["parameters"], s.cfg.optim
    s.say(f"{cfg.method}: encoder {counts['encoder'] / 1e6:.2f} M parameters, {s.spec.head} "
          f"{counts[s.spec.head] / 1e6:.2f} M; {record['flops_per_step_first'] / 1e12:.4f} TFLOP per step (first "
          "step's masks, forward + backward)")
    d = s.dataset
    s.say(f"data: {d.name} ({d.split}) {len(d)} images {d.channels}×{d.size}² → {cfg.data.image_size}² crops; batch "
          f"{s.plan.local_batch} per rank × {s.info.world} rank(s) = {o.global_batch}; {s.plan.steps_per_epoch} "
          f"steps/epoch, {s.total} steps; {s.info.device}, {record['precision']}")
    for line in s.spec.describe(cfg, record):
        s.say(line)
    if cfg.ignored_sections:
        s.say(f"note: {cfg.method} reads no {', '.join(cfg.ignored_sections)} section: those values are ignored "
              f"(its sections: {', '.join(cfg.sections) or 'none'})")
    schedules = record["schedules"]
    if "ema" in schedules:
        s.say(f"target EMA {schedules['ema'][0]:g} → {schedules['ema'][1]:g} ({schedules['ema_setting']}), mass "
              f"Σ(1 − m) = {schedules['ema_mass']:.2f}: the target keeps {100 * schedules['target_init_share']:.2g} % "
              f"of its init and lags the context encoder by {schedules['target_lag_steps']:.0f} steps "
              f"({100 * schedules['target_lag_share']:.0f} % of the run)")
    s.say(f"token content share at init {record['content_share_init']:.3f} (model.content_share "
          f"{cfg.model.content_share}); lr peak {o.lr:.3g}, warm-up {s.warmup} steps "
          f"({100 * s.warmup / s.total:.0f} %)")


def _restore(s: _Session) -> tuple[int, float | None]:
    """Load the checkpoint into the model and optimiser; drop metrics logged after it. (step, loss reference)."""
    state = restore_training(s.run / CHECKPOINT, s.model, s.step.optimizer)
    s.step.bind()
    s.say(f"resumed {s.run} at step {state['step']} of {s.total}")
    if s.info.main:
        truncate_metrics(s.run / "metrics.jsonl", state["step"])
    return state["step"], state["loss_reference"]


def _distributed(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module | None:
    """The module the forward calls when it is not ``model`` itself: DDP over several ranks, else None."""
    if info.world == 1:
        return None
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[info.device] if info.device.type == "cuda" else None, broadcast_buffers=False)


class _Clock:
    """Wall-clock of the session and of the current logging window; the last window's mean loss."""

    def __init__(self) -> None:
        self.began = self.window_start = time.perf_counter()
        self.window_loss = float("nan")


def _train(s: _Session, start: int, stop: int,
           reference: float | None, diag_images: torch.Tensor | None, record: dict[str, Any], clock: _Clock) -> int:
    """Steps ``start`` … ``stop − 1`` with read-outs, diagnostics and checkpoints; returns the steps done."""
    cfg, t = s.cfg, s.cfg.train
    losses = torch.zeros(t.log_every, device=s.info.device)  # read back only when logging: no per-step host sync
    pending: list[dict[str, Any]] = []
    log = MetricsLog(s.run, start, t.tensorboard) if s.info.main else None  # closed in the finally below
    bar = progress_bar(total=s.total, initial=start, disable=not (s.info.main and t.progress), unit="step",
                       dynamic_ncols=True)
    loader = BatchLoader(s.dataset, s.info.device, cfg.data.workers)
    done = start
    s.model.train()
    ended = False
    try:
        if start == 0 and diag_images is not None:  # the state before any update, for reference
            _diagnostics(s, diag_images, log, 0)
        for step, (images, _) in zip(range(start, stop), loader(s.plan.batches(start, stop))):
            loss, values = s.step(images, step)  # views, forward, loss, backward, update: step.py
            losses[len(pending)] = loss
            pending.append({"step": step, "epoch": step // s.plan.steps_per_epoch, **values})
            bar.update()
            done = s.done = step + 1
            interrupted = _stop_requested(s, done)
            end = done == stop or interrupted
            checkpoint_due = done % t.checkpoint_every == 0 or done in t.snapshot_steps or end
            diag_due = (t.diag_every and done % t.diag_every == 0) or end
            if len(pending) == t.log_every or checkpoint_due or diag_due:
                reference = _read_out(s, pending, losses, reference, clock, log)
                bar.set_postfix(loss=f"{clock.window_loss:.4g}", lr=f"{pending[-1]['lr']:.2e}")
                pending = []
            if diag_due and diag_images is not None:
                _diagnostics(s, diag_images, log, done)
            if checkpoint_due and s.info.main:
                _save(s, done, reference, record)
                update_session(s.run, done, time.perf_counter() - clock.began, cfg.optim.global_batch)
            if interrupted:
                s.say(f"stop requested: ended this session at step {done} with a checkpoint")
                break
        ended = True
    finally:
        bar.close()
        if log is not None:
            log.close()
            with contextlib.nullcontext() if ended else contextlib.suppress(WriteFailed):
                plot_run(s.run)  # after a failure too (a diverged run's curve), unless the disk refuses it
    return done


def _stop_requested(s: _Session, done: int) -> bool:
    """Whether ``should_stop()`` ends the session after ``done`` steps: polled after every step in one process;
    over several ranks at every ``log_every``-th step only, true when any rank's is (one all-reduce)."""
    if s.should_stop is None:
        return False
    if s.info.world == 1:
        return s.should_stop()
    if done % s.cfg.train.log_every:
        return False
    flag = torch.tensor(float(s.should_stop()), device=s.info.device)
    return bool(all_reduce_mean(flag, s.info).item() > 0)


def _read_out(s: _Session, pending: list[dict[str, Any]], losses: torch.Tensor, reference: float | None,
              clock: _Clock, log: MetricsLog | None) -> float | None:
    """Read the pending losses back (mean over ranks), log them and check for divergence; the loss reference."""
    values = all_reduce_mean(losses[:len(pending)], s.info).tolist()
    now = time.perf_counter()
    for entry, value in zip(pending, values):
        entry["loss"] = value
    pending[-1]["images_per_s"] = len(pending) * s.cfg.optim.global_batch / (now - clock.window_start)
    pending[-1]["elapsed_s"] = now - clock.began
    if log is not None:
        log.write(pending)
    if s.status is not None:
        s.status.beat(pending[-1]["step"] + 1)
    window = sum(values) / len(values)
    clock.window_start, clock.window_loss = now, window
    bad = [e for e in pending if not math.isfinite(e["loss"])]
    if reference is None and not bad:
        reference = window
    factor = s.cfg.train.divergence_factor
    if bad or (factor and window > factor * reference):
        why = f"loss is {bad[0]['loss']} at step {bad[0]['step']}" if bad else (
            f"mean loss {window:.4g} over steps {pending[0]['step']}–{pending[-1]['step']} exceeds "
            f"train.divergence_factor ({factor:g}) × the first logged mean ({reference:.4g})")
        last = s.run / CHECKPOINT
        kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
        raise TrainingDiverged(f"training stopped: {why}; {kept} (metrics in {s.run / 'metrics.jsonl'}). "
                               "Lower optim.lr, raise the warm-up or set optim.clip_grad.")
    return reference


def _diagnostics(s: _Session, images: torch.Tensor, log: MetricsLog | None, step: int) -> None:
    """Collapse diagnostics of the method's encoders on the fixed batch after ``step`` updates: logged and
    printed, an encoder with a centred RankMe below ``COLLAPSE_RANK_SHARE`` of its width marked collapsed."""
    encoders = s.spec.encoder_modules(s.model)
    with torch.no_grad():
        view = eval_view(images, s.cfg.data.image_size, s.dataset.mean, s.dataset.std)
        report = collapse_report(encoders, view, s.autocast)
    collapsed = [name for name in encoders if is_collapsed(report[f"{name}.rankme_centred"],
                                                          int(report[f"{name}.dim"]))]
    if log is not None:
        log.write([{"kind": "diag", "step": step, **report, "collapsed": collapsed}])
    for key in encoders:
        s.say(f"step {step}: {key} centred RankMe {report[f'{key}.rankme_centred']:.1f} of "
              f"{report[f'{key}.dim']:.0f} dims (uncentred {report[f'{key}.rankme']:.1f}), content share "
              f"{report[f'{key}.content_share']:.3f}"
              + (f"  COLLAPSED (centred RankMe < {COLLAPSE_RANK_SHARE:g} × width)" if key in collapsed else ""))


def _save(s: _Session, done: int, reference: float | None, record: dict[str, Any]) -> None:
    """The checkpoint after ``done`` steps, plus a kept snapshot every ``train.snapshot_every`` steps and at each of
    ``train.snapshot_steps``."""
    state = {"step": done, "total_steps": s.total, "loss_reference": reference, "method": s.cfg.method,
             "config": config_to_dict(s.cfg), "dataset": record["dataset"], "world_size": s.info.world}
    save_checkpoint(s.run / CHECKPOINT, s.model, s.step.optimizer, state)
    every = s.cfg.train.snapshot_every
    if (every and done % every == 0) or done in s.cfg.train.snapshot_steps:
        save_checkpoint(s.run / f"checkpoint-{done:08d}.safetensors", s.model, s.step.optimizer, state)


def _summarise(s: _Session, start: int, done: int, flops: int, wall: float) -> None:
    """summary.json (steps, speed, collapse), the session closed in run.json with the collapse verdict, and the
    closing lines."""
    steps_run = done - start
    summary = {"steps_done": done, "total_steps": s.total, "finished": done == s.total, "steps_this_session": steps_run,
               "wall_s": wall, "images_per_s": steps_run * s.cfg.optim.global_batch / wall if wall else None,
               "achieved_tflops": steps_run * flops / wall / 1e12 if wall else None,
               "collapse": collapse_summary(s.run)}
    write_json(s.run / "summary.json", summary)
    close_session(s.run, done, wall, s.cfg.optim.global_batch, top={"collapse": summary["collapse"]})
    if summary["collapse"]["collapsed"]:
        s.say(f"WARNING: collapsed: {', '.join(summary['collapse']['collapsed'])} encoder(s) end with a centred "
              f"RankMe below {COLLAPSE_RANK_SHARE:g} × width (see metrics.jsonl, docs/pretraining.md)")
    s.say(f"{'finished' if done == s.total else 'stopped'} at step {done}/{s.total} in {wall:.0f} s "
          f"({summary['images_per_s']:.0f} images/s); wrote {s.run}")
