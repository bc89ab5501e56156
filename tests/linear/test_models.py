"""Data models: covariance formulas, features() in the diagonal and general cases, samplers, bad inputs."""

import numpy as np
import pytest
import scipy.linalg
import torch

from jepalab.linear import DynamicLinearModel, GaussianViews, StaticLinearModel


def _random_orthogonal(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def test_static_model_lambda_rho_formulas():
    model = StaticLinearModel([2.0, 1.0, 0.5], context_noise_var=[0.0, 1.0, 0.5], target_noise_var=0.3)
    lam, rho, basis = model.features()
    np.testing.assert_allclose(lam, [2.0, 1.0, 0.5])
    np.testing.assert_allclose(rho, [1.0, 0.5, 0.5])
    np.testing.assert_array_equal(basis, np.eye(3))
    _sxx, syx, syy = model.covariances()
    np.testing.assert_allclose(np.diag(syy), [2.3, 1.3, 0.8])
    np.testing.assert_allclose(syx, np.diag([2.0, 1.0, 0.5]))


def test_dynamic_model_rho_is_autocorrelation_without_noise():
    a, q = np.array([0.9, 0.5, -0.2]), np.array([1.0, 2.0, 0.5])
    lam, rho, _ = DynamicLinearModel(a, innovation_var=q).features()
    np.testing.assert_allclose(rho, a)
    np.testing.assert_allclose(lam, a * q / (1 - a**2))
    noisy = DynamicLinearModel(a, innovation_var=q, obs_noise_var=1.0)
    p = q / (1 - a**2)
    np.testing.assert_allclose(noisy.features()[1], a * p / (p + 1.0))
    np.testing.assert_allclose(noisy.features()[0], lam)


def test_general_features_solve_the_generalised_eigenproblem():
    rng = np.random.default_rng(0)
    model = StaticLinearModel(rng.uniform(0.5, 2, 4), rng.uniform(0.1, 1, 4), 0.2, mixing=rng.normal(size=(4, 4)))
    lam, rho, basis = model.features()
    sxx, syx, _ = model.covariances()
    np.testing.assert_allclose(syx @ basis, sxx @ basis * rho, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(basis, axis=0), 1.0)
    assert np.all(np.diff(rho) <= 0)
    np.testing.assert_allclose(lam / np.einsum("ji,jk,ki->i", basis, sxx, basis), rho)
    # in feature coordinates x' = Bᵀx both covariances are diagonal
    for m in (basis.T @ sxx @ basis, basis.T @ syx @ basis):
        assert np.max(np.abs(m - np.diag(np.diag(m)))) < 1e-10


def test_orthogonal_mixing_recovers_the_diagonal_features():
    q = _random_orthogonal(3, 1)
    plain = StaticLinearModel([3.0, 2.0, 1.0], [0.5, 1.0, 2.0])
    mixed = StaticLinearModel([3.0, 2.0, 1.0], [0.5, 1.0, 2.0], mixing=q)
    mixed_sxx = q @ plain.covariances()[0] @ q.T
    lam, rho, basis = GaussianViews(mixed_sxx, q @ plain.covariances()[1] @ q.T, mixed_sxx).features()
    order = np.argsort(-plain.features()[1])
    np.testing.assert_allclose(rho, plain.features()[1][order])
    np.testing.assert_allclose(lam, plain.features()[0][order])
    np.testing.assert_allclose(np.abs(basis), np.abs(q[:, order]), atol=1e-10)
    # StaticLinearModel's context noise is not rotated with the mixing: a genuinely non-diagonal problem
    mixed_basis = mixed.features()[2]
    assert not np.allclose(np.abs(mixed_basis), np.abs(q[:, order]), atol=1e-3)


def test_asymmetric_cross_covariance_is_symmetrised_with_a_warning():
    sxx = np.array([[2.0, 0.3], [0.3, 1.0]])
    syx = np.array([[0.5, 0.2], [0.0, 0.4]])
    with pytest.warns(UserWarning, match="symmetric part"):
        _, rho, _ = GaussianViews(sxx, syx, sxx).features()
    np.testing.assert_allclose(np.sort(rho), np.sort(scipy.linalg.eigh((syx + syx.T) / 2, sxx, eigvals_only=True)))


@pytest.mark.parametrize(
    "model",
    [
        StaticLinearModel([2.0, 1.0, 0.5], [0.5, 0.1, 1.0], [0.2, 0.3, 0.0], mixing=_random_orthogonal(3, 2) * 1.5),
        DynamicLinearModel([0.9, 0.3, -0.5], [1.0, 0.5, 2.0], 0.25),
    ],
)
def test_sampler_empirical_covariances_match(model):
    n = 200_000
    x, y = model.sample(n, torch.Generator().manual_seed(3))
    assert x.shape == y.shape == (n, model.dim) and x.dtype == torch.float64
    sxx, syx, syy = model.covariances()
    for emp, true in ((x.T @ x / n, sxx), (y.T @ x / n, syx), (y.T @ y / n, syy)):
        scale = np.sqrt(np.outer(np.diag(sxx), np.diag(syy)).max())
        assert np.max(np.abs(emp.numpy() - true)) < 6 * scale / np.sqrt(n)


def test_sampler_is_reproducible_and_float32_capable():
    model = StaticLinearModel([1.0, 2.0], 0.5)
    a = model.sample(7, torch.Generator().manual_seed(5))
    b = model.sample(7, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    assert model.sample(3, dtype=torch.float32)[0].dtype == torch.float32


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: GaussianViews(np.eye(2), np.eye(3), np.eye(2)), "sigma_yx"),
        (lambda: GaussianViews([[1.0, 0.5], [0.0, 1.0]], np.zeros((2, 2)), np.eye(2)), "sigma_xx must be symmetric"),
        (lambda: GaussianViews(np.eye(2), 2 * np.eye(2), np.eye(2)), "positive semi-definite"),
        (lambda: GaussianViews(np.zeros((2, 2)), np.zeros((2, 2)), np.eye(2)), "sigma_xx must be positive definite"),
        (lambda: GaussianViews(np.eye(2), [[np.nan, 0], [0, 0]], np.eye(2)), "sigma_yx must be finite"),
        (lambda: GaussianViews(np.ones(3), np.eye(3), np.eye(3)), "sigma_xx must be a non-empty square"),
        (lambda: StaticLinearModel([1.0, -1.0]), "signal_var"),
        (lambda: StaticLinearModel([1.0, 1.0], [0.1, 0.1, 0.1]), "common length"),
        (lambda: StaticLinearModel([1.0, 1.0], -0.1), "context_noise_var"),
        (lambda: StaticLinearModel([1.0, 1.0], mixing=np.eye(3)), "mixing"),
        (lambda: StaticLinearModel(1.0), "common length"),
        (lambda: DynamicLinearModel([0.5, 1.0]), "autocorr"),
        (lambda: DynamicLinearModel([0.5], innovation_var=0.0), "innovation_var"),
        (lambda: DynamicLinearModel([0.5], obs_noise_var=-1), "obs_noise_var"),
        (lambda: StaticLinearModel([1.0]).sample(0), "n must be"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_scalar_parameters_with_dim():
    model = StaticLinearModel(1.0, 0.5, dim=3)
    np.testing.assert_allclose(model.features()[1], [2 / 3] * 3)
