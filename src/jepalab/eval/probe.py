"""Linear probes on frozen features (docs/evaluation.md, "Linear probes"): protocol A (closed-form ridge,
multinomial logistic by full-batch L-BFGS) and protocol B (BatchNorm1d(affine=False) → Linear trained by AdamW,
as the linear probe of MAE, He et al., CVPR 2022).

Every probe picks its regulariser (λ, C or the learning rate) on a stratified, seeded validation split of the
*training* features, refits on all training features and only then touches the test set, once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from jepalab.eval._arrays import as_labels, as_matrix, fraction, positive, same_columns
from jepalab.eval._results import Result
from jepalab.eval.ridge import RIDGE_GRID, RidgePath

__all__ = [
    "LOGISTIC_GRID",
    "PROBE_METHODS",
    "SGD_LR_GRID",
    "ProbeResult",
    "linear_probe",
    "logistic_probe",
    "ridge_probe",
    "sgd_probe",
    "standardise",
    "stratified_split",
]

PROBE_METHODS = ("logistic", "ridge", "sgd")
LOGISTIC_GRID: tuple[float, ...] = tuple(float(v) for v in np.logspace(-4, 2, 7))
"""Inverse L2 strength C (scikit-learn convention) of the logistic probe: 10^−4 … 10^2, one point per decade."""
SGD_LR_GRID: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3)
"""AdamW learning rates tried by the protocol-B probe, chosen on the validation split."""
STD_FLOOR = 1e-6

# (x_fit, y_fit, num_classes, x_eval, grid) -> predicted labels of x_eval, one row per grid value
_FitPredict = Callable[[np.ndarray, np.ndarray, int, np.ndarray, Sequence[float]], np.ndarray]


@dataclass(frozen=True)
class ProbeResult(Result):
    """Test top-1 accuracy of a linear probe, with the protocol and the regulariser chosen on validation data."""

    accuracy: float
    method: str
    protocol: str
    regulariser: str
    value: float
    val_accuracy: float
    grid: tuple[float, ...]
    val_accuracies: tuple[float, ...]
    num_classes: int
    n_train: int
    n_val: int
    n_test: int
    dim: int
    val_fraction: float
    seed: int
    options: dict[str, object] = field(default_factory=dict)

    def __float__(self) -> float:
        return self.accuracy

    def __str__(self) -> str:
        return (
            f"{self.method} probe (protocol {self.protocol}): top-1 {100 * self.accuracy:.2f} % "
            f"[{self.regulariser} = {self.value:.3g} chosen on a {self.val_fraction:.0%} stratified validation "
            f"split of the training features, seed {self.seed}; validation top-1 {100 * self.val_accuracy:.2f} %]"
        )


def stratified_split(labels: object, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit, val) row indices: round(val_fraction · n_c) random rows of each class c go to val, at least one
    row of every class stays in fit. Sorted int64 arrays; ValueError if the validation part would be empty."""
    labels, _ = as_labels("labels", labels, None)
    val_fraction = fraction("val_fraction", val_fraction)
    rng = np.random.default_rng(seed)
    val = []
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        val.append(rows[: min(int(np.floor(val_fraction * rows.size + 0.5)), rows.size - 1)])
    val_rows = np.sort(np.concatenate(val)) if val else np.empty(0, dtype=np.int64)
    if val_rows.size == 0:
        raise ValueError(
            f"too few samples for a {val_fraction:.0%} validation split ({labels.size} rows): "
            "every class needs at least 2 rows and about 1/val_fraction in all"
        )
    fit_rows = np.setdiff1d(np.arange(labels.size), val_rows)
    return fit_rows.astype(np.int64), val_rows.astype(np.int64)


def standardise(train: object, *others: object, floor: float = STD_FLOOR) -> tuple[np.ndarray, ...]:
    """(x − μ)/max(σ, floor) for ``train`` and every array in ``others``, with μ, σ from ``train`` only."""
    train = as_matrix("train", train)
    floor = positive("floor", floor)
    mean, std = train.mean(axis=0), np.maximum(train.std(axis=0), floor)
    out = [(train - mean) / std]
    for index, other in enumerate(others):
        other = as_matrix(f"others[{index}]", other)
        same_columns("train", train, f"others[{index}]", other)
        out.append((other - mean) / std)
    return tuple(out)


