"""Spectral summaries of embedding matrices: RankMe (Garrido et al., ICML 2023, arXiv 2210.02885) and LiDAR
(Thilak et al., ICLR 2024, arXiv 2312.04000); see docs/evaluation.md, "RankMe" and "LiDAR"."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from jepalab.eval._arrays import as_matrix, as_vector, positive
from jepalab.eval._results import Result

__all__ = ["LidarResult", "lidar", "rankme"]


def rankme(z: object, eps: float = 1e-7, centre: bool = False) -> float:
    """RankMe(Z) = exp(−Σ p_k log p_k), p_k = σ_k / Σσ + ε, σ the singular values of Z (n, d).

    The paper uses Z as is (``centre=False``); ``centre=True`` subtracts the column mean first, so a mean
    offset does not take the top singular value. Returns NaN, with a warning, for an all-zero
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
    return _entropy_rank(sigma / total + eps)


@dataclass(frozen=True)
class LidarResult(Result):
    """LiDAR with its settings. ``within_min_eigenvalue`` is the smallest eigenvalue of the within-class
    covariance before δ·I is added: when it is not well above δ, δ (not the encoder) shapes the score."""

    value: float
    degenerate: bool
    eigenvalues: tuple[float, ...]
    within_min_eigenvalue: float
    n_groups: int
    views: int
    dim: int
    delta: float
    eps: float
    bias_corrected: bool

    def __float__(self) -> float:
        return self.value


def lidar(
    z: object, groups: object, delta: float = 1e-4, eps: float = 1e-8, bias_corrected: bool = False
) -> LidarResult:
    """LiDAR = exp(−Σ p_k log p_k), p_k = (λ_k + ε)/Σ_j(λ_j + ε), λ the eigenvalues of the generalised symmetric
    problem Σ_b v = λ Σ_w v (Σ_w includes δ·I), float64; rows of ``z`` with equal ``groups`` id are the q views of
    one surrogate class. Σ_b = cov of class means (1/(n−1)), Σ_w = pooled within-class covariance (1/(n(q−1))).

    Every class needs the same q ≥ 2 views and there must be n ≥ 2 classes. When no λ exceeds ε (no class
    separates) the score is 1.0 with ``degenerate=True``, never d. ``bias_corrected=True`` [ours] uses
    Σ_b − (Σ_w − δI)/q, negative eigenvalues clipped, to remove the finite-q noise floor E[Σ_b] ⊃ Σ_w/q.
    """
    matrix = as_matrix("z", z)
    ids = as_vector("groups", groups, matrix.shape[0])
    delta = float(delta)
    if not np.isfinite(delta) or delta < 0:
        raise ValueError(f"delta must be a finite number >= 0; got {delta!r}")
    eps = positive("eps", eps)
    _, members, counts = np.unique(ids, return_inverse=True, return_counts=True)
    if counts.size < 2:
        raise ValueError(f"lidar needs at least 2 groups (surrogate classes); got {counts.size}")
    if np.any(counts != counts[0]):
        raise ValueError(f"every group needs the same number of views; got sizes {counts.min()} to {counts.max()}")
    n_groups, views, dim = counts.size, int(counts[0]), matrix.shape[1]
    if views < 2:
        raise ValueError("lidar needs at least 2 views per group (q >= 2)")
    grouped = matrix[np.argsort(members, kind="stable")].reshape(n_groups, views, dim)
    means = grouped.mean(axis=1)
    spread = means - means.mean(axis=0)
    between = spread.T @ spread / (n_groups - 1)
    deviations = (grouped - means[:, None, :]).reshape(-1, dim)
    within = deviations.T @ deviations / (n_groups * (views - 1))
    if np.max(np.abs(deviations)) <= 1e-12 * np.max(np.abs(matrix)):
        warnings.warn("lidar: all views of each group are identical, so Sigma_w = delta*I and the score depends "
                      "on delta", RuntimeWarning, stacklevel=2)
    if bias_corrected:
        values, vectors = np.linalg.eigh(between - within / views)
        between = (vectors * np.clip(values, 0.0, None)) @ vectors.T
    within_values, within_vectors = np.linalg.eigh(within)
    whitening = within_vectors / np.sqrt(np.maximum(within_values + delta, eps))
    reduced = whitening.T @ between @ whitening
    lam = np.clip(np.linalg.eigvalsh((reduced + reduced.T) / 2), 0.0, None)[::-1]
    degenerate = bool(lam[0] <= eps)
    value = 1.0 if degenerate else _entropy_rank((lam + eps) / np.sum(lam + eps))
    return LidarResult(
        value=value, degenerate=degenerate, eigenvalues=tuple(float(v) for v in lam),
        within_min_eigenvalue=float(within_values[0]), n_groups=n_groups, views=views, dim=dim, delta=delta,
        eps=eps, bias_corrected=bias_corrected,
    )


def _entropy_rank(p: np.ndarray) -> float:
    """exp of the Shannon entropy of the weights ``p`` (0·log 0 = 0)."""
    safe = np.where(p > 0, p, 1.0)
    return float(np.exp(-np.sum(np.where(p > 0, p * np.log(safe), 0.0))))
