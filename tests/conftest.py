"""Shared fixtures: a tiny Fashion-MNIST stand-in with linearly separable classes, for tests that train or evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jepalab.data import write_idx


def write_tiny_fmnist(folder: Path, train: int = 256, test: int = 128, seed: int = 0) -> Path:
    """IDX files named like Fashion-MNIST's: class c has a bright square at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    for n, stem in ((train, "train"), (test, "t10k")):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.float64)
        for i, c in enumerate(labels):
            row, col = 2 + 8 * (c // 4), 2 + 6 * (c % 4)
            images[i, row:row + 8, col:col + 8] += 150 + 40 * rng.standard_normal()
        write_idx(folder / f"{stem}-images-idx3-ubyte.gz", np.clip(images, 0, 255).astype(np.uint8))
        write_idx(folder / f"{stem}-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture(scope="session")
def tiny_fmnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding the tiny Fashion-MNIST stand-in."""
    return write_tiny_fmnist(tmp_path_factory.mktemp("tiny-fmnist"))
