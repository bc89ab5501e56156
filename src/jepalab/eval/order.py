"""Learning order from recorded curves: when each feature was learned, and rank correlations between orders.

A feature's learning step is the first step at which its curve's gain over the first record (the initialisation)
reaches ``share`` of its final gain, linearly interpolated between records (:func:`learning_steps`); a feature whose
final gain is below ``min_gain`` was not learned (``inf``). Orders are compared by Spearman correlation with tied
ranks averaged, ``inf`` ranking last (:func:`rank_correlation`), and the dependence of an order on one quantity given
another by the partial Spearman correlation (:func:`partial_rank_correlation`). Values within a relative
:data:`TIE_RTOL` of each other are tied: features that all saturate before the same record get the same interpolated
step up to the integrator's noise (a deep linear control's differ by up to 2e-9 between one and two threads), and a
learning step means nothing to more than six significant digits.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

__all__ = ["TIE_RTOL", "learning_steps", "partial_rank_correlation", "rank_correlation"]

TIE_RTOL = 1e-6  # relative gap below which two values rank as tied


def learning_steps(steps: object, values: object, share: float = 0.5, min_gain: float = 0.0) -> np.ndarray:
    """Per column of ``values`` (T, k) recorded at ascending ``steps`` (T,), the first step where
    values − values[0] ≥ share·(values[-1] − values[0]), interpolated linearly between records; ``inf`` where the
    final gain values[-1] − values[0] is ≤ ``min_gain`` (not learned)."""
    t = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    if t.ndim != 1 or t.size < 2 or not np.all(np.diff(t) > 0):
        raise ValueError(f"steps must be a 1-D ascending array of ≥ 2 steps; got {t.tolist()}")
    if v.ndim != 2 or v.shape[0] != t.size:
        raise ValueError(f"values must be (T={t.size}, k); got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite")
    if not 0 < share <= 1:
        raise ValueError(f"share must lie in (0, 1]; got {share!r}")
    gain = v - v[0]  # (T, k)
    final = gain[-1]
    learned = final > max(float(min_gain), 0.0)
    target = share * final
    above = gain[1:] >= target  # record 0 has gain 0 < target wherever learned
    first = np.argmax(above, axis=0) + 1  # (k,), the first record at or past the target
    cols = np.arange(v.shape[1])
    g0, g1 = gain[first - 1, cols], gain[first, cols]
    t0, t1 = t[first - 1], t[first]
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = t0 + (target - g0) / (g1 - g0) * (t1 - t0)
    return np.where(learned, crossing, np.inf)


def _ranks(name: str, value: object) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.ndim != 1 or np.isnan(array).any():
        raise ValueError(f"{name} must be a 1-D array without NaN; got shape {array.shape}")
    order = np.argsort(array, kind="stable")
    ascending = array[order]
    with np.errstate(invalid="ignore"):  # inf − inf
        close = np.isfinite(ascending[1:]) & (np.diff(ascending) <= TIE_RTOL * np.abs(ascending[1:]))
    starts = np.concatenate([[True], ~close])
    snapped = ascending[starts][np.cumsum(starts) - 1]  # each value → the smallest of its run of near-equal values
    ranks = np.empty_like(array)
    ranks[order] = rankdata(snapped)  # average ranks for ties; inf ranks last
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denominator if denominator > 0 else float("nan")


def rank_correlation(a: object, b: object) -> float:
    """Spearman correlation of ``a`` and ``b`` (k,) with average ranks for ties (``inf`` ranks last); NaN when either
    is constant."""
    ra, rb = _ranks("a", a), _ranks("b", b)
    if ra.size != rb.size or ra.size < 3:
        raise ValueError(f"a and b must have the same length ≥ 3; got {ra.size} and {rb.size}")
    return _pearson(ra, rb)


def partial_rank_correlation(x: object, y: object, given: object) -> float:
    """Partial Spearman correlation of ``x`` and ``y`` given ``given`` (each (k,)):
    (r_xy − r_xz·r_yz) / √((1 − r_xz²)(1 − r_yz²)) on ranks; 0 where the ranks of ``x`` or ``y`` are those of
    ``given`` (|r| = 1: nothing is left to correlate), NaN where any of the three is constant."""
    rx, ry, rz = _ranks("x", x), _ranks("y", y), _ranks("given", given)
    if not rx.size == ry.size == rz.size or rx.size < 4:
        raise ValueError(f"x, y and given must have the same length ≥ 4; got {rx.size}, {ry.size}, {rz.size}")
    r_xy, r_xz, r_yz = _pearson(rx, ry), _pearson(rx, rz), _pearson(ry, rz)
    if math.isnan(r_xy + r_xz + r_yz):
        return float("nan")
    denominator = math.sqrt(max(0.0, (1 - r_xz**2) * (1 - r_yz**2)))
    return (r_xy - r_xz * r_yz) / denominator if denominator > 1e-12 else 0.0
