"""FLOPs of one training step (forward + backward, matmul/conv/attention, target forward included), counted with
``torch.utils.flop_counter.FlopCounterMode`` on a copy of the model on the ``meta`` device (no memory, no time)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from jepalab.vision.methods import MethodSpec
from jepalab.vision.methods.config import PretrainConfig
from jepalab.vision.models.masks import Masks
from jepalab.vision.training.build import build_model

__all__ = ["step_flops"]


def step_flops(cfg: PretrainConfig, spec: MethodSpec, channels: int, batch: int, masks: Masks) -> int:
    """Forward + backward FLOPs of one step on ``batch`` images with ``masks`` (their shapes set the cost).
    The optimiser and the target's EMA hold no matmul and are not counted."""
    meta = torch.device("meta")
    with meta:
        method = build_model(cfg, spec, channels)
    images = torch.empty(batch, channels, cfg.data.image_size, cfg.data.image_size, device=meta)
    with FlopCounterMode(display=False) as counter:
        method.loss(*method(images, masks.to(meta))).backward()
    return int(counter.get_total_flops())
