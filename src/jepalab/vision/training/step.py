"""One training step of any registered method, read top to bottom in :meth:`TrainStep.__call__`: batch → views and
masks → forward → loss → backward → clip → decoupled weight decay → Adam → the method's target update (I-JEPA's EMA).
``pretrain`` and ``benchmarks/vision_step.py`` run it.

A step's views (crop boxes, flips, token masks) are drawn for the whole global batch from (seed, step) alone and then
sliced per rank (:class:`ViewSampler`): any number of ranks, a resumed run and an evaluation that wants "the masks
training used" all see exactly the same views.

The step's changing values (learning rate, weight decay, EMA momentum) come from tables resolved once when the run
is built (:mod:`.schedules`); before the step they are copied into 0-d device tensors, so the step itself reads no
Python float and makes no host synchronisation: its update compiles once and can be captured in a CUDA graph. Weight
decay is AdamW's (Loshchilov & Hutter 2019) applied by the step, θ ← θ·(1 − η_t·λ_t) before the Adam update, the order
``torch.optim.AdamW`` uses, on matrices and tokens only (the official ``WD_exclude`` / ``add_weight_decay`` rule).

``train.compile`` compiles the forward (+ backward, through AOTAutograd) with ``torch.compile(mode=
train.compile_mode)`` and the update (clip, decay, Adam, EMA) with the default mode, where the Adam and EMA loops
become a few fused kernels. The masks' ``varying_dims`` (I-JEPA's context and target lengths) are symbolic from the
first compile, so one graph serves every batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from jepalab.data.augment import augment, sample_crops, sample_flips
from jepalab.data.sampler import step_generator
from jepalab.vision.methods import MethodSpec
from jepalab.vision.methods.config import PretrainConfig
from jepalab.vision.models.masks import Masks
from jepalab.vision.training.schedules import Schedules

__all__ = ["StepViews", "TrainStep", "ViewSampler", "make_optimizer", "mask_summary", "parameter_groups"]


@dataclass(frozen=True)
class StepViews:
    """Crop ``boxes`` (b, 4) [top, left, h, w] in stored-image pixels, ``flips`` (b,) or None, and ``masks``."""

    boxes: torch.Tensor
    flips: torch.Tensor | None
    masks: Masks

    def rows(self, start: int, stop: int) -> StepViews:
        flips = None if self.flips is None else self.flips[start:stop]
        return StepViews(self.boxes[start:stop], flips, self.masks.rows(start, stop))


class ViewSampler:
    """``sampler(step)`` → this rank's :class:`StepViews`; ``sampler.global_views(step)`` → the whole batch's.

    Streams: crops and flips from (seed, "crops", step), masks from (seed, "masks", step); CPU tensors.
    """

    def __init__(self, cfg: PretrainConfig, spec: MethodSpec, store_size: int, rank: int = 0, world: int = 1):
        self.cfg, self.store_size, self.rank, self.world = cfg, store_size, rank, world
        self.batch = cfg.optim.global_batch
        self.sample_masks = spec.mask_sampler(cfg)

    def global_views(self, step: int, batch: int | None = None) -> StepViews:
        """Views of all ``batch`` (default: the global batch) images of training step ``step``."""
        batch = self.batch if batch is None else batch
        data = self.cfg.data
        crops = step_generator(self.cfg.seed, "crops", step)
        boxes = sample_crops(batch, self.store_size, self.store_size, data.crop_scale, data.crop_ratio, crops)
        flips = sample_flips(batch, crops) if data.hflip else None
        masks = self.sample_masks(batch, step_generator(self.cfg.seed, "masks", step))
        return StepViews(boxes, flips, masks)

    def __call__(self, step: int) -> StepViews:
        local = self.batch // self.world
        return self.global_views(step).rows(self.rank * local, (self.rank + 1) * local)


def mask_summary(cfg: PretrainConfig, spec: MethodSpec, batches: int = 20) -> dict[str, Any]:
    """The method's mask statistics (run.json, ``--dry-run``) over the first ``batches`` global batches of the run."""
    sampler = ViewSampler(cfg, spec, cfg.data.image_size)
    return spec.mask_summary(cfg, [sampler.global_views(step).masks for step in range(batches)])


def parameter_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decayed, not decayed) trainable parameters: matrices and tokens decay; biases and norm weights do not."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decayed = [p for n, p in named if p.ndim >= 2 and not n.endswith(".bias")]
    return decayed, [p for n, p in named if not (p.ndim >= 2 and not n.endswith(".bias"))]


