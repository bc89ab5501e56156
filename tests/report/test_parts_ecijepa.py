"""The optional EC-IJEPA report part (our reading): shown only when a context-size folder is reused."""

from __future__ import annotations

import json
from pathlib import Path

from jepalab.report.claims import PartContext
from jepalab.report.parts_ecijepa import EC_PARTS, run_ecijepa
from jepalab.report.reproduce import reproduce


def _context_size_folder(root: Path, held: bool) -> Path:
    folder = root / "ctx"
    folder.mkdir(parents=True)
    summary = {"experiment": "context-size", "mode": "quick", "seeds": 1, "held": held, "rule": "range ≤ 3 points",
               "checks": {"probe_range": "EC-IJEPA 1.00 points ≤ 3"}, "measured": {"threshold_points": 3.0},
               "claim": "c"}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "settings.json").write_text("{}")
    (folder / "context_size.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


def test_part_reads_a_reused_context_size_folder(tmp_path: Path) -> None:
    folder = _context_size_folder(tmp_path, held=False)
    report = tmp_path / "report"
    output = run_ecijepa(PartContext(report / "parts" / "ecijepa", report, "quick", (tmp_path,), 0))
    (finding,) = output.findings
    assert (finding.key, finding.verdict) == ("E1", "does not hold")
    assert finding.figure == "parts/ecijepa/context-size/context_size.png" and (report / finding.figure).is_file()
    assert "EC-IJEPA, our reading" in EC_PARTS[0].claims[0].provenance and any(str(folder) in n for n in output.notes)


def test_part_is_shown_only_with_a_context_size_folder(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "summary.json").write_text(json.dumps({"experiment": "depth"}))
    without = reproduce(tmp_path / "r1", mode="quick", reuse=[other], progress=False, only=["images"], results=None)
    assert all(c["key"] != "E1" for c in without["claims"])
    folder = _context_size_folder(tmp_path, held=True)
    shown = reproduce(tmp_path / "r2", mode="quick", reuse=[folder], progress=False, only=["ecijepa"], results=None)
    (claim,) = [c for c in shown["claims"] if c["key"] == "E1"]
    assert claim["verdict"] == "holds"
