"""λ and ρ under masks against their closed form for a shared-amplitude feature with per-patch jitter."""

from __future__ import annotations

import pytest
import torch

from jepalab.config import from_dict
from jepalab.vision.methods.config import PretrainConfig
from jepalab.vision.readout.view_stats import masked_view_moments, token_masks


def _config(method: str, ratio: float = 0.75) -> PretrainConfig:
    return from_dict(PretrainConfig, {"method": method, "data": {"image_size": 28},
                                      "model": {"size": "pico", "patch_size": 4}, "mae": {"mask_ratio": ratio}})


def _feature_images(n: int, jitter: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    texture = torch.where(torch.rand(28, 28, generator=g) < 0.5, -1.0, 1.0)
    per_patch = torch.randn(n, 1, 1, 1, generator=g) + jitter * torch.randn(n, 1, 7, 7, generator=g)
    images = per_patch.repeat_interleave(4, 2).repeat_interleave(4, 3) * texture
    return images, texture.flatten()[None]


@pytest.mark.parametrize("jitter", [0.0, 2.0])
def test_mae_masks_match_the_closed_form(jitter: float) -> None:
    images, direction = _feature_images(4000, jitter)
    stats = masked_view_moments(images, direction, _config("mae"), draws=2)
    visible = int(49 * 0.25)
    removed = 49 - visible
    # vᵀx ∝ Σ_{context patches}(a + σε), vᵀy ∝ Σ_{target patches}(a + σε): ρ = K_t / (K_c + σ²).
    assert float(stats["rho"][0]) == pytest.approx(removed / (visible + jitter**2), rel=0.06)
    scale = 16**2 / 784  # (patch pixels)² / ‖T‖²
    assert float(stats["lam"][0]) == pytest.approx(scale * visible * removed, rel=0.06)


def test_token_masks_are_disjoint_and_sized() -> None:
    context, target = token_masks(_config("mae"), 32, torch.Generator().manual_seed(1))
    assert context.shape == (32, 7, 7)
    assert not (context & target).any()
    assert (context.sum(dim=(1, 2)) == 12).all() and (target.sum(dim=(1, 2)) == 37).all()
    ctx, tgt = token_masks(_config("ijepa"), 32, torch.Generator().manual_seed(1))
    assert not (ctx & tgt).any()  # I-JEPA context excludes the target blocks (no overlap by default)
    assert (ctx.sum(dim=(1, 2)) > 8).all()


def test_bad_directions_are_rejected() -> None:
    with pytest.raises(ValueError, match="directions"):
        masked_view_moments(torch.zeros(4, 1, 28, 28), torch.ones(1, 10), _config("mae"))
    with pytest.raises(ValueError, match="28"):
        masked_view_moments(torch.zeros(4, 1, 14, 14), torch.ones(1, 196), _config("mae"))
