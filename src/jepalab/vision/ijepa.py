"""I-JEPA (Assran et al., "Self-Supervised Learning from Images with a Joint-Embedding Predictive Architecture",
CVPR 2023): a context encoder sees one context block, a narrow predictor fills in mask tokens at each target
block's positions, and the loss compares its output with the EMA target encoder's LayerNorm-ed tokens there.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from jepalab.vision.masks import MultiBlockMasks
from jepalab.vision.vit import Block, ViT, init_weights, sincos_2d

__all__ = ["IJEPA", "Predictor"]


class Predictor(nn.Module):
    """Narrow ViT predictor: context tokens (B, Kc, E) + positions of P target blocks → predictions (P·B, Kt, E).

    As the official ``VisionTransformerPredictor``: project to ``dim``, add fixed sin-cos positions, repeat the
    context once per target block (block-major), append a shared mask token + position per target token, run
    the blocks, LayerNorm, keep the target slots, project back to the encoder width.
    """

    def __init__(self, grid: tuple[int, int], encoder_dim: int, dim: int, depth: int, heads: int,
                 mlp_ratio: float = 4.0):
        super().__init__()
        self.embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", sincos_2d(dim, grid), persistent=False)  # (N, dim)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.proj = nn.Linear(dim, encoder_dim)
        init_weights(self, "ijepa")
        nn.init.trunc_normal_(self.mask_token, std=0.02, a=-2.0, b=2.0)

    def forward(self, context: torch.Tensor, context_ids: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
        b, kc = context_ids.shape
        p, kt = target_ids.shape[1], target_ids.shape[2]
        x = self.embed(context) + self.pos_embed[context_ids]  # (B, Kc, dim)
        x = x.repeat(p, 1, 1)  # (P·B, Kc, dim), copy j = rows j·B … (j+1)·B − 1
        slots = target_ids.transpose(0, 1).reshape(p * b, kt)  # (P·B, Kt), block-major
        x = torch.cat([x, self.mask_token + self.pos_embed[slots]], dim=1)  # (P·B, Kc + Kt, dim)
        for block in self.blocks[:-1]:
            x = block(x)
        x = self.blocks[-1](x, slice(kc, None))  # only the target slots' outputs are used: (P·B, Kt, dim)
        return self.proj(self.norm(x))  # (P·B, Kt, E)


class IJEPA(nn.Module):
    """I-JEPA objective: ``forward(images, masks)`` returns the loss between predictor outputs and the target
    encoder's LayerNorm-ed (no affine) tokens at the target blocks, smooth-L1 (β = 1, the official code) or
    mean squared error (the paper's L2 distance, divided by the width). ``update_target(m)`` does the EMA
    θ̄ ← m·θ̄ + (1 − m)·θ after each optimiser step."""

    def __init__(self, encoder: ViT, predictor: Predictor, loss: str = "smooth_l1"):
        super().__init__()
        if loss not in ("smooth_l1", "l2"):
            raise ValueError(f"ijepa.loss must be 'smooth_l1' or 'l2'; got {loss!r}")
        self.encoder, self.predictor, self.loss = encoder, predictor, loss
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)

    def targets(self, images: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
        """Target encoder tokens at the target blocks, LayerNorm-ed: (P·B, Kt, E), block-major."""
        with torch.no_grad():
            b, p, kt = target_ids.shape
            h = self.target_encoder(images, out=target_ids.view(b, p * kt))  # (B, P·Kt, E)
            h = F.layer_norm(h, (h.shape[-1],))
            return h.view(b, p, kt, -1).transpose(0, 1).reshape(p * b, kt, -1)

    def forward(self, images: torch.Tensor, masks: MultiBlockMasks) -> torch.Tensor:
        h = self.targets(images, masks.targets)  # (P·B, Kt, E)
        z = self.encoder(images, keep=masks.context)  # (B, Kc, E)
        z = self.predictor(z, masks.context, masks.targets)  # (P·B, Kt, E)
        if self.loss == "smooth_l1":
            return F.smooth_l1_loss(z, h)
        return F.mse_loss(z, h)

    @torch.no_grad()
    def update_target(self, momentum: float | torch.Tensor) -> None:
        """EMA θ̄ ← m·θ̄ + (1 − m)·θ of the context encoder into the target encoder in three multi-tensor ops;
        ``momentum`` a float or a 0-d tensor on the models' device (read without a host synchronisation; torch's
        ``_foreach_lerp_`` takes a tensor weight only as one tensor per parameter, which is a kernel per parameter)."""
        targets, sources = list(self.target_encoder.parameters()), list(self.encoder.parameters())
        torch._foreach_mul_(targets, momentum)
        torch._foreach_add_(targets, torch._foreach_mul(sources, 1.0 - momentum))
