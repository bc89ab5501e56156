"""jepalab.eval.similarity: linear CKA (biased, debiased) and mean CCA / SVCCA against metrics.md §5."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jepalab.eval import linear_cka, mean_cca, shuffled_baseline


def _orthonormal_centred(rng, n, k):
    """k orthonormal columns of length n, each orthogonal to the all-ones vector (centred)."""
    basis, _ = np.linalg.qr(np.hstack([np.ones((n, 1)), rng.normal(size=(n, k))]))
    return basis[:, 1:]


def _pair(seed, n=200, d1=6, d2=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d1)) @ rng.normal(size=(d1, d1))
    y = x[:, :d2] @ rng.normal(size=(d2, d2)) + rng.normal(size=(n, d2))
    return x, y


def _gram_cka(x, y, debiased):
    """The Gram forms of metrics.md §5 on uncentred features: tr(KHLH), or Song et al.'s unbiased HSIC."""
    n = x.shape[0]
    k, l = x @ x.T, y @ y.T
    if not debiased:
        h = np.eye(n) - 1 / n
        hsic = lambda a, b: np.trace(a @ h @ b @ h)  # noqa: E731
    else:
        def hsic(a, b):
            a, b = a - np.diag(np.diag(a)), b - np.diag(np.diag(b))
            one = np.ones(n)
            return (np.trace(a @ b) + (one @ a @ one) * (one @ b @ one) / ((n - 1) * (n - 2))
                    - 2 / (n - 2) * one @ a @ b @ one) / (n * (n - 3))
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_self_rotation_scale_shift(debiased):
    x, _ = _pair(0)
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(6, 6)))
    assert linear_cka(x, x, debiased) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x @ q, debiased) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, -3.5 * x + 11.0, debiased) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.floats(-4, 4), st.floats(-100, 100))
def test_cka_invariances_hypothesis(seed, log_scale, shift):
    x, y = _pair(seed)
    q, _ = np.linalg.qr(np.random.default_rng(seed + 1).normal(size=(4, 4)))
    for debiased in (False, True):
        base = linear_cka(x, y, debiased)
        assert linear_cka(x, 10.0**log_scale * y @ q + shift, debiased) == pytest.approx(base, abs=1e-9)
        assert linear_cka(y, x, debiased) == pytest.approx(base, abs=1e-12)


def test_cka_orthogonal_representations_and_closed_form():
    rng = np.random.default_rng(2)
    basis = _orthonormal_centred(rng, 100, 5)
    assert linear_cka(basis[:, :2] @ rng.normal(size=(2, 3)), basis[:, 2:]) == pytest.approx(0.0, abs=1e-12)
    x = basis[:, :2] * 3.0
    for a, expected in [(2.0, 0.857493), (1.0, 1.0), (1e4, 1 / np.sqrt(2))]:
        assert linear_cka(x, x @ np.diag([1.0, a])) == pytest.approx(expected, abs=1e-6)
    assert (1 + 4) / (np.sqrt(2) * np.sqrt(1 + 16)) == pytest.approx(0.857493, abs=1e-6)


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_gram_form_equals_feature_form(debiased):
    x, y = _pair(3, n=40)
    x, y = x + 5.0, y - 2.0  # uncentred on purpose: both forms must agree without manual centring
    assert linear_cka(x, y, debiased) == pytest.approx(_gram_cka(x, y, debiased), abs=1e-10)


def test_cka_sample_size_bias_and_debiasing():
    # metrics.md §5: independent Gaussians, d1 = d2 = 50, n/d = 10 → biased ≈ 0.09, debiased ≈ 0
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(500, 50)), rng.normal(size=(500, 50))
    assert linear_cka(x, y) == pytest.approx(0.09, abs=0.015)
    assert linear_cka(x, y, debiased=True) == pytest.approx(0.0, abs=0.01)
    baseline = shuffled_baseline(linear_cka, x, x, repeats=3)
    assert baseline.shape == (3,) and np.all(np.abs(baseline - 0.09) < 0.015)


def test_cka_degenerate_and_bad_inputs():
    x, y = _pair(5)
    with pytest.warns(RuntimeWarning, match="no"):
        assert np.isnan(linear_cka(np.ones((10, 3)), x[:10]))
    with pytest.raises(ValueError, match="same number of rows"):
        linear_cka(x, y[:-1])
    with pytest.raises(ValueError, match="at least 4 rows"):
        linear_cka(x[:3], y[:3], debiased=True)
    with pytest.raises(ValueError, match="NaN"):
        linear_cka(np.where(x > 2, np.inf, x), y)


