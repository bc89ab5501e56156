"""MAE as a registered method (``method: mae``): the ``mae`` config section (masking and decoder), the official
recipe (``PRETRAIN.md``), random masks and the encoder on all patches as evaluation's read-out. The objective itself
is :mod:`jepalab.vision.mae`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from jepalab.config import param
from jepalab.vision.mae import MAE
from jepalab.vision.masks import Masks, RandomMasks, random_masks
from jepalab.vision.methods.registry import MethodSpec, register_method
from jepalab.vision.vit import ViT

if TYPE_CHECKING:
    from jepalab.vision.config import PretrainConfig

__all__ = ["MAEConfig", "MAEMethod"]


@dataclass
class MAEConfig:
    """MAE masking and decoder."""

    mask_ratio: float = param(0.75, gt=0, lt=1, help="share of patches removed")
    decoder_dim: int = param(512, ge=4, help="decoder width (official: 512)")
    decoder_depth: int = param(8, ge=1, help="decoder blocks (official: 8)")
    decoder_heads: int = param(16, ge=1, help="decoder heads (official: 16)")
    norm_pix_loss: bool = param(True, help="regress per-patch normalised pixels")
    cls_token: bool = param(True, help="encoder class token (official: yes)")


@register_method
class MAEMethod(MethodSpec):
    """MAE: encoder on the visible patches + pixel decoder; evaluation reads the encoder on all patches."""

    name, label, init, head = "mae", "MAE", "mae", "decoder"
    sections: ClassVar[dict[str, type]] = {"mae": MAEConfig}
    optimiser_recipe: ClassVar[dict[str, Any]] = {"base_lr": 1.5e-4, "start_lr": 0.0, "final_lr": 0.0,
                                                  "weight_decay": 0.05, "final_weight_decay": 0.05,
                                                  "betas": (0.9, 0.95)}
    small_image_recipe: ClassVar[dict[str, Any]] = {
        "data": {"image_size": 28, "crop_scale": [0.2, 1.0], "hflip": True},
        "model": {"size": "micro", "patch_size": 4, "content_share": 0.38},
        "mae": {"mask_ratio": 0.75, "decoder_dim": 96, "decoder_depth": 4, "decoder_heads": 3, "norm_pix_loss": True,
                "cls_token": True},
        "optim": {"warmup_fraction": 0.1, "global_batch": 128, "base_lr": 1.5e-3},
    }
    aliases: ClassVar[dict[str, str]] = {"context": "encoder"}  # the one encoder sees the visible patches

    def validate(self, cfg: PretrainConfig) -> None:
        """Decoder width divisible by its heads and by 4; at least one visible patch."""
        m = cfg.mae
        if m.decoder_dim % m.decoder_heads or m.decoder_dim % 4:
            raise ValueError(f"mae.decoder_dim ({m.decoder_dim}) must be divisible by mae.decoder_heads "
                             f"({m.decoder_heads}) and by 4")
        if int(cfg.grid[0] * cfg.grid[1] * (1 - m.mask_ratio)) < 1:
            raise ValueError(f"mae.mask_ratio {m.mask_ratio} leaves no visible patch")

    def cls_token(self, cfg: PretrainConfig) -> bool:
        """``mae.cls_token``."""
        return cfg.mae.cls_token

    def build(self, cfg: PretrainConfig, encoder: ViT) -> MAE:
        """Encoder plus the decoder of ``cfg.mae``."""
        m = cfg.mae
        return MAE(encoder, m.decoder_dim, m.decoder_depth, m.decoder_heads, m.norm_pix_loss)

    def mask_sampler(self, cfg: PretrainConfig) -> Callable[[int, torch.Generator], Masks]:
        """Per-image random masks removing ``mae.mask_ratio`` of the patches."""
        return functools.partial(_random_masks, num_tokens=cfg.grid[0] * cfg.grid[1], ratio=cfg.mae.mask_ratio)

    def mask_summary(self, cfg: PretrainConfig, masks: list[Masks]) -> dict[str, Any]:
        """The mask ratio (every batch removes the same number of patches)."""
        return {"ratio": cfg.mae.mask_ratio}


def _random_masks(batch: int, generator: torch.Generator, num_tokens: int, ratio: float) -> RandomMasks:
    return random_masks(batch, num_tokens, ratio, generator)
