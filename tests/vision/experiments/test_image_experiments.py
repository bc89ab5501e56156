"""Real-image experiments: the configs are fair between methods, each rule follows its numbers, the registry and
the CLI know every experiment, and a toy-size real run (two jobs) writes a results folder that verifies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_runs import default_formula, install
from pretrain_helpers import ARCHITECTURE, docs_example

from jepalab.vision.experiments import ExperimentSettings, available_experiments, pretrain_config, run_experiment
from jepalab.vision.experiments.context_size import CLAIM, PROBE_RANGE_POINTS, decide
from jepalab.vision.experiments.results import verify
from jepalab.vision.readout.evaluation import EvalSettings

SEEDS = (0, 1, 2)


def test_both_methods_get_the_same_encoder_budget_and_views() -> None:
    settings = ExperimentSettings.for_mode("standard")
    ijepa = pretrain_config("ijepa", "noisy-fashion-mnist", {"strength": 0.1}, settings, seed=1)
    mae = pretrain_config("mae", "noisy-fashion-mnist", {"strength": 0.1}, settings, seed=1)
    assert ijepa.model == mae.model and ijepa.data == mae.data
    assert (ijepa.optim.epochs, ijepa.optim.global_batch) == (mae.optim.epochs, mae.optim.global_batch) == (4, 128)
    assert ijepa.model.resolved().depth == 6 and ijepa.data.crop_scale == (0.3, 1.0) and not ijepa.data.hflip
    assert ijepa.data.limit == 60000 and ijepa.train.snapshot_every == 1872 // 6
    compiled = pretrain_config("mae", "fashion-mnist", {}, ExperimentSettings(compile=True,
                                                                              compile_mode="reduce-overhead"), seed=0)
    assert compiled.train.compile and compiled.train.compile_mode == "reduce-overhead"


def test_run_configs_start_from_the_method_recipe() -> None:
    """Each run's config is its method's small-image recipe with the experiment's settings on top."""
    from jepalab.vision.methods import method_spec

    settings = ExperimentSettings(dim=64, depth=2)
    for name in settings.methods:
        cfg = pretrain_config(name, "fashion-mnist", {}, settings, seed=0)
        section, values = next((k, v) for k, v in method_spec(name).small_image_recipe.items()
                               if k not in ("data", "model", "optim", "train"))
        assert {key: getattr(cfg.sections[section], key) for key in values} == {
            key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
        assert (cfg.model.resolved().dim, cfg.model.resolved().depth, cfg.data.hflip) == (64, 2, False)


def test_experiments_are_registered_and_the_cli_takes_their_names(capsys: pytest.CaptureFixture[str]) -> None:
    from jepalab.cli import main

    assert set(available_experiments()) == {"noisy-features", "variance-subspaces", "depth", "context-size",
                                            "learning-order"}
    assert main(["experiment", "colour", "--out", "/nonexistent/never"]) == 2
    assert "experiment must be one of [" in capsys.readouterr().err


def _noisy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mae_rise: float, mae_uptake: float) -> dict[str, Any]:
    def formula(cfg: Any, progress: float) -> dict[str, float]:
        values = default_formula(cfg, progress)
        if cfg.method == "mae" and cfg.data.options.get("strength"):
            values["probe"] = 0.6 + mae_rise * progress + 0.002 * cfg.seed
            values["distractor_r2"] = 0.3 + mae_uptake * progress
        return values

    install(monkeypatch, formula)
    settings = ExperimentSettings(seeds=SEEDS, strengths=(0.0, 0.1))
    return run_experiment("noisy-features", tmp_path, settings, say=lambda _: None)


