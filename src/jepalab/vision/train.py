"""The pretraining loop for I-JEPA and MAE: one function, :func:`pretrain`, read top to bottom.

Step ``s`` is a pure function of (config, seed, s): the data order, crops and masks come from generators seeded by
(seed, stream, s) and the schedules are functions of s. A checkpoint therefore needs the models, the optimiser and
the step counter to continue exactly where a killed run stopped, on any number of ranks.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from jepalab.config import ConfigError, config_to_dict, load_config, save_config
from jepalab.data import BatchLoader, EpochPlan, augment, build_dataset, eval_view, step_generator
from jepalab.eval import COLLAPSE_RANK_SHARE, is_collapsed
from jepalab.progress import progress_bar
from jepalab.rundir import atomic_write_text, environment, new_run_dir, write_json
from jepalab.vision.build import build_method, parameter_counts
from jepalab.vision.checkpoint import restore_training, save_checkpoint
from jepalab.vision.config import RUNTIME_FIELDS, PretrainConfig
from jepalab.vision.distributed import DistInfo, all_reduce_mean, broadcast_object, init_distributed, shutdown
from jepalab.vision.features import collapse_report
from jepalab.vision.flops import step_flops
from jepalab.vision.ijepa import IJEPA
from jepalab.vision.plots import plot_run
from jepalab.vision.precision import describe_precision, resolve_precision
from jepalab.vision.schedules import cosine, linear, warmup_cosine
from jepalab.vision.views import ViewSampler
from jepalab.vision.vit import measure_content_share

__all__ = ["CHECKPOINT", "TrainingDiverged", "collapse_summary", "ema_mass", "load_run_config", "make_optimizer",
           "mask_summary", "pretrain"]

CHECKPOINT = "checkpoint.safetensors"


class TrainingDiverged(ValueError):
    """The loss became non-finite or exceeded ``train.divergence_factor`` × its first logged value."""


def make_optimizer(method: torch.nn.Module, cfg: PretrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trainable parameters: weight decay on matrices and tokens, none on biases and norms (the
    official ``WD_exclude`` / ``add_weight_decay`` rule); fused kernels where torch has them."""
    named = [(n, p) for n, p in method.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if p.ndim >= 2 and not n.endswith(".bias")], "decay": True},
              {"params": [p for n, p in named if p.ndim < 2 or n.endswith(".bias")], "decay": False}]
    o = cfg.optim
    kwargs = {"lr": o.lr, "betas": tuple(o.betas), "eps": o.eps, "weight_decay": 0.0}
    try:
        return torch.optim.AdamW(groups, fused=device.type in ("cuda", "cpu"), **kwargs)
    except (RuntimeError, TypeError):  # a torch without a fused kernel for this device
        return torch.optim.AdamW(groups, foreach=True, **kwargs)


def mask_summary(cfg: PretrainConfig, batches: int = 20) -> dict[str, Any]:
    """Resolved I-JEPA mask settings and token counts over the first ``batches`` global batches of the run."""
    sampler = ViewSampler(cfg, cfg.data.image_size)
    masks = [sampler.global_views(step).masks for step in range(batches)]
    context = torch.tensor([m.context.shape[1] for m in masks], dtype=torch.float64)
    target = torch.tensor([m.targets.shape[2] for m in masks], dtype=torch.float64)
    relaxed = torch.cat([m.relaxed for m in masks]).double()
    tokens = cfg.grid[0] * cfg.grid[1]
    return {**sampler.masker.settings(), "tokens": tokens,
            "context_tokens": {"mean": float(context.mean()), "min": int(context.min()), "max": int(context.max())},
            "target_tokens_per_block": {"mean": float(target.mean()), "min": int(target.min()),
                                        "max": int(target.max())},
            "context_share": float(context.mean() / tokens), "relaxed_share": float((relaxed > 0).double().mean())}


