"""The deep linear theory's side of the learning-order experiment: the predicted learning time of each pixel direction
from its (λ, ρ) under a method's masks (:func:`predicted_times`), and the deep linear control
(:func:`linear_control`): a real deep linear network trained by :func:`jepalab.linear.train` on views with those
(λ, ρ), whose order is read by the same measurement as the ViT's (:func:`jepalab.eval.learning_steps`).

Mapping (docs/experiments.md, "Learning order"): the theory's depth L is the ViT's number of blocks, its
initialisation scale ε a fixed protocol constant, and its time the training step up to a monotone map, so only
ranks are compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jepalab.eval import learning_steps, rank_correlation
from jepalab.linear import GaussianViews, train
from jepalab.theory import critical_time

__all__ = ["linear_control", "predicted_times"]


def predicted_times(objective: str, lam: np.ndarray, rho: np.ndarray, depth: int, eps: float,
                    share: float) -> np.ndarray:
    """Gradient-flow time at which each feature's encoder amplitude first reaches ``share`` of its fixed point;
    ``inf`` (never learned) where λ ≤ 0 or ρ ≤ 0, or where it starts at or above that level (fixed point ≤ ε/share:
    the feature does not grow)."""
    times = critical_time(objective, lam, rho, depth, eps, frac=share)
    return np.where(times > 0, times, np.inf)


def linear_control(objective: str, stats: dict[str, np.ndarray], depth: int, eps: float, share: float,
                   snapshots: int, records: int, horizon: float, decoupled: bool = False) -> dict[str, Any]:
    """Train a depth-``depth`` linear ``objective`` network (gradient flow, diagonal balanced init ε) on Gaussian
    views whose features have the directions' λ, ρ and view variances (``stats``: lam, rho, var_context, var_target;
    the directions with λ > 0), to ``horizon`` × the last finite predicted time; read its learning steps from its
    amplitudes with :func:`learning_steps` at ``records`` and at ``snapshots`` evenly spaced records, and rank-correlate
    each with the predicted times. NaN correlations when fewer than 3 directions can be learned. ``decoupled``: one
    network of width 1 per direction instead of one of width k: the same trajectories (with diagonal views and a
    diagonal init the width-k flow never leaves the diagonal), but k ODEs of depth + 1 variables instead of one of
    (depth + 1)·k², whose implicit solver factorises a dense Jacobian of that size at every step (minutes at a small
    ε, where the times span decades)."""
    keep = np.flatnonzero(np.asarray(stats["lam"]) > 0)
    lam, rho = np.asarray(stats["lam"])[keep], np.asarray(stats["rho"])[keep]
    predicted = predicted_times(objective, lam, rho, depth, eps, share)
    finite = predicted[np.isfinite(predicted)]
    out: dict[str, Any] = {"directions": keep.tolist(), "predicted": predicted.tolist(), "fine": [], "snapshots": [],
                           "spearman_fine": float("nan"), "spearman_snapshots": float("nan"), "horizon": None}
    if keep.size < 3 or finite.size < 2:
        return out
    var_x = np.asarray(stats["var_context"])[keep]
    var_y = np.maximum(np.asarray(stats["var_target"])[keep], lam**2 / var_x * (1 + 1e-9))  # keeps the views PSD
    end = horizon * float(finite.max())
    blocks = [[i] for i in range(keep.size)] if decoupled else [list(range(keep.size))]
    amplitudes = []
    for block in blocks:
        views = GaussianViews(np.diag(var_x[block]), np.diag(lam[block]), np.diag(var_y[block]))
        layer = eps ** (1.0 / depth) * np.eye(len(block))  # every layer and the predictor diagonal: decoupled
        result = train(views, objective, depth, eps, steps=records, lr=end / records, method="flow",
                       record_times=np.linspace(0.0, end, records + 1), init=([layer] * depth, layer))
        amplitudes.append(result.amplitude[0])  # (T, len(block))
    times, amplitude = result.times[0], np.concatenate(amplitudes, axis=1)  # (T,), (T, k)
    coarse = np.linspace(0, records, snapshots + 1).round().astype(int)
    fine = learning_steps(times, amplitude, share)  # any growth counts; a feature that decays is never learned
    at_snapshots = learning_steps(times[coarse], amplitude[coarse], share)
    out.update(fine=fine.tolist(), snapshots=at_snapshots.tolist(), horizon=end,
               spearman_fine=rank_correlation(fine, predicted), spearman_snapshots=rank_correlation(at_snapshots,
                                                                                                     predicted))
    return out
