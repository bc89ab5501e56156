"""Real-image experiments (``jepalab experiment NAME``): a joint-embedding method versus a reconstruction method
(default I-JEPA versus MAE, ``methods=[ijepa, mae]``) with the same encoder, the same number of steps and images,
evaluated by :mod:`jepalab.vision.evaluation`. Each run's config is the method's ``small_image_recipe`` plus the
experiment's own settings (data, strength, width, depth, budget). Every experiment is registered with
:func:`register_experiment` and returns its claim, its rule and the verdict measured by that rule.

- ``noisy-features``: clean and noisy Fashion-MNIST (several distractor strengths). Claim (Littwin et al. 2024 on
  real data, our protocol): as the distractor grows, MAE's representation takes it up (distractor R² above its
  random-init value) and loses label
  accuracy; I-JEPA's does so far less.
- ``variance-subspaces``: top/bottom pixel-variance dependence on Fashion-MNIST (or an image folder). Claim
  (Balestriero & LeCun 2024; Littwin et al. 2024): I-JEPA's features follow the low-variance (bottom) subspace
  more than MAE's (larger Δ = CCA(bottom) − CCA(top)).
- ``depth``: encoder depth varied at fixed width on noisy Fashion-MNIST. Claim (the theory's depth effect): MAE's
  distractor uptake exceeds I-JEPA's, and the gap grows with depth.
- ``context-size`` (:mod:`jepalab.vision.context_size`): I-JEPA versus EC-IJEPA (our reading) over context-block
  scales.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jepalab.config import config_to_dict, from_dict, load_config, merge_dicts, param
from jepalab.plotting import pyplot
from jepalab.rundir import save_figure, write_csv, write_json
from jepalab.vision.config import COMPILE_MODES, PretrainConfig
from jepalab.vision.distributed import resolve_device
from jepalab.vision.evaluation import EvalSettings, evaluate_run
from jepalab.vision.methods import method_spec
from jepalab.vision.runs import CHECKPOINT
from jepalab.vision.train import pretrain

__all__ = ["EXPERIMENTS", "ExperimentSettings", "pretrain_config", "register_experiment", "run_experiment"]

Say = Callable[[str], None]
Experiment = Callable[[Path, "ExperimentSettings", Say], dict[str, Any]]
EXPERIMENTS: dict[str, Experiment] = {}


def register_experiment(name: str) -> Callable[[Experiment], Experiment]:
    """Decorator registering ``run(out, settings, say) -> summary`` (claim, rule, measured, checks, held)."""

    def decorate(run: Experiment) -> Experiment:
        EXPERIMENTS[name] = run
        return run

    return decorate


@dataclass(frozen=True)
class ExperimentSettings:
    """Budget of an experiment: model width/depth, steps, seeds, sweep values, evaluation sizes."""

    quick: bool = param(True, help="small models and few steps (≤ 20 min on 2 CPU cores); False = GPU scale")
    methods: tuple[str, ...] = param(("ijepa", "mae"), help="the joint-embedding method, then the reconstruction "
                                     "method it is compared with")
    seeds: tuple[int, ...] = param((0,), help="training seeds (full mode: at least 3)")
    strengths: tuple[float, ...] = param((0.0, 0.05, 0.1), ge=0, le=1, help="distractor strengths (noisy-features)")
    jitter: float = param(2.0, ge=0, help="distractor per-patch jitter σ")
    depths: tuple[int, ...] = param((1, 4), ge=1, help="encoder depths (depth experiment)")
    context_scales: tuple[tuple[float, float], ...] = param(((0.4, 0.4), (0.6, 0.6), (0.85, 1.0)), gt=0, le=1,
                                                            help="context-block area ranges (context-size)")
    dim: int = param(96, ge=8, help="encoder width (quick: the CPU presets' ViT-micro width)")
    depth: int = param(4, ge=1, help="encoder depth (noisy-features, variance-subspaces)")
    epochs: int = param(10, ge=1, help="passes over the training images")
    train_images: int = param(6000, ge=128, help="training images (first N of the train split)")
    global_batch: int = param(128, ge=2, help="images per step")
    snapshots: int = param(3, ge=1, help="checkpoints kept over training (evenly spaced, the last at the end)")
    evaluate: str = param("last", choices=("last", "all"), help="evaluate the last checkpoint or every snapshot")
    data_root: str | None = param(None, help="Fashion-MNIST folder (default: the usual search)")
    folder: str | None = param(None, help="variance-subspaces: an image folder instead of Fashion-MNIST")
    device: str = param("auto", help="training/eval device")
    jobs: int = param(1, ge=1, help="runs at once on the device, each in its own process and folder (on a CPU "
                                    "the cores are split between them)")
    compile: bool = param(False, help="train.compile of every run (a GPU option; docs/speed.md)")
    compile_mode: str = param("default", choices=COMPILE_MODES, help="train.compile_mode")
    eval: EvalSettings = field(default_factory=lambda: EvalSettings(train_images=5000, test_images=1000,
                                                                   probe="ridge", readouts=()))

    def __post_init__(self) -> None:
        if len(self.methods) != 2:
            raise ValueError(f"methods must name two methods (joint-embedding, reconstruction); got {self.methods}")
        for name in self.methods:
            method_spec(name)

    @staticmethod
    def full() -> ExperimentSettings:
        """The GPU-scale settings (ViT-tiny width, 3 seeds, the whole training split, logistic probes)."""
        return ExperimentSettings(quick=False, seeds=(0, 1, 2), strengths=(0.0, 0.05, 0.1, 0.15), depths=(2, 6, 12),
                                  dim=192, depth=12, epochs=100, train_images=60000, global_batch=256,
                                  snapshots=10, evaluate="all",
                                  eval=EvalSettings(train_images=60000, test_images=10000, probe="logistic"))


def pretrain_config(method: str, dataset: str, options: dict[str, Any], settings: ExperimentSettings, seed: int,
                    depth: int | None = None) -> PretrainConfig:
    """``method``'s small-image recipe with the experiment's own settings on top: the same data, views, encoder
    width and depth, steps and batch for every method."""
    depth = settings.depth if depth is None else depth
    total_steps = settings.epochs * (settings.train_images // settings.global_batch)
    own: dict[str, Any] = {
        "method": method, "seed": seed,
        "data": {"dataset": dataset, "root": settings.data_root, "image_size": 28, "crop_scale": [1.0, 1.0],
                 "crop_ratio": [1.0, 1.0], "hflip": False, "limit": settings.train_images, "options": options},
        "model": {"dim": settings.dim, "depth": depth, "heads": max(1, settings.dim // 32)},
        "optim": {"epochs": settings.epochs, "global_batch": settings.global_batch},  # warm-up: the recipe's
        "train": {"device": settings.device, "progress": False, "log_every": 10, "diag_every": 0,
                  "diag_images": 256, "compile": settings.compile, "compile_mode": settings.compile_mode,
                  "checkpoint_every": max(1, total_steps // settings.snapshots),
                  "snapshot_every": max(1, total_steps // settings.snapshots)},
    }
    if dataset == "image-folder":
        own["data"].update(root=settings.folder, image_size=32, store_size=36, crop_scale=[0.3, 1.0],
                           crop_ratio=[0.75, 1.333], limit=None)
    return from_dict(PretrainConfig, merge_dicts(method_spec(method).small_image_recipe, own))


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _train_and_eval(cfg: PretrainConfig, run: Path, settings: ExperimentSettings) -> dict[str, Any]:
    """Train ``cfg`` in ``run`` (resuming or skipping finished work) and evaluate it; returns eval.json."""
    summary = _read_json(run / "summary.json")
    if not (summary and summary.get("finished")):
        resume = (run / CHECKPOINT).is_file()
        pretrain(load_config(PretrainConfig, run / "config.yaml") if resume else cfg, run, resume=resume)
    result = _read_json(run / "eval.json")
    if result is None:
        result = evaluate_run(run, settings.evaluate, settings.eval, device=resolve_device(settings.device),
                              progress=False)
    return result


def _last_row(result: dict[str, Any]) -> dict[str, Any]:
    """The last checkpoint's read-outs with the baselines beside them; ``distractor_uptake`` = the encoder's
    distractor R² minus that of a random encoder of the same architecture and init (what training added)."""
    row = {k: v for k, v in result["checkpoints"][-1].items() if k not in ("probe_protocol", "checkpoint")}
    for name, baseline in result["baselines"].items():
        row.update({f"{name}_{key}": baseline.get(key) for key in ("probe", "cca_delta", "distractor_r2")})
    if row.get("distractor_r2") is not None and row.get("random_distractor_r2") is not None:
        row["distractor_uptake"] = row["distractor_r2"] - row["random_distractor_r2"]
    return row


def _spread(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def _decide(effect: float, spread: float, seeds: int) -> tuple[bool, str]:
    """The shared rule: the effect must be positive, and with ≥ 3 seeds larger than its spread over seeds."""
    if seeds >= 3:
        held = effect > spread
        return held, f"effect {effect:+.4f} {'>' if held else '<='} its spread over {seeds} seeds ({spread:.4f})"
    held = effect > 0
    return held, f"effect {effect:+.4f} {'>' if held else '<='} 0 ({seeds} seed(s): no spread, indicative only)"


@dataclass
class _Grid:
    """Runs of one experiment: key → (config, folder)."""

    out: Path
    runs: dict[tuple, tuple[PretrainConfig, Path]] = field(default_factory=dict)

    def add(self, key: tuple, cfg: PretrainConfig) -> None:
        self.runs[key] = (cfg, self.out / "runs" / "-".join(str(k) for k in key))

    def execute(self, settings: ExperimentSettings, say: Say) -> dict[tuple, dict[str, Any]]:
        if settings.jobs > 1:
            self._run_at_once(settings, say)
        results = {}
        for index, (key, (cfg, run)) in enumerate(self.runs.items(), 1):
            say(f"[{index}/{len(self.runs)}] {' '.join(map(str, key))} → {run}")
            results[key] = _train_and_eval(cfg, run, settings)
        write_csv(self.out / "curves.csv", [{"run": run.name, **{k: v for k, v in c.items() if k != "probe_protocol"}}
                                            for (_, run), r in zip(self.runs.values(), results.values())
                                            for c in r["checkpoints"]])
        return results

    def _run_at_once(self, settings: ExperimentSettings, say: Say) -> None:
        """Train and evaluate the runs ``settings.jobs`` at a time in worker processes (finished work is reused);
        writes ``throughput.json``: the images/s of all runs together over the wall time."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, cores // settings.jobs)
        began = time.perf_counter()
        context = multiprocessing.get_context("spawn")  # CUDA and OpenMP state must not be forked
        with ProcessPoolExecutor(settings.jobs, mp_context=context) as pool:
            pending = [pool.submit(_train_and_eval_job, cfg, run, settings, threads) for cfg, run in self.runs.values()]
            images = sum(job.result() for job in pending)
        wall = time.perf_counter() - began
        record = {"jobs": settings.jobs, "threads_per_cpu_job": threads, "runs": len(self.runs),
                  "images_trained": images, "wall_s": wall, "images_per_s": images / wall if wall else None}
        write_json(self.out / "throughput.json", record)
        say(f"{len(self.runs)} runs, {settings.jobs} at a time: {images} images trained in {wall:.0f} s "
            f"({record['images_per_s']:.0f} images/s together)")


