"""The metric columns of every evaluation table (``jepalab eval``'s headline table, ``jepalab compare`` and their
CSVs), defined once, and ``jepalab compare``: one row, one table line and one bar group per evaluated run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jepalab.plotting import pyplot
from jepalab.rundir import save_figure

__all__ = ["METRIC_COLUMNS", "compare_rows", "compare_table", "format_metric", "plot_compare"]

METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("probe", "{:.2%}"), ("knn20", "{:.2%}"), ("rankme", "{:.1f}"), ("lidar", "{:.1f}"), ("top_probe", "{:.2%}"),
    ("bottom_probe", "{:.2%}"), ("cca_delta", "{:+.3f}"), ("distractor_r2", "{:.3f}"))
"""(key in eval.json, format) of the headline metrics, in table order; a metric a run lacks prints as '-'."""


def format_metric(key: str, value: Any) -> str:
    """``value`` of metric ``key`` as the tables print it ('-' when missing)."""
    spec = dict(METRIC_COLUMNS)[key]
    return "-" if value is None else spec.format(value)


def compare_rows(runs: list[str]) -> list[dict[str, Any]]:
    """One row per run from its ``eval.json`` (last checkpoint, with the random-encoder and pixel probes)."""
    rows = []
    for run in runs:
        path = Path(run) / "eval.json"
        if not path.is_file():
            raise FileNotFoundError(f"{run} has no eval.json; run `jepalab eval {run}` first")
        result = json.loads(path.read_text())
        last = result["checkpoints"][-1]
        rows.append({"run": Path(run).name, "method": result["method"], "dataset": result["dataset"],
                     "strength": result["options"].get("strength"), "step": last["step"],
                     **{key: last.get(key) for key, _ in METRIC_COLUMNS},
                     "random_probe": result["baselines"]["random"]["probe"],
                     "pixels_probe": result["baselines"]["pixels"]["probe"]})
    return rows


def compare_table(rows: list[dict[str, Any]]) -> str:
    """The text table of :func:`compare_rows`: every metric column, then the random-init probe."""
    width = max(len(r["run"]) for r in rows) + 2
    lines = [f"{'run':<{width}}{'method':>7}{'step':>7}" + "".join(f"{k:>15}" for k, _ in METRIC_COLUMNS)
             + f"{'random probe':>15}"]
    for r in rows:
        cells = "".join(f"{format_metric(k, r[k]):>15}" for k, _ in METRIC_COLUMNS)
        lines.append(f"{r['run']:<{width}}{r['method']:>7}{r['step']:>7}{cells}{r['random_probe']:>15.2%}")
    return "\n".join(lines)


def plot_compare(rows: list[dict[str, Any]], stem: Path) -> None:
    """Bars of the encoder and random-init probes per run, with the distractor R² where measured."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(rows)), 4))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["probe"] for r in rows], 0.4, label="encoder probe top-1")
    ax.bar([x + 0.2 for x in xs], [r["random_probe"] for r in rows], 0.4, label="random-init probe top-1")
    if any(r["distractor_r2"] is not None for r in rows):
        ax.plot(list(xs), [r["distractor_r2"] if r["distractor_r2"] is not None else float("nan") for r in rows],
                "kD", label="distractor R²")
    ax.set_xticks(list(xs), [f"{r['run']}\n({r['method']})" for r in rows], fontsize=7)
    ax.set_ylabel("fraction")
    ax.set_title("Frozen-feature evaluation across runs (last checkpoints)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, stem)
    plt.close(fig)
