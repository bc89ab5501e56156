"""Input handling shared by the metrics: numpy or torch arrays in, validated float64 / int64 arrays out."""

from __future__ import annotations

import numpy as np


def to_numpy(value: object) -> object:
    """A torch tensor as a numpy array (detached, on CPU); anything else unchanged."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch
        return value.detach().cpu().numpy()
    return value


def as_matrix(name: str, value: object, min_rows: int = 1) -> np.ndarray:
    """A finite float64 (n, d) matrix from a numpy array, torch tensor or nested list; ValueError otherwise."""
    try:
        matrix = np.asarray(to_numpy(value), dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric (n, d) array") from error
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n samples, d features); got shape {matrix.shape}")
    if matrix.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows; got {matrix.shape[0]}")
    if matrix.shape[1] < 1:
        raise ValueError(f"{name} needs at least one feature column; got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        bad = int(np.sum(~np.isfinite(matrix).all(axis=1)))
        raise ValueError(f"{name} contains NaN or inf in {bad} row(s); embeddings must be finite")
    return matrix


def as_targets(name: str, value: object, n: int) -> np.ndarray:
    """Regression targets as a finite float64 (n, k) matrix; a 1-D array of length n becomes (n, 1)."""
    array = to_numpy(value)
    if np.ndim(array) == 1:
        array = np.reshape(array, (-1, 1))
    matrix = as_matrix(name, array)
    if matrix.shape[0] != n:
        raise ValueError(f"{name} has {matrix.shape[0]} rows but the embeddings have {n}")
    return matrix


def as_labels(name: str, value: object, n: int | None, num_classes: int | None = None) -> tuple[np.ndarray, int]:
    """Integer class labels 0..C−1 as an int64 vector (of length n unless n is None), and C
    (``num_classes``, or the largest label + 1)."""
    labels = np.asarray(to_numpy(value))
    if labels.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class ids; got shape {labels.shape}")
    if n is not None and labels.shape[0] != n:
        raise ValueError(f"{name} has {labels.shape[0]} entries but the features have {n} rows")
    n = labels.shape[0]
    if labels.dtype.kind not in "iub" and not (
        labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))
    ):
        raise ValueError(f"{name} must hold integer class ids; got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if n and labels.min() < 0:
        raise ValueError(f"{name} must be >= 0; got {labels.min()}")
    largest = int(labels.max()) + 1 if n else 0
    if num_classes is None:
        num_classes = largest
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    elif largest > num_classes:
        raise ValueError(f"{name} contains class {largest - 1} but num_classes is {num_classes}")
    return labels, int(num_classes)


def as_images(name: str, value: object, min_rows: int = 1) -> tuple[np.ndarray, tuple[int, ...]]:
    """Images (n, ...) flattened to a finite float64 (n, D) matrix, and the original shape for reshaping back."""
    array = np.asarray(to_numpy(value), dtype=np.float64)
    if array.ndim < 2:
        raise ValueError(f"{name} must have shape (n, ...) with at least one pixel axis; got {array.shape}")
    return as_matrix(name, array.reshape(array.shape[0], -1), min_rows), array.shape


def same_rows(first: str, a: np.ndarray, second: str, b: np.ndarray) -> None:
    """ValueError unless the two arrays have the same number of rows (paired by sample)."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{first} and {second} must have the same number of rows (paired samples); "
                         f"got {a.shape[0]} and {b.shape[0]}")


def same_columns(first: str, a: np.ndarray, second: str, b: np.ndarray) -> None:
    """ValueError unless the two matrices have the same number of columns (the same feature space)."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{first} and {second} must have the same number of features; "
                         f"got {a.shape[1]} and {b.shape[1]}")


def positive(name: str, value: float) -> float:
    """``value`` as a float, ValueError unless it is finite and > 0."""
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return float(value)


def fraction(name: str, value: float) -> float:
    """``value`` as a float, ValueError unless 0 < value < 1."""
    if not 0 < value < 1:
        raise ValueError(f"{name} must lie strictly between 0 and 1; got {value!r}")
    return float(value)


def as_vector(name: str, value: object, n: int) -> np.ndarray:
    """A 1-D array of length n (any dtype: ids, labels), ValueError otherwise."""
    vector = np.asarray(to_numpy(value))
    if vector.ndim != 1 or vector.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array with one entry per row ({n}); got shape {vector.shape}")
    return vector