def _train_and_eval_job(cfg: PretrainConfig, run: Path, settings: ExperimentSettings, threads: int) -> int:
    """One worker's run (CPU runs get ``threads`` threads); returns the images it trained in this session."""
    if (_read_json(run / "summary.json") or {}).get("finished"):
        _train_and_eval(cfg, run, settings)  # evaluation only, if that is missing
        return 0
    if cfg.train.threads is None:
        cfg = replace(cfg, train=replace(cfg.train, threads=threads))
    _train_and_eval(cfg, run, settings)
    return int((_read_json(run / "summary.json") or {}).get("steps_this_session", 0)) * cfg.optim.global_batch


@register_experiment("noisy-features")
def noisy_features(out: Path, settings: ExperimentSettings, say: Say) -> dict[str, Any]:
    """The two methods on noisy Fashion-MNIST at each strength: label probe, distractor R², RankMe, LiDAR, Δ."""
    (jepa, recon), (jl, rl) = settings.methods, _labels(settings)
    grid = _Grid(out)
    for strength in settings.strengths:
        for method in settings.methods:
            for seed in settings.seeds:
                options = {"strength": strength, "jitter": settings.jitter}
                grid.add((method, f"s{strength:g}", f"seed{seed}"),
                         pretrain_config(method, "noisy-fashion-mnist", options, settings, seed))
    results = grid.execute(settings, say)
    rows = [{"method": key[0], "strength": float(key[1][1:]), "seed": int(key[2][4:]), **_last_row(r)}
            for key, r in results.items()]
    write_csv(out / "results.csv", rows)
    lo, hi = min(settings.strengths), max(settings.strengths)

    def per_seed(method: str, strength: float, key: str) -> list[float]:
        return [r[key] for r in rows if r["method"] == method and r["strength"] == strength]

    drop = {m: [a - b for a, b in zip(per_seed(m, lo, "probe"), per_seed(m, hi, "probe"))] for m in settings.methods}
    r2 = {m: per_seed(m, hi, "distractor_uptake") for m in settings.methods}
    drop_effect = statistics.mean(drop[recon]) - statistics.mean(drop[jepa])
    r2_effect = statistics.mean(r2[recon]) - statistics.mean(r2[jepa])
    drop_spread = _spread([a - b for a, b in zip(drop[recon], drop[jepa])])
    r2_spread = _spread([a - b for a, b in zip(r2[recon], r2[jepa])])
    n = len(settings.seeds)
    held_drop, why_drop = _decide(drop_effect, drop_spread, n)
    held_r2, why_r2 = _decide(r2_effect, r2_spread, n)
    _plot_noisy(rows, settings, out)
    return {
        "claim": f"As the distractor strength grows, {rl}'s representation takes up the distractor (its training adds "
                 f"more distractor R² than {jl}'s does) and loses more label accuracy than {jl}'s.",
        "rule": f"held = ({rl}'s probe drop from the weakest to the strongest distractor − {jl}'s) passes the shared "
                f"rule AND ({rl}'s distractor uptake − {jl}'s at the strongest) passes it, uptake = R²(encoder) − "
                "R²(random encoder of the same architecture and init); shared rule: effect > 0, and with ≥ 3 seeds "
                "effect > the std over seeds of the paired difference.",
        "measured": {"probe_drop": {m: statistics.mean(v) for m, v in drop.items()},
                     "distractor_uptake_at_strongest": {m: statistics.mean(v) for m, v in r2.items()},
                     "probe_drop_effect": drop_effect, "probe_drop_effect_spread": drop_spread,
                     "r2_effect": r2_effect, "r2_effect_spread": r2_spread},
        "checks": {"probe_drop": why_drop, "distractor_uptake": why_r2},
        "held": held_drop and held_r2, "seeds": n, "strengths": list(settings.strengths),
    }


