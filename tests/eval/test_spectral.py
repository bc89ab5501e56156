"""jepalab.eval.spectral: RankMe and LiDAR against the closed forms and simulations of metrics.md §1–§2."""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jepalab.eval import lidar, rankme


def test_rankme_two_by_two_closed_form():
    # metrics.md §1: Z = diag(3, 1) -> p = (0.75, 0.25), RankMe = exp(0.562335) = 1.754765
    assert rankme(np.diag([3.0, 1.0]), eps=0.0) == pytest.approx(1.754765, abs=1e-6)
    assert rankme(np.diag([3.0, 1.0])) == pytest.approx(1.754765, abs=1e-6)


@pytest.mark.parametrize("k, expected", [(1, 1.0001), (10, 10.0009)])
def test_rankme_of_rank_k_matrix(k, expected):
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(200, 64)))
    z = np.zeros((200, 64))
    z[:, :k] = 5.0 * q[:, :k]
    assert rankme(z) == pytest.approx(expected, abs=2e-4)


def test_rankme_invariances_and_torch_input():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 16)) @ np.diag(np.linspace(0.1, 3, 16))
    r, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    base = rankme(z)
    assert rankme(-2.5 * z) == pytest.approx(base, rel=1e-10)
    assert rankme(z @ r) == pytest.approx(base, rel=1e-10)
    assert rankme(z[rng.permutation(300)]) == pytest.approx(base, rel=1e-10)
    assert rankme(torch.from_numpy(z).float()) == pytest.approx(base, rel=1e-5)


def test_rankme_centring_removes_mean_offset():
    # metrics.md §1 pitfall: d = 64, n = 2000, offset +10 -> ~12.2 uncentred, ~63.7 centred
    z = np.random.default_rng(2).normal(size=(2000, 64)) + 10.0
    assert rankme(z) == pytest.approx(12.2, rel=0.05)
    assert rankme(z, centre=True) == pytest.approx(63.7, rel=0.01)


@pytest.mark.parametrize("ratio, expected", [(1, 0.80), (4, 0.965), (10, 0.987), (100, 0.999)])
def test_rankme_gaussian_calibration(ratio, expected):
    # metrics.md §1: RankMe/d for iid N(0, I_d) at n/d = 1, 4, 10, 100, within ±1 %
    z = np.random.default_rng(ratio).normal(size=(64 * ratio, 64))
    assert rankme(z) / 64 == pytest.approx(expected, rel=0.01)


def test_rankme_constant_rows_is_one():
    assert rankme(np.full((50, 8), 3.0)) == pytest.approx(1.0, abs=1e-4)


def test_rankme_zero_singular_value_and_degenerate_inputs():
    assert np.isfinite(rankme(np.diag([1.0, 0.0]), eps=0.0))
    with pytest.warns(RuntimeWarning):
        assert np.isnan(rankme(np.zeros((5, 3))))
    with pytest.raises(ValueError, match="NaN or inf"):
        rankme(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        rankme(np.ones(4))


# ---------------------------------------------------------------------------------------------------------- LiDAR


def _closed_form_views():
    """metrics.md §2: d = 16, class means ±3·e_j (j = 1..4, n = 8), views ±e_j (j = 1..16, q = 32)."""
    eye = np.eye(16)
    means = np.concatenate([3 * eye[:4], -3 * eye[:4]])
    views = np.concatenate([eye, -eye])
    return (means[:, None, :] + views[None]).reshape(-1, 16), np.repeat(np.arange(8), 32)


def _classes(rng, n=60, q=6, d=8, between=1.0, within=0.5):
    means = rng.normal(scale=between, size=(n, 1, d)) * np.linspace(0.2, 2.0, d)
    z = (means + rng.normal(scale=within, size=(n, q, d))).reshape(-1, d)
    return z, np.repeat(np.arange(n), q)


def test_lidar_closed_form():
    z, groups = _closed_form_views()
    result = lidar(z, groups)
    assert result.value == pytest.approx(4.0, abs=1e-6)
    assert float(result) == result.value and not result.degenerate
    assert result.within_min_eigenvalue == pytest.approx(2 / 31, rel=1e-12)
    assert result.eigenvalues[:4] == pytest.approx([(18 / 7) / (2 / 31 + 1e-4)] * 4, rel=1e-10)
    assert max(result.eigenvalues[4:]) < 1e-10
    assert (result.n_groups, result.views, result.dim, result.delta, result.eps) == (8, 32, 16, 1e-4, 1e-8)


def test_lidar_solves_the_generalised_symmetric_problem():
    z, groups = _classes(np.random.default_rng(0))
    grouped = z.reshape(60, 6, 8)
    means = grouped.mean(axis=1)
    between = sum(np.outer(m - means.mean(0), m - means.mean(0)) for m in means) / 59
    within = sum(np.outer(e - m, e - m) for g, m in zip(grouped, means) for e in g) / (60 * 5) + 1e-4 * np.eye(8)
    expected = scipy.linalg.eigh(between, within, eigvals_only=True)[::-1]
    result = lidar(z, groups)
    assert result.eigenvalues == pytest.approx(expected, rel=1e-9, abs=1e-12)
    p = (expected + 1e-8) / np.sum(expected + 1e-8)
    assert result.value == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-10)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31), st.floats(-3, 3))
