"""Noisy Fashion-MNIST: the distractor formula, determinism, options validation and per-image amplitudes."""

from __future__ import annotations

import pytest
import torch

from jepalab.config import ConfigError, from_dict
from jepalab.data import ImageDataset
from jepalab.data.noisy import NoiseOptions, distractor_texture, make_noisy


def _clean(n: int = 64) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_strength_zero_is_the_margin_mapped_clean_image() -> None:
    clean = _clean()
    noisy, amplitude = make_noisy(clean, NoiseOptions(strength=0.0, margin=0.25), "train")
    expected = ((0.25 + 0.5 * clean.float() / 255) * 255).round().to(torch.uint8)
    assert torch.equal(noisy, expected)
    assert amplitude.shape == (64,)


def test_distractor_follows_the_formula_without_clipping() -> None:
    clean = torch.full((8, 1, 28, 28), 128, dtype=torch.uint8)
    options = NoiseOptions(strength=0.02, jitter=0.5, patch=4, margin=0.25)
    noisy, amplitude = make_noisy(clean, options, "test")
    residual = noisy.float() / 255 - (0.25 + 0.5 * 128 / 255)
    texture = distractor_texture(options.seed)
    per_pixel = residual[:, 0] / (options.strength * texture)  # a_i + σ ε_{i,patch}, up to 8-bit rounding
    patches = per_pixel.view(8, 7, 4, 7, 4).mean(dim=(2, 4))  # (n, 7, 7) patch amplitudes
    assert torch.allclose(patches.mean(dim=(1, 2)), amplitude, atol=0.3)  # σ/√49 ≈ 0.07, 4 std plus rounding
    within = per_pixel.view(8, 7, 4, 7, 4).std(dim=(2, 4))
    assert within.max() < 0.2  # constant inside a patch, up to rounding (1/255 / 0.02 ≈ 0.2)
    assert patches.std(dim=(1, 2)).mean() > 0.3  # the per-patch jitter is there


def test_streams_are_deterministic_and_distinct() -> None:
    clean = _clean()
    first = make_noisy(clean, NoiseOptions(), "train")
    again = make_noisy(clean, NoiseOptions(), "train")
    other = make_noisy(clean, NoiseOptions(), "test")
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


def test_options_are_validated_with_the_field_name() -> None:
    with pytest.raises(ConfigError, match=r"data\.options\.strength"):
        from_dict(NoiseOptions, {"strength": 2.0}, prefix="data.options.")
    with pytest.raises(ConfigError, match=r"data\.options\.colour"):
        from_dict(NoiseOptions, {"colour": 1}, prefix="data.options.")
    with pytest.raises(ValueError, match="patch"):
        NoiseOptions(patch=5)


def test_subset_keeps_amplitudes_aligned() -> None:
    images, amplitude = make_noisy(_clean(10), NoiseOptions(), "train")
    dataset = ImageDataset("x", "train", torch.arange(10), tuple("0123456789"), 1, 28, (0.5,), (0.2,), images=images,
                           info={"amplitude": amplitude, "options": {"seed": 0}})
    part = dataset.subset(torch.tensor([7, 2]))
    assert torch.equal(part.info["amplitude"], amplitude[[7, 2]])
    assert part.info["options"] == {"seed": 0}
