"""Training checkpoints: one safetensors file (written atomically: temp file + rename) holding every model
tensor (encoder, target encoder, predictor or decoder), the optimiser state and a JSON record (step, config,
optimiser groups, loss reference, a SHA-256 of all tensor bytes). A file that fails to parse, misses a tensor
or does not match its digest raises :class:`CheckpointError` naming it — never a silent restart."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from jepalab.rundir import atomic_write_bytes

__all__ = ["FORMAT", "CheckpointError", "load_model_state", "read_checkpoint", "read_record", "restore_training",
           "save_checkpoint", "tensor_digest"]

FORMAT = "jepalab-pretrain/1"


class CheckpointError(ValueError):
    """A checkpoint file that is unreadable, incomplete or corrupt; the message names the file."""


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over (name, dtype, shape, raw bytes) of every tensor, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    record: dict[str, Any]) -> Path:
    """Write ``model``'s state, ``optimizer``'s state and ``record`` (JSON-able) to ``path`` atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    state = optimizer.state_dict()
    for index, entries in state["state"].items():
        for name, value in entries.items():
            if not torch.is_tensor(value):
                raise TypeError(f"optimiser state {name} of parameter {index} is not a tensor")
            tensors[f"optim.{index}.{name}"] = value.detach().cpu().contiguous()
    groups = [{k: v.item() if torch.is_tensor(v) else v for k, v in g.items()} for g in state["param_groups"]]
    full = {**record, "format": FORMAT, "optim_groups": groups, "sha256": tensor_digest(tensors)}
    return atomic_write_bytes(path, save_safetensors(tensors, metadata={"record": json.dumps(full)}))


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, record) of a checkpoint, verified against its digest; :class:`CheckpointError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = path.read_bytes()
        tensors = load_safetensors(data)
        header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
        record = json.loads(header["__metadata__"]["record"])
    except (OSError, SafetensorError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a jepalab checkpoint ({error})") from error
    if record.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {record.get('format')!r}; expected {FORMAT!r}")
    if tensor_digest(tensors) != record.get("sha256"):
        raise CheckpointError(f"checkpoint {path} is corrupt: its tensors do not match the recorded SHA-256")
    return tensors, record


def read_record(path: str | Path) -> dict[str, Any]:
    """The record of a checkpoint from its header alone (no tensor is read or verified; :func:`read_checkpoint`
    verifies); :class:`CheckpointError` when the file is missing or not a jepalab checkpoint."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            record = json.loads(json.loads(handle.read(size))["__metadata__"]["record"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"checkpoint {path} is missing, corrupt or not a jepalab checkpoint ({error})") from error
    if record.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {record.get('format')!r}; expected {FORMAT!r}")
    return record


def load_model_state(path: Path, model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load the ``model.*`` tensors into ``model`` (every key must match)."""
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint {path} does not fit this model: {error}") from error


def restore_training(path: str | Path, model: nn.Module,
                     optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Load model and optimiser state from ``path`` into the live objects; returns the record."""
    path = Path(path)
    tensors, record = read_checkpoint(path)
    load_model_state(path, model, tensors)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": record["optim_groups"]})
    except (ValueError, KeyError, RuntimeError) as error:
        raise CheckpointError(f"checkpoint {path}: optimiser state does not fit ({error})") from error
    return record
