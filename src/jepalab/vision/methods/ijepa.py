"""I-JEPA as a registered method (``method: ijepa``): the ``mask`` (multi-block masks) and ``ijepa`` (predictor,
loss, EMA) config sections, the official recipe (``configs/in1k_vith14_ep300.yaml``), the EMA after each step and
the target encoder as evaluation's default. The objective itself is :mod:`jepalab.vision.ijepa`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch

from jepalab.config import param
from jepalab.vision.ijepa import IJEPA, Predictor
from jepalab.vision.masks import Masks, MultiBlockMasker
from jepalab.vision.methods.registry import MethodSpec, register_method
from jepalab.vision.schedules import linear
from jepalab.vision.vit import ViT

if TYPE_CHECKING:
    from jepalab.vision.config import PretrainConfig

__all__ = ["EMA_AUTO_FLOOR", "EMA_AUTO_LAG_SHARE", "IJEPAConfig", "IJEPAMethod", "MaskConfig", "auto_ema", "ema_lag",
           "ema_mass", "resolve_ema"]

OFFICIAL_EMA = (0.996, 1.0)
EMA_AUTO_LAG_SHARE = 0.2
"""``ema: auto``: the target may lag the context encoder by at most this share of the run (official ViT-H/14, 300
epochs: 0.03)."""
EMA_AUTO_FLOOR = 0.9
"""``ema: auto`` never starts below this momentum (BYOL's lower range); shorter runs then lag by more."""


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

    name, label, init, head = "ijepa", "I-JEPA", "ijepa", "predictor"
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
