"""Process-group set-up for ``torchrun`` (NCCL on GPU, gloo on CPU); a single process needs no process group."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "all_reduce_mean", "broadcast_object", "init_distributed", "launched_world_size",
           "resolve_device", "shutdown"]


@dataclass(frozen=True)
class DistInfo:
    """This process's rank, the world size, its local rank and its device."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """"auto" → cuda:LOCAL_RANK when CUDA is available, else cpu; "cuda" → cuda:LOCAL_RANK; checks CUDA exists."""
    if preference == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"train.device={preference} but torch sees no CUDA device")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def launched_world_size() -> int:
    """torchrun's WORLD_SIZE (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: str = "auto") -> DistInfo:
    """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK; start a process group only when WORLD_SIZE > 1."""
    world = launched_world_size()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    info = DistInfo(rank, world, local_rank, resolve_device(device, local_rank))
    if info.device.type == "cuda":
        torch.cuda.set_device(info.device)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if info.device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=info.device if backend == "nccl" else None)
    return info


def shutdown(info: DistInfo, wait: bool = True) -> None:
    """Destroy the process group this module started; with ``wait`` (a run that ended normally) after a barrier,
    so every rank reaches the collective teardown together (rank 0 writes plots and summaries after the last
    collective). A rank that raised does not wait: the others may never arrive."""
    if info.world > 1 and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_mean(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of ``tensor`` over ranks (SUM then divide: gloo has no AVG); the identity in one process."""
    if info.world == 1:
        return tensor
    tensor = tensor.clone()
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor / info.world


def broadcast_object(value: object, info: DistInfo) -> object:
    """Rank 0's ``value`` on every rank."""
    if info.world == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
