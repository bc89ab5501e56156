"""IDX reader/writer: round trips, gzip detection by content, malformed files."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from jepalab.data import read_idx, write_idx


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name", ["array-idx", "array-idx.gz"])
def test_round_trip_plain_and_gzip(tmp_path: Path, dtype: str, name: str) -> None:
    """Every IDX dtype survives write → read, with and without gzip."""
    array = (np.arange(2 * 3 * 5) * 7 - 20).reshape(2, 3, 5).astype(dtype)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 5)
    np.testing.assert_array_equal(back, array)


def test_header_is_lecun_format(tmp_path: Path) -> None:
    """Magic 0x0000, type byte 0x08 for uint8, ndim, big-endian dims, then the raw bytes."""
    array = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    raw = write_idx(tmp_path / "a", array).read_bytes()
    assert raw == bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])


def test_gzip_recognised_by_content_not_name(tmp_path: Path) -> None:
    """A gzipped file without ``.gz`` in its name reads the same."""
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    path = write_idx(tmp_path / "labels-idx1-ubyte", array, compress=True)
    np.testing.assert_array_equal(read_idx(path), array)


@pytest.mark.parametrize("payload, words", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x02ab", "bad magic"),
    (b"\x00\x00\x42\x01\x00\x00\x00\x02ab", "bad magic"),
    (b"", "empty"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "header truncated"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "needs 5"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01ab", "needs 1"),
])
def test_malformed_file_names_the_file(tmp_path: Path, payload: bytes, words: str) -> None:
    """Bad magic, truncated header or wrong payload size: ValueError naming the file and the problem."""
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=words) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    """A cut gzip stream is a ValueError naming the file, not an EOFError."""
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 64]) + bytes(64))[:-12])
    with pytest.raises(ValueError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_unsupported_dtype_is_refused(tmp_path: Path) -> None:
    """uint16 has no IDX type code."""
    with pytest.raises(ValueError, match="uint16"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))
