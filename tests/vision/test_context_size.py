"""``jepalab experiment context-size`` (EC-IJEPA, our reading): a real toy-size run writes the summary, and the
verdict follows the rule fixed before running."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from jepalab.vision import experiments
from jepalab.vision.context_size import CLAIM, PROBE_RANGE_POINTS, decide
from jepalab.vision.evaluation import EvalSettings
from jepalab.vision.experiments import ExperimentSettings, run_experiment


def _rows_of(out: Path) -> list[dict[str, Any]]:
    """The per-run rows of results.csv, typed as :func:`decide` reads them."""
    with (out / "results.csv").open() as handle:
        return [{**r, "seed": int(r["seed"]), "probe": float(r["probe"]), "knn20": float(r["knn20"]),
                 "rankme": float(r["rankme"]), "collapsed": r["collapsed"] == "True"} for r in csv.DictReader(handle)]


def test_toy_run_writes_every_summary_field(tiny_fmnist: Path, tmp_path: Path) -> None:
    settings = ExperimentSettings(dim=32, depth=1, epochs=1, train_images=128, global_batch=32, snapshots=2,
                                  data_root=str(tiny_fmnist), device="cpu", context_scales=((0.4, 0.4), (0.85, 1.0)),
                                  eval=EvalSettings(train_images=64, test_images=32, probe="ridge", lidar_images=8,
                                                    lidar_views=2, readouts=()))
    summary = run_experiment("context-size", tmp_path, settings, say=lambda _: None)
    assert summary["experiment"] == "context-size" and summary["claim"] == CLAIM
    assert {"rule", "measured", "checks", "held", "seeds", "scales"} <= set(summary)
    assert set(summary["measured"]["probe"]) == {"ijepa", "ecijepa"}
    assert set(summary["measured"]["probe"]["ecijepa"]) == {"0.4-0.4", "0.85-1"}
    assert set(summary["checks"]) == {"probe_range", "steadier_than_ijepa", "collapse"}
    assert (tmp_path / "results.csv").read_text().count("\n") == 1 + 4
    assert (tmp_path / "rankme_curves.csv").is_file() and (tmp_path / "context_size.png").is_file()
    assert summary["held"] is decide(_rows_of(tmp_path), 1)["held"]


def _rows(probes: dict[str, tuple[float, ...]], collapsed: dict[str, tuple[bool, ...]]) -> list[dict[str, Any]]:
    scales = ("0.4-0.4", "0.6-0.6", "0.85-1")
    return [{"method": m, "scale": s, "seed": 0, "probe": p, "knn20": p, "rankme": 10.0, "collapsed": c}
            for m in probes for s, p, c in zip(scales, probes[m], collapsed[m])]


STEADY = {"ijepa": (0.60, 0.70, 0.75), "ecijepa": (0.72, 0.74, 0.73)}
NONE = {"ijepa": (False,) * 3, "ecijepa": (False,) * 3}


@pytest.mark.parametrize(("probes", "collapsed", "held", "failing"), [
    (STEADY, NONE, True, None),
    ({"ijepa": (0.60, 0.70, 0.75), "ecijepa": (0.60, 0.70, 0.74)}, NONE, False, "probe_range"),  # EC varies 14 pts
    ({"ijepa": (0.72, 0.73, 0.72), "ecijepa": (0.71, 0.73, 0.73)}, NONE, False, "steadier_than_ijepa"),
    (STEADY, {"ijepa": (True, False, False), "ecijepa": (True, False, False)}, False, "collapse"),
])
def test_the_verdict_follows_the_numbers(probes: dict[str, tuple[float, ...]], collapsed: dict[str, tuple[bool, ...]],
                                         held: bool, failing: str | None) -> None:
    result = decide(_rows(probes, collapsed), seeds=1)
    assert result["held"] is held
    assert result["measured"]["threshold_points"] == PROBE_RANGE_POINTS
    assert result["measured"]["probe_range_points"]["ecijepa"] == pytest.approx(
        100 * (max(probes["ecijepa"]) - min(probes["ecijepa"])))
    assert "indicative only" in result["checks"]["probe_range"]
    if failing == "collapse":
        assert "EC-IJEPA in 1 of them" in result["checks"]["collapse"]
    elif not any(collapsed["ijepa"]):
        assert "vacuously true" in result["checks"]["collapse"]


def test_a_failing_claim_is_reported_by_the_experiment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fed results where EC-IJEPA's probe swings 10 points, the experiment says the claim does not hold."""

    def fake(cfg: Any, run: Path, settings: ExperimentSettings) -> dict[str, Any]:
        (run / "metrics.jsonl").parent.mkdir(parents=True, exist_ok=True)
        (run / "metrics.jsonl").write_text('{"kind": "diag", "step": 1, "target.rankme_centred": 3.0}\n')
        probe = 0.6 + 0.1 * cfg.mask.context_scale[0]  # both methods track the context size
        metrics = {"step": 1, "probe": probe, "knn20": probe, "rankme": 3.0, "collapsed": False}
        return {"checkpoints": [metrics], "baselines": {"random": {"probe": 0.1}}}

    monkeypatch.setattr(experiments, "_train_and_eval", fake)
    settings = ExperimentSettings(context_scales=((0.4, 0.4), (0.85, 1.0)))
    summary = run_experiment("context-size", tmp_path, settings, say=lambda _: None)
    assert summary["held"] is False and "4.50 points > 3" in summary["checks"]["probe_range"]
