"""The simulator: gradients vs autograd and finite differences, invariants, theory agreement, batching, I/O."""

import json

import numpy as np
import pytest
import torch

from jepalab.linear import (
    EMA,
    Flow,
    GaussianViews,
    Optim,
    Sampling,
    StaticLinearModel,
    crossing_times,
    initial_parameters,
    loss_and_gradients,
    save_result,
    train,
)
from jepalab.theory import critical_time, fixed_point, trajectory

LAM = np.array([1.0, 0.9667, 0.9333, 0.9])
RHO = np.array([0.4, 0.55, 0.7, 0.85])
PAPER = GaussianViews(np.diag(LAM / RHO), np.diag(LAM), np.diag(LAM / RHO))


def _random_problem(seed, d=3, depth=3, runs=2):
    rng = np.random.default_rng(seed)
    model = StaticLinearModel(rng.uniform(0.5, 2, d), rng.uniform(0.1, 1, d), 0.3, mixing=rng.normal(size=(d, d)))
    params = torch.as_tensor(rng.normal(size=(depth + 1, runs, d, d)) * 0.7)
    return model, params


def _autograd_loss(params, sxx, syx, syy, objective, target=None):
    """½E‖V W̄ x − T y‖² written directly as a trace, the target detached (stop-gradient)."""
    depth = params.shape[0] - 1
    wbar = params[0]
    for layer in params[1:depth]:
        wbar = layer @ wbar
    a = params[depth] @ wbar
    if target is None:
        target = wbar.detach() if objective == "jepa" else torch.eye(sxx.shape[0], dtype=sxx.dtype).expand_as(wbar)
    t = target
    quad = torch.einsum("rij,jk,rik->r", a, sxx, a)
    cross = torch.einsum("rij,jk,rik->r", t, syx, a)
    const = torch.einsum("rij,jk,rik->r", t, syy, t)
    return 0.5 * quad - cross + 0.5 * const


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.parametrize("depth", [1, 2, 4])
def test_gradients_match_autograd_and_loss(objective, depth):
    model, params = _random_problem(depth, depth=depth)
    sxx, syx, syy = (torch.as_tensor(c) for c in model.covariances())
    p = params.clone().requires_grad_(True)
    ref = _autograd_loss(p, sxx, syx, syy, objective)
    ref.sum().backward()
    for backend in (lambda x: x, lambda x: x.numpy()):
        grads, loss = loss_and_gradients(backend(params), backend(sxx), backend(syx), objective, sigma_yy=backend(syy))
        np.testing.assert_allclose(np.asarray(grads), p.grad.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(np.asarray(loss), ref.detach().numpy(), rtol=1e-12)


def test_gradient_with_explicit_target_matches_finite_differences():
    model, params = _random_problem(7, d=2, depth=2, runs=1)
    sxx, syx, syy = (c for c in model.covariances())
    target = np.random.default_rng(1).normal(size=(1, 2, 2))
    p0 = params.numpy()
    grads, _ = loss_and_gradients(p0, sxx, syx, "jepa", target)
    h = 1e-6
    for index in np.ndindex(p0.shape):
        plus, minus = p0.copy(), p0.copy()
        plus[index] += h
        minus[index] -= h
        fd = (loss_and_gradients(plus, sxx, syx, "jepa", target, syy)[1] -
              loss_and_gradients(minus, sxx, syx, "jepa", target, syy)[1])[0] / (2 * h)
        assert abs(fd - grads[index]) < 1e-7 * max(1.0, abs(fd))


def test_minibatch_gradient_is_the_gradient_of_the_minibatch_loss():
    model, params = _random_problem(3, d=3, depth=2, runs=1)
    x, y = model.sample(64, torch.Generator().manual_seed(0))
    p = params.clone().requires_grad_(True)
    wbar = p[1] @ p[0]
    pred = x @ (p[2] @ wbar)[0].T
    loss = 0.5 * ((pred - y @ wbar[0].detach().T) ** 2).sum(1).mean()
    loss.backward()
    grads, _ = loss_and_gradients(params, x.T @ x / 64, y.T @ x / 64, "jepa")
    torch.testing.assert_close(grads, p.grad, rtol=1e-10, atol=1e-12)


def test_aligned_init_is_balanced_dense_and_has_product_eps():
    eps = np.array([[1e-3, 2e-3, 5e-3]])
    params = initial_parameters("aligned", 3, eps, np.eye(3), [4]).numpy()
    wbar = params[2, 0] @ params[1, 0] @ params[0, 0]
    np.testing.assert_allclose(wbar, np.diag(eps[0]), atol=1e-15)
    np.testing.assert_allclose(params[3, 0], np.diag(eps[0] ** (1 / 3)))
    assert np.min(np.abs(params[1, 0])) > 1e-6  # middle layers are dense rotations, not diagonal
    for a in range(3):
        upper, lower = params[a + 1, 0], params[a, 0]
        np.testing.assert_allclose(upper.T @ upper, lower @ lower.T, atol=1e-15)


@pytest.mark.parametrize(("objective", "depth", "eps", "lr", "steps"), [("mae", 2, 1e-2, 0.01, 2000),
                                                                       ("jepa", 2, 1e-2, 0.05, 14000)])
def test_aligned_gd_matches_the_theory(objective, depth, eps, lr, steps):
    result = train(PAPER, objective, depth, eps, steps, lr, record_every=10)
    theory = trajectory(objective, LAM, RHO, depth, eps, result.times[0])
    w_star = fixed_point(objective, RHO, depth)
    assert np.max(np.abs(result.amplitude[0] - theory) / w_star) < 2e-2
    t_star = critical_time(objective, LAM, RHO, depth, eps)
    np.testing.assert_allclose(result.critical_times[0], t_star, rtol=5e-3)
    np.testing.assert_allclose(result.predictor_diag[0, -1], theory[-1] ** (1 / depth), rtol=2e-2)


def test_flow_matches_theory_critical_times_and_conserves_invariants():
    t_star = critical_time("jepa", LAM, RHO, 3, 1e-3)
    result = train(PAPER, "jepa", 3, 1e-3, 3000, 1.2 * t_star.max() / 3000, method="flow")
    np.testing.assert_allclose(result.critical_times[0], t_star, rtol=2e-3)
    assert result.orders()[0] == [3, 2, 1, 0]
    assert result.balance_drift.max() < 1e-8
    gd = train(PAPER, "mae", 2, 0.1, 300, 0.1, init="balanced")
    flow = train(PAPER, "mae", 2, 0.1, 300, 0.1, init="balanced", method="flow")
    assert flow.balance_drift.max() < 1e-8 < 1e-4 < gd.balance_drift.max()


def test_batched_runs_equal_individual_runs():
    model, _ = _random_problem(5, d=3)
    batched = train(model, "mae", 2, 0.05, 200, np.array([0.05, 0.02, 0.05]), init="balanced", runs=3, seed=10)
    for r in range(3):
        single = train(model, "mae", 2, 0.05, 200, [0.05, 0.02, 0.05][r], init="balanced", seed=10 + r)
        np.testing.assert_allclose(batched.amplitude[r], single.amplitude[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(batched.final_params[:, r], single.final_params[:, 0], rtol=1e-12, atol=1e-15)
    assert not np.allclose(batched.amplitude[0], batched.amplitude[2])


def test_ema_with_momentum_zero_equals_stopgrad_and_momentum_changes_it():
    stop = train(PAPER, "jepa", 2, 0.05, 400, 0.1, init="gaussian")
    ema0 = train(PAPER, "jepa", 2, 0.05, 400, 0.1, init="gaussian", target=EMA(0.0))
    ema9 = train(PAPER, "jepa", 2, 0.05, 400, 0.1, init="gaussian", target=EMA(0.9))
    np.testing.assert_allclose(ema0.final_params, stop.final_params, rtol=1e-12, atol=1e-15)
    assert np.max(np.abs(ema9.final_params - stop.final_params)) > 1e-6


@pytest.mark.parametrize("gradients", ["minibatch", "dataset"])
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adamw"])
def test_sampled_gradients_and_optimisers_learn_the_features(gradients, optimizer):
    lr = {"gd": 0.05, "momentum": 0.005, "adamw": 0.002}[optimizer]
    result = train(PAPER, "mae", 1, 0.05, 1000, lr, gradients=Sampling(gradients, batch_size=256, n_samples=4096),
                   optimizer=optimizer)
    final = result.amplitude[0, -1] / result.fixed_point
    assert np.all(np.abs(final - 1) < 0.25), final


def test_full_dataset_batch_is_deterministic_gd_on_the_empirical_loss():
    a = train(PAPER, "mae", 1, 0.05, 200, 0.05, gradients=Sampling("dataset", n_samples=100, batch_size=100))
    b = train(PAPER, "mae", 1, 0.05, 200, 0.05, gradients=Sampling("dataset", n_samples=100, batch_size=1000))
    np.testing.assert_array_equal(a.final_params, b.final_params)
    pop = train(PAPER, "mae", 1, 0.05, 200, 0.05)
    assert np.max(np.abs(a.final_params - pop.final_params)) > 1e-4


def test_crossing_times_interpolates():
    times = np.array([[0.0, 1.0, 2.0, 3.0]])
    values = np.array([[[0.0, 5.0, 0.0], [1.0, 5.0, 0.0], [3.0, 5.0, 0.0], [4.0, 5.0, 0.0]]])
    out = crossing_times(times, values, np.array([2.0, 1.0, 1.0]))
    np.testing.assert_allclose(out, [[1.5, 0.0, np.inf]])


def test_save_writes_npz_csv_and_json(tmp_path):
    result = train(PAPER, "mae", 2, 0.01, 50, 0.1, record_every=10, runs=2)
    paths = save_result(result, tmp_path)
    assert {p.name for p in paths} == {"result.npz", "result.csv", "result_critical_times.csv", "result.json"}
    with np.load(tmp_path / "result.npz") as npz:
        np.testing.assert_array_equal(npz["amplitude"], result.amplitude)
        assert npz["final_params"].shape == (3, 2, 4, 4)
    lines = (tmp_path / "result.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 6 and "amplitude_3" in lines[0]
    assert json.loads((tmp_path / "result.json").read_text())["objective"] == "mae"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"objective": "byol"}, "objective"),
        ({"depth": 0}, "depth"),
        ({"eps": 1.5}, "eps"),
        ({"eps": [0.1, 0.2]}, "eps"),
        ({"lr": -1.0}, "lr"),
        ({"steps": 0}, "steps"),
        ({"target": "ema", "objective": "mae"}, "target='ema'"),
        ({"method": "flow", "gradients": "minibatch"}, "method='flow'"),
        ({"init": "orthogonal"}, "init"),
        ({"init": ([np.eye(4)], np.eye(4))}, "depth is 2"),
        ({"init": "balanced", "eps": [0.1, 0.2, 0.3, 0.4]}, "per-feature eps"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"record_every": 0}, "record_every"),
        ({"method": "euler"}, "method"),
        ({"gradients": "online"}, "gradients"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    args = {"objective": "jepa", "depth": 2, "eps": 0.01, "steps": 10, "lr": 0.1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        train(PAPER, args.pop("objective"), args.pop("depth"), args.pop("eps"), args.pop("steps"), args.pop("lr"),
              **args)


@pytest.mark.parametrize(
    ("make", "name"),
    [(lambda: EMA(1.0), "momentum"), (lambda: EMA((0.5, 0.9, 0.99)), "momentum"), (lambda: Optim("sgd"), "optimizer"),
     (lambda: Sampling("minibatch", batch_size=0), "batch_size"), (lambda: Flow("euler"), "solver")],
)
def test_bad_grouped_options_raise_value_error_naming_them(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_rotated_problem_in_its_feature_basis_matches_the_theory():
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(4, 4)))
    rotated = GaussianViews(q @ np.diag(LAM / RHO) @ q.T, q @ np.diag(LAM) @ q.T, q @ np.diag(LAM / RHO) @ q.T)
    t_star = critical_time("mae", LAM, RHO, 2, 1e-2)
    result = train(rotated, "mae", 2, 1e-2, 500, 1.5 * t_star.max() / 500, method="flow")
    order = np.argsort(-RHO)  # features() sorts by decreasing ρ
    np.testing.assert_allclose(result.critical_times[0], t_star[order], rtol=1e-5)
    np.testing.assert_allclose(result.amplitude[0, 0], 1e-2, rtol=1e-10)


def test_flow_solvers_agree_and_batch_with_a_sparse_jacobian():
    kw = {"init": "balanced", "runs": 2, "seed": 2, "record_times": [0.0, 5.0, 12.0]}
    lsoda = train(PAPER, "mae", 2, 0.1, 120, 0.1, method="flow", **kw)
    bdf = train(PAPER, "mae", 2, 0.1, 120, 0.1, method=Flow("BDF", rtol=1e-9), **kw)
    np.testing.assert_array_equal(lsoda.steps, [0, 50, 120])
    np.testing.assert_allclose(bdf.final_params, lsoda.final_params, atol=1e-5)
    np.testing.assert_allclose(bdf.critical_times, lsoda.critical_times, rtol=1e-4)


@pytest.mark.parametrize("kwargs", [{"target": EMA((0.5, 0.9)), "init": "balanced"},
                                    {"gradients": Sampling("minibatch", batch_size=64), "optimizer": "adamw"},
                                    {"gradients": Sampling("dataset", n_samples=128, batch_size=32),
                                     "optimizer": Optim("momentum", momentum=0.8)}])
def test_torch_backend_matches_numpy_backend(monkeypatch, kwargs):
    """The tensor code path (used on CUDA) run on CPU tensors gives the numpy path's numbers."""
    import jepalab.linear.simulate.training as training

    rotated = StaticLinearModel([1.0, 0.8, 0.6], [0.5, 0.2, 0.4], 0.1, mixing=np.eye(3) + 0.2)
    ref = train(rotated, "jepa", 2, 0.05, 150, 0.05, runs=2, **kwargs)
    monkeypatch.setattr(training, "_numpy_backend", lambda device: False)
    tensors = train(rotated, "jepa", 2, 0.05, 150, 0.05, runs=2, **kwargs)
    np.testing.assert_allclose(tensors.final_params, ref.final_params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(tensors.loss, ref.loss, rtol=1e-9)
    np.testing.assert_allclose(tensors.critical_times, ref.critical_times, rtol=1e-9)
