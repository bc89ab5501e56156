"""Input handling shared by the metrics: numpy or torch arrays in, validated float64 matrices out."""

from __future__ import annotations

import numpy as np


def as_matrix(name: str, value: object, min_rows: int = 1) -> np.ndarray:
    """A finite float64 (n, d) matrix from a numpy array, torch tensor or nested list; ValueError otherwise."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric (n, d) array") from error
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n samples, d features); got shape {matrix.shape}")
    if matrix.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows; got {matrix.shape[0]}")
    if not np.all(np.isfinite(matrix)):
        bad = int(np.sum(~np.isfinite(matrix).all(axis=1)))
        raise ValueError(f"{name} contains NaN or inf in {bad} row(s); embeddings must be finite")
    return matrix
