"""Image-folder datasets: mixed modes and sizes, class sub-folders, the decoded cache, corrupt files."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jepalab.data import DataConfig, build_dataset
from jepalab.data import folder as folder_module
from jepalab.data.folder import CorruptImageError, load_image_folder, scan_folder


def make_folder(root: Path) -> Path:
    """Two classes: RGB and grey PNGs of different sizes and a JPEG; every image one flat colour."""
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    Image.new("RGB", (20, 30), (200, 10, 50)).save(root / "cats" / "a.png")
    Image.new("L", (16, 16), 90).save(root / "cats" / "b.png")
    Image.new("RGB", (40, 24), (0, 255, 0)).save(root / "dogs" / "c.jpg", quality=100)
    Image.new("RGBA", (12, 18), (10, 20, 30, 255)).save(root / "dogs" / "d.png")
    (root / "dogs" / "notes.txt").write_text("not an image")
    return root


def config(root: Path, cache_dir: Path, **fields: object) -> DataConfig:
    """An image-folder data config with 8-px crops stored at 10 px."""
    settings: dict[str, object] = {"image_size": 8, "store_size": 10, **fields}
    return DataConfig(dataset="image-folder", root=str(root), cache_dir=str(cache_dir), **settings)


def test_scan_folder_classes_and_order(tmp_path: Path) -> None:
    """Sub-folders are classes in name order; non-images are ignored; a flat folder is one class."""
    root = make_folder(tmp_path / "imgs")
    files, labels, classes = scan_folder(root)
    assert [f.name for f in files] == ["a.png", "b.png", "c.jpg", "d.png"]
    assert labels == [0, 0, 1, 1] and classes == ("cats", "dogs")
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("L", (5, 5)).save(flat / "x.png")
    assert scan_folder(flat)[2] == ("flat",)
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="no images"):
        scan_folder(empty)


def test_mixed_modes_and_sizes_decode_to_rgb_squares(tmp_path: Path) -> None:
    """Any colour image makes the dataset RGB; grey images repeat their value; every image becomes 10×10."""
    dataset = build_dataset(config(make_folder(tmp_path / "imgs"), tmp_path / "cache"))
    assert dataset.channels == 3 and dataset.images.shape == (4, 3, 10, 10)
    assert dataset.labels.tolist() == [0, 0, 1, 1] and dataset.classes == ("cats", "dogs")
    centre = dataset.images[:, :, 5, 5]
    assert centre[0].tolist() == [200, 10, 50]
    assert centre[1].tolist() == [90, 90, 90]
    assert torch.allclose(centre[2].float(), torch.tensor([0.0, 255.0, 0.0]), atol=3)
    assert centre[3].tolist() == [10, 20, 30]
    flat = dataset.images.float().mean(dim=(0, 2, 3)) / 255
    assert dataset.mean == pytest.approx(flat.tolist(), abs=1e-6)


def test_grey_only_folder_has_one_channel(tmp_path: Path) -> None:
    """Only grey images: one channel, unless data.channels forces three."""
    root = tmp_path / "grey"
    root.mkdir()
    for i in range(3):
        Image.new("L", (10 + i, 14), 40 * i).save(root / f"{i}.png")
    assert build_dataset(config(root, tmp_path / "c")).images.shape == (3, 1, 10, 10)
    assert build_dataset(config(root, tmp_path / "c", channels=3)).images.shape == (3, 3, 10, 10)


def test_cache_created_then_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first build writes the cache file; the second reads it without decoding; a changed file invalidates it."""
    root = make_folder(tmp_path / "imgs")
    first = load_image_folder(config(root, tmp_path / "cache"))
    cache = Path(first.info["cache"])
    assert cache.is_file() and cache.parent == tmp_path / "cache"

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded although a valid cache exists")

    monkeypatch.setattr(folder_module, "_decode_all", no_decoding)
    second = load_image_folder(config(root, tmp_path / "cache"))
    assert torch.equal(second.images, first.images) and torch.equal(second.labels, first.labels)
    monkeypatch.undo()
    Image.new("L", (16, 16), 91).save(root / "cats" / "b.png")
    third = load_image_folder(config(root, tmp_path / "cache"))
    assert third.info["cache"] != first.info["cache"] and int(third.images[1, 0, 5, 5]) == 91


def test_unreadable_cache_is_rebuilt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A damaged cache file is reported and decoded again, not trusted."""
    root = make_folder(tmp_path / "imgs")
    first = load_image_folder(config(root, tmp_path / "cache"))
    Path(first.info["cache"]).write_bytes(b"garbage")
    again = load_image_folder(config(root, tmp_path / "cache"))
    assert torch.equal(again.images, first.images)
    assert "ignoring unreadable image cache" in capsys.readouterr().err


def test_corrupt_image_fails_naming_the_file(tmp_path: Path) -> None:
    """on_corrupt=fail (the default): CorruptImageError naming the file and the skip option."""
    root = make_folder(tmp_path / "imgs")
    bad = root / "dogs" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(CorruptImageError) as info:
        build_dataset(config(root, tmp_path / "cache"))
    assert str(bad) in str(info.value) and "on_corrupt=skip" in str(info.value)


def test_corrupt_image_skipped_and_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """on_corrupt=skip drops the file, keeps the labels aligned and records it (also when read from the cache)."""
    root = make_folder(tmp_path / "imgs")
    bad = root / "cats" / "a0-broken.png"
    bad.write_bytes(b"not a png at all")
    for _ in range(2):  # decode, then from the cache
        with pytest.warns(RuntimeWarning, match="skipped 1 unreadable"):
            dataset = build_dataset(config(root, tmp_path / "cache", on_corrupt="skip"))
        assert len(dataset) == 4 and dataset.labels.tolist() == [0, 0, 1, 1]
        assert len(dataset.info["skipped"]) == 1 and str(bad) in dataset.info["skipped"][0]
        assert str(bad) in capsys.readouterr().err


def test_streaming_reads_on_demand(tmp_path: Path) -> None:
    """cache=never decodes per image, same pixels as the cached path; a corrupt file fails when read."""
    root = make_folder(tmp_path / "imgs")
    cached = build_dataset(config(root, tmp_path / "cache"))
    streamed = build_dataset(config(root, tmp_path / "cache", cache="never"))
    assert not streamed.in_memory and len(streamed) == 4
    for i in range(4):
        assert torch.equal(streamed[i][0], cached.images[i])
    (root / "dogs" / "c.jpg").write_bytes(b"broken")
    with pytest.raises(CorruptImageError, match=r"c\.jpg"):
        streamed[2]


def test_root_required_and_store_size_checked(tmp_path: Path) -> None:
    """image-folder without data.root, or a stored side below the crop side, is refused."""
    with pytest.raises(ValueError, match="root"):
        DataConfig(dataset="image-folder")
    root = make_folder(tmp_path / "imgs")
    with pytest.raises(ValueError, match="store_size"):
        build_dataset(config(root, tmp_path / "cache", store_size=6))


def test_decoded_pixels_match_pillow_fit(tmp_path: Path) -> None:
    """A gradient image decodes to Pillow's bicubic fit of the centre square."""
    from PIL import ImageOps

    root = tmp_path / "grad"
    root.mkdir()
    pixels = np.add.outer(np.arange(30), 3 * np.arange(20)).astype(np.uint8)
    Image.fromarray(pixels, "L").save(root / "g.png")
    dataset = build_dataset(config(root, tmp_path / "cache"))
    expected = np.asarray(ImageOps.fit(Image.fromarray(pixels, "L"), (10, 10), method=Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(dataset.images[0, 0].numpy(), expected)
