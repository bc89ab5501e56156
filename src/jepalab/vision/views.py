"""The views training feeds the model at each step (crop boxes, flips, token masks), drawn for the whole
global batch from (seed, step) alone and then sliced per rank: any number of ranks, a resumed run and an
evaluation that wants "the masks training used" all see exactly the same views."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jepalab.data.augment import sample_crops, sample_flips
from jepalab.data.sampler import step_generator
from jepalab.vision.config import PretrainConfig
from jepalab.vision.masks import MultiBlockMasks, RandomMasks, random_masks

__all__ = ["StepViews", "ViewSampler"]


@dataclass(frozen=True)
class StepViews:
    """Crop ``boxes`` (b, 4) [top, left, h, w] in stored-image pixels, ``flips`` (b,) or None, and ``masks``."""

    boxes: torch.Tensor
    flips: torch.Tensor | None
    masks: MultiBlockMasks | RandomMasks

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
        self.masker = cfg.masker() if cfg.method == "ijepa" else None
        self.num_tokens = cfg.grid[0] * cfg.grid[1]

    def global_views(self, step: int, batch: int | None = None) -> StepViews:
        """Views of all ``batch`` (default: the global batch) images of training step ``step``."""
        batch = self.batch if batch is None else batch
        data = self.cfg.data
        crops = step_generator(self.cfg.seed, "crops", step)
        boxes = sample_crops(batch, self.store_size, self.store_size, data.crop_scale, data.crop_ratio, crops)
        flips = sample_flips(batch, crops) if data.hflip else None
        generator = step_generator(self.cfg.seed, "masks", step)
        if self.masker is not None:
            masks: MultiBlockMasks | RandomMasks = self.masker(batch, generator)
        else:
            masks = random_masks(batch, self.num_tokens, self.cfg.mae.mask_ratio, generator)
        return StepViews(boxes, flips, masks)

    def __call__(self, step: int) -> StepViews:
        local = self.batch // self.world
        return self.global_views(step).rows(self.rank * local, (self.rank + 1) * local)
