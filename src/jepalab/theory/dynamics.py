"""Per-feature gradient-flow dynamics of deep linear JEPA and MAE (Littwin et al., NeurIPS 2024).

Model (spec ``paper.md`` §2–§8): a depth-``L`` linear encoder ``W̄ = W^L ⋯ W^1`` and one linear predictor
(JEPA, stop-gradient target with shared weights) or decoder (MAE). After simultaneous diagonalisation each
feature has a cross-covariance ``λ = (Σyx)ii`` and a regression coefficient ``ρ = λ / (Σxx)ii``. With the
balanced, aligned initialisation (every layer and the predictor start at ``ε^(1/L)``) every layer weight
equals the predictor weight ``v`` for all time and the encoder amplitude is ``w̄ = v^L``, with

    JEPA:  dv/dt = λ v^(2L) (1 − v/ρ),            fixed point w̄* = ρ^L
    MAE:   dv/dt = λ v^L (1 − v^(L+1)/ρ),        fixed point w̄* = ρ^(L/(L+1))

in gradient-flow time ``t`` (unit learning rate on every parameter: gradient descent with step ``η`` after
``n`` steps is at ``t = nη``). The paper's critical-time theorem uses ``τ = L·t``; every public function
takes ``time="gf"`` (default) or ``time="paper"``.

Both ODEs reduce to one universal integral per (objective, depth). With ``x = v / v*`` (``v*`` the
predictor's fixed point, ``x0 = ε^(1/L) / v*``) and ``s = sign(λ)``,

    ∫_{x0}^{x} du / (u^a (1 − s u^m)) = s · c · t,
    JEPA: a = 2L, m = 1,     c = |λ| |ρ|^(2L−1)
    MAE:  a = L,  m = L + 1, c = |λ| |ρ|^((L−1)/(L+1))

whose antiderivative ``Φ`` is exact: powers of ``u`` from polynomial division plus logarithms from the
partial fractions of ``1/(1 − s u^m)`` over the m-th roots of ``s``. Critical times are differences of
``Φ`` (no quadrature); trajectories invert ``Φ`` with a per-(objective, depth) cubic-Hermite table of the
inverse, self-checked at build time, falling back to safeguarded Newton iterations outside it.
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_expit

OBJECTIVES = ("jepa", "mae")
TIME_UNITS = ("gf", "paper")
EXPANSION_TERMS = ("leading", "sum", "full")

__all__ = [
    "OBJECTIVES",
    "TIME_UNITS",
    "amplitude_rate",
    "critical_time",
    "critical_time_expansion",
    "fixed_point",
    "learning_order",
    "trajectory",
]


# ----------------------------------------------------------------------------------------------------------
# Input validation: every public function fails with a ValueError that names the argument and its range.


def _check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}; got {objective!r}")
    return objective


def _check_depth(depth: int) -> int:
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral):
        raise ValueError(f"depth must be an integer >= 1; got {depth!r}")
    if depth < 1:
        raise ValueError(f"depth must be an integer >= 1; got {depth}")
    return int(depth)


def _check_time(time: str) -> str:
    if time not in TIME_UNITS:
        raise ValueError(
            f"time must be 'gf' (gradient-flow time, t = lr * steps) or 'paper' (tau = depth * t); got {time!r}"
        )
    return time


def _check_frac(frac: float) -> float:
    value = float(_finite("frac", frac))
    if not 0.0 < value < 1.0:
        raise ValueError(f"frac must lie in the open interval (0, 1); got {value}")
    return value


def _finite(name: str, value: object) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a real number or array of real numbers; got {value!r}") from error
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (no NaN or inf); got {value!r}")
    return array


def _features(lam: object, rho: object, eps: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and broadcast the per-feature parameters."""
    lam_a, rho_a, eps_a = _finite("lam", lam), _finite("rho", rho), _finite("eps", eps)
    if np.any((eps_a <= 0.0) | (eps_a >= 1.0)):
        raise ValueError(f"eps must lie in the open interval (0, 1); got {eps!r}")
    if np.any(lam_a * rho_a < 0.0):
        raise ValueError(
            "lam and rho must share a sign, because (Sigma_xx)_ii = lam / rho is a variance; got "
            f"lam={lam!r}, rho={rho!r}"
        )
    if np.any((rho_a == 0.0) & (lam_a != 0.0)):
        raise ValueError(f"rho = 0 with lam != 0 would need an infinite (Sigma_xx)_ii; got lam={lam!r}, rho={rho!r}")
    try:
        lam_b, rho_b, eps_b = np.broadcast_arrays(lam_a, rho_a, eps_a)
    except ValueError as error:
        raise ValueError(
            f"lam {lam_a.shape}, rho {rho_a.shape} and eps {eps_a.shape} must broadcast to one feature shape"
        ) from error
    return lam_b, rho_b, eps_b


