"""One optimiser step of any registered method, shared by ``pretrain`` and ``benchmarks/vision_step.py``:
forward → backward → clip → decoupled weight decay → Adam → the method's update (I-JEPA: the EMA target).

Every value that changes from step to step (learning rate, weight decay, the method's own, e.g. the EMA momentum)
lives in a 0-d tensor on the device, refilled before the step: the step itself reads no Python float and makes
no host synchronisation, so its update compiles once and can be captured in a CUDA graph. Weight decay is
AdamW's (Loshchilov & Hutter 2019) applied by the step, θ ← θ·(1 − η_t·λ_t) before the Adam update, the order
``torch.optim.AdamW`` uses, on matrices and tokens only (the official ``WD_exclude`` / ``add_weight_decay`` rule).

``train.compile`` compiles the forward (+ backward, through AOTAutograd) with ``torch.compile(mode=
train.compile_mode)`` and the update (clip, decay, Adam, EMA) with the default mode, where the Adam and EMA loops
become a few fused kernels. The masks' ``varying_dims`` (I-JEPA's context and target lengths) are symbolic from the
first compile, so one graph serves every batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from jepalab.vision.methods import MethodSpec
from jepalab.vision.training.pretrain_config import PretrainConfig
from jepalab.vision.training.schedules import cosine, warmup_cosine

__all__ = ["TrainStep", "make_optimizer", "parameter_groups"]


def parameter_groups(method: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decayed, not decayed) trainable parameters: matrices and tokens decay; biases and norm weights do not."""
    named = [(n, p) for n, p in method.named_parameters() if p.requires_grad]
    decayed = [p for n, p in named if p.ndim >= 2 and not n.endswith(".bias")]
    return decayed, [p for n, p in named if not (p.ndim >= 2 and not n.endswith(".bias"))]


def make_optimizer(method: nn.Module, cfg: PretrainConfig, device: torch.device,
                   lr: torch.Tensor | float | None = None) -> torch.optim.AdamW:
    """Adam over the trainable parameters (the decay is :class:`TrainStep`'s, on the groups flagged ``decay``); ``lr``
    may be a 0-d device tensor. Fused kernels (CPU, CUDA; compiled as one call),
    capturable on CUDA (step counts on the device, no host synchronisation)."""
    decayed, plain = parameter_groups(method)
    groups = [{"params": decayed, "decay": True}, {"params": plain, "decay": False}]
    o = cfg.optim
    return torch.optim.AdamW(groups, lr=o.lr if lr is None else lr, betas=tuple(o.betas), eps=o.eps,
                             weight_decay=0.0, fused=True, capturable=device.type == "cuda")


class TrainStep:
    """``step(images, masks, k)`` → (loss as a device tensor, the step's schedule values as floats, for the log).

    ``method`` is the unwrapped objective (its parameters, hooks); ``model`` what the forward calls (``method``,
    or its DDP wrapper). ``total`` and ``warmup`` are the run's steps and learning-rate warm-up steps.
    """

    def __init__(self, method: nn.Module, cfg: PretrainConfig, spec: MethodSpec, device: torch.device,
                 total: int, warmup: int, model: nn.Module | None = None,
                 autocast: contextlib.AbstractContextManager | None = None) -> None:
        self.method, self.cfg, self.spec, self.total, self.warmup = method, cfg, spec, total, warmup
        self.autocast = autocast if autocast is not None else contextlib.nullcontext()
        self.compiled = compiled = cfg.train.compile
        names = ["lr", "wd", *spec.step_schedule(cfg, 0, total)]
        self.values = {name: torch.zeros((), device=device) for name in names}  # refilled before each step
        self.optimizer = make_optimizer(method, cfg, device, self.values["lr"])
        self.decayed = [p for group in self.optimizer.param_groups if group["decay"] for p in group["params"]]
        self.trainable = [p for group in self.optimizer.param_groups for p in group["params"]]
        forward = model if model is not None else method
        self.forward: Callable[..., torch.Tensor] = forward
        self.update: Callable[[], None] = self._update
        if compiled:
            self.forward = torch.compile(forward, mode=cfg.train.compile_mode)
            self.update = torch.compile(self._update)

    def schedule(self, k: int) -> dict[str, float]:
        """Step ``k``'s learning rate ``lr`` (warm-up + cosine), weight decay ``wd`` (cosine), the method's values."""
        o = self.cfg.optim
        return {"lr": warmup_cosine(k, self.total, self.warmup, o.start_lr, o.lr, o.final_lr),
                "wd": cosine(k, self.total, o.weight_decay, o.final_weight_decay),
                **self.spec.step_schedule(self.cfg, k, self.total)}

    def bind(self) -> None:
        """After ``load_state_dict``: the groups read the device learning rate again, and Adam's own weight decay is
        0 (a checkpoint from before the step applied the decay itself holds that step's decay there)."""
        for group in self.optimizer.param_groups:
            group["lr"], group["weight_decay"] = self.values["lr"], 0.0

    def __call__(self, images: torch.Tensor, masks: Any, k: int) -> tuple[torch.Tensor, dict[str, float]]:
        values = self.schedule(k)
        for name, value in values.items():
            self.values[name].fill_(value)
        if self.compiled:
            for name, dims in getattr(masks, "varying_dims", {}).items():
                for dim in dims:  # symbolic from the first compile: one graph for every mask length
                    torch._dynamo.maybe_mark_dynamic(getattr(masks, name), dim)
            torch.compiler.cudagraph_mark_step_begin()  # under CUDA graphs: last step's outputs may be overwritten
        with self.autocast:
            loss = self.forward(images, masks)
        loss.backward()
        self.update()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach(), values

    @torch.no_grad()
    def _update(self) -> None:
        """Clip, θ ← θ·(1 − η·λ) on the decayed group, Adam, then the method's update (EMA)."""
        v = self.values
        if self.cfg.optim.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.cfg.optim.clip_grad, foreach=True)
        torch._foreach_mul_(self.decayed, 1.0 - v["lr"] * v["wd"])
        self.optimizer.step()
        self.spec.after_update(self.method, v)
