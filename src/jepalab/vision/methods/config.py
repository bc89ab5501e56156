"""Typed configuration of ``jepalab pretrain``: YAML presets in ``configs/`` plus ``key=value`` overrides.

Optimiser fields left empty take the method's official recipe (its ``optimiser_recipe``) when the config is built,
so the saved ``config.yaml`` always shows the values that ran. A config holds the shared sections (``data``,
``model``, ``optim``, ``train``) and its method's own (I-JEPA: ``mask`` and ``ijepa``; MAE: ``mae``), read typed
through :meth:`PretrainConfig.section`. Another registered method's section is validated and then dropped: one
override list may serve several methods, and a run's config.yaml shows only what it reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

from jepalab.config import param, sections
from jepalab.data.config import DataConfig
from jepalab.vision.methods.registry import OPTIMISER_FIELDS, method_sections, method_spec
from jepalab.vision.models.attention import ATTENTION_CHOICES
from jepalab.vision.models.vit import VIT_SIZES, ViTSize

__all__ = ["COMPILE_MODES", "KEY_FIELDS_ADDED", "ModelConfig", "OptimConfig", "PretrainConfig", "TrainConfig"]

S = TypeVar("S")

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's

# Fields that may change when a run is resumed: they do not change the maths (kernels may round differently).
RUNTIME_FIELDS = ("train.threads", "train.progress", "train.device", "train.compile", "train.compile_mode",
                  "train.attention", "train.tensorboard", "data.num_workers", "data.cache_dir", "data.root")
KEY_FIELDS_ADDED = {"train.snapshot_steps": []}
"""Fields added after runs were keyed → their default: left out of a run's key while at it, so that adding a field
renames no existing run."""


@dataclass
class ModelConfig:
    """The ViT encoder (shared by every method)."""

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
class OptimConfig:
    """AdamW with warm-up + cosine learning rate and cosine weight decay; empty values = the method's recipe."""

    epochs: int = param(100, ge=1, help="passes over the training split")
    warmup_epochs: float | None = param(None, ge=0, help="linear learning-rate warm-up in epochs (or warmup_fraction)")
    warmup_fraction: float | None = param(None, ge=0, lt=1, help="warm-up as a share of the run (default 0.1 when "
                                          "warmup_epochs is empty too)")
    global_batch: int = param(128, ge=1, help="images per optimiser step over all ranks (per rank = this / ranks)")
    lr: float | None = param(None, gt=0, help="peak lr (default: base_lr · global_batch / 256, or the recipe's; "
                             "I-JEPA: 1e-3 · √(global_batch / 2048), the official lr at its batch, √-scaled for Adam)")
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
    compile: bool = param(False, help="torch.compile the step: forward + backward, and the update (clip, decay, "
                          "Adam, EMA); eager is faster on small CPUs (docs/speed.md)")
    compile_mode: str = param("default", choices=COMPILE_MODES,
                              help="torch.compile mode of the forward (reduce-overhead: CUDA graphs)")
    attention: str = param("auto", choices=ATTENTION_CHOICES,
                           help="attention kernel: auto (docs/speed.md), matmul (q kᵀ → softmax → v), sdpa "
                                "(torch's choice) or one SDPA backend")
    threads: int | None = param(None, ge=1, help="CPU threads per process (default: torch's)")
    log_every: int = param(10, ge=1, help="steps between loss read-outs (the only routine host syncs)")
    diag_every: int = param(500, ge=0, help="steps between collapse diagnostics (0: only at the end)")
    diag_images: int = param(2048, ge=8, help="fixed images for the diagnostics")
    checkpoint_every: int = param(1000, ge=1, help="steps between checkpoints (always one at the end)")
    snapshot_every: int = param(0, ge=0, help="also keep checkpoint-<step>.safetensors every N steps (0: never)")
    snapshot_steps: tuple[int, ...] = param((), ge=1, help="also keep checkpoint-<step>.safetensors at these steps "
                                            "(early snapshots, so that a curve is measured where it rises fastest)")
    divergence_factor: float = param(10.0, ge=0, help="stop when a logged mean loss exceeds this × the first "
                                                      "(0: only non-finite losses stop)")
    progress: bool = param(True, help="tqdm progress bar")
    tensorboard: bool = param(False, help="also write loss, lr, throughput and the diagnostics as TensorBoard "
                              "scalars beside metrics.jsonl (pip install 'jepalab[tensorboard]')")


