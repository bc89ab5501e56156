"""Every per-step value of a run (learning rate, weight decay, the target encoder's EMA momentum), resolved once when
the run is built (:func:`build_schedules`) into tables the step indexes by its counter: a resume needs only the
counter, and no step re-solves anything.

The EMA momentum runs linearly from a to b over the run (I-JEPA's generator). ``ema: auto`` picks a: the official
0.996 where the target then lags the context encoder by at most :data:`EMA_AUTO_LAG_SHARE` of the run, else the a ≥
:data:`EMA_AUTO_FLOOR` whose lag is that share (bisection, once per run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from jepalab.vision.methods.config import PretrainConfig

__all__ = ["EMA_AUTO_FLOOR", "EMA_AUTO_LAG_SHARE", "OFFICIAL_EMA", "Schedules", "auto_ema", "build_schedules", "cosine",
           "ema_lag", "ema_mass", "linear", "resolve_ema", "schedule_facts", "warmup_cosine"]

OFFICIAL_EMA = (0.996, 1.0)
EMA_AUTO_LAG_SHARE = 0.2
"""``ema: auto``: the target may lag the context encoder by at most this share of the run (official ViT-H/14, 300
epochs: 0.03)."""
EMA_AUTO_FLOOR = 0.9
"""``ema: auto`` never starts below this momentum (BYOL's lower range); shorter runs then lag by more."""


def warmup_cosine(step: int, total: int, warmup: int, start: float, peak: float, final: float) -> float:
    """Linear warm-up start → peak over ``warmup`` steps, then half-cosine peak → final at ``total``
    (MAE ``lr_sched.adjust_learning_rate``; I-JEPA ``WarmupCosineSchedule`` up to a one-step offset)."""
    if step < warmup:
        return start + (peak - start) * step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + (peak - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def cosine(step: int, total: int, start: float, end: float) -> float:
    """Half-cosine from ``start`` at step 0 to ``end`` at ``total`` (I-JEPA ``CosineWDSchedule``)."""
    progress = min(1.0, step / max(1, total))
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def linear(step: int, total: int, start: float, end: float) -> float:
    """``start + (end − start)·step/total`` (the I-JEPA EMA momentum generator, 0.996 → 1.0)."""
    return start + (end - start) * min(1.0, step / max(1, total))


def _ema_weights(start: float, end: float, total: int) -> tuple[np.ndarray, float]:
    """(w_s, ∏ m): the target after ``total`` steps is ∏ m · θ̄₀ + Σ_s w_s θ_s, w_s = (1 − m_s) ∏_{r>s} m_r."""
    momenta = start + (end - start) * np.arange(total) / max(1, total)  # :func:`linear` at steps 0 … T − 1
    logs = np.log(np.clip(momenta, 1e-300, None))
    after = np.concatenate([np.cumsum(logs[::-1])[::-1][1:], [0.0]])  # Σ_{r>s} log m_r
    return (1.0 - momenta) * np.exp(after), float(np.exp(logs.sum()))


def ema_lag(start: float, end: float, total: int) -> float:
    """Mean age Σ w_s (T − s) / Σ w_s, in steps, of the context encoders the target averages at the end of a
    ``total``-step run (:func:`_ema_weights`); 0 for a target that never moved."""
    weights, _ = _ema_weights(start, end, total)
    mass = weights.sum()
    return float((weights * (total - np.arange(total))).sum() / mass) if mass > 0 else 0.0


def auto_ema(total: int) -> tuple[float, float]:
    """``ema: auto`` for a ``total``-step run: the official (0.996, 1.0) when its target lags by ≤
    :data:`EMA_AUTO_LAG_SHARE` of the run, else (a, 1.0) with the a ≥ :data:`EMA_AUTO_FLOOR` whose lag is that share
    (bisection; the lag falls as a falls)."""
    limit = EMA_AUTO_LAG_SHARE * total
    if total <= 0 or ema_lag(*OFFICIAL_EMA, total) <= limit:
        return OFFICIAL_EMA
    if ema_lag(EMA_AUTO_FLOOR, 1.0, total) >= limit:
        return EMA_AUTO_FLOOR, 1.0
    low, high = EMA_AUTO_FLOOR, OFFICIAL_EMA[0]
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if ema_lag(mid, 1.0, total) <= limit else (low, mid)
    return round(low, 6), 1.0


def resolve_ema(setting: Literal["auto"] | tuple[float, float], total: int) -> tuple[float, float]:
    """The EMA momenta (start, end) of a ``total``-step run: ``setting``, or :func:`auto_ema` for "auto"."""
    return auto_ema(total) if setting == "auto" else (float(setting[0]), float(setting[1]))


def ema_mass(start: float, end: float, total: int) -> float:
    """Σ_{s<T} (1 − m_s) for the linear momenta m_s = a + (b − a)·s/T of :func:`linear`, in closed form
    T·(1 − a) − (b − a)·(T − 1)/2; the target keeps about exp(−mass) of its initialisation."""
    return total * (1.0 - start) - (end - start) * (total - 1) / 2 if total > 0 else 0.0


@dataclass(frozen=True)
class Schedules:
    """The run's per-step values: ``tables[name][k]`` is step k's ``lr``, ``wd`` and (a method with an EMA target)
    ``momentum``; ``ema`` the resolved momenta (start, end) or None."""

    tables: dict[str, np.ndarray]
    ema: tuple[float, float] | None


def build_schedules(cfg: PretrainConfig, ema: Literal["auto"] | tuple[float, float] | None, total: int,
                    warmup: int) -> Schedules:
    """The schedules of a ``total``-step run with ``warmup`` warm-up steps: lr (warm-up + cosine), wd (cosine) and,
    when ``ema`` is set (the method's EMA setting), the linear momentum from :func:`resolve_ema`."""
    o, steps = cfg.optim, range(total)
    tables = {"lr": np.array([warmup_cosine(k, total, warmup, o.start_lr, o.lr, o.final_lr) for k in steps]),
              "wd": np.array([cosine(k, total, o.weight_decay, o.final_weight_decay) for k in steps])}
    momenta = None if ema is None else resolve_ema(ema, total)
    if momenta is not None:
        tables["momentum"] = np.array([linear(k, total, *momenta) for k in steps])
    return Schedules(tables, momenta)


def schedule_facts(cfg: PretrainConfig, schedules: Schedules, ema: Any, total: int, warmup: int) -> dict[str, Any]:
    """run.json's ``schedules``: peak lr and warm-up; with an EMA target its momenta, the setting they came from,
    their mass Σ(1 − m), the share of its init the target keeps (∏ m) and its lag at the end (steps, share)."""
    facts: dict[str, Any] = {"lr_peak": cfg.optim.lr, "warmup_steps": warmup, "warmup_share": warmup / total}
    if schedules.ema is None:
        return facts
    start, end = schedules.ema
    lag = ema_lag(start, end, total)
    return {**facts, "ema": [start, end], "ema_setting": ema if ema == "auto" else "fixed",
            "ema_mass": ema_mass(start, end, total), "target_init_share": _ema_weights(start, end, total)[1],
            "target_lag_steps": lag, "target_lag_share": lag / total if total else 0.0}
