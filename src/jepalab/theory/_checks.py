"""Input validation of ``jepalab.theory``: every public function fails with a ValueError naming the argument
and its allowed range."""

from __future__ import annotations

import numbers

import numpy as np

OBJECTIVES = ("jepa", "mae")
TIME_UNITS = ("gf", "paper")


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
