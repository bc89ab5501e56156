"""Cheap collapse diagnostics on a fixed probe batch of embeddings, for logging every N training steps
(docs/evaluation.md, "Collapse diagnostics"): SimSiam's std of normalised features (Chen & He, CVPR 2021,
arXiv 2011.10566, Sec. 4.1), VICReg's variance and covariance terms as read-outs (Bardes et al., ICLR 2022,
arXiv 2105.04906), dead dimensions and RankMe (Garrido et al., ICML 2023)."""

from __future__ import annotations

import warnings

import numpy as np

from jepalab.eval._arrays import as_matrix, positive, to_numpy
from jepalab.eval.spectral import rankme

__all__ = ["COLLAPSE_RANK_SHARE", "collapse_diagnostics", "is_collapsed", "token_spread"]

COLLAPSE_RANK_SHARE = 0.05
"""A representation counts as collapsed when its centred RankMe is below this share of its width (docs/pretraining.md:
below it the embeddings of different images vary along only a few directions; a random ViT sits above it)."""


def is_collapsed(rankme_centred: float, dim: int, share: float = COLLAPSE_RANK_SHARE) -> bool:
    """True when the centred RankMe is below ``share`` × ``dim`` or not finite (NaN/inf features)."""
    return not (np.isfinite(rankme_centred) and rankme_centred >= share * dim)


def collapse_diagnostics(z: object, dead_ratio: float = 0.01, rankme_eps: float = 1e-7) -> dict[str, float]:
    """Collapse read-outs of embeddings z (n, d), float64, no gradient:

    - ``normalised_std``: mean over j of std(z_j/‖z‖) (≈ 1/√d isotropic, → 0 under collapse);
      ``normalised_std_sqrt_d`` = that × √d (≈ 1 isotropic; jepalab's alarm is < 0.2).
    - ``vicreg_variance`` = mean_j max(0, 1 − √(Var z_j + 1e-4)); ``vicreg_covariance`` = Σ_{i≠j} C_ij² / d
      (covariance with denominator n − 1).
    - ``dead_share``: share of dims whose std ≤ ``dead_ratio`` × the root-mean-square std over dims [ours].
    - ``rankme`` (uncentred, the paper's) and ``rankme_centred``; NaN when the matrix is all zero.
    - ``nonfinite_share``: share of rows with NaN or inf. Unlike the other metrics this does not raise on them:
      it returns NaN read-outs so a training loop can log the alarm.

    Warns when n < 4·d, where RankMe is biased low (iid Gaussians: RankMe/d ≈ 0.80 at n = d, 0.965 at n = 4·d).
    """
    array = np.asarray(to_numpy(z), dtype=np.float64)
    dead_ratio = positive("dead_ratio", dead_ratio)
    if array.ndim == 2 and array.shape[0] >= 2 and not np.all(np.isfinite(array)):
        keys = ("normalised_std", "normalised_std_sqrt_d", "vicreg_variance", "vicreg_covariance", "dead_share",
                "rankme", "rankme_centred")
        return {"n": float(array.shape[0]), "dim": float(array.shape[1]),
                "nonfinite_share": float(np.mean(~np.isfinite(array).all(axis=1))), **dict.fromkeys(keys, np.nan)}
    x = as_matrix("z", array, min_rows=2)
    n, d = x.shape
    if n < 4 * d:
        warnings.warn(f"collapse_diagnostics: n = {n} < 4·d = {4 * d}; RankMe is biased low", RuntimeWarning,
                      stacklevel=2)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    normalised_std = float(np.mean(unit.std(axis=0, ddof=1)))
    centred = x - x.mean(axis=0)
    covariance = centred.T @ centred / (n - 1)
    variance = np.clip(np.diag(covariance), 0.0, None)
    off_diagonal = covariance - np.diag(np.diag(covariance))
    std = np.sqrt(variance)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ranks = {"rankme": rankme(x, rankme_eps), "rankme_centred": rankme(x, rankme_eps, centre=True)}
    return {
        "n": float(n),
        "dim": float(d),
        "nonfinite_share": 0.0,
        "normalised_std": normalised_std,
        "normalised_std_sqrt_d": normalised_std * float(np.sqrt(d)),
        "vicreg_variance": float(np.mean(np.maximum(0.0, 1.0 - np.sqrt(variance + 1e-4)))),
        "vicreg_covariance": float(np.sum(off_diagonal**2) / d),
        "dead_share": float(np.mean(std <= dead_ratio * np.sqrt(np.mean(variance)))),
        **ranks,
    }


def token_spread(tokens: object) -> float:
    """Std across the patch tokens of one image, averaged over images and dims [ours]: tokens (n, t, d) → float;
    → 0 when every token of an image carries the same vector."""
    array = np.asarray(to_numpy(tokens), dtype=np.float64)
    if array.ndim != 3 or array.shape[1] < 2:
        raise ValueError(f"tokens must have shape (n images, t >= 2 tokens, d); got {array.shape}")
    as_matrix("tokens", array.reshape(-1, array.shape[2]))
    return float(np.mean(array.std(axis=1)))
