"""The deep-linear report parts: verdicts come from the simulator's measured numbers."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from jepalab.linear.validate import ValidationParams
from jepalab.report import parts_linear
from jepalab.report.claims import PartContext


def _ctx(tmp_path: Path, name: str) -> PartContext:
    return PartContext(tmp_path / "parts" / name, tmp_path, "quick", (), 0)


def test_validation_part_on_a_reduced_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reduced = functools.partial(ValidationParams, depths=(1, 3), methods=("flow",))
    monkeypatch.setattr(parts_linear, "ValidationParams", reduced)
    output = parts_linear.run_validation(_ctx(tmp_path, "linear-validation"))
    findings = {f.key: f for f in output.findings}
    assert findings["L1"].verdict == "holds"
    assert findings["L2"].verdict == "holds"  # theory: L=1 no flip, L=3 JEPA 4321 vs MAE 1234
    assert findings["L2"].numbers == {"flips": {1: False, 3: True}, "predicted": {1: False, 3: True}}
    assert (tmp_path / findings["L1"].figure).is_file()


def test_validation_part_reports_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    impossible = functools.partial(ValidationParams, depths=(1,), methods=("flow",), tolerance=1e-12)
    monkeypatch.setattr(parts_linear, "ValidationParams", impossible)
    output = parts_linear.run_validation(_ctx(tmp_path, "linear-validation"))
    l1 = next(f for f in output.findings if f.key == "L1")
    assert l1.verdict == "does not hold" and "failed: jepa L=1 flow" in l1.reason
