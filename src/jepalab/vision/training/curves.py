"""Figures of a pretraining run from its ``metrics.jsonl``: loss and learning rate; collapse diagnostics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from jepalab.rundir import save_figure

__all__ = ["plot_run", "read_metrics"]

DIAGNOSTICS = (("normalised_std_sqrt_d", "std of L2-normalised features × √d (1 = isotropic)"),
               ("rankme", "RankMe (fixed batch)"), ("token_spread", "token spread"), ("dead_share", "dead dims share"))


def read_metrics(run: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training-step records, diagnostics records) of a run's ``metrics.jsonl``."""
    steps, diags = [], []
    path = Path(run) / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                (diags if record.get("kind") == "diag" else steps).append(record)
    return steps, diags


def _as_float(value: Any) -> float:
    return float(value)  # "nan"/"inf" strings (to_jsonable) parse too


def plot_run(run: str | Path) -> list[Path]:
    """Write ``loss.png`` and ``diagnostics.png`` into the run folder; returns the paths. PNG only: these are
    redrawn at the end of every session, and an SVG of a long run's per-step curve is large and slow to write."""
    from jepalab.plotting import pyplot

    plt = pyplot()

    run = Path(run)
    steps, diags = read_metrics(run)
    paths: list[Path] = []
    if steps:
        x = np.array([r["step"] for r in steps])
        loss = np.array([_as_float(r["loss"]) for r in steps])
        fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(10, 3.5))
        ax_loss.plot(x, loss, lw=0.6, alpha=0.5, label="per step")
        if len(loss) >= 20:
            window = max(2, len(loss) // 50)
            smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
            ax_loss.plot(x[window - 1:], smooth, lw=1.5, label=f"mean of {window}")
        if np.all(loss[np.isfinite(loss)] > 0):
            ax_loss.set_yscale("log")
        ax_loss.set(xlabel="step", ylabel="loss", title="training loss")
        ax_loss.legend()
        ax_lr.plot(x, [r["lr"] for r in steps], label="learning rate")
        ax_lr.set(xlabel="step", ylabel="learning rate", title="schedules")
        if "momentum" in steps[0]:
            twin = ax_lr.twinx()
            twin.plot(x, [r["momentum"] for r in steps], color="C2", label="EMA momentum")
            twin.set_ylabel("EMA momentum")
        fig.tight_layout()
        paths += save_figure(fig, run / "loss", formats=("png",))
        plt.close(fig)
    if diags:
        x = np.array([r["step"] for r in diags])
        encoders = sorted({k.split(".")[0] for r in diags for k in r if "." in k})
        fig, axes = plt.subplots(1, len(DIAGNOSTICS), figsize=(4 * len(DIAGNOSTICS), 3.5))
        for ax, (metric, title) in zip(axes, DIAGNOSTICS):
            for name in encoders:
                ax.plot(x, [_as_float(r.get(f"{name}.{metric}", "nan")) for r in diags], marker="o", ms=3, label=name)
            ax.set(xlabel="step", title=title)
            ax.legend()
        fig.tight_layout()
        paths += save_figure(fig, run / "diagnostics", formats=("png",))
        plt.close(fig)
    return paths
