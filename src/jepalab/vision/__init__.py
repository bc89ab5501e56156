"""Real-image pretraining: the shared ViT, I-JEPA (Assran et al., CVPR 2023) and MAE (He et al., CVPR 2022) as
registered methods (:mod:`jepalab.vision.methods`), multi-block and random masks, the training loop, checkpoints,
frozen embeddings, evaluation and the real-image experiments.

Names are imported lazily (torch loads on first use, so ``jepalab --help`` stays fast)::

    from jepalab.vision import PretrainConfig, pretrain, load_encoder, random_encoder, extract_features
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ViT": "vit", "VIT_SIZES": "vit", "sincos_2d": "vit",
    "IJEPA": "ijepa", "Predictor": "ijepa",
    "MAE": "mae", "patchify": "mae",
    "MultiBlockMasker": "masks", "MultiBlockMasks": "masks", "RandomMasks": "masks", "random_masks": "masks",
    "PretrainConfig": "config", "DataConfig": "config",
    "MethodSpec": "methods", "available_methods": "methods", "method_spec": "methods", "register_method": "methods",
    "build_encoder": "build", "build_method": "build",
    "ViewSampler": "views", "StepViews": "views", "mask_summary": "views",
    "pretrain": "train", "TrainingDiverged": "train", "load_run_config": "runs",
    "CheckpointError": "checkpoint", "read_checkpoint": "checkpoint",
    "load_encoder": "embeddings", "load_method": "embeddings", "random_encoder": "embeddings",
    "extract_features": "embeddings",
    "embed": "embeddings",
    "encode": "features", "collapse_report": "features", "POOLINGS": "features",
    "step_flops": "flops",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jepalab.vision' has no attribute {name!r}")
    return getattr(importlib.import_module(f"jepalab.vision.{_EXPORTS[name]}"), name)
