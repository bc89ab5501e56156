"""The report's forest plot of the real-image effects: one row per test of every measured claim, with its per-seed
effects, their mean and the interval the verdict reads (the 95 % Student-t interval of the interval statistics, or
mean ± sd where a measurement was decided by the earlier shared test), 0 and the smallest effect of interest."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jepalab.plotting import pyplot
from jepalab.rundir import save_figure

__all__ = ["FOREST_ALT", "EffectRow", "effect_rows", "forest_figure"]

FOREST_ALT = "intervals of the real-image effects"
CONFIRMATORY, EXPLORATORY = "confirmatory 95 % CI", "exploratory 95 % CI"


@dataclass(frozen=True)
class EffectRow:
    """One test of one claim: per-seed effects (> 0 supports the claim) and their mean; ``ci``: the 95 % interval of
    the interval statistics, of kind ``ci_kind`` (CONFIRMATORY or EXPLORATORY; None: none computed); ``spread``:
    mean ± sd where the shared test (mean > sd) decided the claim, else None; ``reading``: which verdict each gives;
    ``smallest``: the smallest effect of interest (None: none registered)."""

    claim: str
    test: str
    effects: tuple[float, ...]
    mean: float
    ci: tuple[float, float] | None
    ci_kind: str | None
    spread: tuple[float, float] | None
    reading: str
    smallest: float | None


def _finite(values: Any) -> list[float]:
    return [float(v) for v in values if not math.isnan(float(v))]


def _interval(test: Mapping[str, Any] | None) -> tuple[list[float], tuple[float, float]] | None:
    """(effects, 95 % CI) of an interval test whose every per-seed effect is finite (at least two), else None."""
    if test is None or not len(_finite(test["effects"])) == len(test["effects"]) > 1:
        return None
    return _finite(test["effects"]), (float(test["ci95"][0]), float(test["ci95"][1]))


def effect_rows(claim: str, summary: Mapping[str, Any], reanalysis: Mapping[str, Any] | None,
                registered: Mapping[str, float]) -> list[EffectRow]:
    """The rows of one measured claim, from the numbers its verdict reads: a measurement decided by interval
    statistics shows its own tests' intervals (confirmatory or not); one decided by the shared test shows mean ± sd
    and, where these runs were reanalysed under the confirmatory rule with finite effects, that reanalysis's interval
    (exploratory). ``registered``: smallest effects of interest pre-registered for the claim elsewhere (its
    confirmatory plan), used where the numbers carry none."""
    verdict = summary.get("verdict") or ("holds" if summary.get("held") else "does not hold")
    own = bool(summary.get("tests"))
    source = summary if own else (reanalysis or {})
    tests, smallest = source.get("tests", {}), source.get("smallest_effect_of_interest", {})
    kind = CONFIRMATORY if own and summary.get("confirmatory") else EXPLORATORY
    rows = []
    for test in tests if own else summary.get("effects", {}):
        found, sesoi = _interval(tests.get(test)), smallest.get(test, registered.get(test))
        if own:
            effects = found[0] if found else _finite(tests[test]["effects"])
            reading, spread = f"{kind}: {verdict}", None
        else:
            effects = _finite(summary["effects"][test])
            sd = statistics.stdev(effects) if len(effects) > 1 else 0.0
            spread = (statistics.mean(effects) - sd, statistics.mean(effects) + sd) if effects else None
            reading = f"mean ± sd: {verdict}" + (f" · {kind}: {source['verdict']}" if found else "")
        mean = statistics.mean(effects) if effects else math.nan
        rows.append(EffectRow(claim, test, tuple(effects), mean, found[1] if found else None,
                              kind if found else None, spread, reading, sesoi))
    return rows


def _limits(row: EffectRow) -> tuple[float, float]:
    """x-range of a row: its effects, intervals, 0 and smallest effect of interest, padded by 12 %."""
    values = [0.0, *row.effects, *(row.ci or ()), *(row.spread or ()),
              *(() if row.smallest is None else (row.smallest,))]
    finite = [v for v in values if math.isfinite(v)]
    low, high = min(finite), max(finite)
    pad = 0.12 * (high - low or 1.0)
    return low - pad, high + pad


def _note(row: EffectRow) -> str:
    """The row's numbers, printed beside it."""
    if not row.effects:
        return "no finite effect"
    lines = [f"mean {row.mean:+.3g}" + (f" ± {(row.spread[1] - row.spread[0]) / 2:.3g} (sd)" if row.spread else "")]
    if row.ci:
        lines.append(f"95 % CI [{row.ci[0]:+.3g}, {row.ci[1]:+.3g}]")
    return "\n".join(lines)


