"""The views training feeds the model at each step (crop boxes, flips, token masks), drawn for the whole
global batch from (seed, step) alone and then sliced per rank: any number of ranks, a resumed run and an
evaluation that wants "the masks training used" all see exactly the same views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from jepalab.data.augment import sample_crops, sample_flips
from jepalab.data.sampler import step_generator
from jepalab.vision.methods import method_spec
from jepalab.vision.models.masks import Masks
from jepalab.vision.training.pretrain_config import PretrainConfig

__all__ = ["StepViews", "ViewSampler", "mask_summary"]


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

    def __init__(self, cfg: PretrainConfig, store_size: int, rank: int = 0, world: int = 1):
        self.cfg, self.store_size, self.rank, self.world = cfg, store_size, rank, world
        self.batch = cfg.optim.global_batch
        self.sample_masks = method_spec(cfg.method).mask_sampler(cfg)

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


def mask_summary(cfg: PretrainConfig, batches: int = 20) -> dict[str, Any]:
    """The method's mask statistics (run.json, ``--dry-run``) over the first ``batches`` global batches of the run."""
    sampler = ViewSampler(cfg, cfg.data.image_size)
    return method_spec(cfg.method).mask_summary(cfg, [sampler.global_views(step).masks for step in range(batches)])
