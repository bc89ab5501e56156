"""EC-IJEPA, **our reading** (``method: ecijepa``): I-JEPA whose encoders are conditioned on the positions of the
other view (Littwin, Thilak & Gopalakrishnan, "Enhancing JEPAs with Spatial Conditioning", arXiv 2410.10773; only
the abstract and introduction were recovered, so how positions enter the encoders is jepalab's choice, see
docs/ecijepa.md).

Our reading: the context encoder is conditioned on the target blocks' positions, the target encoder on the context
block's positions. A conditioning token is the position's 2-D sin-cos embedding plus one learned, shared
``condition_embed`` vector: no image content. ``ecijepa.conditioning: tokens`` appends them to the encoder's input
sequence (the patch tokens attend to them; their outputs are dropped, never pooled or predicted); ``pooled`` adds
their mean to every patch token instead. The context encoder gets the *union* of the target blocks' positions as
(B, P·Kt) ids, without removing the positions where blocks overlap: a repeated token only weighs that position
more in attention. The mask sampler, predictor, loss and EMA are I-JEPA's (the ``mask`` and ``ijepa`` sections);
the learned vector is an encoder parameter, so the target encoder holds its EMA.

At evaluation the encoder runs unconditioned (``ecijepa.eval_condition: none``, default) or conditioned on every
position of the grid (``full-grid``); ``jepalab eval``/``embed --condition`` override it and every number is
printed with the choice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from jepalab.config import param
from jepalab.vision.methods.ijepa import IJEPA, IJEPAConfig, IJEPAMethod, Predictor
from jepalab.vision.methods.registry import register_method
from jepalab.vision.models.masks import Masks, MultiBlockMasks
from jepalab.vision.models.vit import ViT

if TYPE_CHECKING:
    from jepalab.vision.methods.config import PretrainConfig

__all__ = ["CONDITIONS", "ECIJEPA", "ConditionedViT", "ECIJEPAConfig", "ECIJEPAMethod"]

CONDITIONS = ("none", "full-grid")
"""Evaluation-time conditioning: no conditioning tokens, or one for every position of the grid."""


@dataclass
class ECIJEPAConfig:
    """EC-IJEPA conditioning (our reading of arXiv 2410.10773; docs/ecijepa.md)."""

    conditioning: str = param("tokens", choices=("tokens", "pooled"), help="tokens: append position-only "
                              "conditioning tokens to the encoder's input; pooled: add their mean to every patch token")
    eval_condition: str = param("none", choices=CONDITIONS, help="conditioning at evaluation and embed: none, or "
                                "full-grid (every position); overridden by --condition")


class ConditionedViT(ViT):
    """ViT encoder conditioned on token positions: ``forward(images, keep, out, positions)`` with ``positions``
    (B, M) ids → tokens (B, K, dim) at the patch positions only (the M conditioning tokens never reach the output).
    ``positions=None`` uses :attr:`condition` (evaluation: "none" = unconditioned, "full-grid" = every position)."""

    def __init__(self, *args: Any, conditioning: str = "tokens", **kwargs: Any):
        super().__init__(*args, **kwargs)  # the ViT's init first: the same seed gives the same ViT weights
        if self.cls_token is not None:
            raise ValueError("ConditionedViT: EC-IJEPA encoders carry no class token")
        if conditioning not in ("tokens", "pooled"):
            raise ValueError(f"ecijepa.conditioning must be 'tokens' or 'pooled'; got {conditioning!r}")
        self.conditioning = conditioning
        self.condition = "none"
        self.condition_embed = nn.Parameter(torch.zeros(1, 1, self.dim))  # the shared learned part of a token
        nn.init.trunc_normal_(self.condition_embed, std=0.02, a=-2.0, b=2.0)

    def condition_tokens(self, positions: torch.Tensor) -> torch.Tensor:
        """Position-only conditioning tokens: (B, M) ids → sin-cos position + learned embedding (B, M, dim)."""
        return self.pos_embed[positions] + self.condition_embed

    def _default_positions(self, batch: int, device: torch.device) -> torch.Tensor | None:
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {list(CONDITIONS)}; got {self.condition!r}")
        if self.condition == "none":
            return None
        return torch.arange(self.num_patches, device=device).expand(batch, -1)  # (B, N)

    def _condition(self, x: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
        """Patch tokens (B, K, dim) → (B, K + M, dim) with the tokens appended, or (B, K, dim) plus their mean."""
        if positions is None:
            positions = self._default_positions(x.shape[0], x.device)
        if positions is None or positions.shape[1] == 0:
            return x
        tokens = self.condition_tokens(positions)  # (B, M, dim)
        if self.conditioning == "pooled":
            return x + tokens.mean(dim=1, keepdim=True)
        return torch.cat([x, tokens], dim=1)

    def forward(self, images: torch.Tensor, keep: torch.Tensor | None = None, out: torch.Tensor | None = None,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens (B, K, dim) at the patches (all, ``keep`` (B, K) or ``out`` (B, M') ids), conditioned on
        ``positions`` (B, M); the last block computes the patch rows only."""
        if out is not None and keep is not None:
            raise ValueError("ConditionedViT: out= selects patch positions of an unmasked encoder")
        x = self.embed(images)  # (B, N, dim)
        if keep is not None:
            x = x.gather(1, keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # (B, K, dim)
        k = x.shape[1]
        x = self._condition(x, positions)  # (B, K [+ M], dim); conditioning tokens after the patches
        rows = out if out is not None else (slice(None, k) if x.shape[1] > k else None)
        for block in self.blocks[:-1]:
            x = block(x)
        return self.norm(self.blocks[-1](x, rows))

    def hidden_states(self, images: torch.Tensor, last: int) -> list[torch.Tensor]:
        """Outputs of the ``last`` blocks at the patches, through the final LayerNorm, conditioned on
        :attr:`condition`: ``last`` × (B, N, dim), the deepest last."""
        if not 1 <= last <= self.depth:
            raise ValueError(f"last must lie in 1..{self.depth}; got {last}")
        x = self._condition(self.embed(images), None)  # (B, N [+ M], dim)
        states = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i >= self.depth - last:
                states.append(self.norm(x[:, :self.num_patches]))
        return states


class ECIJEPA(IJEPA):
    """I-JEPA objective with conditioned encoders: the context encoder sees the target blocks' positions, the target
    encoder the context block's; predictor, loss and EMA as :class:`~jepalab.vision.methods.ijepa.IJEPA`."""

    encoder: ConditionedViT
    target_encoder: ConditionedViT

    def forward(self, images: torch.Tensor, masks: MultiBlockMasks) -> tuple[torch.Tensor, torch.Tensor]:
        b, p, kt = masks.targets.shape
        union = masks.targets.reshape(b, p * kt)  # (B, P·Kt) target positions, overlaps repeated
        with torch.no_grad():
            h = self.target_encoder(images, out=union, positions=masks.context)  # (B, P·Kt, E)
            h = F.layer_norm(h, (h.shape[-1],))
            h = h.view(b, p, kt, -1).transpose(0, 1).reshape(p * b, kt, -1)  # (P·B, Kt, E), block-major
        z = self.encoder(images, keep=masks.context, positions=union)  # (B, Kc, E)
        z = self.predictor(z, masks.context, masks.targets)  # (P·B, Kt, E)
        return z, h


@register_method
class ECIJEPAMethod(IJEPAMethod):
    """EC-IJEPA (our reading): I-JEPA with position-conditioned encoders; evaluation conditions as configured."""

    name, label = "ecijepa", "EC-IJEPA (our reading)"
    conditions = CONDITIONS
    sections: ClassVar[dict[str, type]] = {**IJEPAMethod.sections, "ecijepa": ECIJEPAConfig}

    def encoder_factory(self, cfg: PretrainConfig) -> Callable[..., ViT]:
        """:class:`ConditionedViT` with ``ecijepa.conditioning``."""
        return functools.partial(ConditionedViT, conditioning=cfg.section(ECIJEPAConfig).conditioning)

    def build(self, cfg: PretrainConfig, encoder: ViT) -> ECIJEPA:
        """Conditioned context encoder, its EMA copy as target, predictor of the ``ijepa`` section (drawn as
        I-JEPA's)."""
        i = cfg.section(IJEPAConfig)
        predictor = Predictor(encoder.grid, encoder.dim, i.predictor_dim, i.predictor_depth,
                              i.predictor_heads or encoder.heads)
        return ECIJEPA(encoder, predictor, i.loss)

    def eval_encoder(self, cfg: PretrainConfig, encoder: ViT, condition: str | None = None) -> tuple[ViT, str]:
        """The encoder conditioned as ``condition`` (None: ``ecijepa.eval_condition``), and that choice as a note."""
        condition = cfg.section(ECIJEPAConfig).eval_condition if condition is None else condition
        if condition not in CONDITIONS:
            raise ValueError(f"--condition must be one of {list(CONDITIONS)}; got {condition!r}")
        if not isinstance(encoder, ConditionedViT):
            raise TypeError(f"an {self.label} encoder must be a ConditionedViT; got {type(encoder).__name__}")
        encoder.condition = condition
        return encoder, f"conditioning at evaluation: {condition} (EC-IJEPA, our reading)"

    def mask_summary(self, cfg: PretrainConfig, masks: list[Masks]) -> dict[str, Any]:
        """I-JEPA's mask statistics plus the conditioning tokens each encoder gets."""
        summary = super().mask_summary(cfg, masks)
        p = summary["num_targets"]
        return {**summary, "conditioning": cfg.section(ECIJEPAConfig).conditioning,
                "context_encoder_condition_tokens": p * summary["target_tokens_per_block"]["mean"],
                "target_encoder_condition_tokens": summary["context_tokens"]["mean"]}

    def describe(self, cfg: PretrainConfig, record: dict[str, Any]) -> list[str]:
        """I-JEPA's lines plus the conditioning (our reading)."""
        m, e = record["masks"], cfg.section(ECIJEPAConfig)
        return [*super().describe(cfg, record),
                f"EC-IJEPA (our reading): {e.conditioning} conditioning; the context encoder sees "
                f"{m['context_encoder_condition_tokens']:.1f} target positions, the target encoder "
                f"{m['target_encoder_condition_tokens']:.1f} context positions; evaluation: "
                f"{e.eval_condition}"]
