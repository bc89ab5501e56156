"""``jepalab experiment context-size``: I-JEPA versus EC-IJEPA (**our reading** of Littwin, Thilak & Gopalakrishnan,
arXiv 2410.10773) over context-block scales on Fashion-MNIST, the same encoder, views and budget for every run.

Per run: label probe, centred kNN-20, centred RankMe and the collapse flag of the last checkpoint (``jepalab
eval``), and the centred RankMe of the evaluation encoder over training (the trainer's collapse diagnostics,
unconditioned). The claim and its rule are fixed here, before any run: see :data:`CLAIM` and :func:`decide`.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from jepalab.config import config_to_dict, from_dict, merge_dicts
from jepalab.plotting import pyplot
from jepalab.rundir import save_figure, write_csv
from jepalab.vision.config import PretrainConfig
from jepalab.vision.experiments import ExperimentSettings, Say, _Grid, _last_row, pretrain_config, register_experiment
from jepalab.vision.methods import method_spec

__all__ = ["BASELINE", "CLAIM", "CONDITIONED", "PROBE_RANGE_POINTS", "context_size", "decide"]

BASELINE, CONDITIONED = "ijepa", "ecijepa"
PROBE_RANGE_POINTS = 3.0
"""X of the claim: the largest spread (max − min over context scales, in probe points) EC-IJEPA may show."""
CLAIM = (f"EC-IJEPA (our reading, beyond the paper): conditioning keeps the probe within {PROBE_RANGE_POINTS:g} points "
         "across context sizes where I-JEPA's varies more, and collapses in no run where I-JEPA does.")
RULE = (f"held = (EC-IJEPA's probe range over context scales, of the seed-mean probe, ≤ {PROBE_RANGE_POINTS:g} points) "
        "AND (I-JEPA's range > EC-IJEPA's) AND (no (scale, seed) where I-JEPA's last checkpoint is collapsed has a "
        "collapsed EC-IJEPA run; vacuously true when I-JEPA never collapses, said in the checks). Collapsed = "
        "centred RankMe < 0.01 × width (jepalab eval). Fewer than 3 seeds: indicative only.")


def _scale_name(scale: tuple[float, float]) -> str:
    return f"{scale[0]:g}-{scale[1]:g}"


def decide(rows: list[dict[str, Any]], seeds: int) -> dict[str, Any]:
    """Measured numbers, checks and verdict of :data:`RULE` from per-run rows (method, scale, seed, probe, knn20,
    rankme, collapsed); probes are fractions, ranges are reported in points."""
    scales = sorted({r["scale"] for r in rows})
    methods = (BASELINE, CONDITIONED)

    def mean(method: str, scale: str, key: str) -> float:
        return statistics.mean(float(r[key]) for r in rows if r["method"] == method and r["scale"] == scale)

    table = {key: {m: {s: mean(m, s, key) for s in scales} for m in methods} for key in ("probe", "knn20", "rankme")}
    spread = {m: 100 * (max(table["probe"][m].values()) - min(table["probe"][m].values())) for m in methods}
    collapsed = {m: sorted(f"{r['scale']} seed {r['seed']}" for r in rows if r["method"] == m and r["collapsed"])
                 for m in methods}
    both = sorted(set(collapsed[BASELINE]) & set(collapsed[CONDITIONED]))
    within = spread[CONDITIONED] <= PROBE_RANGE_POINTS
    steadier = spread[BASELINE] > spread[CONDITIONED]
    note = "" if seeds >= 3 else f" ({seeds} seed(s): indicative only)"
    checks = {
        "probe_range": f"EC-IJEPA {spread[CONDITIONED]:.2f} points {'≤' if within else '>'} {PROBE_RANGE_POINTS:g}"
                       + note,
        "steadier_than_ijepa": f"I-JEPA {spread[BASELINE]:.2f} points {'>' if steadier else '≤'} EC-IJEPA "
                               f"{spread[CONDITIONED]:.2f}" + note,
        "collapse": ("I-JEPA collapsed in no run: vacuously true" if not collapsed[BASELINE] else
                     f"I-JEPA collapsed in {len(collapsed[BASELINE])} run(s), EC-IJEPA in {len(both)} of them"
                     + (f" ({', '.join(both)})" if both else "")),
    }
    return {"measured": {**table, "probe_range_points": spread, "collapsed_runs": collapsed,
                         "threshold_points": PROBE_RANGE_POINTS},
            "checks": checks, "held": within and steadier and not both}


def _rankme_curve(run: Path, encoder: str) -> list[dict[str, float]]:
    """(step, centred RankMe) of ``encoder`` from the run's collapse diagnostics in metrics.jsonl."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{"step": r["step"], "rankme": r[f"{encoder}.rankme_centred"]} for r in records if r.get("kind") == "diag"]


