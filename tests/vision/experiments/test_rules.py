"""The shared parts of every rule: the seed-spread test, the learning gate and the matched-gain control."""

from __future__ import annotations

import math

import pytest

from jepalab.vision.experiments.rules import MIN_GAIN_POINTS, at_gain, gate, gate_rule, last_rows, matched, passes


def _points(*pairs: tuple[float, float]) -> list[dict[str, float]]:
    return [{"step": i + 1, "probe_gain": g, "uptake": u} for i, (g, u) in enumerate(pairs)]


def test_at_gain_interpolates_from_the_random_init_origin() -> None:
    points = _points((4.0, 0.2), (8.0, 0.6), (10.0, 0.7))
    assert at_gain(points, "uptake", 2.0) == pytest.approx(0.1)  # between the origin (0, 0) and (4, 0.2)
    assert at_gain(points, "uptake", 6.0) == pytest.approx(0.4)
    assert at_gain(points, "uptake", 10.0) == pytest.approx(0.7)
    assert math.isnan(at_gain(points, "uptake", 11.0)) and math.isnan(at_gain(points, "uptake", 0.0))


def test_at_gain_takes_the_first_crossing_of_a_non_monotone_curve() -> None:
    points = _points((6.0, 0.6), (3.0, 0.9), (9.0, 1.2))
    assert at_gain(points, "uptake", 3.0) == pytest.approx(0.3)


def test_matched_compares_both_runs_at_the_smaller_final_gain() -> None:
    slow, fast = _points((2.0, 0.1), (5.0, 0.2)), _points((5.0, 0.5), (20.0, 0.9))
    target, a, b = matched(slow, fast, "uptake")
    assert (target, a, b) == pytest.approx((5.0, 0.2, 0.5))


@pytest.mark.parametrize(("values", "held"), [([0.3, 0.2, 0.25], True), ([0.3, -0.2, 0.1], False),
                                              ([-0.1, -0.2, -0.1], False)])
def test_passes_needs_a_positive_mean_above_its_spread(values: list[float], held: bool) -> None:
    assert passes(values, "x")[0] is held


def test_passes_with_one_seed_is_indicative_and_nan_is_undefined() -> None:
    held, why = passes([0.1], "x")
    assert held and "indicative only" in why
    held, why = passes([float("nan"), 0.2, 0.3], "x")
    assert not held and "undefined" in why


def test_gate_names_every_method_below_the_minimum_gain() -> None:
    rows = [{"run": "a", "step": 1, "method": "ijepa", "probe_gain": 9.0},
            {"run": "a", "step": 2, "method": "ijepa", "probe_gain": 3.0},  # the last checkpoint counts
            {"run": "b", "step": 2, "method": "mae", "probe_gain": 7.0}]
    assert len(last_rows(rows)) == 2
    gains, reason = gate(rows, ["ijepa", "mae"])
    assert gains == {"ijepa": 3.0, "mae": 7.0}
    assert "ijepa gained +3.0" in reason and "mae" not in reason and f"< {MIN_GAIN_POINTS:g}" in reason
    assert gate([{**rows[2], "method": "ijepa", "run": "c"}, rows[2]], ["ijepa", "mae"])[1] == ""


def test_gate_on_knn20_reads_its_gain_over_the_random_init_column() -> None:
    rows = [{"run": "a", "step": 1, "method": "ijepa", "probe_gain": 2.0, "knn20": 0.70, "random_knn20": 0.52},
            {"run": "b", "step": 1, "method": "mae", "probe_gain": 2.0, "knn20": 0.55, "random_knn20": 0.52}]
    gains, reason = gate(rows, ["ijepa", "mae"], "knn20")
    assert gains == pytest.approx({"ijepa": 18.0, "mae": 3.0})
    assert reason.startswith("learning gate not met: mae gained +3.0 centred kNN-20 points") and "ijepa" not in reason
    assert gate(rows, ["ijepa", "mae"])[0] == {"ijepa": 2.0, "mae": 2.0}  # the label probe by default
    assert "5 centred kNN-20 points" in gate_rule("knn20") and "5 probe points" in gate_rule()
    with pytest.raises(ValueError, match="knn20"):
        gate(rows, ["ijepa"], "knn200")
