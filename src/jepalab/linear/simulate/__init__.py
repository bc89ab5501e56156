"""Deep linear JEPA / MAE training: full matrices, exact population gradients, batched runs, GD or gradient flow.

Parameters of R independent runs are one array ``P`` of shape (L+1, R, d, d): ``P[:L]`` the encoder layers
W_1 … W_L (W̄ = W_L ⋯ W_1), ``P[L]`` the predictor (JEPA) or decoder (MAE) V. Modules: ``gradients`` (loss,
exact gradients, sampled second moments), ``init``, ``optimizers``, ``integrators`` (GD and the flow),
``recording`` (what a run measures, :class:`TrainResult`), ``files`` (writing results), ``options`` (the
grouped options of ``train``) and ``training`` (``train`` itself).
"""

from jepalab.linear.simulate._common import single_thread
from jepalab.linear.simulate.files import save_result
from jepalab.linear.simulate.gradients import loss_and_gradients
from jepalab.linear.simulate.init import INITS, initial_parameters
from jepalab.linear.simulate.options import EMA, GRADIENTS, METHODS, OPTIMIZERS, TARGETS, Flow, Optim, Sampling
from jepalab.linear.simulate.recording import TrainResult, crossing_times
from jepalab.linear.simulate.training import OBJECTIVES, train

__all__ = [
    "EMA",
    "GRADIENTS",
    "INITS",
    "METHODS",
    "OBJECTIVES",
    "OPTIMIZERS",
    "TARGETS",
    "Flow",
    "Optim",
    "Sampling",
    "TrainResult",
    "crossing_times",
    "initial_parameters",
    "loss_and_gradients",
    "save_result",
    "single_thread",
    "train",
]
