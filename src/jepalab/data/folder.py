"""Any image folder with class sub-folders (PNG, JPEG, ... any size, grey or RGB), decoded with Pillow.

Each image is resized (shorter side → ``store_size``, Pillow's antialiased bicubic) and centre-cropped to a square
uint8 tensor. Small datasets are decoded once into a cache file (safetensors, keyed by the file list, sizes,
mtimes and settings) so an epoch never re-decodes; large ones stream from disk in DataLoader workers.
Unreadable images are reported by file name and either stop the build or are skipped (``data.on_corrupt``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from jepalab.data.config import DataConfig
from jepalab.data.dataset import ImageDataset, channel_stats
from jepalab.data.fingerprint import files_by_listing
from jepalab.data.registry import register_dataset
from jepalab.rundir import atomic_write_bytes

__all__ = ["EXTENSIONS", "FOLDER_DATASET", "CorruptImageError", "decode_image", "load_image_folder", "scan_folder"]

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_CACHE_VERSION = 1


class CorruptImageError(ValueError):
    """An image file that Pillow cannot read; the message names the file."""


def scan_folder(root: str | Path) -> tuple[list[Path], list[int], tuple[str, ...]]:
    """Image files under ``root`` (sorted), their class ids and the class names.

    Classes are the sub-folders of ``root`` that contain images (recursively); when ``root`` has no
    sub-folders its images form one class named after ``root``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist or is not a folder")
    def images_under(folder: Path) -> list[Path]:
        return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()
                      and not any(part.startswith(".") for part in p.relative_to(root).parts))

    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    groups = [(p.name, images_under(p)) for p in subfolders] if subfolders else [(root.name, images_under(root))]
    groups = [(name, files) for name, files in groups if files]
    if not groups:
        raise FileNotFoundError(f"image folder {root} holds no images ({', '.join(EXTENSIONS)})")
    files = [f for _, fs in groups for f in fs]
    labels = [i for i, (_, fs) in enumerate(groups) for _ in fs]
    return files, labels, tuple(name for name, _ in groups)


