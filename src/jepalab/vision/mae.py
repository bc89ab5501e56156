"""MAE (He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022): the encoder sees a random
25 % of the patches, a light decoder re-inserts mask tokens and regresses the pixels of the removed patches
(mean squared error on removed patches only, optionally per-patch normalised: ``norm_pix_loss``).
Follows facebookresearch/mae ``models_mae.py``; the encoder is the shared :class:`~jepalab.vision.vit.ViT`.
"""

from __future__ import annotations

import torch
from torch import nn

from jepalab.vision.masks import RandomMasks
from jepalab.vision.vit import Block, ViT, init_weights, sincos_2d

__all__ = ["MAE", "patchify"]


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) → (B, N, p·p·C), token order row-major, values ordered (row in patch, column, channel)."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(b, (h // patch) * (w // patch), patch * patch * c)


class MAE(nn.Module):
    """MAE objective: ``forward(images, masks)`` returns the reconstruction loss on the removed patches."""

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
            init_weights(module, "mae")
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

    def forward(self, images: torch.Tensor, masks: RandomMasks) -> torch.Tensor:
        latent = self.encoder(images, keep=masks.keep)  # (B, [1 +] K, E)
        pred = self.decode(latent, masks)  # (B, N − K, p·p·C)
        target = patchify(images, self.encoder.patch_size)
        target = target.gather(1, masks.masked.unsqueeze(-1).expand(-1, -1, target.shape[-1]))  # (B, N − K, p·p·C)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)  # unbiased, as the official code
            target = (target - mean) / (var + 1e-6) ** 0.5
        return (pred.float() - target.float()).square().mean()  # = Σ mask·mean_patch(err²) / Σ mask
