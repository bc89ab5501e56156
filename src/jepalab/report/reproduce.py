"""``jepalab reproduce``: run every part, collect the claims, and write report.html, report.md and claims.json.

Each part runs in its own folder ``DIR/parts/<name>/`` and leaves ``status.json`` there; ``--resume`` reuses a
part whose status is "ok" for the same mode and reused runs. A part that raises is recorded as failed with its
error and traceback; the others still run, and its claims are reported as "not tested here".
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jepalab.progress import progress_bar
from jepalab.report.claims import GROUPS, Part, PartContext, PartOutput, registered_parts
from jepalab.report.render import render_html, render_markdown
from jepalab.rundir import command_line, environment, to_jsonable, write_json

MODES = ("quick", "full")


def all_parts() -> tuple[Part, ...]:
    """Every registered report part, in report order (a part with ``shown`` appears only when it says so)."""
    return registered_parts()


@dataclass
class PartRecord:
    """The outcome of one part: status "ok", "failed" or "skipped", with its output or its error."""

    name: str
    title: str
    status: str
    mode: str
    reuse: list[str]
    wall_time_s: float
    output: PartOutput
    error: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "status": self.status, "mode": self.mode, "reuse": self.reuse,
                "wall_time_s": self.wall_time_s, "output": self.output.to_dict(), "error": self.error,
                "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartRecord:
        return cls(**{**data, "output": PartOutput.from_dict(data["output"])})


def _load_finished(path: Path, mode: str, reuse: list[str]) -> PartRecord | None:
    """A finished part record from an earlier run, if it matches the mode and reused runs."""
    if not path.is_file():
        return None
    try:
        record = PartRecord.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError):
        return None
    return record if record.status == "ok" and record.mode == mode and record.reuse == reuse else None


def _run_part(part: Part, ctx: PartContext, reuse: list[str]) -> PartRecord:
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        output = PartOutput.from_dict(json.loads(json.dumps(to_jsonable(part.run(ctx).to_dict()))))
        status, error = "ok", ""
    except Exception as exc:  # a failed part must not lose the rest of the report
        output = PartOutput()
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        (ctx.out_dir / "traceback.txt").write_text(traceback.format_exc())
    return PartRecord(part.name, part.title, status, ctx.mode, reuse, time.perf_counter() - started, output, error)


def claim_rows(parts: Sequence[Part], records: dict[str, PartRecord]) -> list[dict[str, Any]]:
    """One row per declared claim: the finding of its part, or 'not tested here' with the reason."""
    rows = []
    for part in parts:
        record = records[part.name]
        findings = {f.key: f for f in record.output.findings}
        for claim in part.claims:
            row = {"key": claim.key, "statement": claim.statement, "source": claim.source,
                   "provenance": claim.provenance, "paper_says": claim.paper_says, "part": part.name,
                   "group": GROUPS.get(part.group, part.title)}
            finding = findings.get(claim.key)
            if record.status == "ok" and finding is not None:
                row |= {"measured": finding.measured, "verdict": finding.verdict, "headline": finding.headline,
                        "reason": finding.reason, "details": finding.details, "figure": finding.figure,
                        "config": finding.config, "numbers": finding.numbers}
                if finding.tested:
                    row |= {"statement": finding.tested, "general_statement": claim.statement}
            else:
                why = (record.reason if record.status == "skipped" else
                       f"part '{part.name}' failed: {record.error}" if record.status == "failed" else
                       "the part did not report this claim")
                row |= {"measured": "—", "verdict": "not tested here", "headline": why, "reason": "", "details": [],
                        "figure": None, "config": None, "numbers": {}}
            rows.append(row)
    return rows


def reproduce(
    out_dir: str | Path,
    mode: str = "quick",
    reuse: Sequence[str | Path] = (),
    resume: bool = False,
    seed: int = 0,
    only: Sequence[str] | None = None,
    progress: bool = True,
    results: str | Path | None = "results",
) -> dict[str, Any]:
    """Run the parts for ``mode`` and write the report files into ``out_dir``; returns the report dict. ``results``:
    the folder of committed experiment results the real-image parts read (None: none)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    reuse_paths = tuple(Path(r) for r in reuse)
    for path in reuse_paths:
        if not path.is_dir():
            raise FileNotFoundError(f"--reuse {path}: not a run directory")
    results_dir = Path(results) if results is not None and Path(results).is_dir() else None
    parts = tuple(p for p in all_parts() if p.shown is None or p.shown(reuse_paths, results_dir))
    if only:
        unknown = sorted(set(only) - {p.name for p in parts})
        if unknown:
            raise ValueError(f"unknown part(s) {unknown}; parts: {[p.name for p in parts]}")
        parts = tuple(p for p in parts if p.name in only)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reuse_list = [str(p.resolve()) for p in reuse_paths]
    started = time.perf_counter()
    records: dict[str, PartRecord] = {}
    todo = [p for p in parts if p.runs_in(mode, reuse_paths)]
    bar = progress_bar(total=sum(p.estimate_s.get(mode, 1.0) for p in todo), unit="s", disable=not progress,
                       bar_format="{desc:<48} {percentage:3.0f}%|{bar}| ETA {remaining}", plain_interval=0.0)
    for part in parts:
        status_path = out_dir / "parts" / part.name / "status.json"
        if not part.runs_in(mode, reuse_paths):
            records[part.name] = PartRecord(part.name, part.title, "skipped", mode, reuse_list, 0.0, PartOutput(),
                                            reason="runs with --full, or on runs passed with --reuse RUN")
            continue
        bar.set_description_str(part.title[:48])
        record = _load_finished(status_path, mode, reuse_list) if resume else None
        if record is None:
            ctx = PartContext(out_dir / "parts" / part.name, out_dir, mode, reuse_paths, seed, results_dir)
            record = _run_part(part, ctx, reuse_list)
            write_json(status_path, record.to_dict())
        records[part.name] = record
        bar.update(part.estimate_s.get(mode, 1.0))
    bar.close()
    rows = claim_rows(parts, records)
    env = environment() | {"device": _device(), "seed": seed, "mode": mode, "reuse": reuse_list,
                           "results": None if results_dir is None else str(results_dir.resolve()),
                           "command": command_line(), "wall_time_s": time.perf_counter() - started,
                           "part_wall_time_s": {n: r.wall_time_s for n, r in records.items()}}
    report = {"title": "jepalab: How JEPA Avoids Noisy Features (Littwin et al., NeurIPS 2024), re-derived",
              "mode": mode, "claims": rows, "parts": [records[p.name].to_dict() for p in parts], "environment": env}
    write_json(out_dir / "claims.json", {"mode": mode, "claims": rows})
    write_json(out_dir / "environment.json", env)
    (out_dir / "report.md").write_text(render_markdown(report))
    (out_dir / "report.html").write_text(render_html(report, out_dir))
    return report


def _device() -> str:
    try:
        import torch
    except ImportError:
        return "cpu (torch not installed)"
    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu ({torch.get_num_threads()} threads)"
