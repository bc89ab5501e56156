"""Shared fixtures: a tiny synthetic Fashion-MNIST-format dataset and one reference run per method."""

from pathlib import Path

import pytest
from pretrain_helpers import run_pretrain, write_tiny_fmnist


@pytest.fixture(scope="session")
def fmnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with tiny train (64) and test (32) Fashion-MNIST IDX files."""
    return write_tiny_fmnist(tmp_path_factory.mktemp("fmnist"))


@pytest.fixture(scope="session")
def reference_runs(fmnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One uninterrupted 8-step pico run per method (read-only: copy before changing anything)."""
    base = tmp_path_factory.mktemp("reference")
    return {method: run_pretrain(method, fmnist_root, base / method) for method in ("ijepa", "mae")}
