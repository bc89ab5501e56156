"""Spectral summaries of embedding matrices: RankMe (Garrido et al., ICML 2023, arXiv 2210.02885)."""

from __future__ import annotations

import warnings

import numpy as np

from jepalab.eval._arrays import as_matrix

__all__ = ["rankme"]


def rankme(z: object, eps: float = 1e-7, centre: bool = False) -> float:
    """RankMe(Z) = exp(−Σ p_k log p_k), p_k = σ_k / Σσ + ε, σ the singular values of Z (n, d).

    The paper uses Z as is (``centre=False``); ``centre=True`` subtracts the column mean first, so a mean
    offset does not take the top singular value (metrics.md §1). Returns NaN, with a warning, for an all-zero
    Z. Computed in float64.
    """
    matrix = as_matrix("z", z)
    if eps < 0:
        raise ValueError(f"eps must be >= 0; got {eps}")
    if centre:
        matrix = matrix - matrix.mean(axis=0, keepdims=True)
    sigma = np.linalg.svd(matrix, compute_uv=False)
    total = sigma.sum()
    if total <= 0:
        warnings.warn("rankme: all singular values are zero; returning NaN", RuntimeWarning, stacklevel=2)
        return float("nan")
    p = sigma / total + eps
    entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0))
    return float(np.exp(entropy))
