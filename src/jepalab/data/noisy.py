"""Noisy Fashion-MNIST [ours]: Fashion-MNIST plus a label-independent distractor built to be the paper's "noisy
feature" under masking — large covariance λ between context and target pixels, small regression coefficient ρ.

Image i, pixel u (values in [0, 1], patch P(u) of side ``patch``)::

    x_i(u) = clip(m + (1 − 2m)·c_i(u) + s·(a_i + σ·ε_{i,P(u)})·T(u), 0, 1)

c = the clean image, m = ``margin`` (room for the distractor without clipping), s = ``strength``, T = a fixed ±1
pixel texture, a_i ~ N(0, 1) the per-image amplitude (shared by every patch: context predicts target through it,
which gives λ), ε ~ N(0, 1) independent per patch (``jitter`` σ: variance the context sees but the target does not
share, which lowers ρ). With K context patches, ρ of the texture direction is ≈ ρ_clean·K/(K + σ²). Strength 0
gives the same contrast-reduced images without a distractor, the fair clean baseline. ``info["amplitude"]`` holds
a_i for the R² read-out; ``jepalab data stats`` measures λ and ρ under the run's actual masks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from jepalab.config import from_dict, param
from jepalab.data.config import DataConfig
from jepalab.data.dataset import ImageDataset, channel_stats
from jepalab.data.fashion_mnist import CLASSES, load_fashion_mnist
from jepalab.data.registry import register_dataset
from jepalab.data.sampler import step_generator

__all__ = ["NoiseOptions", "distractor_texture", "make_noisy"]


@dataclass(frozen=True)
class NoiseOptions:
    """The ``data.options`` of ``noisy-fashion-mnist``."""

    strength: float = param(0.1, ge=0, le=1, help="distractor scale s in [0, 1] pixel units")
    jitter: float = param(2.0, ge=0, le=100, help="per-patch amplitude noise σ (relative to the shared amplitude)")
    patch: int = param(4, ge=1, le=28, help="side of the jitter patches in pixels (use the model's patch size)")
    margin: float = param(0.25, ge=0, lt=0.5, help="clean images are mapped to [m, 1 − m]")
    seed: int = param(0, ge=0, help="seeds the texture, amplitudes and jitter")

    def __post_init__(self) -> None:
        if 28 % self.patch:
            raise ValueError(f"options.patch ({self.patch}) must divide 28")


def distractor_texture(seed: int, size: int = 28) -> torch.Tensor:
    """The fixed ±1 texture T (size, size) of ``seed``."""
    signs = torch.randint(0, 2, (size, size), generator=step_generator(seed, "noisy-texture", 0))
    return (2 * signs - 1).float()


def make_noisy(clean: torch.Tensor, options: NoiseOptions, stream: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy uint8 images (n, 1, 28, 28), amplitudes a (n,)) of clean uint8 images, random stream ``stream``."""
    n, _, size, _ = clean.shape
    generator = step_generator(options.seed, f"noisy-{stream}", 0)
    amplitude = torch.randn(n, generator=generator)
    grid = size // options.patch
    jitter = torch.randn(n, 1, grid, grid, generator=generator)
    per_patch = amplitude.view(n, 1, 1, 1) + options.jitter * jitter  # (n, 1, grid, grid)
    per_pixel = per_patch.repeat_interleave(options.patch, 2).repeat_interleave(options.patch, 3)  # (n, 1, S, S)
    m = options.margin
    x = m + (1 - 2 * m) * clean.float() / 255 + options.strength * per_pixel * distractor_texture(options.seed, size)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8), amplitude


def _options(cfg: DataConfig) -> NoiseOptions:
    return from_dict(NoiseOptions, dict(cfg.options), prefix="data.options.")


@functools.lru_cache(maxsize=4)
def _noisy(root: str | None, split: str, options: NoiseOptions) -> tuple[ImageDataset, torch.Tensor, torch.Tensor]:
    """(the clean split, noisy images, amplitudes); a missing dataset raises before any work."""
    clean = load_fashion_mnist(root, split)
    images, amplitude = make_noisy(clean.images, options, split)  # type: ignore[arg-type]
    return clean, images, amplitude


@functools.lru_cache(maxsize=4)
def _train_stats(root: str | None, options: NoiseOptions) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return channel_stats(_noisy(root, "train", options)[1])


@register_dataset("noisy-fashion-mnist", splits=("train", "test"), validate=lambda cfg: _options(cfg),
                  help="Fashion-MNIST + a per-image random-amplitude texture with per-patch jitter (options: "
                       "strength, jitter, patch, margin, seed)")
def build(cfg: DataConfig, split: str) -> ImageDataset:
    """Noisy Fashion-MNIST ``split`` from the Fashion-MNIST files (see the module docstring)."""
    options = _options(cfg)
    clean, images, amplitude = _noisy(cfg.root, split, options)
    mean, std = _train_stats(cfg.root, options)
    info = {"amplitude": amplitude, "options": vars(options).copy(), "clean_images": clean.images,
            "files": clean.info["files"],
            "distractor_texture": distractor_texture(options.seed, 28).numpy()}  # numpy: never subset per image
    return ImageDataset("noisy-fashion-mnist", split, clean.labels, CLASSES, 1, 28, mean, std, images=images,
                        source=clean.source, info=info)
