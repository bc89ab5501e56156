"""Dataset registry: name → builder. Every module of ``jepalab.data`` is imported on first use, so a new file
that decorates its builder with :func:`register_dataset` is picked up without editing anything else::

    @register_dataset("noisy-fashion-mnist", splits=("train", "test"), validate=check_options)
    def build(cfg: DataConfig, split: str) -> ImageDataset: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jepalab.discovery import import_plugins

if TYPE_CHECKING:
    from jepalab.data.config import DataConfig
    from jepalab.data.dataset import ImageDataset

__all__ = ["DatasetSpec", "available_datasets", "build_dataset", "dataset_spec", "register_dataset"]


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its builder, the splits it knows, an optional config check (raises ValueError), the
    split ``embed`` and ``eval`` read by default, and whether its test split may be missing (evaluation then holds
    out part of the training split)."""

    name: str
    build: Callable[[DataConfig, str], ImageDataset]
    splits: tuple[str, ...]
    validate: Callable[[DataConfig], None] | None
    help: str
    eval_split: str = "test"
    test_optional: bool = False


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(name: str, splits: tuple[str, ...] = ("train", "test"),
                     validate: Callable[[DataConfig], None] | None = None, help: str = "", eval_split: str = "test",
                     test_optional: bool = False) -> Callable:
    """Decorator registering ``build(cfg, split) -> ImageDataset`` under ``name`` (names are unique)."""

    def decorate(build: Callable[[DataConfig, str], ImageDataset]) -> Callable[[DataConfig, str], ImageDataset]:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.build.__qualname__ != build.__qualname__:
            raise ValueError(f"dataset {name!r} is already registered by {existing.build.__module__}")
        _REGISTRY[name] = DatasetSpec(name, build, tuple(splits), validate, help or (build.__doc__ or "").strip(),
                                      eval_split, test_optional)
        return build

    return decorate


def available_datasets() -> dict[str, DatasetSpec]:
    """All registered datasets, by name (imports every module of ``jepalab.data`` once)."""
    import_plugins("jepalab.data")
    return dict(sorted(_REGISTRY.items()))


def dataset_spec(name: str) -> DatasetSpec:
    """The spec registered under ``name``; ``ValueError`` listing the known names otherwise."""
    known = available_datasets()
    if name not in known:
        raise ValueError(f"dataset must be one of {list(known)}; got {name!r}")
    return known[name]


def build_dataset(cfg: DataConfig, split: str | None = None) -> ImageDataset:
    """Build ``cfg.dataset`` for ``split`` (default ``cfg.split``), keeping the first ``cfg.limit`` images."""
    import torch

    spec = dataset_spec(cfg.dataset)
    split = cfg.split if split is None else split
    if split not in spec.splits:
        raise ValueError(f"{cfg.dataset} has splits {list(spec.splits)}; got {split!r}")
    dataset = spec.build(cfg, split)
    if cfg.limit is not None and cfg.limit < len(dataset):
        dataset = dataset.subset(torch.arange(cfg.limit))
    if len(dataset) == 0:
        raise ValueError(f"{cfg.dataset} ({split}) has no images")
    return dataset
