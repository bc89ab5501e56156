"""jepalab.eval.probe: protocol A (ridge, logistic) and B (SGD) against the known answers of metrics.md §4."""

import json

import numpy as np
import pytest
import scipy.optimize
import torch

from jepalab.eval import (
    LOGISTIC_GRID,
    linear_probe,
    logistic_probe,
    ridge_probe,
    sgd_probe,
    standardise,
    stratified_split,
)
from jepalab.eval.probe import _lbfgs


def _one_hot_features(rng, n, classes=10, noise=0.01):
    labels = rng.integers(0, classes, n)
    return np.eye(classes)[labels] + noise * rng.normal(size=(n, classes)), labels


def test_stratified_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(4), [100, 50, 10, 1])
    fit, val = stratified_split(labels, 0.1, seed=3)
    assert np.array_equal(np.sort(np.concatenate([fit, val])), np.arange(161))
    assert [int(np.sum(labels[val] == c)) for c in range(4)] == [10, 5, 1, 0]
    again, _ = stratified_split(labels, 0.1, seed=3)
    other, _ = stratified_split(labels, 0.1, seed=4)
    assert np.array_equal(fit, again) and not np.array_equal(fit, other)
    with pytest.raises(ValueError, match="too few samples"):
        stratified_split([0, 1, 2], 0.1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        stratified_split(labels, 1.0)


def test_standardise_uses_train_statistics_and_a_floor():
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    out_train, out_test = standardise(train, np.array([[2.0, 6.0]]))
    assert out_train == pytest.approx(np.array([[-1.0, 0.0], [1.0, 0.0]]))
    assert out_test == pytest.approx(np.array([[0.0, 1e6]]))


@pytest.mark.parametrize("method", ["ridge", "logistic"])
def test_protocol_a_one_hot_features_are_perfect(method):
    rng = np.random.default_rng(0)
    x, y = _one_hot_features(rng, 1500)
    xt, yt = _one_hot_features(rng, 500)
    result = linear_probe(x, y, xt, yt, method)
    assert result.accuracy == 1.0
    assert (result.protocol, result.method, result.n_train, result.n_test, result.dim) == ("A", method, 1500, 500, 10)
    assert result.value in result.grid and result.n_val == pytest.approx(150, abs=5)
    if method == "logistic":
        assert result.options["final_fit_converged"] in (True, False) and result.options["final_fit_iterations"] >= 1


@pytest.mark.parametrize("method", ["ridge", "logistic"])
def test_protocol_a_shuffled_labels_give_chance(method):
    rng = np.random.default_rng(1)
    x, y = _one_hot_features(rng, 2000, noise=1.0)
    xt, yt = _one_hot_features(rng, 10000, noise=1.0)
    grid = LOGISTIC_GRID[::3] if method == "logistic" else None
    result = linear_probe(x, rng.permutation(y), xt, rng.permutation(yt), method, grid=grid)
    assert result.accuracy == pytest.approx(0.1, abs=0.01)


def test_logistic_solver_reaches_the_scipy_optimum():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(150, 4))
    y = (x @ rng.normal(size=(4, 3)) + rng.normal(size=(150, 3))).argmax(axis=1)
    c = 0.5
    penalty = 1 / (2 * c * 150)

    def objective(theta):
        w, b = theta[:12].reshape(4, 3), theta[12:]
        logits = x @ w + b
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(150), y])) + penalty * np.sum(w**2)
        residual = (p - np.eye(3)[y]) / 150
        return loss, np.concatenate([(x.T @ residual + 2 * penalty * w).ravel(), residual.sum(axis=0)])

    reference = scipy.optimize.minimize(objective, np.zeros(15), jac=True, method="L-BFGS-B",
                                        options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 5000}).x
    weight = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    iterations, converged = _lbfgs(torch.from_numpy(x), torch.from_numpy(y), weight, bias, penalty, 500, 1e-8)
    assert converged and 0 < iterations < 500
    assert weight.detach().numpy() == pytest.approx(reference[:12].reshape(4, 3), abs=1e-5)
    # softmax is shift-invariant per class only through the bias: compare centred biases
    fitted_bias = bias.detach().numpy()
    assert fitted_bias - fitted_bias.mean() == pytest.approx(reference[12:] - reference[12:].mean(), abs=1e-5)


