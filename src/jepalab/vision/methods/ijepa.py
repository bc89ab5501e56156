"""I-JEPA (Assran et al., "Self-Supervised Learning from Images with a Joint-Embedding Predictive Architecture",
CVPR 2023), ``method: ijepa``: a context encoder sees one context block, a narrow :class:`Predictor` fills in mask
tokens at each target block's positions, and the loss compares them with the EMA target encoder's LayerNorm-ed
tokens there (:class:`IJEPA`); after each optimiser step the trainer moves the target by :meth:`IJEPA.update_target`.
Below the model: its ``ijepa`` config section and the spec that registers it (masks of the ``mask`` section, the
official recipe, the target encoder as evaluation's default).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from jepalab.config import param
from jepalab.vision.methods.registry import MethodSpec, register_method
from jepalab.vision.models.masks import MaskConfig, Masks, MultiBlockMasker, MultiBlockMasks
from jepalab.vision.models.vit import Block, ViT, init_weights, sincos_2d

if TYPE_CHECKING:
    from jepalab.vision.methods.config import PretrainConfig

__all__ = ["IJEPA", "IJEPAConfig", "IJEPAMethod", "Predictor", "masker"]


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
        init_weights(self, "trunc_normal")
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
    """I-JEPA objective: ``forward(images, masks)`` → (predictions, targets) at the target blocks, ``loss`` between
    them: smooth-L1 (β = 1, the official code) or mean squared error (the paper's L2 distance, divided by the width).
    ``update_target(m)`` is the EMA θ̄ ← m·θ̄ + (1 − m)·θ the trainer runs after each optimiser step."""

    def __init__(self, encoder: ViT, predictor: Predictor, loss: str = "smooth_l1"):
        super().__init__()
        if loss not in ("smooth_l1", "l2"):
            raise ValueError(f"ijepa.loss must be 'smooth_l1' or 'l2'; got {loss!r}")
        self.encoder, self.predictor, self.loss_kind = encoder, predictor, loss
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)

    def targets(self, images: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
        """Target encoder tokens at the target blocks, LayerNorm-ed: (P·B, Kt, E), block-major."""
        with torch.no_grad():
            b, p, kt = target_ids.shape
            h = self.target_encoder(images, out=target_ids.view(b, p * kt))  # (B, P·Kt, E)
            h = F.layer_norm(h, (h.shape[-1],))
            return h.view(b, p, kt, -1).transpose(0, 1).reshape(p * b, kt, -1)

    def forward(self, images: torch.Tensor, masks: MultiBlockMasks) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.targets(images, masks.targets)  # (P·B, Kt, E)
        z = self.encoder(images, keep=masks.context)  # (B, Kc, E)
        z = self.predictor(z, masks.context, masks.targets)  # (P·B, Kt, E)
        return z, h

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean smooth-L1 (or squared) distance between predictions and targets, both (P·B, Kt, E)."""
        if self.loss_kind == "smooth_l1":
            return F.smooth_l1_loss(pred, target)
        return F.mse_loss(pred, target)

    @torch.no_grad()
    def update_target(self, momentum: float | torch.Tensor) -> None:
        """EMA θ̄ ← m·θ̄ + (1 − m)·θ of the context encoder into the target encoder in three multi-tensor ops;
        ``momentum`` a float or a 0-d tensor on the models' device (read without a host synchronisation; torch's
        ``_foreach_lerp_`` takes a tensor weight only as one tensor per parameter, which is a kernel per parameter)."""
        targets, sources = list(self.target_encoder.parameters()), list(self.encoder.parameters())
        torch._foreach_mul_(targets, momentum)
        torch._foreach_add_(targets, torch._foreach_mul(sources, 1.0 - momentum))


@dataclass
class IJEPAConfig:
    """I-JEPA predictor, loss and EMA."""

    predictor_dim: int = param(384, ge=4, help="predictor width (official: 384)")
    predictor_depth: int = param(6, ge=1, help="predictor blocks (official: 6; 12 for ViT-H)")
    predictor_heads: int | None = param(None, ge=1, help="predictor heads (official: the encoder's)")
    loss: str = param("smooth_l1", choices=("smooth_l1", "l2"), help="smooth_l1 (official code) or l2 (paper)")
    ema: Literal["auto"] | tuple[float, float] = param(
        "auto", ge=0, le=1, help="EMA momentum, linear from first to second; auto: the official 0.996 → 1 where the "
        "run is long enough, else a lower start so that the target lags by ≤ 20 % of the run (--dry-run prints it)")


def masker(cfg: PretrainConfig) -> MultiBlockMasker:
    """The multi-block mask sampler of the config's ``mask`` section (I-JEPA's masks) on its token grid."""
    m = cfg.section(MaskConfig)
    return MultiBlockMasker(cfg.grid, m.num_targets, m.target_scale, m.target_aspect, m.context_scale, m.min_keep,
                            m.allow_overlap, m.full_grid)


@register_method
class IJEPAMethod(MethodSpec):
    """I-JEPA: context encoder + predictor trained, EMA target encoder read by evaluation."""

    name, label, init, head = "ijepa", "I-JEPA", "trunc_normal", "predictor"
    sections: ClassVar[dict[str, type]] = {"mask": MaskConfig, "ijepa": IJEPAConfig}
    optimiser_recipe: ClassVar[dict[str, Any]] = {"lr": 1e-3, "start_lr": 2e-4, "final_lr": 1e-6, "weight_decay": 0.04,
                                                  "final_weight_decay": 0.4, "betas": (0.9, 0.999), "lr_batch": 2048}
    """The official recipe at its batch of 2048; lr and start_lr scale by √(batch / 2048) (the square-root rule for
    Adam): 2.5e-4 at batch 128, where the unscaled 1e-3 collapses a target that follows the context encoder."""
    small_image_recipe: ClassVar[dict[str, Any]] = {
        "data": {"image_size": 28, "crop_scale": [0.3, 1.0], "hflip": False},
        "model": {"size": "micro", "patch_size": 4, "content_share": 0.38},
        "ijepa": {"predictor_dim": 96, "predictor_depth": 4, "loss": "smooth_l1", "ema": "auto"},
        "optim": {"warmup_fraction": 0.1, "global_batch": 128},
    }
    encoders: ClassVar[dict[str, str]] = {"context": "encoder", "target": "target_encoder"}
    default_encoder = "target"  # the paper's evaluation

    def validate(self, cfg: PretrainConfig) -> None:
        """Predictor width divisible by its heads and by 4; mask blocks that fit the grid."""
        i = cfg.section(IJEPAConfig)
        heads = i.predictor_heads or cfg.model.resolved().heads
        if i.predictor_dim % heads or i.predictor_dim % 4:
            raise ValueError(f"ijepa.predictor_dim ({i.predictor_dim}) must be divisible by the predictor heads "
                             f"({heads}) and by 4")
        masker(cfg)  # raises when the block sizes cannot satisfy min_keep on this grid

    def build(self, cfg: PretrainConfig, encoder: ViT) -> IJEPA:
        """Context encoder, EMA copy as target, predictor of the ``ijepa`` section."""
        i = cfg.section(IJEPAConfig)
        predictor = Predictor(encoder.grid, encoder.dim, i.predictor_dim, i.predictor_depth,
                              i.predictor_heads or encoder.heads)
        return IJEPA(encoder, predictor, i.loss)

    def mask_sampler(self, cfg: PretrainConfig) -> MultiBlockMasker:
        """Multi-block masks of the ``mask`` section."""
        return masker(cfg)

    def mask_summary(self, cfg: PretrainConfig, masks: list[Masks]) -> dict[str, Any]:
        """Resolved mask settings, context and per-block target token counts, relaxed share."""
        context = torch.tensor([m.context.shape[1] for m in masks], dtype=torch.float64)
        target = torch.tensor([m.targets.shape[2] for m in masks], dtype=torch.float64)
        relaxed = torch.cat([m.relaxed for m in masks]).double()
        tokens = cfg.grid[0] * cfg.grid[1]

        def spread(x: torch.Tensor) -> dict[str, float | int]:
            return {"mean": float(x.mean()), "min": int(x.min()), "max": int(x.max())}

        return {**masker(cfg).settings(), "tokens": tokens, "context_tokens": spread(context),
                "target_tokens_per_block": spread(target), "context_share": float(context.mean() / tokens),
                "relaxed_share": float((relaxed > 0).double().mean())}

    def target_ema(self, cfg: PretrainConfig) -> Literal["auto"] | tuple[float, float]:
        """``ijepa.ema``: the EMA momenta of the target encoder (the trainer resolves ``auto``)."""
        return cfg.section(IJEPAConfig).ema

    def describe(self, cfg: PretrainConfig, record: dict[str, Any]) -> list[str]:
        """Mask sizes on the grid."""
        m = record["masks"]
        return [f"masks ({m['grid'][0]}×{m['grid'][1]} grid): {m['num_targets']} targets of "
                f"{m['target_tokens_per_block']['mean']:.1f} tokens, context {m['context_tokens']['mean']:.1f} tokens "
                f"({m['context_tokens']['min']}–{m['context_tokens']['max']}, {100 * m['context_share']:.0f} % of the "
                f"grid), min_keep {m['min_keep']}, full_grid {m['full_grid']}"]