@dataclass
class PretrainConfig:
    """Everything ``jepalab pretrain`` needs; see ``configs/*.yaml`` and docs/pretraining.md. Built, it also holds
    ``resolved_by`` (optim field → the rule or recipe that filled it) and ``ignored_sections`` (other methods'
    sections given with values of their own, which this method does not read)."""

    method: str = param("ijepa", help="a registered method (jepalab.vision.methods.available_methods())")
    seed: int = param(0, ge=0, help="seeds initialisation, data order, crops and masks")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    sections: dict[str, Any] = sections(method_sections, help="the method's own sections (top-level keys)")  # noqa: RUF009 (a factory)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        spec = method_spec(self.method)
        self.ignored_sections = sorted(name for name, value in self.sections.items()
                                       if name not in spec.sections and value != type(value)())
        self.sections = {name: self.sections.get(name) or kind() for name, kind in spec.sections.items()}
        self.resolved_by = self._fill_optimiser(spec.optimiser_recipe, spec.label)
        o = self.optim
        if o.warmup_epochs is not None and o.warmup_fraction is not None:
            raise ValueError("set optim.warmup_epochs or optim.warmup_fraction, not both (a preset that sets one: "
                             "override the other with null)")
        if o.warmup_epochs is not None and o.warmup_epochs > o.epochs:
            raise ValueError(f"optim.warmup_epochs ({o.warmup_epochs}) exceeds optim.epochs ({o.epochs})")
        size = self.model.resolved()
        if size.dim % size.heads or size.dim % 4:
            raise ValueError(f"model: width {size.dim} must be divisible by the heads ({size.heads}) and by 4")
        if self.data.image_size % self.model.patch_size:
            raise ValueError(f"data.image_size ({self.data.image_size}) must be divisible by model.patch_size "
                             f"({self.model.patch_size})")
        spec.validate(self)

    def _fill_optimiser(self, recipe: dict[str, Any], label: str) -> dict[str, str]:
        """Fill the empty optimiser fields from the rules and the method's recipe; returns field → the rule that set
        it (``--dry-run --explain`` prints them)."""
        o, rules = self.optim, {}
        if o.lr is None and o.base_lr is not None:
            o.lr = o.base_lr * o.global_batch / 256
            rules["optim.lr"] = f"rule: optim.base_lr × global_batch / 256 = {o.base_lr:g} × {o.global_batch} / 256"
        if o.lr is None and "base_lr" in recipe:
            o.lr = recipe["base_lr"] * o.global_batch / 256
            rules["optim.lr"] = (f"{label} recipe: base_lr × global_batch / 256 = {recipe['base_lr']:g} × "
                                 f"{o.global_batch} / 256")
        scale = math.sqrt(o.global_batch / recipe["lr_batch"]) if "lr_batch" in recipe else 1.0
        for name in OPTIMISER_FIELDS:
            if getattr(o, name) is None:
                if name not in recipe:
                    raise ValueError(f"method {self.method!r} has no recipe for optim.{name}; set it")
                scaled = name in ("lr", "start_lr") and "lr_batch" in recipe
                setattr(o, name, recipe[name] * scale if scaled else recipe[name])
                rules[f"optim.{name}"] = f"{label} recipe" + (
                    f": {recipe[name]:g} at batch {recipe['lr_batch']} × √(global_batch / {recipe['lr_batch']})"
                    if scaled else "")
        return rules

    def section(self, kind: type[S]) -> S:
        """The method's section of dataclass ``kind`` (``cfg.section(MAEConfig).mask_ratio``); ``ValueError`` when
        this config's method reads none."""
        found = [value for value in self.sections.values() if type(value) is kind]
        if len(found) != 1:
            raise ValueError(f"method {self.method!r} reads no {kind.__name__} section; its sections: "
                             f"{list(self.sections)}")
        return found[0]

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
