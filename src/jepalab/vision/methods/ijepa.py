"""I-JEPA as a registered method (``method: ijepa``): the ``mask`` (multi-block masks) and ``ijepa`` (predictor,
loss, EMA) config sections, the official recipe (``configs/in1k_vith14_ep300.yaml``), the EMA after each step and
the target encoder as evaluation's default. The objective itself is :mod:`jepalab.vision.ijepa`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from jepalab.config import param
from jepalab.vision.ijepa import IJEPA, Predictor
from jepalab.vision.masks import Masks, MultiBlockMasker
from jepalab.vision.methods.registry import MethodSpec, register_method
from jepalab.vision.schedules import linear
from jepalab.vision.vit import ViT

if TYPE_CHECKING:
    from jepalab.vision.config import PretrainConfig

__all__ = ["IJEPAConfig", "IJEPAMethod", "MaskConfig", "ema_mass"]


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
    ema: tuple[float, float] = param((0.996, 1.0), ge=0, le=1, help="EMA momentum, linear from first to second; "
                                     "the run's EMA mass Σ(1 − m) is printed by --dry-run")


def ema_mass(cfg: PretrainConfig, total: int) -> float:
    """Σ_{s<T} (1 − m_s) for the linear momenta m_s = a + (b − a)·s/T of :func:`linear`, in closed form
    T·(1 − a) − (b − a)·(T − 1)/2; the target keeps about exp(−mass) of its initialisation."""
    start, end = cfg.ijepa.ema
    return total * (1.0 - start) - (end - start) * (total - 1) / 2 if total > 0 else 0.0


@register_method
class IJEPAMethod(MethodSpec):
    """I-JEPA: context encoder + predictor trained, EMA target encoder read by evaluation."""

    name, label, init, head = "ijepa", "I-JEPA", "ijepa", "predictor"
    sections: ClassVar[dict[str, type]] = {"mask": MaskConfig, "ijepa": IJEPAConfig}
    optimiser_recipe: ClassVar[dict[str, Any]] = {"lr": 1e-3, "start_lr": 2e-4, "final_lr": 1e-6, "weight_decay": 0.04,
                                                  "final_weight_decay": 0.4, "betas": (0.9, 0.999)}
    small_image_recipe: ClassVar[dict[str, Any]] = {
        "data": {"image_size": 28, "crop_scale": [0.3, 1.0], "hflip": False},
        "model": {"size": "micro", "patch_size": 4, "content_share": 0.38},
        "ijepa": {"predictor_dim": 96, "predictor_depth": 4, "loss": "smooth_l1", "ema": [0.996, 1.0]},
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
        cfg.masker()  # raises when the block sizes cannot satisfy min_keep on this grid

    def build(self, cfg: PretrainConfig, encoder: ViT) -> IJEPA:
        """Context encoder, EMA copy as target, predictor of ``cfg.ijepa``."""
        i = cfg.ijepa
        predictor = Predictor(encoder.grid, encoder.dim, i.predictor_dim, i.predictor_depth,
                              i.predictor_heads or encoder.heads)
        return IJEPA(encoder, predictor, i.loss)

    def mask_sampler(self, cfg: PretrainConfig) -> MultiBlockMasker:
        """Multi-block masks of ``cfg.mask``."""
        return cfg.masker()

    def mask_summary(self, cfg: PretrainConfig, masks: list[Masks]) -> dict[str, Any]:
        """Resolved mask settings, context and per-block target token counts, relaxed share."""
        context = torch.tensor([m.context.shape[1] for m in masks], dtype=torch.float64)
        target = torch.tensor([m.targets.shape[2] for m in masks], dtype=torch.float64)
        relaxed = torch.cat([m.relaxed for m in masks]).double()
        tokens = cfg.grid[0] * cfg.grid[1]

        def spread(x: torch.Tensor) -> dict[str, float | int]:
            return {"mean": float(x.mean()), "min": int(x.min()), "max": int(x.max())}

        return {**cfg.masker().settings(), "tokens": tokens, "context_tokens": spread(context),
                "target_tokens_per_block": spread(target), "context_share": float(context.mean() / tokens),
                "relaxed_share": float((relaxed > 0).double().mean())}

    def schedule_facts(self, cfg: PretrainConfig, total: int) -> dict[str, Any]:
        """The EMA momenta, their mass Σ(1 − m) and the share of its init the target keeps."""
        mass = ema_mass(cfg, total)
        return {"ema": list(cfg.ijepa.ema), "ema_mass": mass, "target_init_share": math.exp(-mass)}

    def describe(self, cfg: PretrainConfig, record: dict[str, Any]) -> list[str]:
        """Mask sizes on the grid and the EMA mass."""
        m, s = record["masks"], record["schedules"]
        return [f"masks ({m['grid'][0]}×{m['grid'][1]} grid): {m['num_targets']} targets of "
                f"{m['target_tokens_per_block']['mean']:.1f} tokens, context {m['context_tokens']['mean']:.1f} tokens "
                f"({m['context_tokens']['min']}–{m['context_tokens']['max']}, {100 * m['context_share']:.0f} % of the "
                f"grid), min_keep {m['min_keep']}, full_grid {m['full_grid']}",
                f"EMA {cfg.ijepa.ema[0]:g} → {cfg.ijepa.ema[1]:g}, mass Σ(1 − m) = {s['ema_mass']:.2f}: the target "
                f"keeps ≈ {100 * s['target_init_share']:.0f} % of its init"]

    def step_schedule(self, cfg: PretrainConfig, step: int, total: int) -> dict[str, float]:
        """This step's EMA momentum, linear over the run (logged as ``momentum``)."""
        return {"momentum": linear(step, total, *cfg.ijepa.ema)}

    def after_update(self, model: IJEPA, values: dict[str, torch.Tensor]) -> None:
        """EMA of the context encoder into the target with this step's momentum."""
        model.update_target(values["momentum"])
