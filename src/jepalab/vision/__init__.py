"""Real-image pretraining, one sub-package per stage of the pipeline:

- :mod:`~jepalab.vision.models`: the ViT, attention kernels, multi-block and random masks, feature read-outs;
- :mod:`~jepalab.vision.methods`: the pretraining config, the method registry and one file per registered method,
  holding its model, its config section and its spec (I-JEPA, MAE, EC-IJEPA);
- :mod:`~jepalab.vision.training`: the loop, the step, schedules, views, precision, DDP, checkpoints, run folders;
- :mod:`~jepalab.vision.readout`: frozen embeddings, run evaluation, view statistics;
- :mod:`~jepalab.vision.experiments`: the real-image experiments, one file each.

Names are imported lazily (torch loads on first use, so ``jepalab --help`` stays fast)::

    from jepalab.vision import PretrainConfig, pretrain, load_encoder, random_encoder, extract_features
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ViT": "models.vit", "VIT_SIZES": "models.vit", "sincos_2d": "models.vit",
    "IJEPA": "methods.ijepa", "Predictor": "methods.ijepa",
    "MAE": "methods.mae", "patchify": "methods.mae",
    "MultiBlockMasker": "models.masks", "MultiBlockMasks": "models.masks", "RandomMasks": "models.masks",
    "random_masks": "models.masks",
    "PretrainConfig": "methods.config",
    "MethodSpec": "methods", "available_methods": "methods", "method_spec": "methods", "register_method": "methods",
    "build_encoder": "training.build", "build_model": "training.build",
    "ViewSampler": "training.step", "StepViews": "training.step", "mask_summary": "training.step",
    "pretrain": "training.loop", "TrainingDiverged": "training.loop", "load_run_config": "training.run_dir",
    "CheckpointError": "training.checkpoint", "read_checkpoint": "training.checkpoint",
    "load_encoder": "readout.embeddings", "load_model": "readout.embeddings", "random_encoder": "readout.embeddings",
    "extract_features": "readout.embeddings", "embed": "readout.embeddings",
    "encode": "models.features", "collapse_report": "models.features", "POOLINGS": "models.features",
    "step_flops": "training.flops",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jepalab.vision' has no attribute {name!r}")
    return getattr(importlib.import_module(f"jepalab.vision.{_EXPORTS[name]}"), name)
