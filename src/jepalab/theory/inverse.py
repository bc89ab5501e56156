"""Inverting the antiderivative Φ: trajectories w̄(t) from t(w̄).

Each branch has its own solver variable in which Φ is increasing and finite-precision safe:
grow (s = +1, x < 1): z = logit(x); above (s = +1, x > 1): u = −ln(x − 1); decay (s = −1): ℓ = ln x.
The growing branch reads a per-(objective, depth) cubic-Hermite table of the inverse, self-checked at build
time, and falls back to safeguarded Newton iterations outside it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_expit

from jepalab.theory.closed_form import _Reduced, _reduced

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
