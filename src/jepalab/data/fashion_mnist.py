"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from its four IDX files: 60k train / 10k test, 28×28 grey, 10 classes.

Looked up in ``data.root`` (or ``--data-dir``), then ``$JEPALAB_DATA_DIR``, then the Debian package
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``); each file may be plain or gzipped.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from jepalab.data.config import DataConfig
from jepalab.data.dataset import ImageDataset, channel_stats
from jepalab.data.fingerprint import files_by_content
from jepalab.data.idx import read_idx
from jepalab.data.registry import register_dataset

__all__ = ["CLASSES", "DEBIAN_DIR", "ENV_VAR", "FILES", "DatasetNotFoundError", "find_fashion_mnist",
           "load_fashion_mnist"]

DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "JEPALAB_DATA_DIR"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where they were looked for; the message says how to install them."""


def _candidates(root: str | Path | None) -> list[Path]:
    if root is not None:
        return [Path(root).expanduser()]
    places = []
    if os.environ.get(ENV_VAR):
        places.append(Path(os.environ[ENV_VAR]).expanduser())
    places.append(DEBIAN_DIR)
    return places


def _file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_fashion_mnist(root: str | Path | None = None, split: str = "train") -> tuple[Path, Path]:
    """(images, labels) IDX paths of ``split``; also accepts ``<root>/fashion-mnist``. Raises
    :class:`DatasetNotFoundError` naming the places searched, the expected files and the package to install."""
    searched = []
    for place in _candidates(root):
        for folder in (place, place / "fashion-mnist"):
            searched.append(folder)
            found = [_file(folder, stem) for stem in FILES[split]]
            if all(found):
                return found[0], found[1]  # type: ignore[return-value]
    expected = ", ".join(f"{stem}[.gz]" for stem in FILES[split])
    raise DatasetNotFoundError(
        f"Fashion-MNIST ({split}) not found: looked in {', '.join(map(str, searched))} for {expected}. "
        f"Install the Debian package '{DEBIAN_PACKAGE}' (apt-get install {DEBIAN_PACKAGE}), or pass --data-dir DIR "
        f"(config data.root) / set {ENV_VAR} to a folder holding those files.")


@functools.lru_cache(maxsize=4)
def _load(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{images_path} / {labels_path}: expected (n, 28, 28) images and (n,) labels; "
                         f"got {images.shape} and {labels.shape}")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype("int64"))


def load_fashion_mnist(root: str | Path | None = None, split: str = "train") -> ImageDataset:
    """Fashion-MNIST ``split`` as uint8 (n, 1, 28, 28) with labels 0–9; normalisation statistics of the train split."""
    images, labels = _load(*find_fashion_mnist(root, split))
    train_images = images if split == "train" else _load(*find_fashion_mnist(root, "train"))[0]
    mean, std = _stats(train_images)
    files = find_fashion_mnist(root, split)
    return ImageDataset("fashion-mnist", split, labels, CLASSES, 1, images.shape[-1], mean, std, images=images,
                        source=str(files[0].parent), info={"files": files_by_content(files)})


@functools.lru_cache(maxsize=4)
def _stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return channel_stats(images)  # tensors hash by identity: one computation per loaded array


def _validate(cfg: DataConfig) -> None:
    if cfg.options:
        raise ValueError(f"options: fashion-mnist takes none; got {sorted(cfg.options)}")


@register_dataset("fashion-mnist", splits=("train", "test"), validate=_validate,
                  help="Fashion-MNIST from IDX files (Debian package dataset-fashion-mnist)")
def build(cfg: DataConfig, split: str) -> ImageDataset:
    """Fashion-MNIST from ``cfg.root`` / $JEPALAB_DATA_DIR / the Debian package folder."""
    return load_fashion_mnist(cfg.root, split)