def _draw_row(ax: Any, row: EffectRow) -> None:
    """One forest row on its own x-scale: dots per seed, mean ± sd and/or the 95 % CI, 0 and the smallest effect
    of interest, the row's name and reading on the left and its numbers on the right."""
    ax.axvline(0.0, color="0.45", lw=1.0)
    if row.smallest is not None:
        ax.axvline(row.smallest, color="tab:orange", lw=1.4, ls="--")
    if row.spread:
        ax.plot(row.spread, [-0.12, -0.12], color="0.7", lw=6, solid_capstyle="butt")
    if row.ci:
        ax.plot(row.ci, [-0.12, -0.12], color="black", lw=1.8, marker="|", ms=9)
    if row.effects:
        ax.plot([row.mean], [-0.12], "s", color="black", ms=6)
        ax.plot(row.effects, [0.3] * len(row.effects), "o", color="tab:blue", alpha=0.7, ms=4.5)
    ax.set_xlim(*_limits(row))
    ax.set_ylim(-0.6, 0.65)
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=7, length=2, pad=1)
    ax.grid(alpha=0.25, axis="x")
    ax.text(-0.02, 0.62, f"{row.claim} {row.test.replace('_', ' ')}", transform=ax.transAxes, ha="right",
            va="center", fontsize=8.5, weight="bold")
    ax.text(-0.02, 0.18, row.reading, transform=ax.transAxes, ha="right", va="center", fontsize=6.8, color="0.3")
    ax.text(1.02, 0.5, _note(row), transform=ax.transAxes, ha="left", va="center", fontsize=7, family="monospace")


def forest_figure(rows: list[EffectRow], stem: Path) -> Path:
    """The forest plot of ``rows`` (one axis each, stacked) under a title and a legend; returns the PNG."""
    plt = pyplot()
    from matplotlib.lines import Line2D

    height = 1.05 + 0.66 * len(rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(10.0, height), squeeze=False)
    for ax, row in zip(axes[:, 0], rows):
        _draw_row(ax, row)
    handles = [Line2D([], [], marker="o", ls="", color="tab:blue", label="per seed"),
               Line2D([], [], marker="s", ls="", color="black", label="mean"),
               Line2D([], [], color="black", lw=1.8, marker="|", ms=9, label="95 % CI"),
               Line2D([], [], color="0.7", lw=6, label="mean ± sd"),
               Line2D([], [], color="0.45", label="0"),
               Line2D([], [], color="tab:orange", ls="--", label="smallest effect of interest")]
    fig.text(0.01, 1 - 0.1 / height, "Intervals of the real-image effects (> 0 supports the claim; each row on its "
             "own scale)", ha="left", va="top", fontsize=10, weight="bold")
    fig.legend(handles=handles, loc="upper left", ncol=6, fontsize=7.5, frameon=False,
               bbox_to_anchor=(0.0, 1 - 0.36 / height))
    fig.subplots_adjust(left=0.27, right=0.78, top=1 - 0.85 / height, bottom=0.3 / height, hspace=0.95)
    save_figure(fig, stem, formats=("png",), dpi=90)
    plt.close(fig)
    return stem.with_suffix(".png")
