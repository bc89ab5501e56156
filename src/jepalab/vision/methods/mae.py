"""MAE (He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022) as a registered method
(``method: mae``): the objective (:class:`MAE`: the encoder on the visible patches, a light decoder reconstructing the
masked patches' pixels), the ``mae`` config section (masking and decoder), the official recipe (``PRETRAIN.md``),
random masks and the encoder on all patches as evaluation's read-out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from jepalab.config import param
from jepalab.vision.methods.registry import MethodSpec, register_method
from jepalab.vision.models.masks import Masks, RandomMasks, random_masks
from jepalab.vision.models.vit import Block, ViT, init_weights, sincos_2d

if TYPE_CHECKING:
    from jepalab.vision.methods.config import PretrainConfig

__all__ = ["MAE", "MAEConfig", "MAEMethod", "patchify"]


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) → (B, N, p·p·C), token order row-major, values ordered (row in patch, column, channel)."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(b, (h // patch) * (w // patch), patch * patch * c)


class MAE(nn.Module):
    """MAE objective: ``forward(images, masks)`` → (pixel predictions, targets) of the removed patches, ``loss``
    between them."""

    def __init__(self, encoder: ViT, decoder_dim: int = 512, decoder_depth: int = 8, decoder_heads: int = 16,
                 norm_pix_loss: bool = True, mlp_ratio: float = 4.0):
        super().__init__()
        self.encoder, self.norm_pix_loss = encoder, norm_pix_loss
        self.decoder_embed = nn.Linear(encoder.dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos_embed", sincos_2d(decoder_dim, encoder.grid), persistent=False)  # (N, Dd)
        self.decoder_blocks = nn.ModuleList([Block(decoder_dim, decoder_heads, mlp_ratio)
                                             for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_dim, encoder.patch_size ** 2 * encoder.in_channels)
        for module in (self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred):
            init_weights(module, "xavier")
        nn.init.normal_(self.mask_token, std=0.02)

    def decode(self, latent: torch.Tensor, masks: RandomMasks) -> torch.Tensor:
        """Encoder output (B, [1 +] K, E) → pixel predictions for the removed patches (B, N − K, p·p·C)."""
        x = self.decoder_embed(latent)  # (B, [1 +] K, Dd)
        has_cls = self.encoder.cls_token is not None
        visible = x[:, 1:] if has_cls else x
        b, n = masks.restore.shape
        tokens = torch.cat([visible, self.mask_token.expand(b, n - visible.shape[1], -1)], dim=1)  # (B, N, Dd)
        tokens = tokens.gather(1, masks.restore.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # unshuffle
        tokens = tokens + self.decoder_pos_embed
        if has_cls:
            tokens = torch.cat([x[:, :1], tokens], dim=1)  # class token, position zero
        for block in self.decoder_blocks[:-1]:
            tokens = block(tokens)
        removed = masks.masked + 1 if has_cls else masks.masked  # (B, N − K) positions in the sequence
        tokens = self.decoder_blocks[-1](tokens, removed)  # only the removed patches' outputs are used
        return self.decoder_pred(self.decoder_norm(tokens))  # (B, N − K, p·p·C)

    def forward(self, images: torch.Tensor, masks: RandomMasks) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.encoder(images, keep=masks.keep)  # (B, [1 +] K, E)
        pred = self.decode(latent, masks)  # (B, N − K, p·p·C)
        target = patchify(images, self.encoder.patch_size)
        target = target.gather(1, masks.masked.unsqueeze(-1).expand(-1, -1, target.shape[-1]))  # (B, N − K, p·p·C)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)  # unbiased, as the official code
            target = (target - mean) / (var + 1e-6) ** 0.5
        return pred, target

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the removed patches' pixels, (B, N − K, p·p·C) each, in fp32."""
        return (pred.float() - target.float()).square().mean()  # = Σ mask·mean_patch(err²) / Σ mask


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

    name, label, init, head = "mae", "MAE", "xavier", "decoder"
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
        m = cfg.section(MAEConfig)
        if m.decoder_dim % m.decoder_heads or m.decoder_dim % 4:
            raise ValueError(f"mae.decoder_dim ({m.decoder_dim}) must be divisible by mae.decoder_heads "
                             f"({m.decoder_heads}) and by 4")
        if int(cfg.grid[0] * cfg.grid[1] * (1 - m.mask_ratio)) < 1:
            raise ValueError(f"mae.mask_ratio {m.mask_ratio} leaves no visible patch")

    def cls_token(self, cfg: PretrainConfig) -> bool:
        """``mae.cls_token``."""
        return cfg.section(MAEConfig).cls_token

    def build(self, cfg: PretrainConfig, encoder: ViT) -> MAE:
        """Encoder plus the decoder of the ``mae`` section."""
        m = cfg.section(MAEConfig)
        return MAE(encoder, m.decoder_dim, m.decoder_depth, m.decoder_heads, m.norm_pix_loss)

    def mask_sampler(self, cfg: PretrainConfig) -> Callable[[int, torch.Generator], Masks]:
        """Per-image random masks removing ``mae.mask_ratio`` of the patches."""
        ratio = cfg.section(MAEConfig).mask_ratio
        return functools.partial(_random_masks, num_tokens=cfg.grid[0] * cfg.grid[1], ratio=ratio)

    def mask_summary(self, cfg: PretrainConfig, masks: list[Masks]) -> dict[str, Any]:
        """The mask ratio (every batch removes the same number of patches)."""
        return {"ratio": cfg.section(MAEConfig).mask_ratio}


def _random_masks(batch: int, generator: torch.Generator, num_tokens: int, ratio: float) -> RandomMasks:
    return random_masks(batch, num_tokens, ratio, generator)
