"""Exact per-feature dynamics of deep linear JEPA and MAE (Littwin et al., NeurIPS 2024).

numpy in, numpy out, broadcasting like scipy. See ``docs/theory.md`` for the model, the ODEs, the closed
forms, their derivations and the time units. Modules: ``dynamics`` (the API), ``closed_form`` (the exact
antiderivative), ``inverse`` (its inversion for trajectories), ``_checks`` (argument validation).
"""

from jepalab.theory.dynamics import (
    OBJECTIVES,
    TIME_UNITS,
    amplitude_rate,
    critical_time,
    critical_time_expansion,
    fixed_point,
    format_order,
    learning_order,
    trajectory,
)

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
