"""The ``data:`` section of a pretraining config: which dataset, where, how it is decoded and augmented."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from jepalab.config import param

__all__ = ["DataConfig", "default_workers"]


def default_workers() -> int:
    """Decoding processes for ``num_workers: auto``: the cores this process may use less one, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, cores - 1))


@dataclass
class DataConfig:
    """Dataset selection (a name from the registry), decoding, caching and augmentation settings."""

    dataset: str = param("fashion-mnist", help="registered dataset name (jepalab.data.available_datasets())")
    root: str | None = param(None, help="dataset folder; Fashion-MNIST: default $JEPALAB_DATA_DIR, then the "
                                        "Debian package folder; image-folder: required")
    split: str = param("train", help="split to train on")
    image_size: int = param(28, ge=1, help="side of the square crop fed to the model (pixels)")
    store_size: int | None = param(None, ge=1, help="image-folder: side of the stored square (shorter side "
                                                    "resized, centre crop); default image_size·8/7")
    channels: int | None = param(None, choices=(1, 3), help="image-folder: 1 (grey) or 3 (RGB); default: 3 if "
                                                            "any image has colour")
    crop_scale: tuple[float, float] = param((0.3, 1.0), gt=0, le=1, help="random-resized-crop area range")
    crop_ratio: tuple[float, float] = param((3 / 4, 4 / 3), gt=0, help="random-resized-crop aspect range")
    hflip: bool = param(False, help="random horizontal flip (p = 0.5)")
    on_corrupt: str = param("fail", choices=("fail", "skip"), help="unreadable image: stop, or report and skip")
    cache: str = param("auto", choices=("auto", "always", "never"),
                       help="image-folder: keep a decoded uint8 tensor file (auto: when under cache_max_gb)")
    cache_dir: str | None = param(None, help="where decoded caches live (default $XDG_CACHE_HOME/jepalab)")
    cache_max_gb: float = param(4.0, gt=0, help="auto-cache only datasets whose decoded size is below this")
    limit: int | None = param(None, ge=1, help="use only the first N images of the split (quick runs)")
    num_workers: int | Literal["auto"] = param("auto", ge=0, help="decoding processes for image folders (auto: the "
                                               "cores less one, at most 8; 0 decodes in the training process)")
    options: Any = param({}, help="dataset-specific options, validated by the dataset's builder")  # noqa: RUF009 (param copies mutable defaults)

    @property
    def workers(self) -> int:
        """``num_workers`` resolved: ``auto`` → :func:`default_workers`."""
        return default_workers() if self.num_workers == "auto" else int(self.num_workers)

    def __post_init__(self) -> None:
        from jepalab.data.registry import dataset_spec

        for name, pair in (("crop_scale", self.crop_scale), ("crop_ratio", self.crop_ratio)):
            if len(pair) != 2 or pair[0] > pair[1]:
                raise ValueError(f"{name} must be [low, high] with low <= high; got {list(pair)}")
        if not isinstance(self.options, dict):
            raise ValueError(f"options must be a mapping; got {self.options!r}")
        spec = dataset_spec(self.dataset)
        if self.split not in spec.splits:
            raise ValueError(f"split must be one of {list(spec.splits)} for {self.dataset}; got {self.split!r}")
        if spec.validate is not None:
            spec.validate(self)
