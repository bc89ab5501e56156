"""Typed configuration of ``jepalab pretrain``: YAML presets in ``configs/`` plus ``key=value`` overrides.

Optimiser fields left empty take the method's official recipe (I-JEPA ``configs/in1k_vith14_ep300.yaml``; MAE
``PRETRAIN.md``) when the config is built, so the saved ``config.yaml`` always shows the values that ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from jepalab.config import param
from jepalab.data.config import DataConfig
from jepalab.vision.masks import MultiBlockMasker
from jepalab.vision.vit import VIT_SIZES, ViTSize

__all__ = ["IJEPAConfig", "MAEConfig", "MaskConfig", "ModelConfig", "OptimConfig", "PretrainConfig", "TrainConfig"]

# Fields that may change when a run is resumed: they do not affect the numbers it computes.
RUNTIME_FIELDS = ("train.threads", "train.progress", "train.device", "data.num_workers", "data.cache_dir", "data.root")


@dataclass
class ModelConfig:
    """The ViT encoder (shared by both methods)."""

    size: str = param("tiny", choices=tuple(VIT_SIZES), help="named size; dim/depth/heads override it")
    patch_size: int = param(16, ge=1, help="patch side in pixels")
    dim: int | None = param(None, ge=4, help="width (default from size)")
    depth: int | None = param(None, ge=1, help="blocks (default from size)")
    heads: int | None = param(None, ge=1, help="attention heads (default from size)")
    content_share: float | None = param(0.38, gt=0, lt=1, help="token content share at init: sets the patch "
                                        "projection's init std (0.38 = official ViT-B/16 at 224 px); null keeps the "
                                        "method's own init")

    def resolved(self) -> ViTSize:
        """The size after overrides."""
        base = VIT_SIZES[self.size]
        return ViTSize(self.dim or base.dim, self.depth or base.depth, self.heads or base.heads, base.mlp_ratio)


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


@dataclass
class MAEConfig:
    """MAE masking and decoder."""

    mask_ratio: float = param(0.75, gt=0, lt=1, help="share of patches removed")
    decoder_dim: int = param(512, ge=4, help="decoder width (official: 512)")
    decoder_depth: int = param(8, ge=1, help="decoder blocks (official: 8)")
    decoder_heads: int = param(16, ge=1, help="decoder heads (official: 16)")
    norm_pix_loss: bool = param(True, help="regress per-patch normalised pixels")
    cls_token: bool = param(True, help="encoder class token (official: yes)")


@dataclass
class OptimConfig:
    """AdamW with warm-up + cosine learning rate and cosine weight decay; empty values = the method's recipe."""

    epochs: int = param(100, ge=1, help="passes over the training split")
    warmup_epochs: float | None = param(None, ge=0, help="linear learning-rate warm-up in epochs (or warmup_fraction)")
    warmup_fraction: float | None = param(None, ge=0, lt=1, help="warm-up as a share of the run (default 0.1 when "
                                          "warmup_epochs is empty too)")
    global_batch: int = param(128, ge=1, help="images per optimiser step over all ranks (per rank = this / ranks)")
    lr: float | None = param(None, gt=0, help="peak lr (default: base_lr · global_batch / 256, or the recipe's)")
    base_lr: float | None = param(None, gt=0, help="peak lr per 256 images, lr = base_lr · global_batch / 256 (MAE "
                                  "rule; recipe: MAE 1.5e-4, I-JEPA a fixed lr of 1e-3)")
    start_lr: float | None = param(None, ge=0, help="lr at step 0 (I-JEPA 2e-4; MAE 0)")
    final_lr: float | None = param(None, ge=0, help="lr at the end (I-JEPA 1e-6; MAE 0)")
    weight_decay: float | None = param(None, ge=0, help="weight decay at step 0 (I-JEPA 0.04; MAE 0.05)")
    final_weight_decay: float | None = param(None, ge=0, help="weight decay at the end (I-JEPA 0.4; MAE 0.05)")
    betas: tuple[float, float] | None = param(None, ge=0, lt=1, help="AdamW betas (I-JEPA 0.9, 0.999; MAE 0.9, 0.95)")
    eps: float = param(1e-8, gt=0, help="AdamW epsilon")
    clip_grad: float | None = param(None, gt=0, help="clip the global gradient norm (official: none)")