@register_experiment("variance-subspaces")
def variance_subspaces(out: Path, settings: ExperimentSettings, say: Say) -> dict[str, Any]:
    """The two methods on clean Fashion-MNIST (or ``settings.folder``): Δ = CCA(bottom) − CCA(top) per method."""
    (jepa, recon), (jl, rl) = settings.methods, _labels(settings)
    grid = _Grid(out)
    dataset = "image-folder" if settings.folder else "fashion-mnist"
    for method in settings.methods:
        for seed in settings.seeds:
            grid.add((method, f"seed{seed}"), pretrain_config(method, dataset, {}, settings, seed))
    results = grid.execute(settings, say)
    rows = [{"method": key[0], "seed": int(key[1][4:]), **_last_row(r)} for key, r in results.items()]
    write_csv(out / "results.csv", rows)
    delta = {m: [r["cca_delta"] for r in rows if r["method"] == m] for m in settings.methods}
    effect = statistics.mean(delta[jepa]) - statistics.mean(delta[recon])
    held, why = _decide(effect, _spread([a - b for a, b in zip(delta[jepa], delta[recon])]), len(settings.seeds))
    _plot_bars(rows, settings.methods, ("top_probe", "bottom_probe", "cca_top", "cca_bottom"),
               out / "variance_subspaces",
               f"Top/bottom pixel-variance subspaces ({dataset}, f = {settings.eval.subspace_share})")
    return {
        "claim": f"{jl}'s features depend more on the low-variance (bottom) pixel subspace than {rl}'s: larger "
                 "Δ = meanCCA(f(x), f(x_bottom)) − meanCCA(f(x), f(x_top)) (our protocol).",
        "rule": f"held = Δ({jl}) − Δ({rl}) passes the shared rule (effect > 0; with ≥ 3 seeds > its spread).",
        "measured": {"delta": {m: statistics.mean(v) for m, v in delta.items()}, "effect": effect},
        "checks": {"delta": why}, "held": held, "seeds": len(settings.seeds), "dataset": dataset,
    }


