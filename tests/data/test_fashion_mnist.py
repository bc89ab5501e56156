"""Fashion-MNIST lookup and loading from tiny synthetic IDX files (the real files are optional)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from jepalab.data import DataConfig, build_dataset, write_idx
from jepalab.data import fashion_mnist as fm


def write_split(folder: Path, split: str, n: int, seed: int, gz: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Write ``n`` random 28×28 images and labels as the split's two IDX files; return them."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(folder / (fm.FILES[split][0] + suffix), images)
    write_idx(folder / (fm.FILES[split][1] + suffix), labels)
    return images, labels


def test_missing_dataset_names_package_files_and_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing in $JEPALAB_DATA_DIR nor the Debian folder: the message says what to install and what is missing."""
    env_dir, debian = tmp_path / "env", tmp_path / "debian"
    env_dir.mkdir()
    monkeypatch.setenv(fm.ENV_VAR, str(env_dir))
    monkeypatch.setattr(fm, "DEBIAN_DIR", debian)
    with pytest.raises(fm.DatasetNotFoundError) as info:
        fm.find_fashion_mnist(None, "test")
    message = str(info.value)
    for needle in ("dataset-fashion-mnist", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", str(env_dir),
                   str(debian), fm.ENV_VAR):
        assert needle in message
    assert isinstance(info.value, FileNotFoundError)


def test_missing_in_data_root_via_build_dataset(tmp_path: Path) -> None:
    """An explicit data.root is the only place searched; a missing file there is reported."""
    write_split(tmp_path, "train", 8, 0)
    (tmp_path / fm.FILES["train"][1]).unlink()
    with pytest.raises(fm.DatasetNotFoundError, match="train-labels-idx1-ubyte"):
        build_dataset(DataConfig(root=str(tmp_path)))


@pytest.mark.parametrize("gz", [False, True])
def test_loads_from_data_root(tmp_path: Path, gz: bool) -> None:
    """Tiny IDX files in data.root load as uint8 (n, 1, 28, 28) with labels and train-split statistics."""
    images, labels = write_split(tmp_path, "train", 12, 1, gz)
    write_split(tmp_path, "test", 5, 2, gz)
    train = build_dataset(DataConfig(root=str(tmp_path)))
    assert train.images.shape == (12, 1, 28, 28) and train.images.dtype == torch.uint8
    np.testing.assert_array_equal(train.images[:, 0].numpy(), images)
    np.testing.assert_array_equal(train.labels.numpy(), labels.astype(np.int64))
    assert train.mean[0] == pytest.approx(images.mean() / 255, rel=1e-9)
    assert train.std[0] == pytest.approx(images.std() / 255, rel=1e-9)
    test = build_dataset(DataConfig(root=str(tmp_path), split="test"))
    assert len(test) == 5 and test.mean == train.mean and test.classes[9] == "Ankle boot"


def test_env_var_and_nested_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$JEPALAB_DATA_DIR/fashion-mnist is found when data.root is unset; data.limit keeps the first images."""
    images, _ = write_split(tmp_path / "fashion-mnist", "train", 10, 3)
    monkeypatch.setenv(fm.ENV_VAR, str(tmp_path))
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "absent")
    dataset = build_dataset(DataConfig(limit=4))
    assert len(dataset) == 4
    np.testing.assert_array_equal(dataset.images[:, 0].numpy(), images[:4])


def test_mismatched_images_and_labels(tmp_path: Path) -> None:
    """More labels than images is a ValueError naming both files."""
    write_split(tmp_path, "train", 6, 4)
    write_idx(tmp_path / fm.FILES["train"][1], np.zeros(7, dtype=np.uint8))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte"):
        fm.load_fashion_mnist(tmp_path)


def test_options_are_refused() -> None:
    """fashion-mnist takes no dataset options."""
    with pytest.raises(ValueError, match="options"):
        DataConfig(options={"noise": 1})


@pytest.mark.skipif(not fm.DEBIAN_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_test_split() -> None:
    """The installed package: 10 000 test images, 10 balanced classes."""
    dataset = fm.load_fashion_mnist(fm.DEBIAN_DIR, "test")
    assert dataset.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(dataset.labels).tolist() == [1000] * 10
