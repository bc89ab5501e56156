"""Real-image experiments (``jepalab experiment NAME``): I-JEPA versus MAE with the same encoder, the same number of
steps and images, evaluated by :mod:`jepalab.vision.evaluation`; every verdict comes from a rule in this module.

- ``noisy-features``: clean and noisy Fashion-MNIST (several distractor strengths). Claim (Littwin et al. 2024 on
  real data, our protocol): as the distractor grows, MAE's representation takes it up (distractor R² above its
  random-init value) and loses label
  accuracy; I-JEPA's does so far less.
- ``variance-subspaces``: top/bottom pixel-variance dependence on Fashion-MNIST (or an image folder). Claim
  (Balestriero & LeCun 2024; Littwin et al. 2024): I-JEPA's features follow the low-variance (bottom) subspace
  more than MAE's (larger Δ = CCA(bottom) − CCA(top)).
- ``depth``: encoder depth varied at fixed width on noisy Fashion-MNIST. Claim (the theory's depth effect): MAE's
  distractor uptake exceeds I-JEPA's, and the gap grows with depth.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jepalab.config import config_to_dict, from_dict, load_config, param
from jepalab.rundir import save_figure, write_csv, write_json
from jepalab.vision.config import PretrainConfig
from jepalab.vision.distributed import resolve_device
from jepalab.vision.evaluation import EvalSettings, evaluate_run
from jepalab.vision.train import CHECKPOINT, pretrain

__all__ = ["EXPERIMENTS", "ExperimentSettings", "run_experiment"]

METHODS = ("ijepa", "mae")


@dataclass(frozen=True)
class ExperimentSettings:
    """Budget of an experiment: model width/depth, steps, seeds, sweep values, evaluation sizes."""

    quick: bool = param(True, help="small models and few steps (≤ 20 min on 2 CPU cores); False = GPU scale")
    seeds: tuple[int, ...] = param((0,), help="training seeds (full mode: at least 3)")
    strengths: tuple[float, ...] = param((0.0, 0.05, 0.1), ge=0, le=1, help="distractor strengths (noisy-features)")
    jitter: float = param(2.0, ge=0, help="distractor per-patch jitter σ")
    depths: tuple[int, ...] = param((1, 4), ge=1, help="encoder depths (depth experiment)")
    dim: int = param(64, ge=8, help="encoder width")
    depth: int = param(4, ge=1, help="encoder depth (noisy-features, variance-subspaces)")
    epochs: int = param(10, ge=1, help="passes over the training images")
    train_images: int = param(6000, ge=128, help="training images (first N of the train split)")
    global_batch: int = param(128, ge=2, help="images per step")
    snapshots: int = param(3, ge=1, help="checkpoints kept over training (evenly spaced, the last at the end)")
    evaluate: str = param("last", choices=("last", "all"), help="evaluate the last checkpoint or every snapshot")
    data_root: str | None = param(None, help="Fashion-MNIST folder (default: the usual search)")
    folder: str | None = param(None, help="variance-subspaces: an image folder instead of Fashion-MNIST")
    device: str = param("auto", help="training/eval device")
    eval: EvalSettings = field(default_factory=lambda: EvalSettings(train_images=5000, test_images=1000,
                                                                   probe="ridge"))

    @staticmethod
    def full() -> ExperimentSettings:
        """The GPU-scale settings (ViT-tiny width, 3 seeds, the whole training split, logistic probes)."""
        return ExperimentSettings(quick=False, seeds=(0, 1, 2), strengths=(0.0, 0.05, 0.1, 0.15), depths=(2, 6, 12),
                                  dim=192, depth=12, epochs=100, train_images=60000, global_batch=256,
                                  snapshots=10, evaluate="all",
                                  eval=EvalSettings(train_images=60000, test_images=10000, probe="logistic"))


def pretrain_config(method: str, dataset: str, options: dict[str, Any], settings: ExperimentSettings, seed: int,
                    depth: int | None = None) -> PretrainConfig:
    """The experiment's I-JEPA or MAE config: same encoder, steps, batch and augmentation for both methods."""
    depth = settings.depth if depth is None else depth
    total_steps = settings.epochs * (settings.train_images // settings.global_batch)
    heads = max(1, settings.dim // 32)
    fields: dict[str, Any] = {
        "method": method, "seed": seed,
        "data": {"dataset": dataset, "root": settings.data_root, "image_size": 28, "crop_scale": [1.0, 1.0],
                 "crop_ratio": [1.0, 1.0], "hflip": False, "limit": settings.train_images, "options": options},
        "model": {"size": "tiny", "patch_size": 4, "dim": settings.dim, "depth": depth, "heads": heads},
        "ijepa": {"predictor_dim": settings.dim, "predictor_depth": 2 if settings.quick else 6},
        "mae": {"decoder_dim": settings.dim, "decoder_depth": 2 if settings.quick else 8, "decoder_heads": heads},
        "optim": {"epochs": settings.epochs, "warmup_epochs": min(1.0, settings.epochs / 4),
                  "global_batch": settings.global_batch},
        "train": {"device": settings.device, "progress": False, "log_every": 10, "diag_every": 0,
                  "diag_images": 256,
                  "checkpoint_every": max(1, total_steps // settings.snapshots),
                  "snapshot_every": max(1, total_steps // settings.snapshots)},
    }
    if dataset == "image-folder":
        fields["data"].update(root=settings.folder, image_size=32, store_size=36, crop_scale=[0.3, 1.0],
                              crop_ratio=[0.75, 1.333], limit=None)
    return from_dict(PretrainConfig, fields)


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

    def execute(self, settings: ExperimentSettings, say: Callable[[str], None]) -> dict[tuple, dict[str, Any]]:
        results = {}
        for index, (key, (cfg, run)) in enumerate(self.runs.items(), 1):
            say(f"[{index}/{len(self.runs)}] {' '.join(map(str, key))} → {run}")
            results[key] = _train_and_eval(cfg, run, settings)
        write_csv(self.out / "curves.csv", [{"run": run.name, **{k: v for k, v in c.items() if k != "probe_protocol"}}
                                            for (_, run), r in zip(self.runs.values(), results.values())
                                            for c in r["checkpoints"]])
        return results


def noisy_features(out: Path, settings: ExperimentSettings, say: Callable[[str], None]) -> dict[str, Any]:
    """I-JEPA and MAE on noisy Fashion-MNIST at each strength: label probe, distractor R², RankMe, LiDAR, Δ."""
    grid = _Grid(out)
    for strength in settings.strengths:
        for method in METHODS:
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

    drop = {m: [a - b for a, b in zip(per_seed(m, lo, "probe"), per_seed(m, hi, "probe"))] for m in METHODS}
    r2 = {m: per_seed(m, hi, "distractor_uptake") for m in METHODS}
    drop_effect = statistics.mean(drop["mae"]) - statistics.mean(drop["ijepa"])
    r2_effect = statistics.mean(r2["mae"]) - statistics.mean(r2["ijepa"])
    drop_spread = _spread([a - b for a, b in zip(drop["mae"], drop["ijepa"])])
    r2_spread = _spread([a - b for a, b in zip(r2["mae"], r2["ijepa"])])
    n = len(settings.seeds)
    held_drop, why_drop = _decide(drop_effect, drop_spread, n)
    held_r2, why_r2 = _decide(r2_effect, r2_spread, n)
    _plot_noisy(rows, settings, out)
    return {
        "claim": "As the distractor strength grows, MAE's representation takes up the distractor (its training adds "
                 "more distractor R² than I-JEPA's does) and loses more label accuracy than I-JEPA's.",
        "rule": "held = (MAE's probe drop from the weakest to the strongest distractor − I-JEPA's) passes the shared "
                "rule AND (MAE's distractor uptake − I-JEPA's at the strongest) passes it, uptake = R²(encoder) − "
                "R²(random encoder of the same architecture and init); shared rule: effect > 0, and with ≥ 3 seeds "
                "effect > the std over seeds of the paired difference.",
        "measured": {"probe_drop": {m: statistics.mean(v) for m, v in drop.items()},
                     "distractor_uptake_at_strongest": {m: statistics.mean(v) for m, v in r2.items()},
                     "probe_drop_effect": drop_effect, "probe_drop_effect_spread": drop_spread,
                     "r2_effect": r2_effect, "r2_effect_spread": r2_spread},
        "checks": {"probe_drop": why_drop, "distractor_uptake": why_r2},
        "held": held_drop and held_r2, "seeds": n, "strengths": list(settings.strengths),
    }


def variance_subspaces(out: Path, settings: ExperimentSettings, say: Callable[[str], None]) -> dict[str, Any]:
    """I-JEPA and MAE on clean Fashion-MNIST (or ``settings.folder``): Δ = CCA(bottom) − CCA(top) per method."""
    grid = _Grid(out)
    dataset = "image-folder" if settings.folder else "fashion-mnist"
    for method in METHODS:
        for seed in settings.seeds:
            grid.add((method, f"seed{seed}"), pretrain_config(method, dataset, {}, settings, seed))
    results = grid.execute(settings, say)
    rows = [{"method": key[0], "seed": int(key[1][4:]), **_last_row(r)} for key, r in results.items()]
    write_csv(out / "results.csv", rows)
    delta = {m: [r["cca_delta"] for r in rows if r["method"] == m] for m in METHODS}
    effect = statistics.mean(delta["ijepa"]) - statistics.mean(delta["mae"])
    held, why = _decide(effect, _spread([a - b for a, b in zip(delta["ijepa"], delta["mae"])]), len(settings.seeds))
    _plot_bars(rows, ("top_probe", "bottom_probe", "cca_top", "cca_bottom"), out / "variance_subspaces",
               f"Top/bottom pixel-variance subspaces ({dataset}, f = {settings.eval.subspace_share})")
    return {
        "claim": "I-JEPA's features depend more on the low-variance (bottom) pixel subspace than MAE's: larger "
                 "Δ = meanCCA(f(x), f(x_bottom)) − meanCCA(f(x), f(x_top)) (our protocol).",
        "rule": "held = Δ(I-JEPA) − Δ(MAE) passes the shared rule (effect > 0; with ≥ 3 seeds > its spread).",
        "measured": {"delta": {m: statistics.mean(v) for m, v in delta.items()}, "effect": effect},
        "checks": {"delta": why}, "held": held, "seeds": len(settings.seeds), "dataset": dataset,
    }


def depth_effect(out: Path, settings: ExperimentSettings, say: Callable[[str], None]) -> dict[str, Any]:
    """I-JEPA and MAE at each encoder depth on noisy Fashion-MNIST (strongest strength): the uptake gap per depth."""
    grid = _Grid(out)
    options = {"strength": max(settings.strengths), "jitter": settings.jitter}
    for depth in settings.depths:
        for method in METHODS:
            for seed in settings.seeds:
                grid.add((method, f"depth{depth}", f"seed{seed}"),
                         pretrain_config(method, "noisy-fashion-mnist", options, settings, seed, depth))
    results = grid.execute(settings, say)
    rows = [{"method": key[0], "depth": int(key[1][5:]), "seed": int(key[2][4:]), **_last_row(r)}
            for key, r in results.items()]
    write_csv(out / "results.csv", rows)

    def gaps(depth: int) -> list[float]:
        pick = lambda m: [r["distractor_uptake"] for r in rows if r["method"] == m and r["depth"] == depth]  # noqa: E731
        return [a - b for a, b in zip(pick("mae"), pick("ijepa"))]

    shallow, deep = min(settings.depths), max(settings.depths)
    growth = [d - s for s, d in zip(gaps(shallow), gaps(deep))]
    grows, why = _decide(statistics.mean(growth), _spread(growth), len(settings.seeds))
    positive, why_gap = _decide(statistics.mean(gaps(deep)), _spread(gaps(deep)), len(settings.seeds))
    _plot_depth(rows, out)
    return {
        "claim": "MAE's distractor uptake (R² above random init) exceeds I-JEPA's, and the gap grows with encoder "
                 "depth (the theory: JEPA's ρ-bias grows with depth).",
        "rule": "held = gap(deepest) − gap(shallowest) passes the shared rule AND gap(deepest) itself passes it "
                "(MAE takes up more of the distractor than I-JEPA at depth); shared rule: effect > 0, and with ≥ 3 "
                "seeds > the std over seeds.",
        "measured": {"gap": {str(d): statistics.mean(gaps(d)) for d in settings.depths},
                     "growth": statistics.mean(growth)},
        "checks": {"growth": why, "gap_at_deepest": why_gap}, "held": grows and positive,
        "seeds": len(settings.seeds), "depths": list(settings.depths),
    }


def _pyplot() -> Any:
    from jepalab.plotting import pyplot

    plt = pyplot()

    return plt


def _plot_noisy(rows: list[dict[str, Any]], settings: ExperimentSettings, out: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for method, colour in zip(METHODS, ("tab:blue", "tab:red")):
        for ax, key in zip(axes, ("probe", "distractor_uptake", "rankme")):
            xs = sorted({r["strength"] for r in rows})
            ys = [statistics.mean(r[key] for r in rows if r["method"] == method and r["strength"] == x) for x in xs]
            ax.plot(xs, ys, "o-", color=colour, label={"ijepa": "I-JEPA", "mae": "MAE"}[method])
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


def _plot_bars(rows: list[dict[str, Any]], keys: tuple[str, ...], stem: Path, title: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.38
    for offset, method in zip((-width / 2, width / 2), METHODS):
        values = [statistics.mean(r[k] for r in rows if r["method"] == method) for k in keys]
        ax.bar([i + offset for i in range(len(keys))], values, width, label={"ijepa": "I-JEPA", "mae": "MAE"}[method])
    ax.set_xticks(range(len(keys)), [k.replace("_", " ") for k in keys])
    ax.set_ylabel("probe top-1 / mean CCA (fraction)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, stem)
    plt.close(fig)


def _plot_depth(rows: list[dict[str, Any]], out: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for method in METHODS:
        depths = sorted({r["depth"] for r in rows})
        ys = [statistics.mean(r["distractor_uptake"] for r in rows if r["method"] == method and r["depth"] == d)
              for d in depths]
        ax.plot(depths, ys, "o-", label={"ijepa": "I-JEPA", "mae": "MAE"}[method])
    ax.set_xlabel("encoder depth (blocks)")
    ax.set_ylabel("distractor R² − random-init R²")
    ax.set_title("Distractor uptake versus encoder depth (noisy Fashion-MNIST)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out / "depth")
    plt.close(fig)


EXPERIMENTS: dict[str, Callable[[Path, ExperimentSettings, Callable[[str], None]], dict[str, Any]]] = {
    "noisy-features": noisy_features, "variance-subspaces": variance_subspaces, "depth": depth_effect}


def run_experiment(name: str, out: str | Path, settings: ExperimentSettings,
                   say: Callable[[str], None] = print) -> dict[str, Any]:
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
