"""Model construction from a :class:`PretrainConfig`: the shared encoder and the I-JEPA / MAE objectives."""

from __future__ import annotations

import torch
from torch import nn

from jepalab.vision.config import PretrainConfig
from jepalab.vision.ijepa import IJEPA, Predictor
from jepalab.vision.mae import MAE
from jepalab.vision.vit import ViT

__all__ = ["build_encoder", "build_method", "parameter_counts"]


def build_encoder(cfg: PretrainConfig, channels: int, seed: int | None = None) -> ViT:
    """The encoder of ``cfg`` for ``channels``-channel images, initialised in the method's style from ``seed``
    (default ``cfg.seed``) without touching the global RNG."""
    size = cfg.model.resolved()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed if seed is None else seed)
        return ViT(cfg.data.image_size, cfg.model.patch_size, channels, size.dim, size.depth, size.heads,
                   size.mlp_ratio, cls_token=cfg.method == "mae" and cfg.mae.cls_token, init=cfg.method,
                   content_share=cfg.model.content_share)


def build_method(cfg: PretrainConfig, channels: int) -> IJEPA | MAE:
    """I-JEPA (encoder, EMA target, predictor) or MAE (encoder, decoder), seeded by ``cfg.seed``."""
    encoder = build_encoder(cfg, channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 1)
        if cfg.method == "ijepa":
            heads = cfg.ijepa.predictor_heads or encoder.heads
            predictor = Predictor(encoder.grid, encoder.dim, cfg.ijepa.predictor_dim, cfg.ijepa.predictor_depth, heads)
            return IJEPA(encoder, predictor, cfg.ijepa.loss)
        m = cfg.mae
        return MAE(encoder, m.decoder_dim, m.decoder_depth, m.decoder_heads, m.norm_pix_loss)


def _count(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def parameter_counts(method: IJEPA | MAE) -> dict[str, int]:
    """Parameters of the encoder, the predictor or decoder, and the trainable total (fixed positions excluded)."""
    counts = {"encoder": _count(method.encoder)}
    if isinstance(method, IJEPA):
        counts["predictor"] = _count(method.predictor)
        counts["target_encoder"] = _count(method.target_encoder)
    else:
        counts["decoder"] = _count(method) - counts["encoder"]
    counts["trainable"] = _count(method, trainable_only=True)
    return counts