def decode_image(path: str | Path, size: int, channels: int) -> torch.Tensor:
    """(channels, size, size) uint8: shorter side resized to ``size`` (bicubic, antialiased), centre square kept."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            image = ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise CorruptImageError(f"unreadable image {path}: {error}") from error
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return data.view(size, size, channels).permute(2, 0, 1).contiguous()


def _infer_channels(files: list[Path], sample: int = 1000) -> int:
    from PIL import Image

    step = max(1, len(files) // sample)
    for path in files[::step]:
        try:
            with Image.open(path) as image:
                if image.mode not in _GREY_MODES:
                    return 3
        except (OSError, ValueError, SyntaxError):
            continue
    return 1


class _Decoder(torch.utils.data.Dataset):
    """Decodes file ``i``; returns (image or an empty tensor, the error message or "")."""

    def __init__(self, files: list[Path], size: int, channels: int):
        self.files, self.size, self.channels = files, size, channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        try:
            return decode_image(self.files[index], self.size, self.channels), ""
        except CorruptImageError as error:
            return torch.empty(0, dtype=torch.uint8), str(error)


def _report_skipped(messages: list[str]) -> None:
    shown = "\n  ".join(messages[:20]) + (f"\n  ... and {len(messages) - 20} more" if len(messages) > 20 else "")
    print(f"jepalab: skipped {len(messages)} unreadable image(s) (data.on_corrupt=skip):\n  {shown}", file=sys.stderr)
    warnings.warn(f"skipped {len(messages)} unreadable images; first: {messages[0]}", RuntimeWarning, stacklevel=3)


def _fail(message: str) -> CorruptImageError:
    return CorruptImageError(f"{message} (pass data.on_corrupt=skip to report and skip unreadable images)")


def _decode_all(files: list[Path], size: int, channels: int, on_corrupt: str,
                workers: int) -> tuple[torch.Tensor, list[int], list[str]]:
    from jepalab.progress import progress_bar

    loader = torch.utils.data.DataLoader(_Decoder(files, size, channels), batch_size=64, num_workers=workers,
                                         collate_fn=list)
    images, kept, skipped = [], [], []
    index = 0
    with progress_bar(total=len(files), desc="decoding images", unit="img", disable=len(files) < 2000) as bar:
        for batch in loader:
            for image, error in batch:
                if error:
                    if on_corrupt == "fail":
                        raise _fail(error)
                    skipped.append(error)
                else:
                    images.append(image)
                    kept.append(index)
                index += 1
            bar.update(len(batch))
    if not images:
        raise CorruptImageError(f"none of the {len(files)} images could be read; first error: {skipped[0]}")
    return torch.stack(images), kept, skipped


def _cache_path(cfg: DataConfig, folder: Path, files: list[Path], size: int, channels: int) -> Path:
    digest = hashlib.sha256()
    digest.update(json.dumps([_CACHE_VERSION, str(folder.resolve()), size, channels, cfg.on_corrupt]).encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    base = cfg.cache_dir or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "jepalab")
    return Path(base) / f"folder-{folder.name}-{digest.hexdigest()[:20]}.safetensors"


def _read_cache(path: Path) -> tuple[torch.Tensor, torch.Tensor, dict] | None:
    if not path.is_file():
        return None
    try:
        data = path.read_bytes()
        tensors = load_safetensors(data)
        meta = json.loads(_safetensors_metadata(data)["record"])
        return tensors["images"], tensors["labels"], meta
    except (OSError, SafetensorError, KeyError, ValueError) as error:
        print(f"jepalab: ignoring unreadable image cache {path} ({error}); decoding again", file=sys.stderr)
        return None


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    header_len = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + header_len]).get("__metadata__", {})


def load_image_folder(cfg: DataConfig, split: str = "train") -> ImageDataset:
    """The folder ``cfg.root`` (``split`` "train": ``root/train`` when present, else ``root``; "val"/"test":
    ``root/<split>``) as an :class:`ImageDataset`, in memory from a cache file or streamed, per ``cfg.cache``."""
    if cfg.root is None:
        raise ValueError("data.root must name the image folder for dataset image-folder")
    root = Path(cfg.root).expanduser()
    folder = root / split if (root / split).is_dir() or split != "train" else root
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder split {split!r} not found: {folder} does not exist")
    files, labels, classes = scan_folder(folder)
    size = cfg.store_size or round(cfg.image_size * 8 / 7)
    if size < cfg.image_size:
        raise ValueError(f"data.store_size ({size}) must be >= data.image_size ({cfg.image_size})")
    channels = cfg.channels or _infer_channels(files)
    decoded_bytes = len(files) * channels * size * size
    if cfg.cache == "always" or (cfg.cache == "auto" and decoded_bytes <= cfg.cache_max_gb * 2**30):
        path = _cache_path(cfg, folder, files, size, channels)
        cached = _read_cache(path)
        if cached is None:
            images, kept, skipped = _decode_all(files, size, channels, cfg.on_corrupt, cfg.workers)
            label_tensor = torch.tensor(labels, dtype=torch.long)[kept]
            record = {"skipped": skipped, "files": len(files), "folder": str(folder)}
            atomic_write_bytes(path, save_safetensors({"images": images, "labels": label_tensor},
                                                      metadata={"record": json.dumps(record)}))
        else:
            images, label_tensor, record = cached
            skipped = record["skipped"]
        if skipped:
            _report_skipped(skipped)
        mean, std = channel_stats(images)
        return ImageDataset("image-folder", split, label_tensor, classes, channels, size, mean, std, images=images,
                            source=str(folder), info={"skipped": skipped, "cache": str(path),
                                                      "files": files_by_listing(folder, files)})
    sample = torch.linspace(0, len(files) - 1, min(len(files), 1000)).long().unique()
    probe, _, _ = _decode_all([files[i] for i in sample.tolist()], size, channels, "skip", cfg.workers)
    mean, std = channel_stats(probe)
    reader = _StreamReader(files, size, channels, cfg.on_corrupt)
    return ImageDataset("image-folder", split, torch.tensor(labels, dtype=torch.long), classes, channels, size, mean,
                        std, read=reader, source=str(folder),
                        info={"skipped": [], "cache": None, "files": files_by_listing(folder, files)})


class _StreamReader:
    """Decode on demand; an unreadable file raises (fail) or is reported and replaced by the next readable one."""

    def __init__(self, files: list[Path], size: int, channels: int, on_corrupt: str):
        self.files, self.size, self.channels, self.on_corrupt = files, size, channels, on_corrupt

    def __call__(self, index: int) -> torch.Tensor:
        for offset in range(len(self.files)):
            path = self.files[(index + offset) % len(self.files)]
            try:
                return decode_image(path, self.size, self.channels)
            except CorruptImageError as error:
                if self.on_corrupt == "fail":
                    raise _fail(str(error)) from error
                print(f"jepalab: skipped {error} (data.on_corrupt=skip; using the next readable image)",
                      file=sys.stderr)
        raise CorruptImageError(f"no readable image among {len(self.files)} files")


def _validate(cfg: DataConfig) -> None:
    if cfg.root is None:
        raise ValueError("root must name the image folder for dataset image-folder (or pass --data-dir)")
    if cfg.options:
        raise ValueError(f"options: image-folder takes none; got {sorted(cfg.options)}")


FOLDER_DATASET = "image-folder"
"""The dataset name of any image folder (``--data DIR`` and ``folder=DIR`` choose it)."""


@register_dataset(FOLDER_DATASET, splits=("train", "val", "test"), validate=_validate,
                  help="any folder of class sub-folders with PNG/JPEG images (Pillow)", eval_split="train",
                  test_optional=True)
def build(cfg: DataConfig, split: str) -> ImageDataset:
    """Image folder at ``cfg.root``: cached decoded tensor for small datasets, streamed otherwise."""
    return load_image_folder(cfg, split)