def load_run_config(run: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PretrainConfig:
    """The config of an existing run, with ``overrides`` allowed only on fields that do not change the numbers."""
    saved = Path(run) / "config.yaml"
    if not saved.is_file():
        raise FileNotFoundError(f"{run} is not a pretraining run folder (no config.yaml)")
    cfg = load_config(PretrainConfig, saved, overrides)
    changed = _differences(config_to_dict(load_config(PretrainConfig, saved)), config_to_dict(cfg))
    fixed = [key for key in changed if key not in RUNTIME_FIELDS]
    if fixed:
        raise ConfigError(f"cannot change {', '.join(fixed)} when resuming {run}; only {', '.join(RUNTIME_FIELDS)} "
                          "may differ")
    return cfg


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            keys += _differences(a[key], b[key], f"{prefix}{key}.")
        elif a.get(key) != b.get(key):
            keys.append(f"{prefix}{key}")
    return keys


def _prepare_run_dir(cfg: PretrainConfig, out: str | Path | None, resume: bool, info: DistInfo) -> Path:
    if resume:
        if out is None:
            raise ValueError("--resume needs the run folder")
        run = Path(out)
        stored = config_to_dict(load_run_config(run))
        changed = [k for k in _differences(stored, config_to_dict(cfg)) if k not in RUNTIME_FIELDS]
        if changed:
            raise ConfigError(f"the config differs from the one {run} was started with: {', '.join(changed)}")
        if not (run / CHECKPOINT).exists():
            raise FileNotFoundError(f"{run} has no {CHECKPOINT} to resume from")
        return run
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
    return Path(broadcast_object(str(run) if info.main else None, info))  # type: ignore[arg-type]


def _truncate_metrics(path: Path, step: int) -> None:
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


def ema_mass(cfg: PretrainConfig, total: int) -> float:
    """Σ_s (1 − m_s) over the run's EMA momenta; the target keeps about exp(−mass) of its initialisation."""
    return sum(1.0 - linear(step, total, *cfg.ijepa.ema) for step in range(total))


def collapse_summary(metrics: Path) -> dict[str, Any]:
    """From a run's diagnostics records: the encoders collapsed at the last one, the first step each collapsed
    at, and the centred RankMe at the last record."""
    records = [json.loads(line) for line in metrics.read_text().splitlines() if '"kind": "diag"' in line] \
        if metrics.is_file() else []
    first: dict[str, int] = {}
    for record in records:
        for name in record.get("collapsed", []):
            first.setdefault(name, record["step"])
    last = records[-1] if records else {}
    return {"rule": f"centred RankMe < {COLLAPSE_RANK_SHARE:g} × width on the diagnostics batch",
            "collapsed": last.get("collapsed", []), "first_collapse_step": first,
            "rankme_centred_last": {k.split(".")[0]: v for k, v in last.items() if k.endswith(".rankme_centred")}}


def _diagnostics(method: torch.nn.Module, images: torch.Tensor, cfg: PretrainConfig, mean: tuple[float, ...],
                 std: tuple[float, ...], autocast: contextlib.AbstractContextManager, log: Any, step: int,
                 say: Any) -> list[str]:
    """Collapse diagnostics on the fixed probe batch after ``step`` updates: logged and summarised; returns the
    encoders that count as collapsed (centred RankMe below ``COLLAPSE_RANK_SHARE`` of the width)."""
    with torch.no_grad():
        report = collapse_report(method, eval_view(images, cfg.data.image_size, mean, std), autocast)
    collapsed = [name for name in ("target", "context", "encoder") if f"{name}.dim" in report
                 and is_collapsed(report[f"{name}.rankme_centred"], int(report[f"{name}.dim"]))]
    log.write(json.dumps({"kind": "diag", "step": step, **report, "collapsed": collapsed}, allow_nan=True) + "\n")
    log.flush()
    for key in ("target", "context") if isinstance(method, IJEPA) else ("encoder",):
        say(f"step {step}: {key} centred RankMe {report[f'{key}.rankme_centred']:.1f} of {report[f'{key}.dim']:.0f} "
            f"dims (uncentred {report[f'{key}.rankme']:.1f}), content share {report[f'{key}.content_share']:.3f}"
            + (f"  COLLAPSED (centred RankMe < {COLLAPSE_RANK_SHARE:g} × width)" if key in collapsed else ""))
    return collapsed


def pretrain(cfg: PretrainConfig, out: str | Path | None = None, resume: bool = False,
             stop_after: int | None = None, dry_run: bool = False) -> Path:
    """Pretrain ``cfg.method`` on ``cfg.data``; returns the run folder (``out``, or a new ``runs/pretrain-*``).

    The folder gets ``config.yaml`` (resolved), ``run.json`` (sizes, FLOPs, masks, environment),
    ``metrics.jsonl`` (every step's loss and schedules; diagnostics), ``checkpoint.safetensors``, plots and
    ``summary.json``. ``resume=True`` continues the run in ``out`` from its checkpoint; ``stop_after`` ends this
    session (with a checkpoint) once that many steps are done, schedules unchanged. Under ``torchrun`` each
    process runs this function (DDP; rank 0 writes). ``dry_run`` stops after printing the set-up.
    """
    info = init_distributed(cfg.train.device)
    try:
        return _pretrain(cfg, out, resume, stop_after, dry_run, info)
    finally:
        torch.set_flush_denormal(False)  # the process-wide default again: callers' float64 maths needs subnormals
        shutdown(info)


def _pretrain(cfg: PretrainConfig, out: str | Path | None, resume: bool, stop_after: int | None, dry_run: bool,
              info: DistInfo) -> Path:
    say = tqdm.write if info.main else (lambda *_: None)
    device, o, t = info.device, cfg.optim, cfg.train
    if t.threads:
        torch.set_num_threads(t.threads)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # subnormal Adam moments otherwise slow CPU steps down up to 10×
    bf16 = resolve_precision(t.precision, device) is torch.bfloat16  # auto: GPU, or a CPU with bf16 units
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    # -- run folder, data, schedules ---------------------------------------------------------------------------
    dataset = build_dataset(cfg.data)  # first: a missing dataset leaves no run folder behind
    plan = EpochPlan(len(dataset), o.global_batch, cfg.seed, info.rank, info.world)  # nor a too-small one
    run = _prepare_run_dir(cfg, out, resume, info)
    total = o.epochs * plan.steps_per_epoch
    warmup = cfg.warmup_steps(plan.steps_per_epoch)
    stop = min(total, stop_after or total)
    views = ViewSampler(cfg, dataset.size, info.rank, info.world)

    # -- model and optimiser ------------------------------------------------------------------------------------
    method = build_method(cfg, dataset.channels).to(device)
    optimizer = make_optimizer(method, cfg, device)
    first_masks = views.global_views(0).masks.rows(0, plan.local_batch)
    flops = step_flops(cfg, dataset.channels, plan.local_batch, first_masks) * info.world
    record = {"method": cfg.method, "parameters": parameter_counts(method), "flops_per_step_first": flops,
              "dataset": {"name": dataset.name, "split": dataset.split, "images": len(dataset),
                          "channels": dataset.channels, "stored_size": dataset.size, "mean": dataset.mean,
                          "std": dataset.std, "classes": list(dataset.classes), "source": dataset.source,
                          "skipped": dataset.info.get("skipped", [])},
              "batch": {"global": o.global_batch, "per_rank": plan.local_batch, "ranks": info.world},
              "steps": {"per_epoch": plan.steps_per_epoch, "total": total, "warmup": warmup},
              "device": str(device), "precision": describe_precision(t.precision, device), "compile": t.compile,
              "masks": mask_summary(cfg) if cfg.method == "ijepa" else {"ratio": cfg.mae.mask_ratio},
              "schedules": {"lr_peak": o.lr, "warmup_steps": warmup, "warmup_share": warmup / total},
              "environment": environment()}
    chosen = torch.randperm(len(dataset), generator=step_generator(cfg.seed, "diagnostics", 0))[:t.diag_images]
    diag_images, _ = next(BatchLoader(dataset, device)([chosen]))  # fixed, seeded: collapse diagnostics
    share = measure_content_share(method.encoder, eval_view(diag_images, cfg.data.image_size, dataset.mean,
                                                            dataset.std))
    record["content_share_init"] = share
    if cfg.method == "ijepa":
        mass = ema_mass(cfg, total)
        record["schedules"].update(ema=list(cfg.ijepa.ema), ema_mass=mass, target_init_share=math.exp(-mass))
    counts = record["parameters"]
    say(f"{cfg.method}: encoder {counts['encoder'] / 1e6:.2f} M parameters, "
        + (f"predictor {counts['predictor'] / 1e6:.2f} M" if "predictor" in counts
           else f"decoder {counts['decoder'] / 1e6:.2f} M")
        + f"; {flops / 1e12:.4f} TFLOP per step (first step's masks, forward + backward)")
    say(f"data: {dataset.name} ({dataset.split}) {len(dataset)} images {dataset.channels}×{dataset.size}² → "
        f"{cfg.data.image_size}² crops; batch {plan.local_batch} per rank × {info.world} rank(s) = {o.global_batch}; "
        f"{plan.steps_per_epoch} steps/epoch, {total} steps; {device}, {record['precision']}")
    if cfg.method == "ijepa":
        m = record["masks"]
        say(f"masks ({m['grid'][0]}×{m['grid'][1]} grid): {m['num_targets']} targets of "
            f"{m['target_tokens_per_block']['mean']:.1f} tokens, context {m['context_tokens']['mean']:.1f} tokens "
            f"({m['context_tokens']['min']}–{m['context_tokens']['max']}, {100 * m['context_share']:.0f} % of the "
            f"grid), min_keep {m['min_keep']}, full_grid {m['full_grid']}")
    say(f"token content share at init {share:.3f} (model.content_share {cfg.model.content_share}); lr peak "
        f"{o.lr:.3g}, warm-up {warmup} steps ({100 * warmup / total:.0f} %)"
        + (f"; EMA {cfg.ijepa.ema[0]:g} → {cfg.ijepa.ema[1]:g}, mass Σ(1 − m) = {record['schedules']['ema_mass']:.2f}: "
           f"the target keeps ≈ {100 * record['schedules']['target_init_share']:.0f} % of its init"
           if cfg.method == "ijepa" else ""))
    if info.main and not resume:
        write_json(run / "run.json", record)
    if dry_run:
        return run

    start, reference = 0, None
    if resume:
        state = restore_training(run / CHECKPOINT, method, optimizer)
        start, reference = state["step"], state["loss_reference"]
        say(f"resumed {run} at step {start} of {total}")
        if info.main:
            _truncate_metrics(run / "metrics.jsonl", start)
    model: torch.nn.Module = method
    if info.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            method, device_ids=[device] if device.type == "cuda" else None, broadcast_buffers=False)
    if t.compile:
        model = torch.compile(model)
    if not info.main:
        diag_images = None

    # -- the loop -----------------------------------------------------------------------------------------------
    losses = torch.zeros(t.log_every, device=device)  # read back only when logging: no per-step host sync
    pending: list[dict[str, Any]] = []
    log = open(run / "metrics.jsonl", "a") if info.main else None  # closed in the finally below
    bar = progress_bar(total=total, initial=start, disable=not (info.main and t.progress), unit="step",
                       dynamic_ncols=True)
    loader = BatchLoader(dataset, device, cfg.data.num_workers)
    began, window_start, done = time.perf_counter(), time.perf_counter(), start
    method.train()
    try:
        if start == 0 and diag_images is not None:  # the state before any update, for reference
            _diagnostics(method, diag_images, cfg, dataset.mean, dataset.std, autocast, log, 0, say)
        for step, (images, _) in zip(range(start, stop), loader(plan.batches(start, stop))):
            lr = warmup_cosine(step, total, warmup, o.start_lr, o.lr, o.final_lr)
            wd = cosine(step, total, o.weight_decay, o.final_weight_decay)
            for group in optimizer.param_groups:
                group["lr"], group["weight_decay"] = lr, (wd if group["decay"] else 0.0)
            v = views(step)
            x = augment(images, v.boxes, v.flips, cfg.data.image_size, dataset.mean, dataset.std)
            with autocast:
                loss = model(x, v.masks.to(device))
            loss.backward()
            if o.clip_grad:
                torch.nn.utils.clip_grad_norm_(method.parameters(), o.clip_grad, foreach=True)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            entry = {"step": step, "epoch": step // plan.steps_per_epoch, "lr": lr, "wd": wd}
            if isinstance(method, IJEPA):
                entry["momentum"] = linear(step, total, *cfg.ijepa.ema)
                method.update_target(entry["momentum"])
            losses[len(pending)] = loss.detach()
            pending.append(entry)
            bar.update()
            done = step + 1
            checkpoint_due = done % t.checkpoint_every == 0 or done == stop
            diag_due = (t.diag_every and done % t.diag_every == 0) or done == stop

            if len(pending) == t.log_every or checkpoint_due or diag_due:  # read the losses back, check them
                values = all_reduce_mean(losses[:len(pending)], info).tolist()
                now = time.perf_counter()
                for entry, value in zip(pending, values):
                    entry["loss"] = value
                pending[-1]["images_per_s"] = len(pending) * o.global_batch / (now - window_start)
                pending[-1]["elapsed_s"] = now - began
                if log is not None:
                    log.writelines(json.dumps(e, allow_nan=True) + "\n" for e in pending)
                    log.flush()
                window = sum(values) / len(values)
                bar.set_postfix(loss=f"{window:.4g}", lr=f"{lr:.2e}")
                bad = [e for e in pending if not math.isfinite(e["loss"])]
                if reference is None and not bad:
                    reference = window
                if bad or (t.divergence_factor and window > t.divergence_factor * reference):
                    why = f"loss is {bad[0]['loss']} at step {bad[0]['step']}" if bad else (
                        f"mean loss {window:.4g} over steps {pending[0]['step']}–{pending[-1]['step']} exceeds "
                        f"train.divergence_factor ({t.divergence_factor:g}) × the first logged mean ({reference:.4g})")
                    last = run / CHECKPOINT
                    kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
                    raise TrainingDiverged(f"training stopped: {why}; {kept} (metrics in {run / 'metrics.jsonl'}). "
                                           "Lower optim.lr, raise the warm-up or set optim.clip_grad.")
                pending, window_start = [], now

            if diag_due and diag_images is not None:
                _diagnostics(method, diag_images, cfg, dataset.mean, dataset.std, autocast, log, done, say)

            if checkpoint_due and info.main:
                state = {"step": done, "total_steps": total, "loss_reference": reference, "method": cfg.method,
                         "config": config_to_dict(cfg), "dataset": record["dataset"], "world_size": info.world}
                save_checkpoint(run / CHECKPOINT, method, optimizer, state)
                if t.snapshot_every and done % t.snapshot_every == 0:
                    save_checkpoint(run / f"checkpoint-{done:08d}.safetensors", method, optimizer, state)
    finally:
        bar.close()
        if log is not None:
            log.close()
            plot_run(run)

    # -- summary ------------------------------------------------------------------------------------------------
    if info.main:
        steps_run = done - start
        wall = time.perf_counter() - began
        summary = {"steps_done": done, "total_steps": total, "finished": done == total, "steps_this_session": steps_run,
                   "wall_s": wall, "images_per_s": steps_run * o.global_batch / wall if wall else None,
                   "achieved_tflops": steps_run * flops / wall / 1e12 if wall else None,
                   "collapse": collapse_summary(run / "metrics.jsonl")}
        write_json(run / "summary.json", summary)
        facts = json.loads((run / "run.json").read_text())
        write_json(run / "run.json", {**facts, "collapse": summary["collapse"]})
        if summary["collapse"]["collapsed"]:
            say(f"WARNING: collapsed: {', '.join(summary['collapse']['collapsed'])} encoder(s) end with a centred "
                f"RankMe below {COLLAPSE_RANK_SHARE:g} × width (see metrics.jsonl, docs/pretraining.md)")
        say(f"{'finished' if done == total else 'stopped'} at step {done}/{total} in {wall:.0f} s "
            f"({summary['images_per_s']:.0f} images/s); wrote {run}")
    return run