def linear_probe(
    train_x: object,
    train_y: object,
    test_x: object,
    test_y: object,
    method: str = "logistic",
    *,
    num_classes: int | None = None,
    grid: Sequence[float] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> ProbeResult:
    """Top-1 test accuracy of a linear probe: ``method`` "logistic" (headline, protocol A), "ridge" (cheap monitor,
    protocol A) or "sgd" (protocol B). ``grid`` overrides the method's regulariser grid. See the method functions."""
    probes: dict[str, Callable[..., ProbeResult]] = {"logistic": logistic_probe, "ridge": ridge_probe, "sgd": sgd_probe}
    if method not in probes:
        raise ValueError(f"method must be one of {PROBE_METHODS}; got {method!r}")
    extra = {} if grid is None else {"grid": grid}
    return probes[method](
        train_x, train_y, test_x, test_y, num_classes=num_classes, val_fraction=val_fraction, seed=seed, **extra
    )


def ridge_probe(
    train_x: object,
    train_y: object,
    test_x: object,
    test_y: object,
    *,
    num_classes: int | None = None,
    grid: Sequence[float] = RIDGE_GRID,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> ProbeResult:
    """Protocol A ridge: standardised features, ridge to one-hot targets for every λ/n in ``grid`` from one
    eigendecomposition, argmax of the scores; ties on validation go to the larger λ."""

    def fit_predict(
        x: np.ndarray, y: np.ndarray, classes: int, x_eval: np.ndarray, values: Sequence[float]
    ) -> np.ndarray:
        path = RidgePath.fit(x, np.eye(classes)[y])
        return path.predict(x_eval, [value * x.shape[0] for value in values]).argmax(axis=2)

    probe = _Probe("ridge", "A", "lambda/n", sorted(_check_grid(grid), reverse=True), True, fit_predict,
                   {"targets": "one-hot, centred"})
    return _select_and_test(probe, train_x, train_y, test_x, test_y, num_classes, val_fraction, seed)


def logistic_probe(
    train_x: object,
    train_y: object,
    test_x: object,
    test_y: object,
    *,
    num_classes: int | None = None,
    grid: Sequence[float] = LOGISTIC_GRID,
    val_fraction: float = 0.1,
    seed: int = 0,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> ProbeResult:
    """Protocol A logistic: standardised features, multinomial logistic regression minimising
    mean cross-entropy + ‖W‖²/(2·C·n) (scikit-learn's C; bias unpenalised) by full-batch L-BFGS in float64,
    warm-started from strong to weak regularisation; ties on validation go to the smaller C.

    ``max_iter`` (scikit-learn's default, 100) bounds each fit: about 0.2 s per iteration on 54k × 784 on one
    core. Whether the final fit converged (max |gradient| ≤ ``tol`` or a loss change below 1e-12 before
    ``max_iter``) is recorded in ``options``; raise ``max_iter`` for converged solutions at weak regularisation."""
    max_iter, tol = int(max_iter), positive("tol", tol)
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1; got {max_iter}")
    final_fit: dict[str, object] = {}  # filled by each fit; the test-time fit runs last

    def fit_predict(
        x: np.ndarray, y: np.ndarray, classes: int, x_eval: np.ndarray, values: Sequence[float]
    ) -> np.ndarray:
        features, targets = torch.from_numpy(x), torch.from_numpy(y)
        weight = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
        predictions = []
        for value in values:
            iterations, converged = _lbfgs(features, targets, weight, bias, 1.0 / (2.0 * value * x.shape[0]),
                                           max_iter, tol)
            final_fit.update(final_fit_iterations=iterations, final_fit_converged=converged)
            with torch.no_grad():
                predictions.append((torch.from_numpy(x_eval) @ weight + bias).argmax(dim=1).numpy())
        return np.stack(predictions)

    probe = _Probe("logistic", "A", "C", sorted(_check_grid(grid)), True, fit_predict,
                   {"solver": "L-BFGS, full batch, float64, strong-Wolfe line search", "max_iter": max_iter,
                    "tol": tol}, final_fit)
    return _select_and_test(probe, train_x, train_y, test_x, test_y, num_classes, val_fraction, seed)


def sgd_probe(
    train_x: object,
    train_y: object,
    test_x: object,
    test_y: object,
    *,
    num_classes: int | None = None,
    grid: Sequence[float] = SGD_LR_GRID,
    val_fraction: float = 0.1,
    seed: int = 0,
    epochs: int = 100,
    batch_size: int = 256,
    device: str = "cpu",
) -> ProbeResult:
    """Protocol B: BatchNorm1d(affine=False, eps=1e-6) → Linear (trunc-normal std 0.01, zero bias), AdamW with
    weight decay 0, cosine schedule to 0 over ``epochs``, shuffled mini-batches (last partial batch dropped);
    the learning rate is chosen on validation from ``grid``, ties to the smaller one. Raw features in: the
    non-affine BatchNorm standardises with training statistics and keeps the probe linear."""
    epochs, batch_size = int(epochs), int(batch_size)
    if epochs < 1 or batch_size < 2:
        raise ValueError(f"epochs must be >= 1 and batch_size >= 2; got {epochs} and {batch_size}")

    def fit_predict(
        x: np.ndarray, y: np.ndarray, classes: int, x_eval: np.ndarray, values: Sequence[float]
    ) -> np.ndarray:
        predictions = []
        for lr in values:
            model = _train_sgd_probe(x, y, classes, lr, epochs, batch_size, seed, device)
            with torch.no_grad():
                scores = model(torch.as_tensor(x_eval, dtype=torch.float32, device=device))
            predictions.append(scores.argmax(dim=1).cpu().numpy())
        return np.stack(predictions)

    probe = _Probe("sgd", "B", "lr", sorted(_check_grid(grid)), False, fit_predict,
                   {"optimizer": "AdamW", "weight_decay": 0.0, "schedule": "cosine", "epochs": epochs,
                    "batch_size": batch_size, "head": "BatchNorm1d(affine=False, eps=1e-6) -> Linear",
                    "device": device})
    return _select_and_test(probe, train_x, train_y, test_x, test_y, num_classes, val_fraction, seed)


@dataclass(frozen=True)
class _Probe:
    """One probe method: its names, its grid in tie-break order (preferred value first) and its fitter.
    ``final_fit`` is a dict the fitter may fill; its state after the last (test-time) fit is recorded."""

    method: str
    protocol: str
    regulariser: str
    grid: list[float]
    standardise: bool
    fit_predict: _FitPredict
    options: dict[str, object]
    final_fit: dict[str, object] = field(default_factory=dict)


def _select_and_test(
    probe: _Probe,
    train_x: object,
    train_y: object,
    test_x: object,
    test_y: object,
    num_classes: int | None,
    val_fraction: float,
    seed: int,
) -> ProbeResult:
    """The protocol shared by every method: select on a validation split of train, refit on train, test once."""
    train = as_matrix("train_x", train_x, min_rows=2)
    test = as_matrix("test_x", test_x)
    same_columns("train_x", train, "test_x", test)
    y_train, classes = as_labels("train_y", train_y, train.shape[0], num_classes)
    y_test, _ = as_labels("test_y", test_y, test.shape[0], classes)
    if classes < 2:
        raise ValueError(f"a probe needs at least 2 classes; got num_classes = {classes}")
    if probe.standardise:
        train, test = standardise(train, test)
    grid = probe.grid
    fit_rows, val_rows = stratified_split(y_train, val_fraction, seed)
    val_predictions = probe.fit_predict(train[fit_rows], y_train[fit_rows], classes, train[val_rows], grid)
    val_accuracies = (val_predictions == y_train[val_rows]).mean(axis=1)
    best = int(np.argmax(val_accuracies))  # the first maximum: the grid's tie-break order
    test_predictions = probe.fit_predict(train, y_train, classes, test, [grid[best]])[0]
    return ProbeResult(
        accuracy=float(np.mean(test_predictions == y_test)),
        method=probe.method,
        protocol=probe.protocol,
        regulariser=probe.regulariser,
        value=grid[best],
        val_accuracy=float(val_accuracies[best]),
        grid=tuple(grid),
        val_accuracies=tuple(float(v) for v in val_accuracies),
        num_classes=classes,
        n_train=train.shape[0],
        n_val=int(val_rows.size),
        n_test=test.shape[0],
        dim=train.shape[1],
        val_fraction=float(val_fraction),
        seed=int(seed),
        options={"standardised": probe.standardise, **probe.options, **probe.final_fit},
    )


def _check_grid(grid: Sequence[float]) -> list[float]:
    values = [float(v) for v in grid]
    if not values:
        raise ValueError("the regulariser grid is empty")
    for value in values:
        positive("every grid value", value)
    return values


def _lbfgs(
    x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, penalty: float, max_iter: int,
    tol: float,
) -> tuple[int, bool]:
    """Minimise mean cross-entropy(x·W + b, y) + penalty·‖W‖² in place, starting from the current W, b;
    returns (iterations, converged): converged unless max_iter ran out with max |gradient| > tol."""
    optimiser = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-12, history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + penalty * (weight * weight).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    iterations = int(optimiser.state[weight].get("n_iter", 0))
    if iterations < max_iter:  # stopped by its gradient or loss-change tolerance
        return iterations, True
    closure()
    return iterations, max(float(weight.grad.abs().max()), float(bias.grad.abs().max())) <= tol


def _train_sgd_probe(
    x: np.ndarray, y: np.ndarray, classes: int, lr: float, epochs: int, batch_size: int, seed: int, device: str
) -> nn.Module:
    """Train the protocol-B head on (x, y); returns it in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    linear = nn.Linear(x.shape[1], classes)
    nn.init.trunc_normal_(linear.weight, std=0.01, generator=generator)
    nn.init.zeros_(linear.bias)
    model = nn.Sequential(nn.BatchNorm1d(x.shape[1], affine=False, eps=1e-6), linear).to(device)
    features = torch.as_tensor(x, dtype=torch.float32, device=device)
    targets = torch.as_tensor(y, dtype=torch.long, device=device)
    n = x.shape[0]
    if n < 2:
        raise ValueError("the SGD probe needs at least 2 training rows (BatchNorm statistics)")
    size = min(batch_size, n)
    per_epoch = n // size
    total = epochs * per_epoch
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / total)))
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(device)
        for batch in range(per_epoch):
            rows = order[batch * size : (batch + 1) * size]
            loss = F.cross_entropy(model(features[rows]), targets[rows])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
    return model.eval()