def test_selection_never_reads_the_test_set():
    rng = np.random.default_rng(3)
    x, y = _one_hot_features(rng, 600, classes=4, noise=0.8)
    xt, yt = _one_hot_features(rng, 300, classes=4, noise=0.8)
    for probe in (ridge_probe, logistic_probe):
        honest = probe(x, y, xt, yt)
        shuffled = probe(x, y, xt[::-1], rng.permutation(yt))
        assert (honest.value, honest.val_accuracies) == (shuffled.value, shuffled.val_accuracies)
        assert honest.accuracy != shuffled.accuracy


def test_probe_is_invariant_to_feature_scaling_and_handles_constant_columns():
    rng = np.random.default_rng(4)
    x, y = _one_hot_features(rng, 400, classes=3, noise=0.7)
    xt, yt = _one_hot_features(rng, 200, classes=3, noise=0.7)
    scale = rng.uniform(0.01, 100, 3)
    base = ridge_probe(x, y, xt, yt)
    scaled = ridge_probe(x * scale + 7, y, xt * scale + 7, yt)
    assert (scaled.accuracy, scaled.value) == (base.accuracy, base.value)
    padded = ridge_probe(np.hstack([x, np.ones((400, 1))]), y, np.hstack([xt, 2 * np.ones((200, 1))]), yt)
    assert padded.accuracy == base.accuracy


def test_sgd_probe_protocol_b():
    rng = np.random.default_rng(5)
    x, y = _one_hot_features(rng, 600, classes=5, noise=0.05)
    xt, yt = _one_hot_features(rng, 200, classes=5, noise=0.05)
    result = sgd_probe(x * 30 + 4, y, xt * 30 + 4, yt, epochs=8, batch_size=64, grid=(1e-3, 1e-2))
    assert result.accuracy == 1.0 and result.protocol == "B" and result.regulariser == "lr"
    assert result.options["epochs"] == 8 and result.options["standardised"] is False
    again = sgd_probe(x * 30 + 4, y, xt * 30 + 4, yt, epochs=8, batch_size=64, grid=(1e-3, 1e-2))
    assert again.val_accuracies == result.val_accuracies
    assert linear_probe(x, y, xt, yt, "sgd", grid=(3e-3,)).method == "sgd"


def test_probe_result_records_protocol_and_serialises():
    rng = np.random.default_rng(6)
    x, y = _one_hot_features(rng, 300, classes=3)
    result = linear_probe(torch.from_numpy(x).float(), torch.from_numpy(y), x, y, "ridge", num_classes=4)
    text = str(result)
    assert "protocol A" in text and "lambda/n" in text and "validation" in text
    record = json.loads(json.dumps(result.to_dict()))
    assert record["accuracy"] == result.accuracy and record["num_classes"] == 4
    assert float(result) == result.accuracy


def test_probe_bad_inputs():
    rng = np.random.default_rng(7)
    x, y = _one_hot_features(rng, 100, classes=3)
    with pytest.raises(ValueError, match="method"):
        linear_probe(x, y, x, y, "svm")
    with pytest.raises(ValueError, match="entries"):
        linear_probe(x, y[:-1], x, y)
    with pytest.raises(ValueError, match="same number of features"):
        linear_probe(x, y, x[:, :2], y)
    bad = x.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        linear_probe(bad, y, x, y)
    with pytest.raises(ValueError, match="NaN"):
        linear_probe(x, y, bad, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        linear_probe(x, np.zeros(100, int), x, np.zeros(100, int))
    with pytest.raises(ValueError, match="num_classes"):
        linear_probe(x, y, x, y + 1, num_classes=3)
    with pytest.raises(ValueError, match="grid"):
        ridge_probe(x, y, x, y, grid=())
    with pytest.raises(ValueError, match="2-D"):
        linear_probe(x[:, 0], y, x, y)
