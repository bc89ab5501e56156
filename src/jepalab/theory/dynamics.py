"""Per-feature gradient-flow dynamics of deep linear JEPA and MAE (Littwin et al., NeurIPS 2024): the public API.

A depth-``L`` linear encoder ``W̄ = W^L ⋯ W^1`` and one linear predictor (JEPA, stop-gradient target with
shared weights) or decoder (MAE). After simultaneous diagonalisation each feature has a cross-covariance
``λ = (Σyx)ii`` and a regression coefficient ``ρ = λ / (Σxx)ii``. With the balanced, aligned initialisation
(every layer and the predictor start at ``ε^(1/L)``) every layer weight equals the predictor weight ``v`` for
all time and the encoder amplitude is ``w̄ = v^L``, with

    JEPA:  dv/dt = λ v^(2L) (1 − v/ρ),            fixed point w̄* = ρ^L
    MAE:   dv/dt = λ v^L (1 − v^(L+1)/ρ),        fixed point w̄* = ρ^(L/(L+1))

in gradient-flow time ``t`` (unit learning rate on every parameter: gradient descent with step ``η`` after
``n`` steps is at ``t = nη``). The paper's critical-time theorem uses ``τ = L·t``; every public function
takes ``time="gf"`` (default) or ``time="paper"``. Closed forms: ``closed_form.py``; their inversion:
``inverse.py``; the derivations: ``docs/theory.md``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from jepalab.theory._checks import (
    OBJECTIVES,
    TIME_UNITS,
    _check_depth,
    _check_frac,
    _check_objective,
    _check_time,
    _features,
    _finite,
)
from jepalab.theory.closed_form import _predictor_fixed_point, _rate_constant, _reduced
from jepalab.theory.inverse import _branch_point, _branch_var, _grow_trajectory, _solve

EXPANSION_TERMS = ("leading", "sum", "full")

__all__ = [
    "OBJECTIVES",
    "TIME_UNITS",
    "amplitude_rate",
    "critical_time",
    "critical_time_expansion",
    "fixed_point",
    "format_order",
    "learning_order",
    "trajectory",
]


def fixed_point(objective: str, rho: object, depth: int) -> np.ndarray:
    """Encoder amplitude at the non-collapsed fixed point: JEPA ρ^L, MAE ρ^(L/(L+1)); 0 where ρ ≤ 0."""
    _check_objective(objective)
    depth = _check_depth(depth)
    rho_a = _finite("rho", rho)
    exponent = depth if objective == "jepa" else depth / (depth + 1)
    return np.where(rho_a > 0, np.abs(rho_a) ** exponent, 0.0)


def amplitude_rate(objective: str, wbar: object, lam: object, rho: object, depth: int, time: str = "gf") -> np.ndarray:
    """dw̄/dt: JEPA L[λ w̄^(3−1/L) − (λ/ρ) w̄³], MAE L[λ w̄^(2−1/L) − (λ/ρ) w̄³] (÷L for time="paper")."""
    _check_objective(objective)
    depth, time = _check_depth(depth), _check_time(time)
    wbar_a = _finite("wbar", wbar)
    if np.any(wbar_a < 0):
        raise ValueError("wbar must be >= 0 (the balanced amplitude is a product of positive layer weights)")
    lam_a, rho_a, _ = _features(lam, rho, 0.5)
    if np.any(rho_a == 0):
        raise ValueError("rho must be non-zero: the decay term (lam / rho) w̄^3 needs (Sigma_xx)_ii = lam / rho")
    growth_power = 3.0 - 1.0 / depth if objective == "jepa" else 2.0 - 1.0 / depth
    rate = depth * (lam_a * wbar_a**growth_power - (lam_a / rho_a) * wbar_a**3)
    return rate / depth if time == "paper" else rate


def trajectory(
    objective: str, lam: object, rho: object, depth: int, eps: object, t: object, time: str = "gf"
) -> np.ndarray:
    """Encoder amplitude w̄(t) from w̄(0) = ε; shape ``t.shape + broadcast(lam, rho, eps).shape``.

    Exact inversion of the closed-form t(w̄) up to ~1e-11 relative (backward stable: the result is the
    exact solution at a time within ~1e-15·t* of the requested one, which is all float64 can resolve in
    the sharp transition that ends a long JEPA plateau). Features with λ < 0 decay to 0; λ = 0 stays at ε.
    """
    _check_objective(objective)
    depth, time = _check_depth(depth), _check_time(time)
    lam_a, rho_a, eps_a = _features(lam, rho, eps)
    if np.any(rho_a == 0):
        raise ValueError(
            "rho = 0 leaves (Sigma_xx)_ii = lam / rho undefined, and the trajectory needs it; "
            "critical_time accepts rho = 0 (the feature is never learned)"
        )
    t_a = _finite("t", t)
    if np.any(t_a < 0):
        raise ValueError("t must be >= 0 (time since initialisation)")
    t_gf = (t_a / depth if time == "paper" else t_a).reshape(-1)
    feature_shape = lam_a.shape
    lam_f, rho_f, eps_f = lam_a.reshape(-1), rho_a.reshape(-1), eps_a.reshape(-1)

    v_star = _predictor_fixed_point(objective, rho_f, depth)
    x0 = eps_f ** (1.0 / depth) / v_star
    rate = _rate_constant(objective, lam_f, rho_f, depth)
    out = np.empty((t_gf.size, lam_f.size))

    constant = (lam_f == 0) | (x0 == 1.0)
    out[:, constant] = eps_f[constant]
    grow = ~constant & (lam_f > 0) & (x0 < 1.0)
    if grow.any():
        out[:, grow] = _grow_trajectory(objective, depth, x0[grow], rate[grow], t_gf) * (v_star[grow] ** depth)
    for branch, mask in (("above", ~constant & (lam_f > 0) & (x0 > 1.0)), ("decay", ~constant & (lam_f < 0))):
        if mask.any():
            red = _reduced(objective, depth, 1 if branch == "above" else -1)
            var0 = _branch_var(x0[mask], branch)
            x, log_x, log_1mx, _ = _branch_point(var0, branch)
            sign = 1.0 if branch == "above" else -1.0
            y = red.phi(x, log_x, log_1mx)[None, :] + sign * rate[mask][None, :] * t_gf[:, None]
            var = _solve(red, branch, y.reshape(-1), np.broadcast_to(var0, y.shape).reshape(-1))
            x_t = _branch_point(var, branch)[0].reshape(y.shape)
            out[:, mask] = (x_t * v_star[mask]) ** depth
    return out.reshape(t_a.shape + feature_shape)


def critical_time(
    objective: str, lam: object, rho: object, depth: int, eps: object, frac: float = 0.5, time: str = "gf"
) -> np.ndarray:
    """Time at which w̄ first reaches ``frac·w̄*``; ``inf`` where λ ≤ 0 or ρ ≤ 0, 0 where w̄(0) ≥ frac·w̄*."""
    _check_objective(objective)
    depth, time, frac = _check_depth(depth), _check_time(time), _check_frac(frac)
    lam_a, rho_a, eps_a = _features(lam, rho, eps)
    out = np.full(lam_a.shape, np.inf)
    learnable = lam_a > 0
    x0 = np.ones_like(lam_a)
    x0[learnable] = eps_a[learnable] ** (1.0 / depth) / _predictor_fixed_point(objective, rho_a[learnable], depth)
    x_p = frac ** (1.0 / depth)
    out[learnable & (x0 >= x_p)] = 0.0
    todo = learnable & (x0 < x_p)
    if todo.any():
        red = _reduced(objective, depth, 1)
        rate = _rate_constant(objective, lam_a[todo], rho_a[todo], depth)
        out[todo] = red.phi_difference(x0[todo], np.full(int(todo.sum()), x_p)) / rate
    return out * depth if time == "paper" else out


def critical_time_expansion(
    objective: str,
    lam: object,
    rho: object,
    depth: int,
    eps: object,
    frac: float = 0.5,
    terms: str = "sum",
    time: str = "gf",
) -> np.ndarray:
    """Small-ε expansions of the critical time (derivation: docs/theory.md, "Small-ε expansions").

    ``terms="leading"``: the single most singular term, JEPA 1/((2L−1) λ ε^((2L−1)/L)), MAE
    1/((L−1) λ ε^((L−1)/L)) (L ≥ 2) or ln(1/ε)/λ (L = 1). ``terms="sum"``: the paper's Theorem 4.5 sum
    (1/λ) Σ_{n=1}^{2L−1} 1/(n ρ^(2L−n−1) ε^(n/L)) for JEPA; the paper states no MAE sum, so MAE returns the
    leading term. ``terms="full"``: every term that does not vanish as ε → 0 (adds the ρ-dependent
    ln(1/ε) term and the O(1) constant); its error is O(ε^(1/L)).
    """
    _check_objective(objective)
    depth, time, frac = _check_depth(depth), _check_time(time), _check_frac(frac)
    if terms not in EXPANSION_TERMS:
        raise ValueError(f"terms must be one of {EXPANSION_TERMS}; got {terms!r}")
    lam_a, rho_a, eps_a = _features(lam, rho, eps)
    out = np.full(lam_a.shape, np.inf)
    ok = lam_a > 0
    lam_k, rho_k, eps_k = lam_a[ok], rho_a[ok], eps_a[ok]
    L = depth
    if terms == "leading" or (terms == "sum" and objective == "mae"):
        if objective == "jepa":
            value = 1.0 / ((2 * L - 1) * lam_k * eps_k ** ((2 * L - 1) / L))
        elif L == 1:
            value = np.log(1.0 / eps_k) / lam_k
        else:
            value = 1.0 / ((L - 1) * lam_k * eps_k ** ((L - 1) / L))
    elif terms == "sum":
        n = np.arange(1, 2 * L)[:, None]
        value = np.sum(1.0 / (n * rho_k ** (2 * L - n - 1) * eps_k ** (n / L)), axis=0) / lam_k
    else:
        red = _reduced(objective, L, 1)
        x0 = eps_k ** (1.0 / L) / _predictor_fixed_point(objective, rho_k, L)
        x_p = np.full_like(x0, frac ** (1.0 / L))
        phi_p = red.phi(x_p, np.log(x_p), np.log1p(-x_p))
        value = (phi_p - red.singular_part(x0)) / _rate_constant(objective, lam_k, rho_k, L)
    out[ok] = value
    return out * depth if time == "paper" else out


def learning_order(
    objective: str, lam: object, rho: object, depth: int, eps: object, frac: float = 0.5
) -> np.ndarray:
    """Feature indices along the last axis, first learned first (never-learned features last, by index).

    Raises ValueError when the order is undefined: some learnable feature starts at or above its
    threshold (ε^(1/L) ≥ frac^(1/L)·v*).
    """
    _check_objective(objective)
    depth, frac = _check_depth(depth), _check_frac(frac)
    lam_a, rho_a, eps_a = _features(lam, rho, eps)
    if lam_a.ndim == 0:
        raise ValueError("learning_order needs at least one feature axis; lam, rho and eps are all scalars")
    learnable = lam_a > 0
    v_star = _predictor_fixed_point(objective, np.where(learnable, rho_a, 1.0), depth)
    started = learnable & (eps_a ** (1.0 / depth) >= frac ** (1.0 / depth) * v_star)
    if started.any():
        index = tuple(int(i) for i in np.argwhere(started)[0])
        raise ValueError(
            f"learning order undefined: feature {index} starts at or above its threshold "
            f"(eps^(1/L) >= frac^(1/L) * v*, with {objective} v* = {v_star[index]:.4g}); lower eps or frac"
        )
    times = critical_time(objective, lam_a, rho_a, depth, eps_a, frac)
    return np.argsort(times, axis=-1, kind="stable")


def format_order(order: Iterable[int], sep: str = "", never: Iterable[int] = ()) -> str:
    """0-based feature indices as 1-based text, first learned first; ``never`` (not learned) in brackets."""
    text = sep.join(str(int(i) + 1) for i in order)
    missing = sep.join(str(int(i) + 1) for i in never)
    return text + (f" ({missing} not learned)" if missing else "")
