"""Report part for the real-image experiments: run at GPU scale in ``--full``, or read from experiment folders
passed with ``--reuse`` (any ``jepalab experiment`` output, quick or full)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from jepalab.report.claims import ClaimSpec, Finding, Part, PartContext, PartOutput, verdict

IMAGE_CLAIMS = (
    ClaimSpec("R1", "On Fashion-MNIST with an injected noisy feature (large λ, small ρ), MAE's representation takes up "
                    "the distractor and loses label accuracy as its strength grows; I-JEPA's does so far less.",
              "beyond the paper",
              "the paper's thesis tested on real images (Littwin et al. 2024, abstract and discussion); our protocol "
              "(docs/experiments.md)",
              "The paper shows this for deep linear models only; no real-image distractor experiment."),
    ClaimSpec("R2", "I-JEPA's features depend more on the low-variance (bottom) pixel subspace than MAE's.",
              "beyond the paper", "Littwin et al. 2024 (real-data comparison, numbers not "
                                  "recovered); Balestriero & LeCun 2024; our protocol (docs/experiments.md)",
              "Reported for ImageNet ViTs as mean CCA over training [unverified]; no number recovered."),
    ClaimSpec("R3", "MAE takes up more of the distractor than I-JEPA, and the gap grows with encoder depth.",
              "beyond the paper", "the theory's depth effect (claim 4) tested on ViTs; our protocol",
              "Deep linear theory only: JEPA's ρ-greediness grows with depth."),
)
EXPERIMENT_OF = {"R1": "noisy-features", "R2": "variance-subspaces", "R3": "depth"}


def experiment_summaries(paths: tuple[Path, ...]) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, summary) of every experiment folder among ``paths`` (each a folder holding summary.json, or a parent
    of such folders), in the order given."""
    found = []
    for path in paths:
        for summary in [path / "summary.json", *sorted(path.glob("*/summary.json"))]:
            if summary.is_file():
                found.append((summary.parent, json.loads(summary.read_text())))
    return found


def _find_summaries(paths: tuple[Path, ...]) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The R1–R3 experiments among ``paths``, by name (the last folder of a name wins)."""
    return {data["experiment"]: (folder, data) for folder, data in experiment_summaries(paths)
            if data.get("experiment") in EXPERIMENT_OF.values()}


def _measured(summary: dict[str, Any]) -> str:
    checks = "; ".join(f"{k}: {v}" for k, v in summary["checks"].items())
    return f"{summary['mode']} mode, {summary['seeds']} seed(s): {checks}"


def run_images(ctx: PartContext) -> PartOutput:
    """Findings R1–R3 from reused experiment folders; in full mode the missing experiments are run here."""
    summaries = _find_summaries(ctx.reuse)
    if ctx.mode == "full":
        from jepalab.vision.experiments import ExperimentSettings, run_experiment

        for name in EXPERIMENT_OF.values():
            if name not in summaries:
                folder = ctx.out_dir / name
                summaries[name] = (folder, run_experiment(name, folder, ExperimentSettings.full()))
    output = PartOutput(config={"reused": [str(p) for p in ctx.reuse], "mode": ctx.mode})
    for claim in IMAGE_CLAIMS:
        name = EXPERIMENT_OF[claim.key]
        if name not in summaries:
            output.findings.append(Finding(claim.key, "-", "not tested here",
                                           reason=f"no `jepalab experiment {name}` folder among the --reuse runs"))
            continue
        folder, summary = summaries[name]
        if not folder.resolve().is_relative_to(ctx.report_dir.resolve()):  # reused: copy what the report links to
            copy = ctx.out_dir / name
            copy.mkdir(parents=True, exist_ok=True)
            for item in [*folder.glob("*.png"), *folder.glob("*.json"), *folder.glob("*.csv")]:
                shutil.copy2(item, copy / item.name)
            output.notes.append(f"{name}: reused from {folder}")
            folder = copy
        figure = next(iter(sorted(folder.glob("*.png"))), None)
        output.findings.append(Finding(
            claim.key, _measured(summary), verdict(summary["held"]), reason=summary["rule"],
            figure=None if figure is None else ctx.relative(figure), config=ctx.relative(folder / "settings.json"),
            numbers=summary["measured"]))
        if figure is not None:
            output.figures.append((ctx.relative(figure), f"{name}: {summary['claim']}"))
    return output


IMAGE_PARTS = (
    Part("images", "Real images: I-JEPA vs MAE ViTs on (noisy) Fashion-MNIST", IMAGE_CLAIMS, run_images,
         estimate_s={"quick": 5.0, "full": 4 * 3600.0}, modes=("full",), uses_reuse=True),
)
