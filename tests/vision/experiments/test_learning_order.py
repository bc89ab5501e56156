"""learning-order: the deep linear control recovers the theory's order through the same measurement, a planted order
in synthetic decoding curves is found and decided by the rule, the results folder verifies, and the plan comes
first."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_runs import install

from jepalab.theory import learning_order
from jepalab.vision.experiments import ExperimentSettings, run_experiments
from jepalab.vision.experiments import learning_order as module
from jepalab.vision.experiments.learning_order import LearningOrder
from jepalab.vision.experiments.order_theory import linear_control, predicted_times
from jepalab.vision.experiments.registry import experiment
from jepalab.vision.experiments.results import check_plan, plan, verify

DEPTH, K = 3, 8
RNG = np.random.default_rng(3)
LAM, RHO = RNG.uniform(0.5, 1.0, K), RNG.uniform(0.45, 0.9, K)
STATS = {"lam": LAM, "rho": RHO, "var_context": LAM / RHO, "var_target": LAM}
SETTINGS = ExperimentSettings(mode="standard", seeds=(0, 1, 2), depth=DEPTH)
STEPS = list(range(0, 33, 3))


def test_the_measurement_recovers_the_theory_order_on_a_deep_linear_run() -> None:
    for objective in ("jepa", "mae"):
        control = linear_control(objective, STATS, DEPTH, 1e-3, 0.5, snapshots=6, records=200, horizon=1.5)
        theory = learning_order(objective, LAM, RHO, DEPTH, 1e-3)
        assert list(np.argsort(control["fine"], kind="stable")) == list(theory)
        assert control["spearman_fine"] == pytest.approx(1.0)
        assert control["spearman_snapshots"] <= control["spearman_fine"]


def test_the_two_theories_order_these_directions_differently() -> None:
    jepa = predicted_times("jepa", LAM, RHO, DEPTH, 1e-3, 0.5)
    mae = predicted_times("mae", LAM, RHO, DEPTH, 1e-3, 0.5)
    assert list(np.argsort(jepa)) != list(np.argsort(mae))
    assert np.isinf(predicted_times("jepa", np.array([-1.0, 1.0]), np.array([-0.5, 1e-4]), 3, 1e-3, 0.5)).all()


def _planted(order_of: dict[str, str], learned: int = K):
    """A measure_run that writes R² curves rising at the step ranked by ``order_of[method]``'s predicted times."""

    def fake_measure(self: LearningOrder, run: Path, settings: ExperimentSettings) -> None:
        method = run.name.split("-")[0]  # the store names a run <method>-<config hash>
        seed_noise = np.random.default_rng(zlib.crc32(run.name.encode()))
        times = predicted_times(order_of[method], LAM, RHO, DEPTH, 1e-3, 0.5)
        rank = np.argsort(np.argsort(times + 1e-9 * seed_noise.normal(size=K)))
        midpoint = 3 + 24 * rank / (K - 1) + seed_noise.normal(0, 0.3, K)
        t = np.asarray(STEPS, dtype=float)[:, None]
        rise = np.where(np.arange(K) < learned, 0.5, 0.0)
        r2 = 0.2 + rise / (1 + np.exp(-(t - midpoint) / 1.5))
        (run / "learning-order.measure.json").write_text(json.dumps(
            {"key": {}, "pca_index": list(range(K)), "steps": STEPS, "r2": r2.tolist()}))

    return fake_measure


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order_of: dict[str, str], learned: int = K) -> dict:
    install(monkeypatch)
    monkeypatch.setattr(LearningOrder, "measure_run", _planted(order_of, learned))
    monkeypatch.setattr(module, "directions_of", lambda settings: {"stats": {m: STATS for m in settings.methods}})
    out = tmp_path / "learning-order"
    return run_experiments(("learning-order",), {"learning-order": out}, SETTINGS, tmp_path / "store",
                           say=lambda _: None)["learning-order"]


def test_a_planted_theory_order_is_found_and_the_claim_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = _run(tmp_path, monkeypatch, {"ijepa": "jepa", "mae": "mae"})
    per = summary["measured"]["per_method"]
    assert per["ijepa"]["spearman_own"] > 0.9 and per["mae"]["spearman_own"] > 0.9
    assert per["ijepa"]["partial_rho"] < per["mae"]["partial_rho"]
    assert summary["verdict"] == "holds", summary["reason"]
    assert verify(tmp_path / "learning-order")["verdict"] == "holds"  # recomputed from results.csv
    assert (tmp_path / "learning-order" / "learning_order.png").is_file()


