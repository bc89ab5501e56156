"""What a training run reads, as a record for its run.json: the dataset, split, image and class counts, a SHA-256 of
its files (a builder puts it in ``info["files"]``: an image folder's sorted relative paths and sizes, the bytes of
Fashion-MNIST's IDX files) and the settings that turn the files into training views. A resumed run compares the
record of its data now with the one it started with (:func:`fingerprint_changes`)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jepalab.data.config import DataConfig
from jepalab.data.dataset import ImageDataset
from jepalab.rundir import to_jsonable

__all__ = ["data_fingerprint", "files_by_content", "files_by_listing", "fingerprint_changes"]

_CHUNK = 1 << 20
_DERIVED = ("mean", "std")  # transform settings computed from the images


def files_by_listing(folder: Path, files: Iterable[Path]) -> dict[str, Any]:
    """``info["files"]`` of an image folder: SHA-256 over the sorted paths below ``folder`` and sizes of ``files``."""
    digest, count = hashlib.sha256(), 0
    for relative, size in sorted((path.relative_to(folder).as_posix(), path.stat().st_size) for path in files):
        digest.update(f"{relative}\0{size}\n".encode())
        count += 1
    return {"sha256": digest.hexdigest(), "of": f"relative paths and sizes of {count} files"}


def files_by_content(paths: Iterable[Path]) -> dict[str, Any]:
    """``info["files"]`` of a dataset kept in a few files (Fashion-MNIST's IDX files): SHA-256 over their names and
    bytes."""
    digest, names = hashlib.sha256(), []
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.name}\0{_content_sha256(path, stat.st_size, stat.st_mtime_ns)}\n".encode())
        names.append(path.name)
    return {"sha256": digest.hexdigest(), "of": f"the bytes of {', '.join(names)}"}


@functools.lru_cache(maxsize=16)
def _content_sha256(path: Path, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file's bytes, once per (path, size, modification time) in a process."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def data_fingerprint(dataset: ImageDataset, cfg: DataConfig) -> dict[str, Any]:
    """The record of what a run trained on ``dataset`` (built from ``cfg``) reads (see the module docstring)."""
    return to_jsonable({
        "dataset": dataset.name, "split": dataset.split, "images": len(dataset), "classes": len(dataset.classes),
        "files": dataset.info.get("files"), "options": dict(cfg.options), "limit": cfg.limit,
        "transform": {"stored_size": dataset.size, "channels": dataset.channels, "image_size": cfg.image_size,
                      "crop_scale": cfg.crop_scale, "crop_ratio": cfg.crop_ratio, "hflip": cfg.hflip,
                      "mean": dataset.mean, "std": dataset.std}})


def _was(now: Any, then: Any) -> str:
    return f"{now} now, {then} when the run started"


def fingerprint_changes(then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between the fingerprint a run started with and ``now``'s, one phrase each ("240 images now, 300
    when the run started"); empty when nothing does."""
    changes = []
    for key in ("dataset", "split", "options", "limit"):
        if then.get(key) != now.get(key):
            changes.append(f"data.{key} {_was(now.get(key), then.get(key))}")
    for key in ("images", "classes"):
        if then.get(key) != now.get(key):
            changes.append(_was(f"{now.get(key)} {key}", then.get(key)))
    files_then, files_now = (then.get("files") or {}).get("sha256"), (now.get("files") or {}).get("sha256")
    if files_then != files_now and then.get("images") == now.get("images"):
        changes.append(f"its files changed (SHA-256 over {(now.get('files') or {}).get('of', 'them')} differs)")
    before, after = then.get("transform", {}), now.get("transform", {})
    changes += [f"data.{key} {_was(after[key], before.get(key))}" for key in after
                if key not in _DERIVED and before.get(key) != after[key]]
    if not changes:  # the statistics follow from the images: named only when nothing else says why they moved
        changes += [f"normalisation {key} {_was(after[key], before.get(key))}" for key in _DERIVED
                    if before.get(key) != after.get(key)]
    return changes
