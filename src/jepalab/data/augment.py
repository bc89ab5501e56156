"""Batched torch augmentations: random resized crop (torchvision's sampling rule), horizontal flip, normalisation.

Crop boxes and flips are drawn on the CPU from an explicit generator (so they do not depend on the device or
on how a batch is split over ranks); the resampling runs on whatever device holds the images, as one
``grid_sample`` for the whole batch. The result equals "crop, then ``F.interpolate(bilinear,
align_corners=False)``" image by image.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from jepalab.data.dataset import to_device

__all__ = ["augment", "centre_boxes", "crop_resize", "eval_view", "normalise", "sample_crops", "sample_flips"]


def sample_crops(n: int, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
                 generator: torch.Generator, tries: int = 10) -> torch.Tensor:
    """(n, 4) boxes [top, left, h, w] of RandomResizedCrop: area ~ U(scale)·HW, log-aspect ~ U(log ratio),
    first of ``tries`` draws that fits, else the centre crop clamped to ``ratio`` (torchvision ``get_params``)."""
    u = torch.rand(n, tries, 4, generator=generator, dtype=torch.float64)
    area = height * width * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[..., 1])
    w = torch.round(torch.sqrt(area * aspect))
    h = torch.round(torch.sqrt(area / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.int8).argmax(dim=1, keepdim=True)  # (n, 1): first draw that fits (0 if none)
    pick = lambda t: t.gather(1, first).squeeze(1)  # noqa: E731
    h, w, u_top, u_left = pick(h), pick(w), pick(u[..., 2]), pick(u[..., 3])
    top = torch.floor(u_top * (height - h + 1))
    left = torch.floor(u_left * (width - w + 1))
    fallback = torch.tensor(_centre_fallback(height, width, ratio), dtype=torch.float64)
    boxes = torch.stack([top, left, h, w], dim=1)
    return torch.where(fits.any(dim=1, keepdim=True), boxes, fallback)


def _centre_fallback(height: int, width: int, ratio: tuple[float, float]) -> list[float]:
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        h, w = height, round(height * max(ratio))
    else:
        h, w = height, width
    return [(height - h) // 2, (width - w) // 2, h, w]


def sample_flips(n: int, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """(n,) bool: flip each image with probability ``p``."""
    return torch.rand(n, generator=generator, dtype=torch.float64) < p


def centre_boxes(n: int, height: int, width: int, size: int) -> torch.Tensor:
    """(n, 4) centre squares of side min(height, width, size): the evaluation view (crop, resize only if smaller)."""
    side = min(height, width, size)
    return torch.tensor([[(height - side) // 2, (width - side) // 2, side, side]], dtype=torch.float64).expand(n, 4)


def _axis(start: torch.Tensor, length: torch.Tensor, size: int, extent: int, device: torch.device) -> torch.Tensor:
    """Normalised sample coordinates (n, size) of an output axis over [start, start + length) of ``extent`` pixels."""
    k = torch.arange(size, device=device, dtype=torch.float32) + 0.5
    src = start[:, None] + k[None, :] * (length[:, None] / size) - 0.5
    src = torch.minimum(torch.maximum(src, start[:, None]), (start + length - 1)[:, None])
    return (2 * src + 1) / extent - 1


def crop_resize(images: torch.Tensor, boxes: torch.Tensor, size: int,
                flips: torch.Tensor | None = None) -> torch.Tensor:
    """images (b, C, H, W) float, boxes (b, 4) [top, left, h, w] → (b, C, size, size), bilinear, flipped where
    ``flips``; sample positions clamped to each box, so it equals cropping then ``F.interpolate``."""
    b, _, height, width = images.shape
    device = images.device
    boxes = to_device(boxes.to(torch.float32), device)
    xs = _axis(boxes[:, 1], boxes[:, 3], size, width, device)  # (b, size)
    ys = _axis(boxes[:, 0], boxes[:, 2], size, height, device)  # (b, size)
    if flips is not None:
        flips = to_device(flips, device)
        xs = torch.where(flips[:, None], xs.flip(1), xs)
    grid = torch.stack([xs[:, None, :].expand(b, size, size), ys[:, :, None].expand(b, size, size)], dim=-1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def normalise(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(x / 255 − mean) / std per channel, for float images in [0, 255] (mean/std: any sequence, e.g. JSON lists)."""
    mean_t, std_t = _channel_tensor(tuple(mean), images.device), _channel_tensor(tuple(std), images.device)
    return (images / 255.0 - mean_t.to(images.dtype)) / std_t.to(images.dtype)


@functools.lru_cache(maxsize=32)
def _channel_tensor(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    return to_device(torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1), device)


def augment(images: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor | None, size: int,
            mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (b, C, S, S) → normalised float32 (b, C, size, size): crop ``boxes``, resize, flip, normalise."""
    return normalise(crop_resize(images.float(), boxes, size, flips), mean, std)


def eval_view(images: torch.Tensor, size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (b, C, S, S) → normalised (b, C, size, size): centre crop of side min(S, size), resized to ``size``."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return normalise(images.float(), mean, std)
    boxes = centre_boxes(len(images), images.shape[-2], images.shape[-1], size)
    return augment(images, boxes, None, size, mean, std)