def test_noisy_features_compares_uptake_at_matched_gain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the distractor MAE gains 6 probe points (+0.2 per seed) and takes up 0.12 of distractor R², I-JEPA gains
    9 and takes up 0.05: at the matched gain (MAE's) I-JEPA has taken up 0.05 · 6/9 of it."""
    summary = _noisy(tmp_path, monkeypatch, mae_rise=0.06, mae_uptake=0.12)
    controlled = summary["measured"]["controlled"]
    assert controlled["matched_gain_points"] == pytest.approx(6.2)
    assert controlled["uptake_at_matched_gain"]["mae"] == pytest.approx(0.12)
    assert controlled["uptake_at_matched_gain"]["ijepa"] == pytest.approx(0.05 * 6 / 9)  # the seed offset cancels
    assert controlled["retained_share"]["mae"] == pytest.approx(sum((6 + 0.2 * s) / (10 + 0.2 * s) for s in SEEDS) / 3)
    assert summary["verdict"] == "holds" and verify(tmp_path)["verdict"] == "holds"


def test_an_encoder_that_learns_less_is_not_credited_with_less_uptake(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """MAE takes up less in total (0.03 vs 0.05) only because it learned less: per probe point it takes up more
    (0.03 / 2 points vs 0.05 / 9), so the controlled rule still favours I-JEPA; and with MAE at 2 points the claim is
    not decided at all."""
    summary = _noisy(tmp_path, monkeypatch, mae_rise=0.02, mae_uptake=0.03)
    raw = summary["measured"]["raw"]["distractor_uptake_at_strongest"]
    assert raw["mae"] < raw["ijepa"]
    assert summary["measured"]["controlled"]["uptake_at_matched_gain"]["mae"] > \
        summary["measured"]["controlled"]["uptake_at_matched_gain"]["ijepa"]
    assert summary["verdict"] == "not tested here" and "mae gained +2.0" in summary["reason"]


@pytest.mark.parametrize("statistics", ["spread", "interval"])
def test_runs_without_the_subspace_read_out_leave_variance_subspaces_untested(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, statistics: str) -> None:
    """MAE's eval.json carry no top/bottom read-out (``subspace: clean`` on images it took for noisy): the claim is
    not tested here, saying why, and the figure draws the runs that have it."""
    def formula(cfg: Any, progress: float) -> dict[str, float]:
        values = default_formula(cfg, progress)
        subspace = ("cca_delta", "top_probe", "bottom_probe", "cca_top", "cca_bottom")
        return {k: v for k, v in values.items() if cfg.method == "ijepa" or k not in subspace}

    install(monkeypatch, formula)
    settings = ExperimentSettings(seeds=SEEDS, statistics=statistics)
    summary = run_experiment("variance-subspaces", tmp_path, settings, say=lambda _: None)
    assert summary["verdict"] == "not tested here"
    assert "3 of 6 runs carry no top/bottom subspace read-out" in summary["reason"]
    assert (tmp_path / "variance_subspaces.png").is_file() and verify(tmp_path)["verdict"] == "not tested here"
    install(monkeypatch)
    decided = run_experiment("variance-subspaces", tmp_path / "measured", settings, say=lambda _: None)
    assert decided["verdict"] != "not tested here" and not decided["reason"]


@pytest.mark.parametrize(("mae_deep_uptake", "verdict"), [(0.4, "holds"), (0.04, "does not hold")])
def test_depth_needs_a_growing_positive_gap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mae_deep_uptake: float,
                                            verdict: str) -> None:
    def formula(cfg: Any, progress: float) -> dict[str, float]:
        values = default_formula(cfg, progress)
        if cfg.method == "mae":
            uptake = 0.1 if cfg.model.depth == 1 else mae_deep_uptake
            values["distractor_r2"] = 0.3 + uptake * progress + 0.001 * cfg.seed
        return values

    install(monkeypatch, formula)
    summary = run_experiment("depth", tmp_path, ExperimentSettings(seeds=SEEDS, depths=(1, 4)), say=lambda _: None)
    assert summary["verdict"] == verdict
    gaps = summary["measured"]["controlled"]["gap_at_matched_gain"]
    assert gaps["4"] - gaps["1"] == pytest.approx(mae_deep_uptake - 0.1, abs=1e-3)


def _context_rows(probes: dict[str, tuple[float, ...]], collapsed: dict[str, tuple[bool, ...]]) -> list[dict]:
    scales = ("0.4-0.4", "0.6-0.6", "0.85-1")
    return [{"run": f"{m}{s}", "step": 1, "method": m, "scale": s, "seed": 0, "probe": p, "knn20": p, "rankme": 10.0,
             "collapsed": c} for m in probes for s, p, c in zip(scales, probes[m], collapsed[m])]


STEADY = {"ijepa": (0.60, 0.70, 0.75), "ecijepa": (0.72, 0.74, 0.73)}
NONE = {"ijepa": (False,) * 3, "ecijepa": (False,) * 3}


@pytest.mark.parametrize(("probes", "collapsed", "held", "failing"), [
    (STEADY, NONE, True, None),
    ({"ijepa": (0.60, 0.70, 0.75), "ecijepa": (0.60, 0.70, 0.74)}, NONE, False, "probe_range"),  # EC varies 14 pts
    ({"ijepa": (0.72, 0.73, 0.72), "ecijepa": (0.71, 0.73, 0.73)}, NONE, False, "steadier_than_ijepa"),
    (STEADY, {"ijepa": (True, False, False), "ecijepa": (True, False, False)}, False, "collapse"),
])
def test_context_size_verdict_follows_the_numbers(probes: dict[str, tuple[float, ...]],
                                                  collapsed: dict[str, tuple[bool, ...]], held: bool,
                                                  failing: str | None) -> None:
    result = decide(_context_rows(probes, collapsed), seeds=1)
    assert result["held"] is held
    assert result["measured"]["threshold_points"] == PROBE_RANGE_POINTS
    assert result["measured"]["probe_range_points"]["ecijepa"] == pytest.approx(
        100 * (max(probes["ecijepa"]) - min(probes["ecijepa"])))
    assert "indicative only" in result["checks"]["probe_range"]
    if failing == "collapse":
        assert "EC-IJEPA in 1 of them" in result["checks"]["collapse"]
    elif not any(collapsed["ijepa"]):
        assert "vacuously true" in result["checks"]["collapse"]


def test_toy_runs_in_two_jobs_write_a_results_folder_that_verifies(tiny_fmnist: Path, tmp_path: Path) -> None:
    """Real training and evaluation at toy size: every run once in its own process, the context-size claim and its
    numbers written, the verdict recomputable; a rerun trains nothing."""
    settings = ExperimentSettings(dim=32, depth=1, epochs=1, train_images=128, global_batch=64, snapshots=2,
                                  evaluate="all", data_root=str(tiny_fmnist), jobs=2, device="cpu",
                                  context_scales=((0.4, 0.4), (0.85, 1.0)),
                                  eval=EvalSettings(train_images=64, test_images=32, probe="ridge", lidar_images=8,
                                                    lidar_views=2, readouts=()))
    summary = run_experiment("context-size", tmp_path, settings, say=lambda _: None)
    assert summary["claim"] == CLAIM and set(summary["measured"]["probe"]) == {"ijepa", "ecijepa"}
    assert summary["verdict"] in ("holds", "does not hold", "not tested here")
    assert verify(tmp_path)["verdict"] == summary["verdict"]
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["sessions"][0]["images_trained"] == 4 * 2 * 64 and provenance["device"]["kind"] == "cpu"
    assert (tmp_path / "results.csv").read_text().count("\n") == 1 + 4 * 2  # 4 runs × 2 checkpoints
    evaluated = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/eval.json")}
    run_experiment("context-size", tmp_path, settings, say=lambda _: None)
    assert json.loads((tmp_path / "provenance.json").read_text())["sessions"] == provenance["sessions"]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/eval.json")} == evaluated  # not re-run


def test_the_documented_experiment_registers_and_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/architecture.md's "Adding a real-image experiment" block, run as written: it registers, lists its runs and
    its statement, and decides made-up rows (a width gain of 2–4 points on every seed holds, none does not)."""
    from jepalab.vision.experiments import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(available_experiments()))
    block = docs_example("## Adding a real-image experiment")
    exec(compile(block, str(ARCHITECTURE), "exec", dont_inherit=True), {"__name__": "docs_width"})
    width, settings = registry.experiment("width"), ExperimentSettings(seeds=(0, 1, 2))
    runs = width.runs(settings)
    assert len(runs) == 12 and {cfg.model.dim for _, cfg in runs} == {64, 128}
    assert set(width.statement(settings)) == {"claim", "rule", "control"}

    def rows(gain: float) -> list[dict[str, Any]]:
        return [{"run": f"{m}-{d}-{s}", "step": 10, "method": m, "dim": d, "seed": s,
                 "probe": 0.70 + (gain * (1 + s) / 100 if d == 128 else 0.0)}
                for m in settings.methods for d in (64, 128) for s in settings.seeds]

    assert width.decide(rows(2.0), settings)["held"] and not width.decide(rows(0.0), settings)["held"]