def test_lidar_invariant_to_invertible_affine_maps(seed, log_scale):
    rng = np.random.default_rng(seed)
    z, groups = _classes(rng)
    q1, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    q2, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    a = 10.0**log_scale * q1 @ np.diag(rng.uniform(0.5, 2.0, 8)) @ q2
    mapped = z @ a.T + rng.normal(size=8)
    assert lidar(mapped, groups, delta=0.0).value == pytest.approx(lidar(z, groups, delta=0.0).value, abs=1e-6)


def test_lidar_small_delta_nearly_invariant():
    rng = np.random.default_rng(3)
    z, groups = _classes(rng)
    a = rng.normal(size=(8, 8)) + 3 * np.eye(8)
    assert lidar(z @ a.T + 5.0, groups).value == pytest.approx(lidar(z, groups).value, abs=1e-3)


def test_lidar_permutations_and_grouping():
    rng = np.random.default_rng(4)
    z, groups = _classes(rng)
    base = lidar(z, groups).value
    rows = rng.permutation(z.shape[0])
    relabel = rng.permutation(60)
    assert lidar(z[rows], relabel[groups][rows]).value == pytest.approx(base, rel=1e-10)
    views_shuffled = np.concatenate([rng.permutation(np.flatnonzero(groups == g)) for g in range(60)])
    assert lidar(z[views_shuffled], groups).value == pytest.approx(base, rel=1e-10)
    assert lidar(z, groups[rng.permutation(groups.size)]).value != pytest.approx(base, rel=1e-2)
    assert lidar(torch.from_numpy(z), torch.from_numpy(groups)).value == pytest.approx(base, rel=1e-10)


def test_lidar_bounded_by_min_d_and_n_minus_one():
    rng = np.random.default_rng(5)
    for n, d in [(5, 16), (40, 6)]:
        z = rng.normal(size=(n * 4, d))
        assert 1.0 <= lidar(z, np.repeat(np.arange(n), 4)).value <= min(d, n - 1) + 1e-6


@pytest.mark.parametrize("q, expected", [(2, 56.0), (10, 36.0), (50, 12.7)])
def test_lidar_finite_q_noise_floor(q, expected):
    # metrics.md §2 pitfall: k = 4 informative dims of d = 64, within variance = between variance, n = 1000
    rng = np.random.default_rng(q)
    means = np.zeros((1000, 1, 64))
    means[:, 0, :4] = rng.normal(size=(1000, 4))
    z = (means + rng.normal(size=(1000, q, 64))).reshape(-1, 64)
    groups = np.repeat(np.arange(1000), q)
    assert lidar(z, groups).value == pytest.approx(expected, rel=0.1)
    assert lidar(z, groups, bias_corrected=True).value < 0.5 * expected


def test_lidar_degenerate_and_identical_views():
    rng = np.random.default_rng(6)
    views = rng.normal(size=(5, 8))
    same_means = np.tile(views, (10, 1))
    result = lidar(same_means, np.repeat(np.arange(10), 5))
    assert result.degenerate and result.value == 1.0
    identical = np.repeat(rng.normal(size=(10, 8)), 5, axis=0)
    with pytest.warns(RuntimeWarning, match="identical"):
        result = lidar(identical, np.repeat(np.arange(10), 5))
    assert result.within_min_eigenvalue == pytest.approx(0.0, abs=1e-20) and not result.degenerate


def test_lidar_bad_inputs():
    z, groups = _closed_form_views()
    with pytest.raises(ValueError, match="at least 2 groups"):
        lidar(z, np.zeros(z.shape[0]))
    with pytest.raises(ValueError, match="2 views"):
        lidar(z[:8], np.arange(8))
    with pytest.raises(ValueError, match="same number of views"):
        lidar(z[:-1], groups[:-1])
    with pytest.raises(ValueError, match="one entry per row"):
        lidar(z, groups[:-1])
    bad = z.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lidar(bad, groups)
    with pytest.raises(ValueError, match="delta"):
        lidar(z, groups, delta=-1.0)