@register_experiment("depth")
def depth_effect(out: Path, settings: ExperimentSettings, say: Say) -> dict[str, Any]:
    """The two methods at each encoder depth on noisy Fashion-MNIST (strongest strength): the uptake gap per depth."""
    (jepa, recon), (jl, rl) = settings.methods, _labels(settings)
    grid = _Grid(out)
    options = {"strength": max(settings.strengths), "jitter": settings.jitter}
    for depth in settings.depths:
        for method in settings.methods:
            for seed in settings.seeds:
                grid.add((method, f"depth{depth}", f"seed{seed}"),
                         pretrain_config(method, "noisy-fashion-mnist", options, settings, seed, depth))
    results = grid.execute(settings, say)
    rows = [{"method": key[0], "depth": int(key[1][5:]), "seed": int(key[2][4:]), **_last_row(r)}
            for key, r in results.items()]
    write_csv(out / "results.csv", rows)

    def gaps(depth: int) -> list[float]:
        pick = lambda m: [r["distractor_uptake"] for r in rows if r["method"] == m and r["depth"] == depth]  # noqa: E731
        return [a - b for a, b in zip(pick(recon), pick(jepa))]

    shallow, deep = min(settings.depths), max(settings.depths)
    growth = [d - s for s, d in zip(gaps(shallow), gaps(deep))]
    grows, why = _decide(statistics.mean(growth), _spread(growth), len(settings.seeds))
    positive, why_gap = _decide(statistics.mean(gaps(deep)), _spread(gaps(deep)), len(settings.seeds))
    _plot_depth(rows, settings.methods, out)
    return {
        "claim": f"{rl}'s distractor uptake (R² above random init) exceeds {jl}'s, and the gap grows with encoder "
                 "depth (the theory: JEPA's ρ-bias grows with depth).",
        "rule": "held = gap(deepest) − gap(shallowest) passes the shared rule AND gap(deepest) itself passes it "
                f"({rl} takes up more of the distractor than {jl} at depth); shared rule: effect > 0, and with ≥ 3 "
                "seeds > the std over seeds.",
        "measured": {"gap": {str(d): statistics.mean(gaps(d)) for d in settings.depths},
                     "growth": statistics.mean(growth)},
        "checks": {"growth": why, "gap_at_deepest": why_gap}, "held": grows and positive,
        "seeds": len(settings.seeds), "depths": list(settings.depths),
    }


