"""The shared parts of every rule: the seed-spread test, the learning gate and the matched-gain control."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jepalab.vision.experiments.rules import (
    MIN_GAIN_POINTS,
    NOISE_MULTIPLE,
    at_gain,
    first_segment,
    gain_noise,
    gate,
    gate_rule,
    last_rows,
    matched,
    passes,
)


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


def test_gain_noise_is_the_binomial_sd_of_both_accuracies() -> None:
    row = {"probe": 0.78, "random_probe": 0.73, "probe_gain": 5.0}
    expected = 100 * math.sqrt((0.78 * 0.22 + 0.73 * 0.27) / 10000)
    assert gain_noise(row, 10000) == pytest.approx(expected)  # ≈ 0.61 points
    rng = np.random.default_rng(0)  # the spread of a test-set bootstrap of both accuracies
    correct = rng.random(10000) < 0.78, rng.random(10000) < 0.73
    draws = rng.integers(0, 10000, size=(400, 10000))
    boot = 100 * (correct[0][draws].mean(1) - correct[1][draws].mean(1))
    assert boot.std() == pytest.approx(expected, rel=0.1)


def test_noise_gate_binds_on_a_gain_within_four_noise_widths() -> None:
    rows = [{"run": "a", "step": 2, "method": "ijepa", "probe": 0.78, "random_probe": 0.73, "probe_gain": 5.0},
            {"run": "b", "step": 2, "method": "mae", "probe": 0.745, "random_probe": 0.73, "probe_gain": 1.5}]
    ratios, reason = gate(rows, ["ijepa", "mae"], "noise", 10000)
    assert ratios["ijepa"] > NOISE_MULTIPLE > ratios["mae"]
    assert "mae's smallest probe gain is 2.4 × its sampling noise" in reason and "ijepa" not in reason
    assert "4 × its sampling noise" in gate_rule("noise")
    with pytest.raises(ValueError, match="test images"):
        gate(rows, ["ijepa", "mae"], "noise")


def test_a_matched_read_before_the_first_checkpoint_is_a_first_segment_read() -> None:
    slow, fast = _points((2.0, 0.1), (3.0, 0.2)), _points((5.0, 0.5), (20.0, 0.9))
    target, _, _ = matched(slow, fast, "uptake")
    assert target == 3.0
    assert first_segment(fast, target) and not first_segment(slow, target)  # fast was read between init and 5.0
    assert not first_segment(fast, 0.0)
