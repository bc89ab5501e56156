"""Interval statistics of per-seed effects: scipy's t-test and interval, Holm on a hand-worked case, the three-way
verdict on constructed effects, and the power that sizes a plan."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from jepalab.vision.experiments.power import hedges_g, plan_power, power_below
from jepalab.vision.experiments.statistics import (
    holm,
    interval_test,
    interval_tests,
    interval_verdict,
    power,
    seeds_for_power,
)

EFFECTS = [0.0147, 0.0511, 0.0198, 0.0302, 0.0081]


def test_interval_test_matches_scipy_on_fixed_effects() -> None:
    t = interval_test(EFFECTS)
    values = np.array(EFFECTS)
    sem = values.std(ddof=1) / math.sqrt(len(values))
    assert t["mean"] == pytest.approx(values.mean())
    assert t["ci95"] == pytest.approx([values.mean() - stats.t.ppf(0.975, 4) * sem,
                                       values.mean() + stats.t.ppf(0.975, 4) * sem])
    assert t["p_one_sided"] == pytest.approx(stats.t.sf(values.mean() / sem, 4))
    assert t["p_one_sided"] == pytest.approx(stats.ttest_1samp(values, 0, alternative="greater").pvalue)


def test_interval_test_is_undefined_with_a_nan_or_one_seed() -> None:
    assert math.isnan(interval_test([0.1, float("nan"), 0.2])["p_one_sided"])
    single = interval_test([0.3])
    assert single["mean"] == 0.3 and math.isnan(single["ci95"][0]) and math.isnan(single["p_one_sided"])


def test_holm_on_a_hand_worked_case() -> None:
    # sorted 0.01, 0.03, 0.04 (k = 3): 3·0.01 = 0.03; max(0.03, 2·0.03) = 0.06; max(0.06, 1·0.04) = 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.6, 0.01]) == pytest.approx([0.6, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = holm([float("nan"), 0.02])
    assert math.isnan(adjusted[0]) and adjusted[1] == pytest.approx(0.04)  # an undefined test still counts in k


def _verdict(effects: dict[str, list[float]], smallest: dict[str, float]) -> str:
    return interval_verdict(interval_tests(effects), smallest)[0]


def test_three_way_verdict_on_constructed_effects() -> None:
    strong = [0.05, 0.06, 0.055, 0.052, 0.058]
    null = [0.001, -0.002, 0.0005, -0.001, 0.0015]
    wide = [0.2, -0.15, 0.1, -0.05, 0.12]
    assert _verdict({"a": strong, "b": strong}, {"a": 0.01, "b": 0.01}) == "holds"
    assert _verdict({"a": strong, "b": null}, {"a": 0.01, "b": 0.01}) == "does not hold"  # b's interval < 0.01
    assert _verdict({"a": strong, "b": wide}, {"a": 0.01, "b": 0.01}) == "inconclusive"
    # Holm binds: each p < 0.05 alone, but not both after adjustment
    borderline = [0.02, 0.01, 0.035, -0.004, 0.03]
    tests = interval_tests({"a": borderline, "b": borderline})
    assert all(t["p_one_sided"] < 0.05 < t["p_holm"] for t in tests.values())
    assert interval_verdict(tests, {"a": 0.0, "b": 0.0})[0] == "inconclusive"
    with pytest.raises(ValueError, match="smallest effect"):
        interval_verdict(tests, {"a": 0.0})


def test_power_matches_the_noncentral_t_table() -> None:
    assert power(1.0, 5) == pytest.approx(0.58, abs=0.005)
    assert power(1.45, 8) == pytest.approx(0.978, abs=0.002)
    assert seeds_for_power(1.45) == (5, pytest.approx(power(1.45, 5)))
    assert seeds_for_power(0.5)[0] == 8  # never reaches 80 % within 8 seeds: the most allowed


def test_power_below_is_the_chance_of_an_interval_under_the_smallest_effect() -> None:
    rng = np.random.default_rng(0)
    draws = rng.normal(0.0, 0.02, size=(20000, 8))
    upper = draws.mean(1) + stats.t.ppf(0.975, 7) * draws.std(1, ddof=1) / math.sqrt(8)
    assert power_below(0.02, 0.02, 8) == pytest.approx((upper < 0.02).mean(), abs=0.01)
    assert hedges_g(1.0, 1.0, 3) == pytest.approx(1 - 3 / 7)


def test_plan_power_reads_the_first_folder_holding_the_experiment(tmp_path) -> None:
    folder = tmp_path / "exploratory" / "toy"
    folder.mkdir(parents=True)
    folder.joinpath("summary.json").write_text('{"effects": {"up": [0.3, 0.5, 0.4], "down": [-0.1, 0.05, -0.02]}}')
    planned = plan_power("toy", {"up": 0.1, "down": 0.1}, [str(tmp_path / "missing"), str(tmp_path / "exploratory")])
    assert planned["seeds"] == 5 and planned["tests"]["up"]["power"] > 0.8
    assert "power_of_does_not_hold_if_zero" in planned["tests"]["down"]
    assert plan_power("toy", {}, [str(tmp_path / "missing")])["exploratory"] is None
