"""The in-memory / streaming image dataset every builder returns, and the batch loader that feeds training."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["BatchLoader", "ImageDataset", "channel_stats"]


@dataclass
class ImageDataset:
    """``n`` images of shape (channels, size, size), uint8, with integer labels.

    Either ``images`` holds them all in memory (n, C, S, S), or ``read(i)`` decodes image ``i`` on demand
    (large folders); ``mean``/``std`` are per-channel pixel statistics in [0, 1] units, used for
    normalisation. ``info`` carries builder-specific records (skipped files, noise parameters, ...); a tensor
    entry with one row per image (a distractor's amplitude) is indexed along with the images by :meth:`subset`;
    ``info["files"]`` is the SHA-256 of the files read (:mod:`jepalab.data.fingerprint`), recorded with every run.
    """

    name: str
    split: str
    labels: torch.Tensor
    classes: tuple[str, ...]
    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    images: torch.Tensor | None = None
    read: Callable[[int], torch.Tensor] | None = None
    source: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.images is None) == (self.read is None):
            raise ValueError("ImageDataset needs exactly one of images (in memory) or read (streaming)")
        if self.images is not None:
            expected = (len(self.labels), self.channels, self.size, self.size)
            if self.images.dtype != torch.uint8 or tuple(self.images.shape) != expected:
                raise ValueError(f"images must be uint8 {expected}; got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean/std need {self.channels} values (one per channel)")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_memory(self) -> bool:
        return self.images is not None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index] if self.images is not None else self.read(index)  # type: ignore[misc]
        return image, int(self.labels[index])

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        """The images at ``indices`` (same statistics and metadata)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        if self.images is not None:
            images, read = self.images[indices], None
        else:
            images, read = None, _Remapped(self.read, indices.tolist())  # type: ignore[arg-type]
        info = {key: value[indices] if torch.is_tensor(value) and value.ndim and len(value) == len(self) else value
                for key, value in self.info.items()}
        return ImageDataset(self.name, self.split, self.labels[indices], self.classes, self.channels, self.size,
                            self.mean, self.std, images, read, self.source, info)


class _Remapped:
    """``read`` of a subset: image ``i`` is the parent's image ``mapping[i]`` (picklable for DataLoader workers)."""

    def __init__(self, read: Callable[[int], torch.Tensor], mapping: list[int]):
        self.read, self.mapping = read, mapping

    def __call__(self, index: int) -> torch.Tensor:
        return self.read(self.mapping[index])


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (n, C, H, W), in [0, 1] units, accumulated in float64."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk):
        block = images[start:start + chunk].to(torch.float64).div_(255.0)
        total += block.sum(dim=(0, 2, 3))
        squares += block.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


class _Batches:
    """Index batches for ``DataLoader(batch_sampler=...)``, drawn lazily from an iterable of tensors."""

    def __init__(self, batches: Iterable[torch.Tensor]):
        self.batches = batches

    def __iter__(self) -> Iterator[list[int]]:
        return (indices.tolist() for indices in self.batches)


def _stack(items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([image for image, _ in items]), torch.tensor([label for _, label in items])


class BatchLoader:
    """Uint8 image batches (and labels) on ``device`` for a sequence of index batches.

    In-memory datasets are gathered directly (kept on the accelerator when they fit in ``device_budget``
    bytes); streaming datasets decode in ``num_workers`` DataLoader processes, pinned for an asynchronous copy.
    Never synchronises the device.
    """

    def __init__(self, dataset: ImageDataset, device: torch.device, num_workers: int = 0,
                 device_budget: int = 2 << 30):
        self.dataset, self.device, self.num_workers = dataset, torch.device(device), num_workers
        self.cuda = self.device.type == "cuda"
        self.images = dataset.images
        self.labels = dataset.labels
        if self.images is not None and self.cuda and self.images.numel() <= device_budget:
            self.images, self.labels = self.images.to(self.device), self.labels.to(self.device)

    def __call__(self, batches: Iterable[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (images (b, C, S, S) uint8, labels (b,)) on the device, one per index batch."""
        if self.images is not None:
            for indices in batches:
                if self.images.device != indices.device:
                    indices = to_device(indices, self.images.device)
                yield to_device(self.images[indices], self.device), to_device(self.labels[indices], self.device)
            return
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=_Batches(batches), num_workers=self.num_workers,
            collate_fn=_stack, pin_memory=self.cuda, persistent_workers=False)
        for images, labels in loader:
            yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy to ``device`` without a host synchronisation (CPU tensors are pinned first for CUDA)."""
    if tensor.device == device:
        return tensor
    if device.type == "cuda" and tensor.device.type == "cpu":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)