# ----------------------------------------------------------------------------------------------------------
# The universal integral  Φ(x) = ∫ du / (u^a (1 − s u^m)).


@dataclass(frozen=True)
class _Reduced:
    """Exact antiderivative of ``1/(u^a (1 − s u^m))`` for one objective, depth and sign."""

    a: int
    m: int
    s: int

    @property
    def powers(self) -> np.ndarray:
        """Exponents q ≤ 0 of the terms s^j u^q / q (q = 0 means s^j ln u) from polynomial division."""
        n_terms = -(-self.a // self.m)
        return np.array([j * self.m - self.a + 1 for j in range(n_terms)])

    @property
    def roots(self) -> list[tuple[float, float]]:
        """(angle θ, weight) of the m-th roots of s with θ ∈ [0, π]; complex pairs carry weight 2."""
        offset = 0.0 if self.s > 0 else np.pi
        angles = [(2.0 * np.pi * k + offset) / self.m for k in range(self.m)]
        reps = [theta for theta in angles if theta <= np.pi + 1e-12]
        return [(theta, 1.0 if abs(np.sin(theta)) < 1e-12 else 2.0) for theta in reps]

    @property
    def remainder_power(self) -> int:
        """r + 1, where u^r / (1 − s u^m) is the remainder of the polynomial division."""
        return len(self.powers) * self.m - self.a + 1

    def _powers_sum(self, log_x: np.ndarray) -> np.ndarray:
        """Σ_j s^j x^q_j / q_j (s^j ln x for q_j = 0): the terms of Φ that diverge as x → 0."""
        total = np.zeros_like(log_x)
        for j, q in enumerate(self.powers):
            total += float(self.s**j) * (log_x if q == 0 else np.exp(q * log_x) / q)
        return total

    def _roots_sum(self, logs: list[tuple[np.ndarray, np.ndarray | float]]) -> np.ndarray:
        """Σ_k Re(ζ̄_k^(r+1) ln w_k) over the representative roots, given (ln|w_k|, arg w_k) per root."""
        r1 = self.remainder_power
        return sum(
            weight * (np.cos(r1 * theta) * log_mod + np.sin(r1 * theta) * arg)
            for (theta, weight), (log_mod, arg) in zip(self.roots, logs)
        )

    def phi(self, x: np.ndarray, log_x: np.ndarray, log_abs_1mx: np.ndarray) -> np.ndarray:
        """Φ(x); ``log_x`` and ``log|1 − x|`` are passed in so callers keep them accurate near 0 and 1."""
        logs = []
        for theta, _ in self.roots:  # ln(1 − x ζ) for each root ζ = e^(iθ)
            if abs(theta) < 1e-12:
                logs.append((log_abs_1mx, 0.0))
            elif abs(theta - np.pi) < 1e-12:
                logs.append((np.log1p(x), 0.0))
            else:
                re, im = 1.0 - x * np.cos(theta), -x * np.sin(theta)
                logs.append((0.5 * np.log(re * re + im * im), np.arctan2(im, re)))
        return self._powers_sum(log_x) - float(self.s ** len(self.powers)) * self._roots_sum(logs) / self.m

    def singular_part(self, x: np.ndarray) -> np.ndarray:
        """The terms of Φ that diverge as x → 0 (powers and the logarithm)."""
        return self._powers_sum(np.log(x))

    def phi_difference(self, x0: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Φ(x) − Φ(x0) for s = +1 and 0 < x0 ≤ x < 1, free of cancellation (every term is ≥ 0)."""
        if self.s != 1:
            raise ValueError("phi_difference is defined for growing features (s = +1) only")
        log_ratio = np.log1p((x - x0) / x0)
        total = np.zeros_like(x0)
        for q in self.powers:
            total += log_ratio if q == 0 else x0**q * np.expm1(q * log_ratio) / q
        logs = []
        for theta, _ in self.roots:  # ln((1 − x ζ) / (1 − x0 ζ)) for each root ζ = e^(iθ)
            if abs(theta) < 1e-12:
                near = (x - x0) < 0.5 * (1.0 - x0)
                safe = np.where(near, x - x0, 0.0)
                logs.append((np.where(near, np.log1p(-safe / (1.0 - x0)), np.log1p(-x) - np.log1p(-x0)), 0.0))
            elif abs(theta - np.pi) < 1e-12:
                logs.append((np.log1p((x - x0) / (1.0 + x0)), 0.0))
            else:
                zeta = np.exp(1j * theta)
                delta = -(x - x0) * zeta / (1.0 - x0 * zeta)
                logs.append((0.5 * np.log1p(2.0 * delta.real + np.abs(delta) ** 2),
                             np.arctan2(delta.imag, 1.0 + delta.real)))
        return total - self._roots_sum(logs) / self.m

    def dphi_dvar(self, x: np.ndarray, one_minus_x: np.ndarray, branch: str) -> np.ndarray:
        """dΦ/dvar for the solver variable of each branch (see ``_BRANCHES``); always > 0."""
        geometric = sum(x**k for k in range(self.m))  # (1 − x^m) / (1 − x), stable near x = 1
        if branch == "grow":
            return x ** (1 - self.a) / geometric
        if branch == "above":
            return 1.0 / (x**self.a * geometric)
        return x ** (1 - self.a) / (1.0 + x**self.m)


def _reduced(objective: str, depth: int, sign: int) -> _Reduced:
    if objective == "jepa":
        return _Reduced(a=2 * depth, m=1, s=sign)
    return _Reduced(a=depth, m=depth + 1, s=sign)


def _predictor_fixed_point(objective: str, rho: np.ndarray, depth: int) -> np.ndarray:
    """|v*|: the predictor (and per-layer) weight at the fixed point, in absolute value."""
    return np.abs(rho) if objective == "jepa" else np.abs(rho) ** (1.0 / (depth + 1))


def _rate_constant(objective: str, lam: np.ndarray, rho: np.ndarray, depth: int) -> np.ndarray:
    exponent = 2 * depth - 1 if objective == "jepa" else (depth - 1) / (depth + 1)
    return np.abs(lam) * np.abs(rho) ** exponent


# ----------------------------------------------------------------------------------------------------------
# Inverting Φ. Each branch has its own solver variable in which Φ is increasing and finite-precision safe:
#   grow  (s = +1, x < 1): z = logit(x);          above (s = +1, x > 1): u = −ln(x − 1);
#   decay (s = −1):         ℓ = ln x.

_VAR_LIMIT = 700.0  # exp(±700) is the float64 range; u^(1−a) must not overflow either (see _solve)


def _branch_point(var: np.ndarray, branch: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, ln x, ln|1 − x|, 1 − x) at a solver variable."""
    if branch == "grow":
        return expit(var), log_expit(var), log_expit(-var), expit(-var)
    if branch == "above":
        x = 1.0 + np.exp(-var)
        return x, np.log1p(np.exp(-var)), -var, -np.exp(-var)
    x = np.exp(var)
    with np.errstate(divide="ignore"):
        return x, var, np.log(np.abs(1.0 - x)), 1.0 - x


def _branch_var(x: np.ndarray, branch: str) -> np.ndarray:
    if branch == "grow":
        return np.log(x) - np.log1p(-x)
    if branch == "above":
        return -np.log(x - 1.0)
    return np.log(x)


def _solve(red: _Reduced, branch: str, y: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """Solver variable with Φ(x(var)) = y: bracket by doubling steps, then Newton safeguarded by bisection."""
    def residual(var: np.ndarray, target: np.ndarray) -> np.ndarray:
        x, log_x, log_1mx, _ = _branch_point(var, branch)
        with np.errstate(over="ignore"):
            return red.phi(x, log_x, log_1mx) - target

    var_min = -_VAR_LIMIT / max(red.a - 1, 1)
    var = np.clip(np.asarray(guess, dtype=float), var_min, _VAR_LIMIT)
    lo, hi = var.copy(), var.copy()
    f_lo = residual(var, y)
    f_hi = f_lo.copy()
    step = np.ones_like(var)
    for _ in range(64):
        up, down = (f_hi < 0) & (hi < _VAR_LIMIT), (f_lo > 0) & (lo > var_min)
        if not (up.any() or down.any()):
            break
        hi[up] = np.minimum(hi[up] + step[up], _VAR_LIMIT)
        f_hi[up] = residual(hi[up], y[up])
        lo[down] = np.maximum(lo[down] - step[down], var_min)
        f_lo[down] = residual(lo[down], y[down])
        step *= 2.0
    # A root beyond the variable limit means x sits at its float64 limit (1 or 0): take the limit.
    beyond_hi, beyond_lo = f_hi < 0, f_lo > 0
    lo[beyond_hi], hi[beyond_lo] = hi[beyond_hi], lo[beyond_lo]
    var = np.clip(var, lo, hi)
    active = np.flatnonzero(hi > lo)
    for _ in range(200):
        if active.size == 0:
            break
        v, target = var[active], y[active]
        x, _, _, one_minus_x = _branch_point(v, branch)
        f = residual(v, target)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            slope = red.dphi_dvar(x, one_minus_x, branch)
            newton_step = f / slope
        above_root = f > 0
        hi[active[above_root]] = v[above_root]
        lo[active[~above_root]] = v[~above_root]
        a_lo, a_hi = lo[active], hi[active]
        tol = 1e-15 * (1.0 + np.abs(v))
        usable = np.isfinite(slope) & np.isfinite(newton_step)
        new = v - newton_step
        converged = usable & (np.abs(newton_step) <= tol)
        bisect = ~converged & (~usable | (new <= a_lo) | (new >= a_hi))
        new[bisect] = 0.5 * (a_lo[bisect] + a_hi[bisect])
        new[f == 0] = v[f == 0]
        var[active] = new
        done = converged | (f == 0) | (a_hi - a_lo <= tol)
        active = active[~done]
    return var


@dataclass(frozen=True)
class _InverseTable:
    """Cubic-Hermite table of ln x as a function of q(y) on the growing branch, Horner coefficients per cell."""

    q_lo: float
    step: float
    log_map: bool
    coef: np.ndarray  # (cells, 4)
    max_error: float

    def q_of_y(self, y: np.ndarray) -> np.ndarray:
        if not self.log_map:
            return y
        return np.maximum(y, 0.0) - np.log1p(-np.minimum(y, 0.0))

    def log_x(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ln x, mask of entries left of the table that need the solver)."""
        u = np.minimum((self.q_of_y(y) - self.q_lo) * (1.0 / self.step), len(self.coef))
        outside = u < 0.0
        cell = np.clip(u, 0, len(self.coef) - 1).astype(np.int64)
        f = np.clip(u - cell, 0.0, 1.0)
        c = self.coef[cell]
        return c[..., 0] + f * (c[..., 1] + f * (c[..., 2] + f * c[..., 3])), outside


def _y_of_q(q: np.ndarray, log_map: bool) -> np.ndarray:
    return np.where((q >= 0) | (not log_map), q, -np.expm1(-q))


def _table_nodes(red: _Reduced, q: np.ndarray, log_map: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exact ln x and d(ln x)/dq at the nodes q."""
    y = _y_of_q(q, log_map)
    if red.a >= 2:
        guess = np.where(y >= 0, y, -np.log((red.a - 1) * np.abs(y) + 1.0) / (red.a - 1))
    else:
        guess = y
    z = _solve(red, "grow", y, guess)
    x, log_x, _, one_minus_x = _branch_point(z, "grow")
    geometric = sum(x**k for k in range(red.m))
    dlogx_dy = one_minus_x * x ** (red.a - 1) * geometric
    dy_dq = np.where((q >= 0) | (not log_map), 1.0, np.exp(-q))
    return log_x, dlogx_dy * dy_dq


@functools.cache
def _inverse_table(objective: str, depth: int) -> _InverseTable:
    """Build (once per objective and depth) the table and check it against the solver at cell midpoints."""
    red = _reduced(objective, depth, 1)
    log_map = red.a >= 2
    q_lo, q_hi = (-120.0 if log_map else -60.0), 45.0
    step = 1.0 / 64.0
    while True:
        q = q_lo + step * np.arange(round((q_hi - q_lo) / step) + 1)
        value, slope = _table_nodes(red, q, log_map)
        v0, v1, d0, d1 = value[:-1], value[1:], step * slope[:-1], step * slope[1:]
        coef = np.stack([v0, d0, 3.0 * (v1 - v0) - 2.0 * d0 - d1, 2.0 * (v0 - v1) + d0 + d1], axis=1)
        table = _InverseTable(q_lo=q_lo, step=step, log_map=log_map, coef=coef, max_error=0.0)
        mid = q[:-1] + 0.5 * step
        exact, _ = _table_nodes(red, mid, log_map)
        approx, _ = table.log_x(_y_of_q(mid, log_map))
        error = float(np.max(np.abs(approx - exact)))
        if error <= 1e-11 or step < 1e-4:
            return _InverseTable(q_lo=q_lo, step=step, log_map=log_map, coef=coef, max_error=error)
        step /= 2.0


# ----------------------------------------------------------------------------------------------------------
# Public API.


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


def _grow_trajectory(objective: str, depth: int, x0: np.ndarray, rate: np.ndarray, t: np.ndarray) -> np.ndarray:
    """x(t)^L for growing features, (times, features), chunked over time to stay in cache."""
    red = _reduced(objective, depth, 1)
    table = _inverse_table(objective, depth)
    with np.errstate(over="ignore"):
        phi0 = red.phi(x0, np.log(x0), np.log1p(-x0))
    if not np.all(np.isfinite(phi0)):
        raise ValueError(
            "eps is too small for float64 at this depth: the plateau would outlast 1e308 time units "
            f"(smallest eps^(1/L)/v* = {x0.min():.3g})"
        )
    out = np.empty((t.size, x0.size))
    rows = max(1, (1 << 16) // max(1, x0.size))
    for start in range(0, t.size, rows):
        y = phi0 + rate * t[start : start + rows, None]
        log_x, outside = table.log_x(y)
        if outside.any():
            z = _solve(red, "grow", y[outside], np.broadcast_to(_branch_var(x0, "grow"), y.shape)[outside])
            log_x[outside] = log_expit(z)
        out[start : start + rows] = np.exp(depth * log_x)
    return out


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
    """Small-ε expansions of the critical time (spec §7).

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
    threshold (ε^(1/L) ≥ frac^(1/L)·v*, spec §7.4.5).
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
