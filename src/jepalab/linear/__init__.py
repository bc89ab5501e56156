"""Deep linear JEPA/MAE simulator: Gaussian two-view data models, full-matrix training, validation, experiments.

See ``docs/linear.md``. May import ``jepalab.theory``, ``jepalab.eval`` and the shared utilities only.
"""

from jepalab.linear.models import DynamicLinearModel, GaussianViews, StaticLinearModel
from jepalab.linear.simulate import (
    EMA,
    GRADIENTS,
    INITS,
    METHODS,
    OBJECTIVES,
    OPTIMIZERS,
    TARGETS,
    Flow,
    Optim,
    Sampling,
    TrainResult,
    crossing_times,
    initial_parameters,
    loss_and_gradients,
    save_result,
    train,
)

__all__ = [
    "EMA",
    "GRADIENTS",
    "INITS",
    "METHODS",
    "OBJECTIVES",
    "OPTIMIZERS",
    "TARGETS",
    "DynamicLinearModel",
    "Flow",
    "GaussianViews",
    "Optim",
    "Sampling",
    "StaticLinearModel",
    "TrainResult",
    "crossing_times",
    "initial_parameters",
    "loss_and_gradients",
    "save_result",
    "train",
]