@register_experiment("context-size")
def context_size(out: Path, settings: ExperimentSettings, say: Say) -> dict[str, Any]:
    """I-JEPA and EC-IJEPA (our reading) at each ``settings.context_scales`` on Fashion-MNIST, the same budget."""
    grid = _Grid(out)
    for scale in settings.context_scales:
        for method in (BASELINE, CONDITIONED):
            for seed in settings.seeds:
                cfg = pretrain_config(method, "fashion-mnist", {}, settings, seed)
                every = max(1, cfg.train.checkpoint_every)  # RankMe at every checkpoint of the run
                own = {"mask": {"context_scale": list(scale)}, "train": {"diag_every": every}}
                grid.add((method, f"ctx{_scale_name(scale)}", f"seed{seed}"),
                         from_dict(PretrainConfig, merge_dicts(config_to_dict(cfg), own)))
    results = grid.execute(settings, say)
    rows, curves = [], []
    for (key, (cfg, run)), result in zip(grid.runs.items(), results.values()):
        row = _last_row(result)
        rows.append({"method": key[0], "scale": key[1][3:], "seed": int(key[2][4:]), **row,
                     "collapsed": bool(row.get("collapsed"))})
        encoder = method_spec(cfg.method).default_encoder or next(iter(method_spec(cfg.method).encoders))
        curves += [{"method": key[0], "scale": key[1][3:], "seed": rows[-1]["seed"], **point}
                   for point in _rankme_curve(run, encoder)]
    write_csv(out / "results.csv", rows)
    if curves:
        write_csv(out / "rankme_curves.csv", curves)
    verdict = decide(rows, len(settings.seeds))
    _plot(rows, curves, out)
    return {"claim": CLAIM, "rule": RULE, **verdict, "seeds": len(settings.seeds),
            "scales": [list(s) for s in settings.context_scales], "methods": [BASELINE, CONDITIONED],
            "evaluation_condition": "none (the EC-IJEPA encoders evaluated unconditioned)"}


def _plot(rows: list[dict[str, Any]], curves: list[dict[str, Any]], out: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    scales = sorted({r["scale"] for r in rows})
    for method in (BASELINE, CONDITIONED):
        label = method_spec(method).label
        for ax, key in zip(axes[:2], ("probe", "knn20")):
            ax.plot(scales, [statistics.mean(r[key] for r in rows if r["method"] == method and r["scale"] == s)
                             for s in scales], "o-", label=label)
        for scale in scales:  # the first seed's curves
            points = [c for c in curves if (c["method"], c["scale"], c["seed"]) == (method, scale, rows[0]["seed"])]
            axes[2].plot([p["step"] for p in points], [p["rankme"] for p in points],
                         "-" if method == BASELINE else "--", label=f"{label}, context {scale}")
    for ax, ylabel, xlabel in zip(axes, ("probe top-1", "centred kNN-20 top-1", "centred RankMe (diagnostics)"),
                                  ("context scale", "context scale", "step")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Context-block size: I-JEPA vs EC-IJEPA (our reading), Fashion-MNIST, same budget")
    fig.tight_layout()
    save_figure(fig, out / "context_size")
    plt.close(fig)
