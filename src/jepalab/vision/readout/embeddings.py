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

from jepalab.data import BatchLoader, DataConfig, build_dataset, eval_view
from jepalab.rundir import write_json
from jepalab.vision.methods import method_spec
from jepalab.vision.methods.config import PretrainConfig
from jepalab.vision.models.features import POOLINGS, pool
from jepalab.vision.models.vit import ViT
from jepalab.vision.readout.run import Run
from jepalab.vision.training.build import build_encoder

__all__ = ["embed", "extract_features", "load_encoder", "load_model", "random_encoder"]


def _run_at(run: str | Path | Run, checkpoint: str | Path | None,
            device: str | torch.device) -> tuple[Run, int | None]:
    """(the run handle, the step of ``checkpoint``: a path inside the run, or None for the last)."""
    handle = run if isinstance(run, Run) else Run(run, device)
    if checkpoint is None:
        return handle, None
    wanted = Path(checkpoint).resolve()
    step = next((s for s, p in handle.paths.items() if p.resolve() == wanted), None)
    if step is None:
        raise FileNotFoundError(f"no checkpoint at {checkpoint} in {run} (steps: {handle.steps})")
    return handle, step


def load_model(run: str | Path, checkpoint: str | Path | None = None,
                device: str | torch.device = "cpu") -> tuple[torch.nn.Module, PretrainConfig, dict[str, Any]]:
    """(the method's model with trained weights in eval mode, its config, the checkpoint record) of a run folder."""
    handle, step = _run_at(run, checkpoint, device)
    model, record = handle.model(step)
    return model, handle.config, record


def load_encoder(run: str | Path, which: str = "auto", checkpoint: str | Path | None = None,
                 device: str | torch.device = "cpu", condition: str | None = None) -> ViT:
    """The trained encoder of a run: ``auto`` = the method's default (I-JEPA target, MAE encoder), or a name
    from its ``encoders`` (I-JEPA: ``target``/``context``), prepared by the method's ``eval_encoder`` (``condition``:
    a conditioned method's evaluation conditioning, None = the run's). Eval mode, frozen; ``encoder.run_info`` holds
    the step, method, encoder name, conditioning note ("" = none), normalisation and checkpoint (:class:`Run`)."""
    handle, step = _run_at(run, checkpoint, device)
    return handle.encoder(which, step, condition)


def random_encoder(source: str | Path | PretrainConfig, seed: int = 0, channels: int | None = None,
                   device: str | torch.device = "cpu") -> ViT:
    """A randomly initialised encoder with the architecture (and init style) of a run folder or config — the
    baseline to print next to every probe. ``channels`` defaults to the run's."""
    if isinstance(source, PretrainConfig):
        if channels is None:
            raise ValueError("random_encoder(config) needs channels=")
        encoder = build_encoder(source, method_spec(source.method), channels, seed=seed)
        return encoder.to(device).eval().requires_grad_(False)
    handle = Run(source, device)
    channels = handle.dataset["channels"] if channels is None else channels
    return build_encoder(handle.config, handle.spec, channels, seed=seed).to(device).eval().requires_grad_(False)


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


def embed(run: str | Path | Run, data: DataConfig, split: str | None = None, pooling: str = "mean", which: str = "auto",
          out: str | Path | None = None, checkpoint: str | Path | None = None, batch_size: int = 256,
          device: str | torch.device = "cpu", condition: str | None = None) -> Path:
    """Write ``embeddings.npy``, ``labels.npy`` and ``embed.json`` (encoder, conditioning, pooling, step,
    normalisation, data) for ``data``/``split`` encoded by a run's frozen encoder; returns the output folder."""
    handle, step = _run_at(run, checkpoint, device)
    encoder = handle.encoder(which, step, condition)
    info = encoder.run_info
    features, labels, facts = extract_features(encoder, data, split, tuple(info["mean"]), tuple(info["std"]),
                                               pooling, batch_size, device)
    conditioned = f"-{condition}" if condition not in (None, "none") else ""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_",
                  f"{facts['dataset']}-{facts['split']}-{info['encoder']}{conditioned}-{pooling}")
    folder = Path(out) if out is not None else handle.folder / "embeddings" / name
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "embeddings.npy", features)
    np.save(folder / "labels.npy", labels)
    write_json(folder / "embed.json", {**info, "pooling": pooling, "shape": list(features.shape), **facts,
                                       "view": "centre crop of side min(stored, image_size), resized; no masking"})
    return folder