def test_cca_linear_map_gives_all_ones():
    x, _ = _pair(6)
    a = np.random.default_rng(7).normal(size=(6, 6)) + 2 * np.eye(6)
    result = mean_cca(x, x @ a + 4.0)
    assert result.correlations == pytest.approx([1.0] * 6, abs=1e-10)
    assert (result.mean, result.r2, result.dims, result.n) == (pytest.approx(1.0), pytest.approx(1.0), (6, 6), 200)


def test_cca_single_columns_give_absolute_pearson():
    x, y = _pair(8)
    r = np.corrcoef(x[:, 0], y[:, 1])[0, 1]
    assert mean_cca(x[:, :1], -y[:, 1:2]).mean == pytest.approx(abs(r), abs=1e-12)


def test_cca_rho_construction_and_orthogonal_views():
    rng = np.random.default_rng(9)
    q = _orthonormal_centred(rng, 300, 3)
    rho = 0.6
    result = mean_cca(q[:, :2], np.column_stack([q[:, 0], rho * q[:, 1] + np.sqrt(1 - rho**2) * q[:, 2]]))
    assert result.correlations == pytest.approx([1.0, 0.6], abs=1e-12)
    assert result.mean == pytest.approx(0.8, abs=1e-12) and result.r2 == pytest.approx(0.68, abs=1e-12)
    assert float(mean_cca(q[:, :1], q[:, 1:])) == pytest.approx(0.0, abs=1e-12)


def test_cca_qr_form_equals_whitening_form():
    x, y = _pair(10, d1=5, d2=3)
    xc, yc = x - x.mean(0), y - y.mean(0)

    def inverse_sqrt(m):
        w, v = np.linalg.eigh(m)
        return v @ np.diag(w**-0.5) @ v.T

    whitened = inverse_sqrt(xc.T @ xc) @ (xc.T @ yc) @ inverse_sqrt(yc.T @ yc)
    expected = np.linalg.svd(whitened, compute_uv=False)
    assert mean_cca(x, y).correlations == pytest.approx(expected, abs=1e-8)
    assert mean_cca(torch.from_numpy(x), torch.from_numpy(y)).correlations == pytest.approx(expected, abs=1e-8)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31))
def test_cca_invariant_to_invertible_maps(seed):
    x, y = _pair(seed)
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(6, 6)) + 3 * np.eye(6)
    assert mean_cca(x @ a + rng.normal(size=6), y).correlations == pytest.approx(mean_cca(x, y).correlations, abs=1e-8)


def test_cca_drops_rank_deficient_directions_and_svcca_cut():
    x, y = _pair(11)
    duplicated = np.hstack([x, x[:, :2] * 2.0 - x[:, 3:5]])
    assert mean_cca(duplicated, y).dims == (6, 4)
    assert mean_cca(duplicated, y).correlations == pytest.approx(mean_cca(x, y).correlations, abs=1e-8)
    q = _orthonormal_centred(np.random.default_rng(12), 400, 3)
    shaped = q * np.sqrt([50.0, 49.0, 1.0])  # variance shares 0.50, 0.99, 1.00
    result = mean_cca(shaped, shaped, svcca_threshold=0.99)
    assert result.dims == (2, 2) and result.svcca_threshold == 0.99
    assert mean_cca(shaped, shaped, svcca_threshold=0.995).dims == (3, 3)


def test_cca_sample_size_and_warnings():
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(500, 50)), rng.normal(size=(500, 50))
    assert mean_cca(x, y).mean == pytest.approx(0.27, abs=0.03)  # metrics.md §5 at n/d = 10
    with pytest.warns(RuntimeWarning, match="force"):
        assert mean_cca(x[:60], y[:60]).correlations[0] == pytest.approx(1.0)
    with pytest.warns(RuntimeWarning, match="no variance"):
        assert np.isnan(mean_cca(np.ones((20, 2)), x[:20, :2]).mean)
    with pytest.raises(ValueError, match="between 0 and 1"):
        mean_cca(x, y, svcca_threshold=1.5)
    with pytest.raises(ValueError, match="same number of rows"):
        mean_cca(x, y[:10])
    cca_baseline = shuffled_baseline(lambda a, b: mean_cca(a, b, 0.99), x, y, repeats=2, seed=1)
    assert np.all(np.abs(cca_baseline - 0.27) < 0.05)
    with pytest.raises(ValueError, match="repeats"):
        shuffled_baseline(linear_cka, x, y, repeats=0)
