"""The universal integral of the per-feature dynamics and its exact antiderivative.

With ``x = v / v*`` (``v*`` the predictor's fixed point, ``x0 = ε^(1/L) / v*``) and ``s = sign(λ)`` both
objectives' ODEs become

    ∫_{x0}^{x} du / (u^a (1 − s u^m)) = s · c · t,
    JEPA: a = 2L, m = 1,     c = |λ| |ρ|^(2L−1)
    MAE:  a = L,  m = L + 1, c = |λ| |ρ|^((L−1)/(L+1))

whose antiderivative ``Φ`` is exact: powers of ``u`` from polynomial division plus logarithms from the
partial fractions of ``1/(1 − s u^m)`` over the m-th roots of ``s``. Critical times are differences of ``Φ``
(no quadrature). Derivation: ``docs/theory.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