def test_two_lambda_driven_orders_do_not_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = _run(tmp_path, monkeypatch, {"ijepa": "mae", "mae": "mae"})
    assert summary["verdict"] == "does not hold"
    assert summary["effects"]["own_order_ijepa"][0] < 0


def test_runs_that_learned_too_few_directions_are_not_tested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = _run(tmp_path, monkeypatch, {"ijepa": "jepa", "mae": "mae"}, learned=3)
    assert summary["verdict"] == "not tested here"
    assert "learned 3 of 8 directions" in summary["reason"]


def test_the_plan_is_read_before_any_result(tmp_path: Path) -> None:
    exp = experiment("learning-order")
    expected: dict[str, Any] = plan(exp, SETTINGS)
    assert expected["protocol"]["eps"] == 1e-3 and "not tested here" in expected["verdicts"]
    with pytest.raises(FileNotFoundError, match="--plan"):
        check_plan(tmp_path, expected)
    changed = {**expected, "protocol": {**expected["protocol"], "share": 0.3}}
    (tmp_path / "plan.json").write_text(json.dumps(changed))
    with pytest.raises(ValueError, match="changed after pre-registration"):
        check_plan(tmp_path, expected)


def test_measurements_travel_with_the_light_record(tmp_path: Path) -> None:
    from jepalab.vision.experiments.store import LIGHT_FILES, restore_light, save_light

    run = tmp_path / "store" / "mae-abc"
    run.mkdir(parents=True)
    for name in LIGHT_FILES:
        (run / name).write_text(json.dumps({"finished": True}))
    (run / "learning-order.measure.json").write_text("{}")
    assert save_light(tmp_path / "store", tmp_path / "record") == ["mae-abc"]
    assert restore_light(tmp_path / "record", tmp_path / "fresh") == ["mae-abc"]
    assert (tmp_path / "fresh" / "mae-abc" / "learning-order.measure.json").is_file()
    (tmp_path / "fresh" / "mae-abc" / "learning-order.measure.json").unlink()  # a run restored before it was measured
    assert restore_light(tmp_path / "record", tmp_path / "fresh") == []
    assert (tmp_path / "fresh" / "mae-abc" / "learning-order.measure.json").is_file()


def test_the_decoupled_control_follows_the_width_k_network() -> None:
    coupled = linear_control("jepa", STATS, DEPTH, 1e-3, 0.5, snapshots=6, records=200, horizon=1.5)
    decoupled = linear_control("jepa", STATS, DEPTH, 1e-3, 0.5, snapshots=6, records=200, horizon=1.5,
                               decoupled=True)
    assert decoupled["fine"] == pytest.approx(coupled["fine"], rel=1e-6)
    assert decoupled["spearman_snapshots"] == coupled["spearman_snapshots"]


INTERVAL = ExperimentSettings(mode="standard", seeds=(0, 1, 2), depth=DEPTH, statistics="interval")


def _run_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stats: dict[str, np.ndarray]) -> dict:
    install(monkeypatch)
    monkeypatch.setattr(LearningOrder, "measure_run", _planted({"ijepa": "jepa", "mae": "mae"}))
    monkeypatch.setattr(module, "directions_of", lambda settings: {"stats": {m: stats for m in settings.methods}})
    out = tmp_path / "learning-order"
    return run_experiments(("learning-order",), {"learning-order": out}, INTERVAL, tmp_path / "store",
                           say=lambda _: None)["learning-order"]


def test_interval_statistics_decide_a_planted_order_from_recorded_control_columns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = _run_interval(tmp_path, monkeypatch, STATS)
    assert summary["verdict"] == "holds", summary["checks"]
    assert set(summary["tests"]) == {"rho_driven", "own_order_ijepa", "own_order_mae"}
    assert all(t["p_holm"] < 0.05 for t in summary["tests"].values())
    header = (tmp_path / "learning-order" / "results.csv").read_text().splitlines()[0]
    assert "control_fine" in header and "control_snapshots" in header
    monkeypatch.setattr(module, "linear_control", lambda *a, **k: pytest.fail("verify must not simulate"))
    module._cached_control.cache_clear()
    assert verify(tmp_path / "learning-order")["verdict"] == "holds"


def test_fewer_than_eight_finite_predictions_are_not_tested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lam = LAM.copy()
    lam[:2] = -0.1  # two directions the theory never learns: 6 of 8 finite
    stats = {**STATS, "lam": lam, "rho": np.where(lam > 0, RHO, -0.2)}
    summary = _run_interval(tmp_path, monkeypatch, stats)
    assert summary["verdict"] == "not tested here"
    assert "finite learning time for 6 of 8 directions under ijepa's masks (< 8)" in summary["reason"]