@dataclass
class TrainConfig:
    """Devices, precision, logging, diagnostics and checkpoints."""

    device: str = param("auto", help="auto (cuda:LOCAL_RANK if available, else cpu), cpu, cuda, cuda:N")
    precision: str = param("auto", choices=("auto", "fp32", "bf16"), help="auto: bf16 autocast on GPU and on "
                           "CPUs with bf16 matrix units (AVX512-BF16, AMX), fp32 elsewhere")
    compile: bool = param(False, help="torch.compile the training step")
    threads: int | None = param(None, ge=1, help="CPU threads per process (default: torch's)")
    log_every: int = param(10, ge=1, help="steps between loss read-outs (the only routine host syncs)")
    diag_every: int = param(500, ge=0, help="steps between collapse diagnostics (0: only at the end)")
    diag_images: int = param(2048, ge=8, help="fixed images for the diagnostics")
    checkpoint_every: int = param(1000, ge=1, help="steps between checkpoints (always one at the end)")
    snapshot_every: int = param(0, ge=0, help="also keep checkpoint-<step>.safetensors every N steps (0: never)")
    divergence_factor: float = param(10.0, ge=0, help="stop when a logged mean loss exceeds this × the first "
                                                      "(0: only non-finite losses stop)")
    progress: bool = param(True, help="tqdm progress bar")


@dataclass
class PretrainConfig:
    """Everything ``jepalab pretrain`` needs; see ``configs/*.yaml`` and docs/pretraining.md."""

    method: Literal["ijepa", "mae"] = "ijepa"
    seed: int = param(0, ge=0, help="seeds initialisation, data order, crops and masks")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    ijepa: IJEPAConfig = field(default_factory=IJEPAConfig)
    mae: MAEConfig = field(default_factory=MAEConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        o = self.optim
        if o.lr is None and o.base_lr is not None:
            o.lr = o.base_lr * o.global_batch / 256
        if self.method == "ijepa":
            recipe = {"lr": 1e-3, "start_lr": 2e-4, "final_lr": 1e-6, "weight_decay": 0.04,
                      "final_weight_decay": 0.4, "betas": (0.9, 0.999)}
        else:
            recipe = {"lr": 1.5e-4 * o.global_batch / 256, "start_lr": 0.0, "final_lr": 0.0, "weight_decay": 0.05,
                      "final_weight_decay": 0.05, "betas": (0.9, 0.95)}
        for name, value in recipe.items():
            if getattr(o, name) is None:
                setattr(o, name, value)
        if o.warmup_epochs is not None and o.warmup_fraction is not None:
            raise ValueError("set optim.warmup_epochs or optim.warmup_fraction, not both")
        if o.warmup_epochs is not None and o.warmup_epochs > o.epochs:
            raise ValueError(f"optim.warmup_epochs ({o.warmup_epochs}) exceeds optim.epochs ({o.epochs})")
        size = self.model.resolved()
        if size.dim % size.heads or size.dim % 4:
            raise ValueError(f"model: width {size.dim} must be divisible by the heads ({size.heads}) and by 4")
        if self.data.image_size % self.model.patch_size:
            raise ValueError(f"data.image_size ({self.data.image_size}) must be divisible by model.patch_size "
                             f"({self.model.patch_size})")
        if self.method == "ijepa":
            heads = self.ijepa.predictor_heads or size.heads
            if self.ijepa.predictor_dim % heads or self.ijepa.predictor_dim % 4:
                raise ValueError(f"ijepa.predictor_dim ({self.ijepa.predictor_dim}) must be divisible by the "
                                 f"predictor heads ({heads}) and by 4")
            self.masker()  # raises when the block sizes cannot satisfy min_keep on this grid
        else:
            if self.mae.decoder_dim % self.mae.decoder_heads or self.mae.decoder_dim % 4:
                raise ValueError(f"mae.decoder_dim ({self.mae.decoder_dim}) must be divisible by mae.decoder_heads "
                                 f"({self.mae.decoder_heads}) and by 4")
            if int(self.grid[0] * self.grid[1] * (1 - self.mae.mask_ratio)) < 1:
                raise ValueError(f"mae.mask_ratio {self.mae.mask_ratio} leaves no visible patch")

    def warmup_steps(self, steps_per_epoch: int) -> int:
        """Warm-up steps: ``warmup_epochs`` × steps per epoch, else ``warmup_fraction`` (default 0.1) of the run."""
        o = self.optim
        if o.warmup_epochs is not None:
            return round(o.warmup_epochs * steps_per_epoch)
        return round((0.1 if o.warmup_fraction is None else o.warmup_fraction) * o.epochs * steps_per_epoch)

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid (H/p, W/p)."""
        side = self.data.image_size // self.model.patch_size
        return side, side

    def masker(self) -> MultiBlockMasker:
        """The I-JEPA mask sampler these settings describe."""
        m = self.mask
        return MultiBlockMasker(self.grid, m.num_targets, m.target_scale, m.target_aspect, m.context_scale,
                                m.min_keep, m.allow_overlap, m.full_grid)
