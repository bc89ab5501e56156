"""Real-image experiments (``jepalab experiment NAME``): a joint-embedding method versus a reconstruction method
(default I-JEPA versus MAE) with the same encoder, views, steps and images, evaluated by
:mod:`jepalab.vision.readout.evaluation`, one file per experiment, each registered with
:func:`~.registry.register_experiment` and discovered on first use:

- ``noisy-features`` (R1): distractor uptake and probe drop on noisy Fashion-MNIST;
- ``variance-subspaces`` (R2): top/bottom pixel-variance dependence;
- ``depth`` (R3): the MAE − I-JEPA uptake gap over encoder depth;
- ``context-size``: I-JEPA versus EC-IJEPA (our reading) over context-block scales.

Runs live in a store keyed by their resolved config (:mod:`.store`), so experiments that need the same run share it;
each experiment writes a results folder whose verdict can be recomputed from its rows (:mod:`.results`).
"""

from jepalab.vision.experiments.registry import Experiment, available_experiments, experiment, register_experiment
from jepalab.vision.experiments.runner import run_experiment, run_experiments, write_plan
from jepalab.vision.experiments.settings import MODES, ExperimentSettings, pretrain_config

__all__ = ["MODES", "Experiment", "ExperimentSettings", "available_experiments", "experiment", "pretrain_config",
           "register_experiment", "run_experiment", "run_experiments", "write_plan"]
