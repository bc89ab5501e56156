"""Deep linear JEPA/MAE simulator: Gaussian two-view data models, full-matrix training, validation, experiments.

See ``docs/linear.md``. May import ``jepalab.theory``, ``jepalab.eval`` and the shared utilities only.
"""

from jepalab.linear.models import DynamicLinearModel, GaussianViews, StaticLinearModel
from jepalab.linear.simulate import (
    GRADIENTS,
    INITS,
    METHODS,
    OBJECTIVES,
    OPTIMIZERS,
    TARGETS,
    TrainResult,
    crossing_times,
    initial_parameters,
    loss_and_gradients,
    train,
)

__all__ = [
    "GRADIENTS",
    "INITS",
    "METHODS",
    "OBJECTIVES",
    "OPTIMIZERS",
    "TARGETS",
    "DynamicLinearModel",
    "GaussianViews",
    "StaticLinearModel",
    "TrainResult",
    "crossing_times",
    "initial_parameters",
    "loss_and_gradients",
    "train",
]
