"""Which pixel directions a run's encoder has learned, and when [ours].

Directions are unit vectors v of pixel space (the leading pixel-PCA directions of the clean training images and those
whose ρ rank differs most from their λ rank). For each, λ and ρ under a method's masks
(:func:`~jepalab.vision.readout.view_stats.masked_view_moments`) give the deep linear theory's quantities, and
:func:`decode_curves` measures how well the encoder's pooled features linearly decode vᵀ(x − mean) at each checkpoint
of a run: 5-fold cross-validated ridge R² on held-out images, from the run's own initialisation (step 0: the encoder
rebuilt from the run's seed) to its last checkpoint.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata

from jepalab.data import build_dataset, eval_view
from jepalab.eval import distractor_r2, fit_pixel_pca
from jepalab.vision.methods.config import PretrainConfig
from jepalab.vision.models.features import encode
from jepalab.vision.readout.run import Run
from jepalab.vision.readout.view_stats import masked_cross_covariance, masked_view_moments

__all__ = ["choose_directions", "decode_curves", "direction_pool", "pixel_views"]


def pixel_views(cfg: PretrainConfig, split: str, images: int) -> torch.Tensor:
    """The first ``images`` images of ``cfg``'s dataset split as float64 (n, C, S, S) in [0, 1] (centre view at the
    model's image size); the test split falls back to the last ``images`` training images where there is none."""
    data = replace(cfg.data, limit=None)
    try:
        dataset = build_dataset(data, split)
        chosen = torch.arange(min(images, len(dataset)))
    except FileNotFoundError:
        if split != "test":
            raise
        dataset = build_dataset(data, "train")
        chosen = torch.arange(max(0, len(dataset) - images), len(dataset))
    if dataset.images is None:
        raise ValueError(f"{dataset.name} is not held in memory; the direction read-out needs in-memory images")
    unit = ((0.0,) * dataset.channels, (1.0,) * dataset.channels)
    return eval_view(dataset.images[chosen], cfg.data.image_size, *unit).double()


def direction_pool(configs: dict[str, PretrainConfig], pool: int, images: int,
                   draws: int = 4, basis: str = "pca") -> dict[str, Any]:
    """The top ``pool`` directions of the first ``images`` training images of the first config's dataset (``pca``:
    pixel-PCA directions; ``cross``: eigenvectors of the first config's symmetrised masked context-target
    cross-covariance, largest eigenvalue first, each with λ > 0 under those masks), with λ, ρ and the view variances
    of each under every config's masks: {"directions": (pool, D), "mean": (D,), "explained": (pool,) (the pixel
    variance share along each), method: {"lam", "rho", "var_context", "var_target"} (pool,) each}."""
    if basis not in ("pca", "cross"):
        raise ValueError(f"basis must be pca or cross; got {basis!r}")
    first = next(iter(configs.values()))
    pixels = pixel_views(first, "train", images)  # (n, C, S, S)
    pca = fit_pixel_pca(pixels.flatten(1).numpy())
    if pca.components.shape[1] < pool:
        raise ValueError(f"the pixel PCA has {pca.components.shape[1]} directions; the pool needs {pool}")
    if basis == "pca":
        directions = np.ascontiguousarray(pca.components[:, :pool].T)  # (pool, D)
        explained = pca.eigenvalues[:pool] / pca.eigenvalues.sum()
    else:
        values, vectors = torch.linalg.eigh(masked_cross_covariance(pixels, first, draws, seed=0))
        directions = np.ascontiguousarray(vectors[:, torch.argsort(values, descending=True)[:pool]].T.numpy())
        directions *= np.sign(directions.sum(axis=1, keepdims=True) + 1e-300)  # a fixed sign per direction
        centred = pixels.flatten(1).numpy() - pca.mean
        explained = ((centred @ directions.T) ** 2).mean(axis=0) / (centred**2).mean(axis=0).sum()
    out: dict[str, Any] = {"directions": directions, "mean": pca.mean, "explained": explained}
    for method, cfg in configs.items():
        moments = masked_view_moments(pixels, torch.from_numpy(directions), cfg, draws, seed=0)
        out[method] = {key: value.numpy() for key, value in moments.items()}
    return out


def choose_directions(stats: dict[str, dict[str, np.ndarray]], top: int, extra: int) -> np.ndarray:
    """Indices into the pool: the first ``top`` (leading PCA directions), then the ``extra`` others with the largest
    Σ over methods |rank(λ) − rank(ρ)| (ranks over the whole pool; ties to the earlier direction)."""
    sizes = {len(s["lam"]) for s in stats.values()}
    if len(sizes) != 1 or top + extra > sizes.pop():
        raise ValueError("every method needs λ and ρ for the same pool of at least top + extra directions")
    disagreement = sum(np.abs(rankdata(s["lam"]) - rankdata(s["rho"])) for s in stats.values())
    rest = np.arange(top, len(disagreement))
    picked = rest[np.argsort(-disagreement[top:], kind="stable")[:extra]]
    return np.concatenate([np.arange(top), np.sort(picked)])


@torch.no_grad()
def decode_curves(run: Run, directions: np.ndarray, mean: np.ndarray, images: torch.Tensor, encoder: str = "auto",
                  readout: str = "mean", batch_size: int = 256, folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """Cross-validated ridge R² (T, k) of decoding vᵀ(x − mean) for each unit row v of ``directions`` (k, D) from the
    run's pooled features of ``images`` (n, C, S, S) in [0, 1], at step 0 (the run's own initialisation) and at every
    checkpoint: {"steps": [0, ...], "r2": (T, k)}."""
    if directions.ndim != 2 or directions.shape[1] != images[0].numel():
        raise ValueError(f"directions must be (k, {images[0].numel()}); got {directions.shape}")
    targets = (images.flatten(1).numpy() - mean) @ directions.T  # (n, k)
    stats = run.dataset
    views = ((images - torch.tensor(stats["mean"]).view(1, -1, 1, 1))
             / torch.tensor(stats["std"]).view(1, -1, 1, 1)).float().to(run.device)
    init, _ = run.random_encoder(seed=run.config.seed)  # the encoder the run started from
    encoders = [(0, init)] + [(step, run.encoder(encoder, step)) for step in run.steps]
    curves = []
    for _, model in encoders:
        features = encode(model, views, readout, batch_size).cpu().numpy()  # (n, d)
        curves.append(distractor_r2(features, targets, folds=folds, seed=seed).r2_per_output)
    return {"steps": [step for step, _ in encoders], "r2": np.asarray(curves)}
