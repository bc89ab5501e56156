"""Exact per-feature dynamics of deep linear JEPA and MAE (Littwin et al., NeurIPS 2024).

numpy in, numpy out, broadcasting like scipy. See ``docs/theory.md`` for the model, the ODEs, the closed
forms and the time units.
"""

from jepalab.theory.dynamics import (
    OBJECTIVES,
    TIME_UNITS,
    amplitude_rate,
    critical_time,
    critical_time_expansion,
    fixed_point,
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
    "learning_order",
    "trajectory",
]
