"""Weighted cosine kNN classification: DINO's ``eval_knn.py`` (Caron et al., ICCV 2021) and solo-learn's
``WeightedKNNClassifier``, after the instance-discrimination kNN of Wu et al. 2018 (arXiv 1805.01978).

Rows are L2-normalised, the k most cosine-similar training rows vote with weight exp(s/T), the class with the
largest summed weight wins. Weights are computed as exp((s − s_max)/T), a per-row factor that leaves the argmax
unchanged and cannot overflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jepalab.eval._arrays import as_labels, as_matrix, positive, same_columns, same_rows
from jepalab.eval._results import Result

__all__ = ["KNN_CHUNK_ELEMENTS", "KnnResult", "knn_accuracy", "knn_scores", "knn_sweep"]

KNN_CHUNK_ELEMENTS = 5_000_000
"""Upper bound on the query-chunk × n_train similarity block held in memory at once (solo-learn's default)."""


@dataclass(frozen=True)
class KnnResult(Result):
    """Weighted-kNN test accuracy with its settings; ``top5`` is None when k or the number of classes is below 5."""

    accuracy: float
    top5: float | None
    k: int
    k_used: int
    temperature: float
    num_classes: int
    n_train: int
    n_test: int
    exclude_self: bool

    def __float__(self) -> float:
        return self.accuracy

    def __str__(self) -> str:
        top5 = "" if self.top5 is None else f", top-5 {100 * self.top5:.2f} %"
        return (f"weighted kNN (cosine, k = {self.k_used}, T = {self.temperature:g}): "
                f"top-1 {100 * self.accuracy:.2f} %{top5}")


def knn_scores(
    train_x: object,
    train_y: object,
    query_x: object,
    k: int = 20,
    temperature: float = 0.07,
    *,
    num_classes: int | None = None,
    exclude_self: bool = False,
    chunk_elements: int = KNN_CHUNK_ELEMENTS,
) -> np.ndarray:
    """Class scores (n_query, C): Σ over the k nearest training rows of class c of exp((s − s_max)/T).

    ``exclude_self=True`` scores the training set against itself (``query_x`` row i is training row i) and drops
    each row's self-match. ``k`` above the number of available neighbours uses them all.
    """
    train, labels, query, classes = _check_inputs(train_x, train_y, query_x, num_classes, exclude_self)
    ks = _usable_ks([k], train.shape[0], exclude_self)
    return _class_scores(train, labels, query, ks, positive("temperature", temperature), classes, exclude_self,
                         chunk_elements)[0]


def knn_accuracy(
    train_x: object,
    train_y: object,
    test_x: object,
    test_y: object,
    k: int = 20,
    temperature: float = 0.07,
    *,
    num_classes: int | None = None,
    exclude_self: bool = False,
    centre: bool = False,
    chunk_elements: int = KNN_CHUNK_ELEMENTS,
) -> KnnResult:
    """Top-1 (and top-5) accuracy of the weighted cosine kNN classifier; pass ``num_classes`` explicitly on subsets.
    ``centre=True`` subtracts the training rows' mean from both sets first (cosine of centred features)."""
    return knn_sweep(train_x, train_y, test_x, test_y, (k,), temperature, num_classes=num_classes,
                     exclude_self=exclude_self, centre=centre, chunk_elements=chunk_elements)[0]


def knn_sweep(
    train_x: object,
    train_y: object,
    test_x: object,
    test_y: object,
    ks: Sequence[int] = (10, 20, 100, 200),
    temperature: float = 0.07,
    *,
    num_classes: int | None = None,
    exclude_self: bool = False,
    centre: bool = False,
    chunk_elements: int = KNN_CHUNK_ELEMENTS,
) -> tuple[KnnResult, ...]:
    """``knn_accuracy`` for every k in ``ks`` from one pass over the similarities (DINO reports 10, 20, 100, 200).
    ``centre=True``: cosine similarities of features minus the training mean, so a large mean shared by every
    image (common in ViT tokens) does not make all images look alike."""
    train, labels, test, classes = _check_inputs(train_x, train_y, test_x, num_classes, exclude_self, centre)
    y_test, _ = as_labels("test_y", test_y, test.shape[0], classes)
    temperature = positive("temperature", temperature)
    used = _usable_ks(ks, train.shape[0], exclude_self)
    scores = _class_scores(train, labels, test, used, temperature, classes, exclude_self, chunk_elements)
    results = []
    for k, k_used, score in zip(ks, used, scores):
        ranked = np.argsort(-score, axis=1, kind="stable")
        top5 = float(np.mean((ranked[:, :5] == y_test[:, None]).any(axis=1))) if min(k_used, classes) >= 5 else None
        results.append(KnnResult(
            accuracy=float(np.mean(ranked[:, 0] == y_test)), top5=top5, k=int(k), k_used=k_used,
            temperature=temperature, num_classes=classes, n_train=train.shape[0], n_test=test.shape[0],
            exclude_self=exclude_self,
        ))
    return tuple(results)


def _check_inputs(
    train_x: object, train_y: object, query_x: object, num_classes: int | None, exclude_self: bool,
    centre: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    train = as_matrix("train_x", train_x)
    query = as_matrix("test_x", query_x)
    same_columns("train_x", train, "test_x", query)
    labels, classes = as_labels("train_y", train_y, train.shape[0], num_classes)
    if exclude_self:
        same_rows("train_x", train, "test_x (the training set itself when exclude_self=True)", query)
        if train.shape[0] < 2:
            raise ValueError("exclude_self=True needs at least 2 training rows")
    if centre:
        mean = train.mean(axis=0)
        train, query = train - mean, query - mean
    return _unit_rows(train), labels, _unit_rows(query), classes


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (an all-zero row stays zero), as float32 for the similarity products."""
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _usable_ks(ks: Sequence[int], n_train: int, exclude_self: bool) -> list[int]:
    if len(ks) == 0:
        raise ValueError("ks is empty")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer; got {k!r}")
    available = n_train - 1 if exclude_self else n_train
    return [min(int(k), available) for k in ks]


def _class_scores(
    train: np.ndarray,
    labels: np.ndarray,
    query: np.ndarray,
    ks: Sequence[int],
    temperature: float,
    classes: int,
    exclude_self: bool,
    chunk_elements: int,
) -> list[np.ndarray]:
    """Weighted class votes (n_query, C) for each k, from the k_max nearest neighbours found chunk by chunk."""
    if chunk_elements < 1:
        raise ValueError(f"chunk_elements must be >= 1; got {chunk_elements}")
    k_max = max(ks)
    rows_per_chunk = max(1, chunk_elements // train.shape[0])
    scores = [np.zeros((query.shape[0], classes)) for _ in ks]
    for start in range(0, query.shape[0], rows_per_chunk):
        stop = min(start + rows_per_chunk, query.shape[0])
        similarity = query[start:stop] @ train.T
        if exclude_self:
            similarity[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        nearest = np.argpartition(-similarity, k_max - 1, axis=1)[:, :k_max]
        nearest_sim = np.take_along_axis(similarity, nearest, axis=1).astype(np.float64)
        order = np.argsort(-nearest_sim, axis=1, kind="stable")
        nearest = np.take_along_axis(nearest, order, axis=1)
        nearest_sim = np.take_along_axis(nearest_sim, order, axis=1)
        weights = np.exp((nearest_sim - nearest_sim[:, :1]) / temperature)
        flat = np.arange(stop - start)[:, None] * classes + labels[nearest]
        for score, k in zip(scores, ks):
            votes = np.bincount(flat[:, :k].ravel(), weights=weights[:, :k].ravel(), minlength=(stop - start) * classes)
            score[start:stop] = votes.reshape(stop - start, classes)
    return scores
