"""A pretraining run folder read once (:class:`Run`): its config (from its last checkpoint's header, the one source),
its run record and its checkpoints by step; trained encoders by name and step, each checkpoint file read and verified
when its step is asked for, and random-init encoders of the same architecture."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from jepalab.config import from_dict
from jepalab.vision.methods import method_spec
from jepalab.vision.methods.config import PretrainConfig
from jepalab.vision.models.vit import ViT
from jepalab.vision.training.build import build_encoder, build_model
from jepalab.vision.training.checkpoint import load_model_state, read_checkpoint, read_record
from jepalab.vision.training.run_dir import CHECKPOINT

__all__ = ["Run"]

_SNAPSHOT = re.compile(r"checkpoint-(\d+)\.safetensors")


class Run:
    """A run folder: ``config``, ``record`` (run.json, {} if absent), ``steps`` (every checkpoint's step, ascending)
    and the trained model at a step, loaded once and kept until another step is asked for."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu"):
        self.folder, self.device = Path(folder), torch.device(device)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"run folder {self.folder} does not exist")
        last = self.folder / CHECKPOINT
        snapshots = {int(m.group(1)): p for p in self.folder.glob("checkpoint-*.safetensors")
                     if (m := _SNAPSHOT.fullmatch(p.name))}
        if not last.is_file() and not snapshots:
            raise FileNotFoundError(f"{self.folder} holds no checkpoint (expected {CHECKPOINT}); train it first")
        self._loaded: tuple[Path, torch.nn.Module, dict[str, Any]] | None = None
        self.paths: dict[int, Path] = dict(snapshots)
        record = read_record(last if last.is_file() else snapshots[max(snapshots)])  # header only: no tensor read
        if last.is_file():  # the last checkpoint stands for its step, also where a snapshot shares it
            self.paths[int(record["step"])] = last
        self.config = from_dict(PretrainConfig, record["config"])
        self.dataset: dict[str, Any] = record["dataset"]
        path = self.folder / "run.json"
        self.record: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        self.spec = method_spec(self.config.method)

    @property
    def steps(self) -> list[int]:
        """Steps of every checkpoint (snapshots and the last), ascending."""
        return sorted(self.paths)

    def select(self, which: str = "last") -> list[int]:
        """Steps for ``which``: "last", "all" or a step number that has a checkpoint."""
        if which == "last":
            return [self.steps[-1]]
        if which == "all":
            return self.steps
        if not re.fullmatch(r"\d+", which):
            raise ValueError(f"--checkpoint must be 'last', 'all' or a step number; got {which!r}")
        if int(which) not in self.paths:
            raise FileNotFoundError(f"{self.folder} has no checkpoint at step {which} (steps: {self.steps})")
        return [int(which)]

    def _load(self, path: Path) -> tuple[Path, torch.nn.Module, dict[str, Any]]:
        if self._loaded is None or self._loaded[0] != path:
            tensors, record = read_checkpoint(path)
            cfg = from_dict(PretrainConfig, record["config"])
            model = build_model(cfg, self.spec, record["dataset"]["channels"])
            load_model_state(path, model, tensors)
            self._loaded = (path, model.to(self.device).eval().requires_grad_(False), record)
        return self._loaded

    def model(self, step: int | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
        """(the method's trained model in eval mode, its checkpoint record) at ``step`` (None: the last)."""
        _, model, record = self._load(self.paths[self.steps[-1] if step is None else step])
        return model, record

    def encoder(self, which: str = "auto", step: int | None = None, condition: str | None = None) -> ViT:
        """The trained encoder ``which`` ("auto": the method's default) at ``step``, prepared by the method's
        ``eval_encoder``; ``encoder.run_info`` holds run, method, encoder name, step, conditioning note and
        normalisation."""
        model, record = self.model(step)
        name, encoder = self.spec.select_encoder(model, which)
        encoder, note = self.spec.eval_encoder(self.config, encoder, condition)
        encoder.run_info = {"run": str(self.folder), "method": self.config.method, "encoder": name,  # type: ignore[assignment]
                            "step": record["step"], "condition": note, "mean": self.dataset["mean"],
                            "std": self.dataset["std"], "image_size": self.config.data.image_size,
                            "checkpoint": str(self.paths[record["step"]])}
        return encoder

    def encoders(self, step: int | None = None, condition: str | None = None) -> dict[str, ViT]:
        """Every encoder of the method at ``step`` by name (the evaluation default first), as evaluation reads it."""
        model, _ = self.model(step)
        return {name: self.spec.eval_encoder(self.config, module, condition)[0]
                for name, module in self.spec.encoder_modules(model).items()}

    def random_encoder(self, seed: int = 0, condition: str | None = None) -> tuple[ViT, str]:
        """(a random-init encoder of the run's architecture and init, prepared as evaluation reads it; its note)."""
        encoder = build_encoder(self.config, self.spec, self.dataset["channels"], seed=seed).to(self.device).eval()
        return self.spec.eval_encoder(self.config, encoder.requires_grad_(False), condition)
