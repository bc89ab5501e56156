"""Per-step schedules of the pretraining loop, pure functions of the step (so a resume needs only the counter)."""

from __future__ import annotations

import math

__all__ = ["cosine", "linear", "warmup_cosine"]


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
