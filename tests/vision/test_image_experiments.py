"""Real-image experiments: configs are fair between methods, verdicts follow the rule, the report part reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jepalab.report.claims import PartContext
from jepalab.report.parts_images import run_images
from jepalab.vision import experiments
from jepalab.vision.experiments import ExperimentSettings, pretrain_config, run_experiment


def test_both_methods_get_the_same_encoder_budget_and_views() -> None:
    settings = ExperimentSettings()
    ijepa = pretrain_config("ijepa", "noisy-fashion-mnist", {"strength": 0.1}, settings, seed=1)
    mae = pretrain_config("mae", "noisy-fashion-mnist", {"strength": 0.1}, settings, seed=1)
    assert ijepa.model == mae.model and ijepa.data == mae.data
    assert (ijepa.optim.epochs, ijepa.optim.global_batch) == (mae.optim.epochs, mae.optim.global_batch)
    assert ijepa.model.resolved().dim == settings.dim and ijepa.model.resolved().depth == settings.depth
    assert not ijepa.train.compile
    compiled = pretrain_config("mae", "fashion-mnist", {}, ExperimentSettings(compile=True,
                                                                              compile_mode="reduce-overhead"), seed=0)
    assert compiled.train.compile and compiled.train.compile_mode == "reduce-overhead"


def _fake_results(values: dict[tuple[str, float, int], dict[str, float]]) -> Any:
    """A stand-in for train-and-evaluate that returns eval.json-like records keyed by (method, strength, seed)."""

    def fake(cfg: Any, run: Path, settings: ExperimentSettings) -> dict[str, Any]:
        key = (cfg.method, float(cfg.data.options.get("strength", 0.0)), cfg.seed)
        metrics = {"step": 10, "rankme": 5.0, "lidar": 3.0, "cca_delta": 0.0, **values[key]}
        baseline = {"probe": 0.5, "distractor_r2": 0.2, "cca_delta": 0.0}
        return {"checkpoints": [metrics], "baselines": {"random": baseline, "pixels": baseline}}

    return fake


@pytest.mark.parametrize(("mae_drop", "held"), [(0.2, True), (0.01, False)])
def test_noisy_features_verdict_follows_the_rule(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mae_drop: float,
                                                  held: bool) -> None:
    seeds = (0, 1, 2)
    values = {}
    for seed in seeds:
        jitter = 0.01 * seed
        values[("ijepa", 0.0, seed)] = {"probe": 0.80 + jitter, "distractor_r2": 0.0}
        values[("ijepa", 0.1, seed)] = {"probe": 0.78 + jitter, "distractor_r2": 0.3}
        values[("mae", 0.0, seed)] = {"probe": 0.80, "distractor_r2": 0.0}
        values[("mae", 0.1, seed)] = {"probe": 0.80 - mae_drop + jitter, "distractor_r2": 0.9 - jitter}
    monkeypatch.setattr(experiments, "_train_and_eval", _fake_results(values))
    settings = ExperimentSettings(seeds=seeds, strengths=(0.0, 0.1))
    summary = run_experiment("noisy-features", tmp_path, settings, say=lambda _: None)
    assert summary["held"] is held
    assert summary["measured"]["probe_drop"]["mae"] == pytest.approx(mae_drop - 0.01)
    assert json.loads((tmp_path / "summary.json").read_text())["held"] is held
    assert (tmp_path / "results.csv").read_text().count("\n") == 1 + 12
    assert (tmp_path / "noisy_features.png").is_file()


def test_one_seed_is_flagged_indicative(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    values = {(m, s, 0): {"probe": 0.8, "distractor_r2": 0.5} for m in ("ijepa", "mae") for s in (0.0, 0.1)}
    monkeypatch.setattr(experiments, "_train_and_eval", _fake_results(values))
    summary = run_experiment("noisy-features", tmp_path, ExperimentSettings(strengths=(0.0, 0.1)), say=lambda _: None)
    assert summary["held"] is False  # zero effect is not an effect
    assert "indicative only" in summary["checks"]["probe_drop"]


def test_unknown_experiment_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="noisy-features"):
        run_experiment("colour", tmp_path, ExperimentSettings())


def test_run_configs_start_from_the_method_recipe() -> None:
    """Each run's config is its method's small-image recipe with the experiment's settings on top."""
    from jepalab.vision.methods import method_spec

    settings = ExperimentSettings(dim=64, depth=2)
    for name in settings.methods:
        cfg = pretrain_config(name, "fashion-mnist", {}, settings, seed=0)
        section, values = next((k, v) for k, v in method_spec(name).small_image_recipe.items()
                               if k not in ("data", "model", "optim", "train"))
        assert {key: getattr(getattr(cfg, section), key) for key in values} == {
            key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
        assert (cfg.model.resolved().dim, cfg.model.resolved().depth, cfg.data.hflip) == (64, 2, False)


def test_experiments_are_registered_and_the_cli_takes_their_names(capsys: pytest.CaptureFixture[str]) -> None:
    from jepalab.cli import main

    assert set(experiments.EXPERIMENTS) == {"noisy-features", "variance-subspaces", "depth", "context-size"}
    assert main(["experiment", "colour", "--out", "/nonexistent/never"]) == 2
    assert "experiment must be one of ['noisy-features'" in capsys.readouterr().err


def test_report_part_reads_reused_experiments(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    folder.mkdir()
    summary = {"experiment": "variance-subspaces", "mode": "quick", "seeds": 1, "held": True, "rule": "Δ > 0",
               "checks": {"delta": "effect +0.1 > 0"}, "measured": {"effect": 0.1}, "claim": "c"}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "settings.json").write_text("{}")
    (folder / "variance_subspaces.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    report = tmp_path / "report"
    ctx = PartContext(report / "parts" / "images", report, "quick", (folder,), 0)
    output = run_images(ctx)
    verdicts = {f.key: f.verdict for f in output.findings}
    assert verdicts == {"R1": "not tested here", "R2": "holds", "R3": "not tested here"}
    r2 = next(f for f in output.findings if f.key == "R2")
    assert r2.figure == "parts/images/variance-subspaces/variance_subspaces.png"  # copied inside the report
    assert (report / r2.figure).is_file()


@pytest.mark.parametrize(("mae_deep", "held"), [(1.0, True), (0.75, False)])
def test_depth_uses_uptake_and_needs_a_growing_positive_gap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                            mae_deep: float, held: bool) -> None:
    """Uptake = R² − random-init R² (I-JEPA 0.5 − 0.2; MAE R² − 0.6): at 0.75 the raw R² gap is positive and
    growing, but MAE's uptake (0.15) stays below I-JEPA's (0.3), so the claim must not hold."""

    def fake(cfg: Any, run: Path, settings: ExperimentSettings) -> dict[str, Any]:
        r2 = 0.5 if cfg.method == "ijepa" else (0.4 if cfg.model.depth == 1 else mae_deep)
        metrics = {"step": 1, "probe": 0.7, "rankme": 2.0, "lidar": 2.0, "distractor_r2": r2}
        random = {"probe": 0.6, "cca_delta": 0.0, "distractor_r2": 0.2 if cfg.method == "ijepa" else 0.6}
        return {"checkpoints": [metrics], "baselines": {"random": random}}

    monkeypatch.setattr(experiments, "_train_and_eval", fake)
    summary = run_experiment("depth", tmp_path, ExperimentSettings(depths=(1, 4)), say=lambda _: None)
    assert summary["measured"]["growth"] == pytest.approx(mae_deep - 0.4)
    assert summary["held"] is held


def test_jobs_run_the_grid_in_worker_processes(tiny_fmnist: Path, tmp_path: Path) -> None:
    """--jobs 2: every run trained once in its own folder, throughput recorded; a rerun reuses the finished runs."""
    settings = ExperimentSettings(strengths=(0.0,), dim=32, depth=1, epochs=1, train_images=128, global_batch=64,
                                  snapshots=1, data_root=str(tiny_fmnist), jobs=2, device="cpu",
                                  eval=experiments.EvalSettings(train_images=64, test_images=32, probe="ridge",
                                                                lidar_images=8, lidar_views=2, readouts=()))
    summary = run_experiment("noisy-features", tmp_path, settings, say=lambda _: None)
    throughput = json.loads((tmp_path / "throughput.json").read_text())
    assert throughput["runs"] == 2 and throughput["images_trained"] == 2 * 2 * 64
    assert throughput["threads_per_cpu_job"] >= 1 and throughput["images_per_s"] > 0
    for method in ("ijepa", "mae"):
        run = tmp_path / "runs" / f"{method}-s0-seed0"
        assert json.loads((run / "summary.json").read_text())["finished"] and (run / "eval.json").is_file()
    again = run_experiment("noisy-features", tmp_path, settings, say=lambda _: None)
    assert json.dumps(again["measured"]) == json.dumps(summary["measured"])  # NaN spreads: one seed
    assert json.loads((tmp_path / "throughput.json").read_text())["images_trained"] == 0
