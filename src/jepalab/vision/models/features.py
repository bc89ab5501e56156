"""Frozen features of an encoder (pooled read-outs) and the collapse diagnostics logged during training."""

from __future__ import annotations

import contextlib
import warnings

import torch

from jepalab.eval import collapse_diagnostics, token_spread
from jepalab.vision.models.vit import ViT, measure_content_share

__all__ = ["POOLINGS", "READOUTS", "collapse_report", "encode", "pool"]

POOLINGS = ("mean", "cls", "tokens", "last4", "grid2")
READOUTS = ("mean", "last4", "grid2")
"""Pooled read-outs compared by ``jepalab eval``: "mean" of the final patch tokens (d), "last4" the means of the last
four blocks concatenated (4·d; I-JEPA/DINO linear evaluation), "grid2" the final tokens pooled on a 2×2 grid
(4·d; keeps where a feature is)."""


def pool(encoder: ViT, tokens: torch.Tensor, pooling: str) -> torch.Tensor:
    """Encoder output (B, [1 +] N, d) → "mean" of patch tokens (B, d), class token "cls" (B, d), the patch
    "tokens" (B, N, d) or "grid2", the patch tokens averaged over a 2×2 grid of regions (B, 4·d); the class token
    never enters a pool. ("last4" needs the blocks' outputs: :func:`encode`.)"""
    if pooling == "mean":
        return encoder.patch_tokens(tokens).mean(dim=1)
    if pooling == "cls":
        if encoder.cls_token is None:
            raise ValueError("pooling 'cls' needs an encoder with a class token (MAE with mae.cls_token=true)")
        return tokens[:, 0]
    if pooling == "tokens":
        return encoder.patch_tokens(tokens)
    if pooling == "grid2":
        patches = encoder.patch_tokens(tokens)  # (B, N, d)
        grid = patches.transpose(1, 2).reshape(patches.shape[0], -1, *encoder.grid)  # (B, d, H, W)
        return torch.nn.functional.adaptive_avg_pool2d(grid.float(), 2).flatten(1)  # (B, 4·d), d-major
    raise ValueError(f"pooling must be one of {list(POOLINGS)}; got {pooling!r}")


@torch.no_grad()
def encode(encoder: ViT, images: torch.Tensor, pooling: str = "mean", batch_size: int = 256,
           autocast: contextlib.AbstractContextManager | None = None) -> torch.Tensor:
    """Pooled features (float32, on the images' device) of normalised ``images`` (n, C, H, W), eval mode,
    no masking, ``batch_size`` images at a time."""
    was_training = encoder.training
    encoder.eval()
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {list(POOLINGS)}; got {pooling!r}")
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        with autocast or contextlib.nullcontext():
            if pooling == "last4":  # (B, min(4, depth)·d)
                states = encoder.hidden_states(batch, min(4, encoder.depth))
                outputs.append(torch.cat([pool(encoder, s, "mean").float() for s in states], dim=1))
            else:
                outputs.append(pool(encoder, encoder(batch), pooling).float())
    encoder.train(was_training)
    return torch.cat(outputs)


def collapse_report(encoders: dict[str, ViT], images: torch.Tensor,
                    autocast: contextlib.AbstractContextManager | None = None) -> dict[str, float]:
    """Collapse read-outs on a fixed batch: for each named encoder (a method's ``encoder_modules``) the
    mean-pooled features' :func:`~jepalab.eval.collapse_diagnostics` (normalised std, RankMe, VICReg terms,
    dead dims), the token spread and the mean token norm, keyed ``"<encoder>.<metric>"``."""
    report: dict[str, float] = {}
    for name, encoder in encoders.items():
        pooled = encode(encoder, images, "mean", autocast=autocast)  # (n, d)
        tokens = encode(encoder, images[:256], "tokens", autocast=autocast)  # (≤ 256, N, d)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # small n: recorded as rankme_biased instead
            stats = collapse_diagnostics(pooled)
        stats["rankme_biased"] = float(stats["n"] < 4 * stats["dim"])
        stats["token_spread"] = token_spread(tokens) if bool(torch.isfinite(tokens).all()) else float("nan")
        stats["token_norm"] = float(tokens.norm(dim=-1).mean())
        stats["content_share"] = measure_content_share(encoder, images[:256])
        report.update({f"{name}.{key}": value for key, value in stats.items()})
    return report
