"""Noisy-feature dependence (after Littwin et al., "How JEPA Avoids Noisy Features", NeurIPS 2024): the R² with
which a linear read-out of the embedding recovers an injected distractor's amplitude, by closed-form ridge
(``RidgePath``) with λ chosen on held-out training rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jepalab.eval._arrays import as_matrix, as_targets, fraction, same_columns
from jepalab.eval._results import Result
from jepalab.eval.probe import standardise
from jepalab.eval.ridge import RIDGE_GRID, RidgePath

__all__ = ["DecodingResult", "distractor_r2"]


@dataclass(frozen=True)
class DecodingResult(Result):
    """Out-of-sample R² = 1 − SSE/SST of a ridge read-out, averaged over target columns, with its settings;
    ``lambdas`` are the λ/n chosen per fold (one entry for a train/test split)."""

    r2: float
    r2_per_output: tuple[float, ...]
    scheme: str
    lambdas: tuple[float, ...]
    n_train: int
    n_test: int
    dim: int
    val_fraction: float
    seed: int

    def __float__(self) -> float:
        return self.r2


def distractor_r2(
    embeddings: object,
    amplitude: object,
    *,
    test_embeddings: object | None = None,
    test_amplitude: object | None = None,
    folds: int = 5,
    grid: Sequence[float] = RIDGE_GRID,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> DecodingResult:
    """R² of decoding ``amplitude`` (n,) or (n, k) from ``embeddings`` (n, d) with ridge regression.

    Without a test set: ``folds``-fold cross-validation over seeded random folds; the R² is computed on the pooled
    out-of-fold predictions. With ``test_embeddings``/``test_amplitude``: fit on all given rows, R² on the test rows.
    Each fit standardises with its training rows, picks λ/n from ``grid`` by the variance-scaled squared error on a
    random ``val_fraction`` of them (ties to the larger λ), then refits on all its training rows. R² ≤ 1; 0 is the
    mean.
    """
    x = as_matrix("embeddings", embeddings, min_rows=4)
    y = as_targets("amplitude", amplitude, x.shape[0])
    val_fraction = fraction("val_fraction", val_fraction)
    lambdas = sorted((float(g) for g in grid), reverse=True)
    if not lambdas or min(lambdas) <= 0:
        raise ValueError("grid must hold at least one λ/n > 0")
    rng = np.random.default_rng(seed)
    if (test_embeddings is None) != (test_amplitude is None):
        raise ValueError("pass both test_embeddings and test_amplitude, or neither")
    if test_embeddings is not None:
        x_test = as_matrix("test_embeddings", test_embeddings)
        same_columns("embeddings", x, "test_embeddings", x_test)
        y_test = as_targets("test_amplitude", test_amplitude, x_test.shape[0])
        if y_test.shape[1] != y.shape[1]:
            raise ValueError(f"test_amplitude has {y_test.shape[1]} columns but amplitude has {y.shape[1]}")
        chosen, predictions = _fit_predict(x, y, x_test, lambdas, val_fraction, rng)
        scheme, choices, n_test = "train/test", [chosen], x_test.shape[0]
    else:
        if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or not 2 <= folds <= x.shape[0] // 2:
            raise ValueError(f"folds must be an integer in 2..n/2 = {x.shape[0] // 2}; got {folds!r}")
        y_test, predictions, choices = y, np.empty_like(y), []
        for held_out in np.array_split(rng.permutation(x.shape[0]), folds):
            kept = np.setdiff1d(np.arange(x.shape[0]), held_out)
            chosen, predictions[held_out] = _fit_predict(x[kept], y[kept], x[held_out], lambdas, val_fraction, rng)
            choices.append(chosen)
        scheme, n_test = f"{folds}-fold cross-validation", x.shape[0]
    per_output = _r2(y_test, predictions[None])[0]
    return DecodingResult(
        r2=float(per_output.mean()), r2_per_output=tuple(float(v) for v in per_output), scheme=scheme,
        lambdas=tuple(choices), n_train=x.shape[0], n_test=n_test, dim=x.shape[1], val_fraction=val_fraction,
        seed=int(seed),
    )


def _fit_predict(
    x: np.ndarray, y: np.ndarray, x_eval: np.ndarray, lambdas: list[float], val_fraction: float,
    rng: np.random.Generator,
) -> tuple[float, np.ndarray]:
    """(chosen λ/n, predictions for x_eval): select λ on a random validation part of (x, y), refit on all of it."""
    x, x_eval = standardise(x, x_eval)
    order = rng.permutation(x.shape[0])
    n_val = min(max(1, round(val_fraction * x.shape[0])), x.shape[0] - 2)
    val, fit = order[:n_val], order[n_val:]
    errors = y[val][None] - RidgePath.fit(x[fit], y[fit]).predict(x[val], [g * fit.size for g in lambdas])
    scale = np.maximum(y.var(axis=0), np.finfo(float).tiny)  # each output's error in units of its variance
    best = int(np.argmin(np.sum(errors**2 / scale, axis=(1, 2))))
    return lambdas[best], RidgePath.fit(x, y).predict(x_eval, [lambdas[best] * x.shape[0]])[0]


def _r2(y: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """R² per (candidate, output) for predictions (L, n, k) of targets y (n, k)."""
    total = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    if np.any(total <= 0):
        raise ValueError("the amplitude has no variance on the evaluated rows; R² is undefined")
    return 1.0 - np.sum((y[None] - predictions) ** 2, axis=1) / total
