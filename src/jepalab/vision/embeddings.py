"""Trained encoders out of run folders, random-init baselines of the same architecture, and frozen embeddings.

Which features: the method's default encoder (its first ``encoders`` entry: I-JEPA → the EMA
**target** encoder, the paper's evaluation; MAE → the encoder) on **all** patches; pooling "mean" over patch tokens
by default (the class token never enters it), "cls" for a class token, "tokens" for every patch token. The choice
is recorded next to the arrays.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jepalab.config import from_dict
from jepalab.data import BatchLoader, DataConfig, build_dataset, eval_view
from jepalab.rundir import write_json
from jepalab.vision.build import build_encoder, build_method
from jepalab.vision.checkpoint import load_model_state, read_checkpoint
from jepalab.vision.config import PretrainConfig
from jepalab.vision.features import POOLINGS, pool
from jepalab.vision.methods import method_spec
from jepalab.vision.runs import CHECKPOINT
from jepalab.vision.vit import ViT

__all__ = ["embed", "extract_features", "load_encoder", "load_method", "random_encoder"]


def _checkpoint_path(run: str | Path, checkpoint: str | Path | None) -> Path:
    path = Path(checkpoint) if checkpoint is not None else Path(run) / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path} (is {run} a pretraining run folder?)")
    return path


def load_method(run: str | Path, checkpoint: str | Path | None = None,
                device: str | torch.device = "cpu") -> tuple[torch.nn.Module, PretrainConfig, dict[str, Any]]:
    """(method with trained weights in eval mode, its config, the checkpoint record) of a run folder."""
    path = _checkpoint_path(run, checkpoint)
    tensors, record = read_checkpoint(path)
    cfg = from_dict(PretrainConfig, record["config"])
    method = build_method(cfg, record["dataset"]["channels"])
    load_model_state(path, method, tensors)
    return method.to(device).eval().requires_grad_(False), cfg, record


def load_encoder(run: str | Path, which: str = "auto", checkpoint: str | Path | None = None,
                 device: str | torch.device = "cpu", condition: str | None = None) -> ViT:
    """The trained encoder of a run: ``auto`` = the method's default (I-JEPA target, MAE encoder), or a name
    from its ``encoders`` (I-JEPA: ``target``/``context``), prepared by the method's ``eval_encoder`` (``condition``:
    a conditioned method's evaluation conditioning, None = the run's). Eval mode, frozen; ``encoder.run_info`` holds
    the step, method, encoder name, conditioning note ("" = none) and normalisation."""
    method, cfg, record = load_method(run, checkpoint, device)
    spec = method_spec(cfg.method)
    which, encoder = spec.select_encoder(method, which)
    encoder, note = spec.eval_encoder(cfg, encoder, condition)
    encoder.run_info = {"run": str(run), "method": cfg.method, "encoder": which, "step": record["step"],  # type: ignore[assignment]
                        "condition": note, "mean": record["dataset"]["mean"], "std": record["dataset"]["std"],
                        "image_size": cfg.data.image_size}
    return encoder


def random_encoder(source: str | Path | PretrainConfig, seed: int = 0, channels: int | None = None,
                   device: str | torch.device = "cpu") -> ViT:
    """A randomly initialised encoder with the architecture (and init style) of a run folder or config — the
    baseline to print next to every probe. ``channels`` defaults to the run's."""
    if isinstance(source, PretrainConfig):
        cfg = source
        if channels is None:
            raise ValueError("random_encoder(config) needs channels=")
    else:
        _, record = read_checkpoint(_checkpoint_path(source, None))
        cfg = from_dict(PretrainConfig, record["config"])
        channels = record["dataset"]["channels"] if channels is None else channels
    return build_encoder(cfg, channels, seed=seed).to(device).eval().requires_grad_(False)


@torch.no_grad()
def extract_features(encoder: ViT, data: DataConfig, split: str | None, mean: tuple[float, ...],
                     std: tuple[float, ...], pooling: str = "mean", batch_size: int = 256,
                     device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(features float32 (n, d) or (n, N, d), labels int64 (n,), dataset facts) of ``data``/``split``: centre
    view (crop of side min(stored, image size), resized), normalised with ``mean``/``std``, no masking, in order."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {list(POOLINGS)}; got {pooling!r}")
    device = torch.device(device)
    dataset = build_dataset(data, split)
    if dataset.channels != encoder.in_channels:
        raise ValueError(f"{dataset.name} has {dataset.channels} channel(s); the encoder expects {encoder.in_channels}")
    encoder = encoder.to(device).eval()
    size = encoder.image_size[0]
    batches = torch.arange(len(dataset)).split(batch_size)
    features, labels = [], []
    for images, targets in BatchLoader(dataset, device, data.workers)(batches):
        tokens = encoder(eval_view(images, size, mean, std))
        features.append(pool(encoder, tokens, pooling).float().cpu())
        labels.append(targets.cpu())
    facts = {"dataset": dataset.name, "split": dataset.split, "source": dataset.source, "images": len(dataset),
             "classes": list(dataset.classes), "skipped": dataset.info.get("skipped", [])}
    return torch.cat(features).numpy(), torch.cat(labels).numpy().astype(np.int64), facts


def embed(run: str | Path, data: DataConfig, split: str | None = None, pooling: str = "mean", which: str = "auto",
          out: str | Path | None = None, checkpoint: str | Path | None = None, batch_size: int = 256,
          device: str | torch.device = "cpu", condition: str | None = None) -> Path:
    """Write ``embeddings.npy``, ``labels.npy`` and ``embed.json`` (encoder, conditioning, pooling, step,
    normalisation, data) for ``data``/``split`` encoded by a run's frozen encoder; returns the output folder."""
    encoder = load_encoder(run, which, checkpoint, device, condition)
    info = encoder.run_info
    features, labels, facts = extract_features(encoder, data, split, tuple(info["mean"]), tuple(info["std"]),
                                               pooling, batch_size, device)
    conditioned = f"-{condition}" if condition not in (None, "none") else ""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_",
                  f"{facts['dataset']}-{facts['split']}-{info['encoder']}{conditioned}-{pooling}")
    folder = Path(out) if out is not None else Path(run) / "embeddings" / name
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "embeddings.npy", features)
    np.save(folder / "labels.npy", labels)
    write_json(folder / "embed.json", {**info, "pooling": pooling, "shape": list(features.shape),
                                       "checkpoint": str(_checkpoint_path(run, checkpoint)), **facts,
                                       "view": "centre crop of side min(stored, image_size), resized; no masking"})
    return folder

