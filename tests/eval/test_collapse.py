"""jepalab.eval.collapse: the read-outs of metrics.md §8 on isotropic, constant and k-dimensional features."""

import numpy as np
import pytest
import torch

from jepalab.eval import collapse_diagnostics, token_spread


def test_isotropic_gaussian():
    z = np.random.default_rng(0).normal(size=(8192, 64)) * 3.0
    out = collapse_diagnostics(z)
    assert out["normalised_std"] == pytest.approx(1 / 8, rel=0.02)  # metrics.md §8: 0.125 at d = 64
    assert out["normalised_std_sqrt_d"] == pytest.approx(1.0, rel=0.02)
    assert out["vicreg_variance"] == 0.0 and out["dead_share"] == 0.0
    assert out["vicreg_covariance"] == pytest.approx(9.0**2 * 63 / 8192, rel=0.1)  # Σ_{i≠j} C_ij² / d ≈ σ⁴(d−1)/n
    assert out["rankme"] == pytest.approx(63.5, rel=0.01) and out["rankme_centred"] == pytest.approx(63.5, rel=0.01)
    assert (out["n"], out["dim"]) == (8192, 64)


def test_constant_features_are_collapsed():
    z = np.tile(np.random.default_rng(1).normal(size=(1, 32)), (500, 1))
    out = collapse_diagnostics(torch.from_numpy(z).float())
    assert out["normalised_std"] == pytest.approx(0.0, abs=1e-6)
    assert out["rankme"] == pytest.approx(1.0, abs=1e-4)
    assert np.isnan(out["rankme_centred"])
    assert out["vicreg_variance"] == pytest.approx(0.99, abs=1e-6) and out["vicreg_covariance"] == pytest.approx(0.0)
    assert out["dead_share"] == 1.0


@pytest.mark.parametrize("k", [3, 50])
def test_k_live_dimensions(k):
    # k < d/2 is the case where a median-std reference (metrics.md §8) would see no dead dimension
    rng = np.random.default_rng(k)
    z = np.zeros((2000, 64))
    z[:, rng.choice(64, k, replace=False)] = rng.normal(size=(2000, k)) * rng.uniform(0.5, 2.0, k)
    out = collapse_diagnostics(z)
    assert out["dead_share"] * 64 == pytest.approx(64 - k)
    assert out["rankme"] == pytest.approx(k, rel=0.1)
    assert out["normalised_std_sqrt_d"] < np.sqrt(k / 64) + 0.05


def test_token_spread_and_bad_inputs():
    tokens = np.zeros((4, 6, 3))
    assert token_spread(tokens + np.random.default_rng(2).normal(size=(4, 1, 3))) == pytest.approx(0.0, abs=1e-15)
    tokens[:, ::2], tokens[:, 1::2] = 1.0, -1.0
    assert token_spread(torch.from_numpy(tokens)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="tokens"):
        token_spread(np.ones((4, 3)))
    z = np.random.default_rng(3).normal(size=(40, 3))
    z[[2, 7], 1] = np.nan
    alarm = collapse_diagnostics(z)
    assert alarm["nonfinite_share"] == pytest.approx(0.05) and np.isnan(alarm["rankme"])
    assert collapse_diagnostics(np.ones((12, 3)))["nonfinite_share"] == 0.0
    with pytest.warns(RuntimeWarning, match="4·d"):
        collapse_diagnostics(np.random.default_rng(4).normal(size=(20, 10)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        collapse_diagnostics(np.ones((1, 3)))
    with pytest.raises(ValueError, match="2-D"):
        collapse_diagnostics(np.ones(5))
    with pytest.raises(ValueError, match="dead_ratio"):
        collapse_diagnostics(np.ones((12, 3)), dead_ratio=0.0)


def test_collapse_flag_threshold_and_centred_rankme():
    from jepalab.eval import COLLAPSE_RANK_SHARE, is_collapsed, rankme

    assert COLLAPSE_RANK_SHARE == 0.05
    assert is_collapsed(4.7, 96) and not is_collapsed(4.9, 96)  # threshold 0.05 × 96 = 4.8
    assert is_collapsed(float("nan"), 96) and is_collapsed(float("inf"), 96)
    rng = np.random.default_rng(6)
    spread = rng.normal(size=(2000, 32))
    shifted = spread + 100.0  # a huge mean: the uncentred RankMe sees one direction
    assert rankme(shifted) < 2.0 and rankme(shifted, centre=True) == pytest.approx(rankme(spread, centre=True))
    line = rng.normal(size=(2000, 1)) * rng.normal(size=(1, 32)) + 0.01 * rng.normal(size=(2000, 32))
    stats = collapse_diagnostics(line)
    assert is_collapsed(stats["rankme_centred"], 32)
    assert not is_collapsed(collapse_diagnostics(spread)["rankme_centred"], 32)