def _labels(settings: ExperimentSettings) -> tuple[str, ...]:
    return tuple(method_spec(m).label for m in settings.methods)


def _plot_noisy(rows: list[dict[str, Any]], settings: ExperimentSettings, out: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for method, colour in zip(settings.methods, ("tab:blue", "tab:red")):
        for ax, key in zip(axes, ("probe", "distractor_uptake", "rankme")):
            xs = sorted({r["strength"] for r in rows})
            ys = [statistics.mean(r[key] for r in rows if r["method"] == method and r["strength"] == x) for x in xs]
            ax.plot(xs, ys, "o-", color=colour, label=method_spec(method).label)
    for ax, label in zip(axes, ("label probe top-1 (fraction)", "distractor R² − random-init R²",
                                "RankMe (of width)")):
        ax.set_xlabel("distractor strength s (pixel units)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Noisy Fashion-MNIST: width {settings.dim}, depth {settings.depth}, {settings.epochs} epochs of "
                 f"{settings.train_images} images, jitter σ = {settings.jitter}, seeds {list(settings.seeds)}")
    fig.tight_layout()
    save_figure(fig, out / "noisy_features")
    plt.close(fig)


def _plot_bars(rows: list[dict[str, Any]], methods: tuple[str, ...], keys: tuple[str, ...], stem: Path,
               title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.38
    for offset, method in zip((-width / 2, width / 2), methods):
        values = [statistics.mean(r[k] for r in rows if r["method"] == method) for k in keys]
        ax.bar([i + offset for i in range(len(keys))], values, width, label=method_spec(method).label)
    ax.set_xticks(range(len(keys)), [k.replace("_", " ") for k in keys])
    ax.set_ylabel("probe top-1 / mean CCA (fraction)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, stem)
    plt.close(fig)


def _plot_depth(rows: list[dict[str, Any]], methods: tuple[str, ...], out: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for method in methods:
        depths = sorted({r["depth"] for r in rows})
        ys = [statistics.mean(r["distractor_uptake"] for r in rows if r["method"] == method and r["depth"] == d)
              for d in depths]
        ax.plot(depths, ys, "o-", label=method_spec(method).label)
    ax.set_xlabel("encoder depth (blocks)")
    ax.set_ylabel("distractor R² − random-init R²")
    ax.set_title("Distractor uptake versus encoder depth (noisy Fashion-MNIST)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out / "depth")
    plt.close(fig)


def run_experiment(name: str, out: str | Path, settings: ExperimentSettings,
                   say: Say = print) -> dict[str, Any]:
    """Run experiment ``name`` into ``out`` (finished runs are reused); writes and returns ``summary.json``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {list(EXPERIMENTS)}; got {name!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "settings.json", config_to_dict(settings))
    mode = "quick" if settings.quick else "full"
    summary = {"experiment": name, "mode": mode, **EXPERIMENTS[name](out, settings, say)}
    write_json(out / "summary.json", summary)
    return summary


from jepalab.vision import context_size as _context_size  # noqa: E402, F401  (registers "context-size")
