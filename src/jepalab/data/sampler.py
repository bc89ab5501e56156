"""Deterministic data order: a pure function of (seed, step), so resuming needs only the step counter and any
number of ranks sees the same global batches."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch

__all__ = ["EpochPlan", "derive_seed", "step_generator"]


def derive_seed(seed: int, stream: str, index: int) -> int:
    """A 63-bit seed for random ``stream`` at ``index`` (step or epoch): BLAKE2b of "seed:stream:index"."""
    digest = hashlib.blake2b(f"{seed}:{stream}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def step_generator(seed: int, stream: str, index: int) -> torch.Generator:
    """A CPU generator seeded with :func:`derive_seed` (independent streams for order, crops, masks, ...)."""
    return torch.Generator().manual_seed(derive_seed(seed, stream, index))


class EpochPlan:
    """Global batches of ``global_batch`` indices: epoch ``e`` walks ``randperm(n)`` seeded by (seed, "order", e),
    dropping the incomplete last batch; rank ``r`` of ``world`` takes the r-th contiguous slice of each batch."""

    def __init__(self, n: int, global_batch: int, seed: int, rank: int = 0, world: int = 1):
        if global_batch % world:
            raise ValueError(f"the global batch ({global_batch}) must be divisible by the number of ranks ({world})")
        if n < global_batch:
            raise ValueError(f"the dataset has {n} images, fewer than one global batch ({global_batch})")
        self.n, self.global_batch, self.seed, self.rank, self.world = n, global_batch, seed, rank, world
        self.local_batch = global_batch // world
        self.steps_per_epoch = n // global_batch
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def global_indices(self, step: int) -> torch.Tensor:
        """(global_batch,) dataset indices of optimisation step ``step``."""
        epoch, within = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = torch.randperm(self.n, generator=step_generator(self.seed, "order", epoch))
        return self._order[within * self.global_batch:(within + 1) * self.global_batch]

    def local_indices(self, step: int) -> torch.Tensor:
        """(local_batch,) indices this rank loads at ``step``."""
        start = self.rank * self.local_batch
        return self.global_indices(step)[start:start + self.local_batch]

    def batches(self, start: int, stop: int) -> Iterator[torch.Tensor]:
        """Local index batches of steps ``start``, ..., ``stop − 1``."""
        return (self.local_indices(step) for step in range(start, stop))
