"""Model construction from a :class:`PretrainConfig` and its method's spec: the shared encoder and the method's
objective around it."""

from __future__ import annotations

import torch
from torch import nn

from jepalab.vision.methods import MethodSpec
from jepalab.vision.methods.config import PretrainConfig
from jepalab.vision.models.vit import ViT

__all__ = ["build_encoder", "build_model"]


def build_encoder(cfg: PretrainConfig, spec: MethodSpec, channels: int, seed: int | None = None) -> ViT:
    """The encoder of ``cfg`` (``spec.encoder_factory``) for ``channels``-channel images, initialised in the
    method's style from ``seed`` (default ``cfg.seed``) without touching the global RNG."""
    size = cfg.model.resolved()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed if seed is None else seed)
        make = spec.encoder_factory(cfg)
        return make(cfg.data.image_size, cfg.model.patch_size, channels, size.dim, size.depth, size.heads,
                    size.mlp_ratio, cls_token=spec.cls_token(cfg), init=spec.init,
                    content_share=cfg.model.content_share)


def build_model(cfg: PretrainConfig, spec: MethodSpec, channels: int) -> nn.Module:
    """The objective of ``spec`` around a fresh encoder (``model(images, masks)`` → loss), seeded by
    ``cfg.seed`` (encoder) and ``cfg.seed + 1`` (everything else)."""
    encoder = build_encoder(cfg, spec, channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 1)
        return spec.build(cfg, encoder)
