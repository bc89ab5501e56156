"""Similarity of two representations of the same images: linear CKA (Kornblith et al., ICML 2019,
arXiv 1905.00414), its debiased form (Song et al., JMLR 2012; Nguyen et al., arXiv 2010.15327), mean CCA and SVCCA
(Raghu et al., NeurIPS 2017, arXiv 1706.05806). Rows of the two arrays must be paired by image."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from jepalab.eval._arrays import as_matrix, fraction, same_rows
from jepalab.eval._results import Result

__all__ = ["CcaResult", "linear_cka", "mean_cca", "shuffled_baseline"]

RANK_TOL = 1e-10
"""Directions with singular value below RANK_TOL · σ_max are dropped before CCA."""


def linear_cka(a: object, b: object, debiased: bool = False) -> float:
    """Linear CKA = HSIC(K, L)/√(HSIC(K, K)·HSIC(L, L)), K = AAᵀ, L = BBᵀ, computed in feature form on centred
    A (n, d1), B (n, d2): ‖BᵀA‖_F² / (‖AᵀA‖_F·‖BᵀB‖_F). ``debiased=True`` uses the unbiased HSIC estimator
    (n ≥ 4; may be negative). NaN with a warning when a representation has no variance."""
    x, y = _paired(a, b, min_rows=4 if debiased else 2)
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    cross, self_x, self_y = _squared_frobenius(y.T @ x), _squared_frobenius(x.T @ x), _squared_frobenius(y.T @ y)
    if debiased:
        rows_x, rows_y = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
        cross = _unbiased_hsic(cross, rows_x, rows_y)
        self_x = _unbiased_hsic(self_x, rows_x, rows_x)
        self_y = _unbiased_hsic(self_y, rows_y, rows_y)
    if self_x <= 0 or self_y <= 0:
        warnings.warn("linear_cka: a representation has no (estimated) variance; returning NaN", RuntimeWarning,
                      stacklevel=2)
        return float("nan")
    return float(cross / np.sqrt(self_x * self_y))


@dataclass(frozen=True)
class CcaResult(Result):
    """Canonical correlations ρ_1 ≥ … ≥ ρ_m of two paired representations; ``mean`` = mean(ρ), ``r2`` = mean(ρ²).
    ``dims`` are the directions kept per view (after the rank cut, and the SVCCA cut when a threshold is set)."""

    mean: float
    r2: float
    correlations: tuple[float, ...]
    dims: tuple[int, int]
    svcca_threshold: float | None
    n: int

    def __float__(self) -> float:
        return self.mean


def mean_cca(a: object, b: object, svcca_threshold: float | None = None) -> CcaResult:
    """Mean CCA: ρ = singular values of Q_aᵀ·Q_b, Q orthonormal bases (from the SVD) of the centred column spaces,
    directions with σ < 1e-10·σ_max dropped. ``svcca_threshold`` (e.g. 0.99) first keeps, per view, the leading
    singular directions holding that share of the variance (SVCCA). Warns when ρ = 1 is forced by too few rows;
    NaN with a warning when a representation has no variance."""
    x, y = _paired(a, b, min_rows=2)
    if svcca_threshold is not None:
        svcca_threshold = fraction("svcca_threshold", svcca_threshold)
    basis_x, basis_y = _basis(x, svcca_threshold), _basis(y, svcca_threshold)
    if basis_x.shape[1] == 0 or basis_y.shape[1] == 0:
        warnings.warn("mean_cca: a representation has no variance (all rows equal); returning NaN", RuntimeWarning,
                      stacklevel=2)
        return CcaResult(float("nan"), float("nan"), (), (basis_x.shape[1], basis_y.shape[1]), svcca_threshold,
                         x.shape[0])
    forced = basis_x.shape[1] + basis_y.shape[1] - (x.shape[0] - 1)
    if forced > 0:
        warnings.warn(f"mean_cca: {basis_x.shape[1]} + {basis_y.shape[1]} directions in n = {x.shape[0]} rows force "
                      f"{forced} canonical correlation(s) to 1; use n >> dims", RuntimeWarning, stacklevel=2)
    rho = np.clip(np.linalg.svd(basis_x.T @ basis_y, compute_uv=False), 0.0, 1.0)
    return CcaResult(
        mean=float(rho.mean()), r2=float(np.mean(rho**2)), correlations=tuple(float(r) for r in rho),
        dims=(basis_x.shape[1], basis_y.shape[1]), svcca_threshold=svcca_threshold, n=x.shape[0],
    )


def shuffled_baseline(
    similarity: Callable[[np.ndarray, np.ndarray], object], a: object, b: object, repeats: int = 5, seed: int = 0
) -> np.ndarray:
    """``float(similarity(a, b[π]))`` for ``repeats`` seeded row permutations π: the value that unpaired rows of
    the same sizes give (the chance level to print next to any CKA or CCA)."""
    x, y = _paired(a, b, min_rows=2)
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    rng = np.random.default_rng(seed)
    return np.array([float(similarity(x, y[rng.permutation(y.shape[0])])) for _ in range(repeats)])


def _paired(a: object, b: object, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_matrix("a", a, min_rows), as_matrix("b", b, min_rows)
    same_rows("a", x, "b", y)
    return x, y


def _squared_frobenius(matrix: np.ndarray) -> float:
    return float(np.sum(matrix * matrix))


def _unbiased_hsic(trace_kl: float, diag_k: np.ndarray, diag_l: np.ndarray) -> float:
    """n(n−3)·HSIC_u for centred features, from tr(KL), diag K and diag L (K1 = L1 = 0 after centring):
    tr(KL) − n/(n−2)·diag K·diag L + tr K·tr L/((n−1)(n−2))."""
    n = diag_k.size
    return float(trace_kl - n / (n - 2) * (diag_k @ diag_l) + diag_k.sum() * diag_l.sum() / ((n - 1) * (n - 2)))


def _basis(x: np.ndarray, svcca_threshold: float | None) -> np.ndarray:
    """Orthonormal basis (n, k) of the centred column space, rank-deficient (and, for SVCCA, low-variance)
    directions dropped; k = 0 when all rows are equal."""
    u, sigma, _ = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    if sigma[0] <= 0:
        return u[:, :0]
    keep = int(np.sum(sigma >= RANK_TOL * sigma[0]))
    if svcca_threshold is not None:
        share = np.cumsum(sigma[:keep] ** 2) / np.sum(sigma[:keep] ** 2)
        keep = min(keep, int(np.searchsorted(share, svcca_threshold - 1e-12)) + 1)
    return u[:, :keep]
