"""The learning-order figure: predicted (theory) against observed learning step per direction, one panel per method,
and the deep linear control in the last panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jepalab.plotting import pyplot
from jepalab.rundir import save_figure
from jepalab.vision.methods import method_spec

__all__ = ["order_figure"]


def _edge(values: np.ndarray, finite_max: float) -> np.ndarray:
    """``inf`` (never learned) drawn at 1.6 × the largest finite value."""
    return np.where(np.isfinite(values), values, 1.6 * finite_max)


def _scatter(ax: Any, predicted: np.ndarray, observed: np.ndarray, names: list[str], colour: str) -> None:
    finite_p = predicted[np.isfinite(predicted)]
    finite_o = observed[np.isfinite(observed)]
    x = _edge(predicted, float(finite_p.max()) if finite_p.size else 1.0)
    y = _edge(observed, float(finite_o.max()) if finite_o.size else 1.0)
    ax.scatter(x, y, color=colour, s=18)
    for xi, yi, name in zip(x, y, names):
        ax.annotate(name.replace("PC", ""), (xi, yi), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)


def order_figure(predicted: dict[str, np.ndarray], observed: dict[str, list[np.ndarray]], names: list[str],
                 control: dict[str, dict[str, Any]], stem: Path) -> None:
    """Per method: its own predicted time (x, log) against the observed learning step, mean over seeds of the seeds
    that learned the direction (y; never learned at the top or right edge); last panel: the deep linear control."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(predicted) + 1, figsize=(4.2 * (len(predicted) + 1), 3.8))
    for ax, (method, times), colour in zip(axes, predicted.items(), ("tab:blue", "tab:red")):
        stacked = np.vstack(observed[method])  # (seeds, k)
        learned = np.isfinite(stacked)
        mean_step = np.where(learned.any(axis=0),
                             np.nansum(np.where(learned, stacked, np.nan), axis=0) / np.maximum(learned.sum(0), 1),
                             np.inf)
        _scatter(ax, times, mean_step, names, colour)
        ax.set(title=f"{method_spec(method).label}: {int(learned.any(axis=0).sum())} of {len(names)} learned",
               xlabel="predicted learning time (theory, log; never at the edge)",
               ylabel="observed learning step (seed mean; never at the top)")
    ax = axes[-1]
    for (objective, c), colour in zip(control.items(), ("tab:blue", "tab:red")):
        if c["fine"]:
            kept = [names[i] for i in c["directions"]]
            _scatter(ax, np.asarray(c["predicted"]), np.asarray(c["fine"]), kept, colour)
            ax.scatter([], [], color=colour, label=f"{objective}: Spearman {c['spearman_fine']:.2f} "
                                                   f"({c['spearman_snapshots']:.2f} at the runs' snapshots)")
    ax.set(title="Deep linear control (same λ, ρ)", xlabel="predicted critical time (log)",
           ylabel="observed crossing time")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, stem, formats=("png",), dpi=90)
    plt.close(fig)
