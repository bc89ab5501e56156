"""The report's figure of committed experiment results: every tested effect of every experiment, one point per seed
and the mean ± sd over seeds (the shared test asks mean > sd, so a bar clear of zero by more than its whisker
passes)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from jepalab.plotting import pyplot
from jepalab.rundir import save_figure

__all__ = ["effects_figure"]


def effects_figure(summaries: dict[str, dict[str, Any]], stem: Path) -> Path:
    """One panel per experiment: its ``effects`` (name → per-seed values) as dots and mean ± sd; returns the PNG."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(summaries), figsize=(4.2 * len(summaries), 3.6), squeeze=False)
    for ax, (name, summary) in zip(axes[0], summaries.items()):
        effects = summary["effects"]
        for x, values in enumerate(effects.values()):
            finite = [float(v) for v in values if not math.isnan(float(v))]
            if not finite:
                continue
            sd = statistics.stdev(finite) if len(finite) > 1 else 0.0
            ax.errorbar([x], [statistics.mean(finite)], yerr=[sd], fmt="s", color="black", capsize=6)
            ax.plot([x + 0.12] * len(finite), finite, "o", color="tab:blue", alpha=0.7)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xticks(range(len(effects)), [k.replace("_", " ") for k in effects], fontsize=7, rotation=12)
        ax.set_title(f"{name}: {summary.get('verdict', '')} ({summary['seeds']} seeds)", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel("effect (> 0 favours the claim)")
    fig.tight_layout()
    save_figure(fig, stem, formats=("png",), dpi=90)
    plt.close(fig)
    return stem.with_suffix(".png")
