"""I-JEPA (Assran et al., "Self-Supervised Learning from Images with a Joint-Embedding Predictive Architecture",
CVPR 2023) as a registered method (``method: ijepa``): the objective (:class:`IJEPA`: a context encoder sees one
context block, a narrow :class:`Predictor` fills in mask tokens at each target block's positions, the loss compares
them with the EMA target encoder's LayerNorm-ed tokens there), the ``mask`` (multi-block masks) and ``ijepa``
(predictor, loss, EMA) config sections, the official recipe (``configs/in1k_vith14_ep300.yaml``, its lr √-scaled
to the batch), the ``auto`` EMA schedule, the EMA after each step and the target encoder as evaluation's default.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from jepalab.config import param
from jepalab.vision.methods.registry import MethodSpec, register_method
from jepalab.vision.models.masks import Masks, MultiBlockMasker, MultiBlockMasks
from jepalab.vision.models.vit import Block, ViT, init_weights, sincos_2d
from jepalab.vision.training.schedules import linear

if TYPE_CHECKING:
    from jepalab.vision.training.pretrain_config import PretrainConfig

__all__ = ["EMA_AUTO_FLOOR", "EMA_AUTO_LAG_SHARE", "IJEPA", "IJEPAConfig", "IJEPAMethod", "MaskConfig", "Predictor",
           "auto_ema", "ema_lag", "ema_mass", "masker", "resolve_ema"]

OFFICIAL_EMA = (0.996, 1.0)
EMA_AUTO_LAG_SHARE = 0.2
"""``ema: auto``: the target may lag the context encoder by at most this share of the run (official ViT-H/14, 300
epochs: 0.03)."""
EMA_AUTO_FLOOR = 0.9
"""``ema: auto`` never starts below this momentum (BYOL's lower range); shorter runs then lag by more."""


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


@dataclass
class MaskConfig:
    """I-JEPA multi-block masks; empty values = official on grids of 100+ tokens, small-grid defaults below."""

    num_targets: int | None = param(None, ge=1, help="target blocks per image (auto: 4, or 2 on small grids)")
    target_scale: tuple[float, float] = param((0.15, 0.2), gt=0, le=1, help="target block area range")
    target_aspect: tuple[float, float] = param((0.75, 1.5), gt=0, help="target block aspect range")
    context_scale: tuple[float, float] = param((0.85, 1.0), gt=0, le=1, help="context block area range")
    min_keep: int | None = param(None, ge=0, help="a block must keep more than this many tokens (auto: 10 / 4)")
    allow_overlap: bool = param(False, help="let the context overlap the targets")
    full_grid: bool | None = param(None, help="blocks may touch the last row/column (auto: small grids only)")


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
    """The multi-block mask sampler of ``cfg.mask`` (I-JEPA's masks) on the config's token grid."""
    m = cfg.mask
    return MultiBlockMasker(cfg.grid, m.num_targets, m.target_scale, m.target_aspect, m.context_scale, m.min_keep,
                            m.allow_overlap, m.full_grid)


def _ema_weights(start: float, end: float, total: int) -> tuple[np.ndarray, float]:
    """(w_s, ∏ m): the target after ``total`` steps is ∏ m · θ̄₀ + Σ_s w_s θ_s, w_s = (1 − m_s) ∏_{r>s} m_r."""
    momenta = start + (end - start) * np.arange(total) / max(1, total)  # :func:`linear` at steps 0 … T − 1
    logs = np.log(np.clip(momenta, 1e-300, None))
    after = np.concatenate([np.cumsum(logs[::-1])[::-1][1:], [0.0]])  # Σ_{r>s} log m_r
    return (1.0 - momenta) * np.exp(after), float(np.exp(logs.sum()))


def ema_lag(start: float, end: float, total: int) -> float:
    """Mean age Σ w_s (T − s) / Σ w_s, in steps, of the context encoders the target averages at the end of a
    ``total``-step run (:func:`_ema_weights`); 0 for a target that never moved."""
    weights, _ = _ema_weights(start, end, total)
    mass = weights.sum()
    return float((weights * (total - np.arange(total))).sum() / mass) if mass > 0 else 0.0


@functools.lru_cache(maxsize=64)  # the trainer asks every step
def auto_ema(total: int) -> tuple[float, float]:
    """``ema: auto`` for a ``total``-step run: the official (0.996, 1.0) when its target lags by ≤
    :data:`EMA_AUTO_LAG_SHARE` of the run, else (a, 1.0) with the a ≥ :data:`EMA_AUTO_FLOOR` whose lag is that share
    (bisection; the lag falls as a falls)."""
    limit = EMA_AUTO_LAG_SHARE * total
    if total <= 0 or ema_lag(*OFFICIAL_EMA, total) <= limit:
        return OFFICIAL_EMA
    if ema_lag(EMA_AUTO_FLOOR, 1.0, total) >= limit:
        return EMA_AUTO_FLOOR, 1.0
    low, high = EMA_AUTO_FLOOR, OFFICIAL_EMA[0]
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if ema_lag(mid, 1.0, total) <= limit else (low, mid)
    return round(low, 6), 1.0


def resolve_ema(cfg: PretrainConfig, total: int) -> tuple[float, float]:
    """The EMA momenta (start, end) a ``total``-step run uses: ``cfg.ijepa.ema``, or :func:`auto_ema`."""
    return auto_ema(total) if cfg.ijepa.ema == "auto" else tuple(cfg.ijepa.ema)


def ema_mass(cfg: PretrainConfig, total: int) -> float:
    """Σ_{s<T} (1 − m_s) for the linear momenta m_s = a + (b − a)·s/T of :func:`linear`, in closed form
    T·(1 − a) − (b − a)·(T − 1)/2; the target keeps about exp(−mass) of its initialisation."""
    start, end = resolve_ema(cfg, total)
    return total * (1.0 - start) - (end - start) * (total - 1) / 2 if total > 0 else 0.0


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
        heads = cfg.ijepa.predictor_heads or cfg.model.resolved().heads
        if cfg.ijepa.predictor_dim % heads or cfg.ijepa.predictor_dim % 4:
            raise ValueError(f"ijepa.predictor_dim ({cfg.ijepa.predictor_dim}) must be divisible by the predictor "
                             f"heads ({heads}) and by 4")
        masker(cfg)  # raises when the block sizes cannot satisfy min_keep on this grid

    def build(self, cfg: PretrainConfig, encoder: ViT) -> IJEPA:
        """Context encoder, EMA copy as target, predictor of ``cfg.ijepa``."""
        i = cfg.ijepa
        predictor = Predictor(encoder.grid, encoder.dim, i.predictor_dim, i.predictor_depth,
                              i.predictor_heads or encoder.heads)
        return IJEPA(encoder, predictor, i.loss)

    def mask_sampler(self, cfg: PretrainConfig) -> MultiBlockMasker:
        """Multi-block masks of ``cfg.mask``."""
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

    def schedule_facts(self, cfg: PretrainConfig, total: int) -> dict[str, Any]:
        """The EMA momenta (``ema: auto`` resolved), their mass Σ(1 − m), the share of its init the target keeps
        (∏ m) and the target's lag at the end (mean age of the context encoders it averages, in steps and as a
        share of the run)."""
        start, end = resolve_ema(cfg, total)
        lag = ema_lag(start, end, total)
        return {"ema": [start, end], "ema_setting": cfg.ijepa.ema if cfg.ijepa.ema == "auto" else "fixed",
                "ema_mass": ema_mass(cfg, total), "target_init_share": _ema_weights(start, end, total)[1],
                "target_lag_steps": lag, "target_lag_share": lag / total if total else 0.0}

    def describe(self, cfg: PretrainConfig, record: dict[str, Any]) -> list[str]:
        """Mask sizes on the grid and the EMA mass."""
        m, s = record["masks"], record["schedules"]
        return [f"masks ({m['grid'][0]}×{m['grid'][1]} grid): {m['num_targets']} targets of "
                f"{m['target_tokens_per_block']['mean']:.1f} tokens, context {m['context_tokens']['mean']:.1f} tokens "
                f"({m['context_tokens']['min']}–{m['context_tokens']['max']}, {100 * m['context_share']:.0f} % of the "
                f"grid), min_keep {m['min_keep']}, full_grid {m['full_grid']}",
                f"EMA {s['ema'][0]:g} → {s['ema'][1]:g} ({s['ema_setting']}), mass Σ(1 − m) = {s['ema_mass']:.2f}: "
                f"the target keeps {100 * s['target_init_share']:.2g} % of its init and lags the context encoder by "
                f"{s['target_lag_steps']:.0f} steps ({100 * s['target_lag_share']:.0f} % of the run)"]

    def step_schedule(self, cfg: PretrainConfig, step: int, total: int) -> dict[str, float]:
        """This step's EMA momentum, linear over the run (logged as ``momentum``)."""
        return {"momentum": linear(step, total, *resolve_ema(cfg, total))}

    def after_update(self, model: IJEPA, values: dict[str, torch.Tensor]) -> None:
        """EMA of the context encoder into the target with this step's momentum."""
        model.update_target(values["momentum"])
