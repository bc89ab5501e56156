"""Optional report part for EC-IJEPA (**our reading** of Littwin, Thilak & Gopalakrishnan, arXiv 2410.10773): the
``jepalab experiment context-size`` verdict, shown when such a folder is passed with ``--reuse`` or committed in
``results/context-size``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jepalab.report.claims import ClaimSpec, Part, PartContext, PartOutput
from jepalab.report.parts_images import experiment_summaries, find_experiment, finding_of

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


def find_context_size(reuse: tuple[Path, ...], results: Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """(folder, summary) of the last context-size experiment among ``reuse`` or their sub-folders, else
    ``results/context-size`` if it holds a summary (not yet verified), or None."""
    reused = [(f, s) for f, s in experiment_summaries(reuse) if s.get("experiment") == EXPERIMENT]
    if reused:
        return reused[-1]
    folder = results / EXPERIMENT if results is not None else None
    return (folder, {}) if folder is not None and (folder / "summary.json").is_file() else None


def run_ecijepa(ctx: PartContext) -> PartOutput:
    """Finding E1 from the context-size folder (reused, or results/ verified against its results.csv)."""
    found = find_experiment(EXPERIMENT, ctx)
    if found is None:
        raise FileNotFoundError(f"no `jepalab experiment {EXPERIMENT}` folder among --reuse or in results/")
    output = PartOutput(config={"folder": str(found[0])},
                        notes=["EC-IJEPA encoders evaluated unconditioned",
                               "beyond the paper (EC-IJEPA, our reading): only the paper's abstract and "
                               "introduction were recovered"])
    output.findings.append(finding_of("E1", EXPERIMENT, *found, ctx, output))
    return output


EC_PARTS = (
    Part("ecijepa", "Beyond the paper: EC-IJEPA (our reading) and the context-block size", EC_CLAIMS, run_ecijepa,
         estimate_s={"quick": 1.0, "full": 1.0}, uses_reuse=True,
         shown=lambda reuse, results: find_context_size(reuse, results) is not None),
)
