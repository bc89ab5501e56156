"""FLOP counts of a training step (meta device) and the mask statistics the CLI prints."""

import pytest
import torch

from jepalab.config import load_config
from jepalab.data import step_generator
from jepalab.vision import PretrainConfig, mask_summary, step_flops
from jepalab.vision.methods import method_spec
from jepalab.vision.methods.ijepa import masker
from jepalab.vision.models.masks import random_masks


def config(method: str, *extra: str) -> PretrainConfig:
    """Pico config on 28-px images, 4-px patches, a one-block 32-wide predictor / decoder."""
    return load_config(PretrainConfig, None, [f"method={method}", "data.image_size=28", "model.size=pico",
                                              "model.patch_size=4", "optim.global_batch=8", "ijepa.predictor_dim=32",
                                              "ijepa.predictor_depth=1", "mae.decoder_dim=32", "mae.decoder_depth=1",
                                              "mae.decoder_heads=2", *extra])


@pytest.mark.parametrize("method", ["ijepa", "mae"])
def test_step_flops_linear_in_batch_and_positive(method: str) -> None:
    """Twice the images, twice the FLOPs (same masks per image); a wider model costs more."""
    cfg = config(method)
    if method == "ijepa":
        masks = masker(cfg)(8, step_generator(0, "masks", 0))
    else:
        masks = random_masks(8, 49, 0.75, torch.Generator().manual_seed(0))
    half = masks.rows(0, 4)
    full = step_flops(cfg, method_spec(cfg.method), 1, 8, masks)
    assert full > 0 and full == 2 * step_flops(cfg, method_spec(cfg.method), 1, 4, half)
    assert step_flops(config(method, "model.dim=64"), method_spec(method), 1, 8, masks) > 2 * full


def test_mae_flops_match_a_hand_count() -> None:
    """MAE pico, no class token: linear layers 2·(tokens·in·out) forward, ×3 with backward (input + weight grads)."""
    cfg = config("mae", "mae.cls_token=false")
    masks = random_masks(1, 49, 0.75, torch.Generator().manual_seed(0))
    keep, removed, d, p2 = 12, 37, 32, 16

    def block(n_in: int, n_out: int) -> int:  # qkv on all rows (q only on n_out when pruned), proj, MLP, attention
        return 2 * d * (n_out * d + 2 * n_in * d) + 2 * n_out * d * d + 2 * 2 * n_out * d * 4 * d \
            + 2 * 2 * n_out * n_in * d

    forward = 2 * 49 * p2 * d  # patch embedding conv on all 49 patches
    forward += block(keep, keep) * 2  # two encoder blocks on the kept tokens
    forward += 2 * keep * d * d + block(49, removed) + 2 * removed * d * p2  # decoder embed, pruned block, head
    counted = step_flops(cfg, method_spec(cfg.method), 1, 1, masks)
    # backward ≈ 2× forward; the patch embedding needs no input gradient, attention backward is 2.5× its forward
    assert counted == pytest.approx(3 * forward, rel=0.05)


def test_mask_summary_on_the_small_grid() -> None:
    """mask_summary: resolved settings and token counts of the first batches (what --dry-run prints)."""
    summary = mask_summary(config("ijepa"), method_spec("ijepa"), batches=10)
    assert summary["grid"] == [7, 7] and summary["tokens"] == 49 and summary["num_targets"] == 2
    assert summary["min_keep"] == 4 and summary["full_grid"] is True
    context = summary["context_tokens"]
    assert 4 < context["min"] <= context["mean"] <= context["max"] <= 49
    assert summary["context_share"] == pytest.approx(context["mean"] / 49)
    assert 0 <= summary["relaxed_share"] <= 1
