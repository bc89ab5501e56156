"""Optional report part for EC-IJEPA (**our reading** of Littwin, Thilak & Gopalakrishnan, arXiv 2410.10773): the
``jepalab experiment context-size`` verdict, shown only when such a folder is passed with ``--reuse``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from jepalab.report.claims import ClaimSpec, Finding, Part, PartContext, PartOutput, verdict
from jepalab.report.parts_images import experiment_summaries

EXPERIMENT = "context-size"
EC_CLAIMS = (
    ClaimSpec("E1", "Spatial conditioning (EC-IJEPA, our reading) keeps the label probe steady across context-block "
                    "sizes where I-JEPA's varies more, and collapses in no run where I-JEPA does.",
              "beyond the paper",
              "beyond the paper (EC-IJEPA, our reading): Littwin, Thilak & Gopalakrishnan 2024, arXiv 2410.10773, "
              "abstract and introduction only; jepalab's conditioning and protocol (docs/ecijepa.md)",
              "The abstract says conditioning improves robustness to the context window's size and that I-JEPA "
              "relies on carefully designed windows to avoid collapse; recipe and numbers not recovered."),
)


def find_context_size(paths: tuple[Path, ...]) -> tuple[Path, dict[str, Any]] | None:
    """(folder, summary) of the first context-size experiment among ``paths`` or their sub-folders, or None."""
    return next(((folder, data) for folder, data in experiment_summaries(paths)
                 if data.get("experiment") == EXPERIMENT), None)


def run_ecijepa(ctx: PartContext) -> PartOutput:
    """Finding E1 from the reused context-size folder (copied into the report)."""
    found = find_context_size(ctx.reuse)
    if found is None:
        raise FileNotFoundError(f"no `jepalab experiment {EXPERIMENT}` folder among the --reuse runs")
    folder, summary = found
    copy = ctx.out_dir / EXPERIMENT
    copy.mkdir(parents=True, exist_ok=True)
    for item in [*folder.glob("*.png"), *folder.glob("*.json"), *folder.glob("*.csv")]:
        shutil.copy2(item, copy / item.name)
    checks = "; ".join(f"{k}: {v}" for k, v in summary["checks"].items())
    figure = next(iter(sorted(copy.glob("*.png"))), None)
    output = PartOutput(config={"reused": str(folder), "mode": summary["mode"]},
                        notes=[f"{EXPERIMENT}: reused from {folder}; EC-IJEPA encoders evaluated unconditioned",
                               "beyond the paper (EC-IJEPA, our reading): only the paper's abstract and "
                               "introduction were recovered"])
    output.findings.append(Finding(
        "E1", f"{summary['mode']} mode, {summary['seeds']} seed(s): {checks}", verdict(summary["held"]),
        reason=summary["rule"], figure=None if figure is None else ctx.relative(figure),
        config=ctx.relative(copy / "settings.json"), numbers=summary["measured"]))
    if figure is not None:
        output.figures.append((ctx.relative(figure), f"{EXPERIMENT}: {summary['claim']}"))
    return output


EC_PARTS = (
    Part("ecijepa", "Beyond the paper: EC-IJEPA (our reading) and the context-block size", EC_CLAIMS, run_ecijepa,
         estimate_s={"quick": 1.0, "full": 1.0}, modes=(), uses_reuse=True,
         shown=lambda reuse: find_context_size(reuse) is not None),
)
