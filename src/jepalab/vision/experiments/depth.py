"""``depth`` (claim R3): encoder depth varied at fixed width on noisy Fashion-MNIST at the strongest distractor (the
deepest runs are noisy-features' own when the depths include its depth: trained once).

Claim (the deep linear theory's depth effect tested on ViTs): MAE takes up more of the distractor than I-JEPA, and the
gap grows with depth. Controlled for learning: uptakes compared at matched probe gain at each depth.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, ClassVar

from jepalab.plotting import pyplot
from jepalab.rundir import save_figure
from jepalab.vision.experiments.noisy_features import noisy_runs
from jepalab.vision.experiments.registry import Experiment, register_experiment
from jepalab.vision.experiments.rules import (
    curve,
    first_segment,
    gate_rule,
    last_rows,
    matched,
    mean,
    passes,
    segment_reads,
)
from jepalab.vision.experiments.settings import ExperimentSettings
from jepalab.vision.methods import method_spec

__all__ = ["Depth"]


@register_experiment
class Depth(Experiment):
    """The MAE − I-JEPA distractor-uptake gap at each encoder depth."""

    name, claim_key = "depth", "R3"
    labels = ("method", "strength", "depth", "seed")
    report_claim: ClassVar[dict[str, str] | None] = {
        "statement": "MAE takes up more of the distractor than I-JEPA, and the gap grows with encoder depth.",
        "source": "beyond the paper",
        "provenance": "the theory's depth effect (claim 4) tested on ViTs; our protocol",
        "paper_says": "Deep linear theory only: JEPA's ρ-greediness grows with depth."}
    smallest_effects: ClassVar[dict[str, tuple[float, str]]] = {
        "gap_growth": (0.01, "R² 0.01 of the distractor amplitude, the same unit and size as noisy-features' uptake "
                             "test"),
        "gap_at_deepest": (0.01, "as noisy-features' uptake test (the same runs: not independent support)")}

    def tested_claim(self, settings: ExperimentSettings) -> str:
        jl, rl = (method_spec(m).label for m in settings.methods)
        shallow, deep = min(settings.depths), max(settings.depths)
        return (f"At matched probe gain {rl} takes up more of the distractor than {jl} in the {deep}-block encoder, "
                f"and this gap is larger with {deep} blocks than with {shallow}.")

    def test_definitions(self, settings: ExperimentSettings) -> dict[str, str]:
        jl, rl = (method_spec(m).label for m in settings.methods)
        return {"gap_growth": "gap(deepest) − gap(shallowest)",
                "gap_at_deepest": f"gap(deepest); gap = uptake*({rl}) − uptake*({jl}), uptake* = distractor R² − "
                                  "random-init R² at matched probe gain g* = the smaller final gain of the two methods "
                                  "at that depth"}

    def runs(self, settings: ExperimentSettings) -> list[tuple[dict[str, Any], Any]]:
        strongest = (max(settings.strengths),)
        return [run for depth in settings.depths for run in noisy_runs(settings, strongest, depth)]

    def statement(self, settings: ExperimentSettings) -> dict[str, str]:
        jl, rl = (method_spec(m).label for m in settings.methods)
        return {
            "claim": f"{rl} takes up more of the distractor than {jl} for the same amount learned, and the gap grows "
                     "with encoder depth (the theory: JEPA's ρ-bias grows with depth).",
            "rule": f"held = gap(deepest) − gap(shallowest) passes the shared test AND gap(deepest) passes it; gap = "
                    f"uptake*({rl}) − uptake*({jl}), uptake* = distractor R² − random-init R² at matched probe gain "
                    "g* = the smaller final gain of the two methods at that depth (per seed). Shared test: mean over "
                    "seeds > 0 and, with ≥ 3 seeds, > the std over seeds. " + gate_rule(settings.gate),
            "control": "At each depth the uptakes are read along each run's checkpoints at the probe gain both methods "
                       "reached, so a shallow encoder that learns less is not credited with taking up less. Raw "
                       "final-checkpoint gaps are reported beside them.",
        }

    def decide(self, rows: list[dict[str, Any]], settings: ExperimentSettings) -> dict[str, Any]:
        jepa, recon = settings.methods
        hi = max(settings.strengths)
        shallow, deep = min(settings.depths), max(settings.depths)
        last = {(r["method"], r["depth"], r["seed"]): r for r in last_rows(rows) if r["strength"] == hi}
        gap: dict[int, list[float]] = {}
        raw: dict[int, list[float]] = {}
        reads = []
        for depth in settings.depths:
            gap[depth], raw[depth] = [], []
            for seed in settings.seeds:
                curves = (curve(rows, method=jepa, strength=hi, depth=depth, seed=seed),
                          curve(rows, method=recon, strength=hi, depth=depth, seed=seed))
                g, u_jepa, u_recon = matched(*curves, "distractor_uptake")
                reads.append(any(first_segment(c, g) for c in curves))
                gap[depth].append(u_recon - u_jepa)
                raw[depth].append(float(last[(recon, depth, seed)]["distractor_uptake"])
                                  - float(last[(jepa, depth, seed)]["distractor_uptake"]))
        effects = {"gap_growth": [d - s for s, d in zip(gap[shallow], gap[deep])], "gap_at_deepest": gap[deep]}
        (grows, why_grows), (positive, why_gap) = (passes(v, k) for k, v in effects.items())
        return {"measured": {"raw": {"gap": {str(d): mean(v) for d, v in raw.items()}},
                             "controlled": {"gap_at_matched_gain": {str(d): mean(v) for d, v in gap.items()}},
                             **segment_reads(settings, reads)},
                "effects": effects, "checks": {"gap_growth": why_grows, "gap_at_deepest": why_gap},
                "held": grows and positive}

    def plot(self, rows: list[dict[str, Any]], settings: ExperimentSettings, out: Path) -> None:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 3.8))
        final = last_rows(rows)
        depths = sorted(settings.depths)
        for method in settings.methods:
            ax.plot(depths, [statistics.mean(float(r["distractor_uptake"]) for r in final
                                             if r["method"] == method and r["depth"] == d) for d in depths],
                    "o-", label=method_spec(method).label)
        ax.set(xlabel="encoder depth (blocks)", ylabel="distractor R² − random-init R² (last checkpoint)",
               title=f"Distractor uptake versus depth (strength {max(settings.strengths):g})")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        save_figure(fig, out / "depth", formats=("png",), dpi=90)
        plt.close(fig)