def make_optimizer(model: nn.Module, cfg: PretrainConfig, device: torch.device,
                   lr: torch.Tensor | float | None = None) -> torch.optim.AdamW:
    """Adam over the trainable parameters (the decay is :class:`TrainStep`'s, on the groups flagged ``decay``); ``lr``
    may be a 0-d device tensor. Fused kernels (CPU, CUDA; compiled as one call),
    capturable on CUDA (step counts on the device, no host synchronisation)."""
    decayed, plain = parameter_groups(model)
    groups = [{"params": decayed, "decay": True}, {"params": plain, "decay": False}]
    o = cfg.optim
    return torch.optim.AdamW(groups, lr=o.lr if lr is None else lr, betas=tuple(o.betas), eps=o.eps,
                             weight_decay=0.0, fused=True, capturable=device.type == "cuda")


class TrainStep:
    """``step(images, k)`` → (loss as a device tensor, step ``k``'s schedule values as floats, for the log).

    ``model`` is the method's model, unwrapped (``forward(images, masks)`` → outputs, ``loss(*outputs)``, and with an
    EMA target ``update_target(m)``); ``wrapped`` what the forward calls when it differs (its DDP wrapper).
    ``views`` draws a step's crops and masks, ``mean``/``std`` normalise the views.
    """

    def __init__(self, model: nn.Module, cfg: PretrainConfig, schedules: Schedules, views: Callable[[int], StepViews],
                 mean: tuple[float, ...], std: tuple[float, ...], device: torch.device,
                 wrapped: nn.Module | None = None, autocast: contextlib.AbstractContextManager | None = None) -> None:
        self.model, self.schedules, self.views, self.device = model, schedules, views, device
        self.size, self.mean, self.std, self.clip = cfg.data.image_size, mean, std, cfg.optim.clip_grad
        self.autocast = autocast if autocast is not None else contextlib.nullcontext()
        self.compiled = cfg.train.compile
        self.values = {name: torch.zeros((), device=device) for name in schedules.tables}  # refilled every step
        self.optimizer = make_optimizer(model, cfg, device, self.values["lr"])
        self.decayed = [p for group in self.optimizer.param_groups if group["decay"] for p in group["params"]]
        self.trainable = [p for group in self.optimizer.param_groups for p in group["params"]]
        forward = wrapped if wrapped is not None else model
        self.forward: Callable[..., Any] = torch.compile(forward, mode=cfg.train.compile_mode) if self.compiled \
            else forward
        self.update: Callable[[], None] = torch.compile(self._update) if self.compiled else self._update

    def __call__(self, images: torch.Tensor, k: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Step ``k`` on a batch of stored images, uint8 (B, C, S, S) on the device."""
        views = self.views(k)  # crop boxes (B, 4), flips (B,), masks: drawn from (seed, k) alone (ViewSampler)
        x = augment(images, views.boxes, views.flips, self.size, self.mean, self.std)  # (B, C, H, W) normalised
        masks = views.masks.to(self.device)  # I-JEPA: context (B, Kc), targets (B, P, Kt); MAE: keep, masked
        values = {name: float(table[k]) for name, table in self.schedules.tables.items()}  # resolved at build
        for name, value in values.items():
            self.values[name].fill_(value)  # 0-d device tensors: the update reads no Python float
        if self.compiled:
            self._mark_dynamic(masks)
        with self.autocast:
            outputs = self.forward(x, masks)  # I-JEPA: predictions, targets (P·B, Kt, E); MAE: pixels (B, N − K, p²C)
            loss = self.model.loss(*outputs)
        loss.backward()
        self.update()  # clip → θ·(1 − η·λ) → Adam → the target's EMA (:meth:`_update`)
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach(), values

    @torch.no_grad()
    def _update(self) -> None:
        """Clip, θ ← θ·(1 − η·λ) on the decayed group, Adam, then (a method with an EMA target) θ̄ ← m·θ̄ + (1 − m)·θ."""
        v = self.values
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.clip, foreach=True)
        torch._foreach_mul_(self.decayed, 1.0 - v["lr"] * v["wd"])
        self.optimizer.step()
        if "momentum" in v:
            self.model.update_target(v["momentum"])

    def _mark_dynamic(self, masks: Any) -> None:
        """Mask lengths symbolic from the first compile (one graph for every length); under CUDA graphs, last step's
        outputs may be overwritten from here on."""
        for name, dims in getattr(masks, "varying_dims", {}).items():
            for dim in dims:
                torch._dynamo.maybe_mark_dynamic(getattr(masks, name), dim)
        torch.compiler.cudagraph_mark_step_begin()

    def bind(self) -> None:
        """After ``load_state_dict``: the groups read the device learning rate again, and Adam's own weight decay is
        0 (a checkpoint from before the step applied the decay itself holds that step's decay there)."""
        for group in self.optimizer.param_groups:
            group["lr"], group["weight_decay"] = self.values["lr"], 0.0
