import numpy as np
import pytest
import torch

from jepalab.eval import rankme


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


def test_rankme_zero_singular_value_and_degenerate_inputs():
    assert np.isfinite(rankme(np.diag([1.0, 0.0]), eps=0.0))
    with pytest.warns(RuntimeWarning):
        assert np.isnan(rankme(np.zeros((5, 3))))
    with pytest.raises(ValueError, match="NaN or inf"):
        rankme(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        rankme(np.ones(4))
