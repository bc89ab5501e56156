"""Closed-form ridge regression over a whole λ grid from one eigendecomposition (the ridge probe of
protocol A, docs/evaluation.md "Linear probes")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jepalab.eval._arrays import as_matrix, as_targets, same_columns

__all__ = ["RIDGE_GRID", "RidgePath"]

RIDGE_GRID: tuple[float, ...] = tuple(float(v) for v in np.logspace(-6, 2, 25))
"""Default regularisation grid, as λ/n (n = rows used for the fit): 10^−6 … 10^2, 25 points."""


@dataclass(frozen=True)
class RidgePath:
    """Ridge fit Y ≈ X·W_λ + b_λ for every λ: with centred X, Y and XᵀX = V·diag(e)·Vᵀ,
    W_λ = V·diag(1/(e + λ))·VᵀXᵀY and b_λ = Ȳ − X̄·W_λ (intercept not penalised). Build it with ``RidgePath.fit``.
    """

    x_mean: np.ndarray  # (d,)
    y_mean: np.ndarray  # (k,)
    eigenvalues: np.ndarray  # (d,) of XᵀX on centred X, clipped at 0
    eigenvectors: np.ndarray  # (d, d), columns
    projected: np.ndarray  # (d, k) = Vᵀ·XᵀY on centred X and Y
    n_samples: int

    @classmethod
    def fit(cls, x: object, y: object) -> RidgePath:
        """Centre X (n, d) and Y (n, k) or (n,), and eigendecompose XᵀX once (float64)."""
        x = as_matrix("x", x, min_rows=2)
        y = as_targets("y", y, x.shape[0])
        x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
        xc = x - x_mean
        eigenvalues, eigenvectors = np.linalg.eigh(xc.T @ xc)
        projected = eigenvectors.T @ (xc.T @ (y - y_mean))
        return cls(x_mean, y_mean, np.clip(eigenvalues, 0.0, None), eigenvectors, projected, x.shape[0])

    def coef(self, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """(W_λ (d, k), b_λ (k,)) for one λ > 0 (absolute, not divided by n)."""
        weights = self.eigenvectors @ (self.projected / (self.eigenvalues + _check_lambda(lam))[:, None])
        return weights, self.y_mean - self.x_mean @ weights

    def predict(self, x: object, lams: Sequence[float]) -> np.ndarray:
        """Predictions X·W_λ + b_λ for every λ in ``lams``: shape (len(lams), n, k)."""
        x = as_matrix("x", x)
        same_columns("x", x, "the fitted features", self.eigenvectors)
        rotated = (x - self.x_mean) @ self.eigenvectors
        return np.stack(
            [rotated @ (self.projected / (self.eigenvalues + _check_lambda(lam))[:, None]) + self.y_mean
             for lam in lams]
        )


def _check_lambda(lam: float) -> float:
    if not np.isfinite(lam) or lam <= 0:
        raise ValueError(f"ridge lambda must be a finite number > 0; got {lam!r}")
    return float(lam)
