"""Learning steps from curves, and rank correlations between orders."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from jepalab.eval import learning_steps, partial_rank_correlation, rank_correlation


def test_learning_steps_find_each_planted_midpoint() -> None:
    steps = np.linspace(0, 1000, 401)
    midpoints = np.array([700.0, 120.0, 400.0])
    curves = 0.3 + 0.5 / (1 + np.exp(-(steps[:, None] - midpoints) / 20))  # logistic rise from 0.3 to 0.8
    found = learning_steps(steps, curves, share=0.5)
    start, end = curves[0], curves[-1]
    exact = midpoints + 20 * np.log((0.5 * (end - start) + start - 0.3) / (0.8 - (0.5 * (end - start) + start)))
    np.testing.assert_allclose(found, exact, atol=0.1)  # linear interpolation on a 2.5-step grid
    assert list(np.argsort(found)) == [1, 2, 0]


def test_learning_steps_interpolate_between_records_and_mark_unlearned() -> None:
    steps = [0, 10, 20]
    values = np.array([[0.5, 0.5, 0.5, 0.5],
                       [0.7, 0.5, 0.4, 0.5],
                       [0.9, 0.6, 0.3, 0.505]])
    found = learning_steps(steps, values, share=0.5, min_gain=0.01)
    assert found[0] == pytest.approx(10.0)  # gain 0.2 of 0.4 exactly at the first snapshot
    assert found[1] == pytest.approx(15.0)  # gain 0.05 of 0.1: halfway between 10 and 20
    assert np.isinf(found[2]) and np.isinf(found[3])  # decays; gains less than min_gain


@pytest.mark.parametrize("steps, values, message", [
    ([0, 5, 5], np.zeros((3, 1)), "ascending"),
    ([0, 5], np.zeros((3, 1)), "values must be"),
    ([0, 5], np.array([[0.0], [np.nan]]), "finite"),
])
def test_learning_steps_reject_bad_input(steps: list[int], values: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        learning_steps(steps, values)


def test_rank_correlation_is_spearman_with_ties_and_inf_last() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=12), rng.normal(size=12)
    assert rank_correlation(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert rank_correlation([1, 2, 3, np.inf], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, np.inf, np.inf], [4, 3, 2, 1]) == pytest.approx(
        spearmanr([1, 2, 3.5, 3.5], [4, 3, 2, 1]).statistic)
    assert np.isnan(rank_correlation([1, 1, 1], [1, 2, 3]))


def test_values_equal_up_to_rounding_rank_as_tied() -> None:
    """Three features saturated before the first snapshot share one interpolated step up to the integrator's noise:
    the correlation must not depend on the order of that noise (it differs between CPUs and thread counts)."""
    step = 3009.62010833
    predicted = [1.0, 2.0, 3.0, 4.0, 5.0]
    tied = spearmanr([step, step, step, 8880.8, 9041.2], predicted).statistic
    for bits in ([0.0, 3e-14, -2e-14], [2e-14, -1e-14, 0.0], [0.0, 0.0, 1e-10], [0.0, 0.0, -2e-9]):
        observed = [step * (1 + b) for b in bits] + [8880.8, 9041.2]
        assert rank_correlation(observed, predicted) == pytest.approx(tied)
    assert rank_correlation([1.0, 1.0 + 1e-4, 2.0, np.inf], [1, 2, 3, 4]) == pytest.approx(1.0)  # 1e-4 is a real gap


def test_partial_rank_correlation_separates_the_two_causes() -> None:
    rng = np.random.default_rng(1)
    lam, rho = rng.uniform(size=40), rng.uniform(size=40)
    rho_driven = 1 / rho + 0.01 * rng.normal(size=40)  # high ρ learned first, λ irrelevant
    lam_driven = 1 / lam + 0.01 * rng.normal(size=40)
    assert partial_rank_correlation(rho_driven, rho, lam) < -0.95
    assert abs(partial_rank_correlation(lam_driven, rho, lam)) < 0.35
    assert partial_rank_correlation([1, 2, 3, 4], [3, 1, 4, 2], [10, 20, 30, 40]) == 0.0  # x is fixed by given
    assert np.isnan(partial_rank_correlation([1, 1, 1, 1], [3, 1, 4, 2], [10, 20, 30, 40]))
    with pytest.raises(ValueError, match="same length"):
        partial_rank_correlation([1, 2, 3, 4], [1, 2, 3], [1, 2, 3, 4])


def test_a_planted_order_in_synthetic_features_is_found_through_decoding() -> None:
    """Features that carry direction j from snapshot onset[j] on (a noisy copy, then a clean one): the decoding R²
    curves of :func:`distractor_r2` time the directions in the planted order."""
    from jepalab.eval import distractor_r2

    rng = np.random.default_rng(2)
    targets = rng.normal(size=(400, 5))  # vᵀx of 5 directions
    onset = np.array([3, 1, 4, 0, 2])  # the snapshot from which each direction is encoded
    steps = np.arange(6) * 100
    curves = []
    for t in range(6):
        strength = np.clip(t - onset, 0, 2) / 2  # 0 before onset, half one snapshot later, full after
        features = np.hstack([targets * strength + rng.normal(size=targets.shape), rng.normal(size=(400, 3))])
        curves.append(distractor_r2(features, targets, folds=5, seed=0).r2_per_output)
    found = learning_steps(steps, np.array(curves), share=0.5, min_gain=0.05)
    assert list(np.argsort(found)) == list(np.argsort(onset))
    assert rank_correlation(found, onset) == pytest.approx(1.0)
