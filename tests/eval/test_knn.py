"""jepalab.eval.knn: the weighted cosine kNN of DINO / solo-learn against metrics.md §3's known answers."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jepalab.eval import knn_accuracy, knn_scores, knn_sweep

HAND_TRAIN = np.array([[1.0, 0.0], [0.0, 1.0], [1 / np.sqrt(2), 1 / np.sqrt(2)]])
HAND_LABELS = np.array([0, 1, 1])


def _blobs(rng, n, classes=10, d=16, spread=1.0):
    labels = rng.integers(0, classes, n)
    centres = np.random.default_rng(123).normal(size=(classes, d)) * 4
    return centres[labels] + spread * rng.normal(size=(n, d)), labels


def test_knn_hand_example_weighting_beats_majority():
    test = np.array([[1.0, 0.0]])
    scores = knn_scores(HAND_TRAIN, HAND_LABELS, test, k=3, temperature=0.07)
    # metrics.md §3: class 0 gets exp(14.29) ≈ 1.60e6, class 1 gets exp(10.10) + exp(0) ≈ 2.44e4 (up to exp(1/T))
    assert scores[0] * np.exp(1 / 0.07) == pytest.approx([1.60e6, 2.44e4], rel=5e-3)
    assert knn_accuracy(HAND_TRAIN, HAND_LABELS, test, [0], k=3).accuracy == 1.0
    assert knn_accuracy(HAND_TRAIN, HAND_LABELS, test, [0], k=1).accuracy == 1.0
    assert knn_accuracy(HAND_TRAIN, HAND_LABELS, test, [1], k=3, temperature=1e6).accuracy == 1.0  # majority vote


def test_knn_large_temperature_is_majority_and_small_is_one_nn():
    rng = np.random.default_rng(0)
    train, labels = _blobs(rng, 300, classes=2, spread=8.0)
    test, _ = _blobs(rng, 200, classes=2, spread=8.0)
    unit = train / np.linalg.norm(train, axis=1, keepdims=True)
    similarity = (test / np.linalg.norm(test, axis=1, keepdims=True)) @ unit.T
    nearest = np.argsort(-similarity, axis=1)
    majority = (labels[nearest[:, :7]].mean(axis=1) > 0.5).astype(int)
    assert np.array_equal(knn_scores(train, labels, test, k=7, temperature=1e8).argmax(axis=1), majority)
    assert np.array_equal(knn_scores(train, labels, test, k=50, temperature=1e-5).argmax(axis=1),
                          labels[nearest[:, 0]])


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31))
def test_knn_invariant_to_positive_row_scaling(seed):
    rng = np.random.default_rng(seed)
    train, labels = _blobs(rng, 120, classes=4, d=6, spread=3.0)
    test, _ = _blobs(rng, 40, classes=4, d=6, spread=3.0)
    base = knn_scores(train, labels, test, k=10)
    scaled = knn_scores(train * rng.uniform(0.01, 100, (120, 1)), labels, test * rng.uniform(0.01, 100, (40, 1)), k=10)
    assert scaled == pytest.approx(base, rel=1e-4, abs=1e-12)


def test_knn_separated_clusters_and_shuffled_labels():
    rng = np.random.default_rng(1)
    train, labels = _blobs(rng, 2000, spread=0.5)
    test, test_labels = _blobs(rng, 1000, spread=0.5)
    assert knn_accuracy(train, labels, test, test_labels).accuracy == 1.0
    chance = knn_accuracy(train, rng.permutation(labels), test, test_labels, k=20)
    assert chance.accuracy == pytest.approx(0.1, abs=0.03)


def test_knn_sweep_matches_single_k_and_k_above_n_train():
    rng = np.random.default_rng(2)
    train, labels = _blobs(rng, 60, spread=4.0)
    test, test_labels = _blobs(rng, 50, spread=4.0)
    sweep = knn_sweep(train, labels, test, test_labels, ks=(1, 5, 60, 500))
    for result in sweep:
        single = knn_accuracy(train, labels, test, test_labels, k=result.k)
        assert (single.accuracy, single.top5) == (result.accuracy, result.top5)
    assert sweep[-1].k_used == 60 and sweep[-1].accuracy == sweep[-2].accuracy
    assert sweep[0].top5 is None and sweep[1].top5 >= sweep[1].accuracy
    assert "k = 5" in str(sweep[1]) and sweep[1].to_dict()["temperature"] == 0.07


def test_knn_chunking_and_explicit_num_classes():
    rng = np.random.default_rng(3)
    train, labels = _blobs(rng, 90, classes=3, spread=3.0)
    test, _ = _blobs(rng, 33, classes=3, spread=3.0)
    base = knn_scores(train, labels, test, k=9, num_classes=7)
    assert base.shape == (33, 7) and np.all(base[:, 3:] == 0)
    chunked = knn_scores(train, labels, test, k=9, num_classes=7, chunk_elements=100)
    assert chunked == pytest.approx(base, rel=1e-5)  # float32 similarity products
    result = knn_accuracy(torch.from_numpy(train).float(), torch.from_numpy(labels), test, np.zeros(33, int), k=9,
                          num_classes=7)
    assert result.num_classes == 7 and result.top5 is not None


def test_knn_exclude_self_is_leave_one_out():
    rng = np.random.default_rng(4)
    train = rng.normal(size=(400, 8))
    labels = rng.integers(0, 5, 400)
    assert knn_accuracy(train, labels, train, labels, k=1).accuracy == 1.0  # every point finds itself
    loo = knn_accuracy(train, labels, train, labels, k=1, exclude_self=True)
    assert loo.accuracy == pytest.approx(0.2, abs=0.06) and loo.exclude_self
    assert knn_accuracy(train[:5], labels[:5], train[:5], labels[:5], k=10, exclude_self=True).k_used == 4


def test_knn_small_temperature_does_not_overflow():
    rng = np.random.default_rng(5)
    train, labels = _blobs(rng, 200, spread=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = knn_scores(train * 1e3, labels, train[:20] * 1e3, k=50, temperature=1e-4)
    assert np.all(np.isfinite(scores)) and np.all(scores.max(axis=1) >= 1.0)


def test_knn_bad_inputs():
    train, labels = HAND_TRAIN, HAND_LABELS
    with pytest.raises(ValueError, match="same number of features"):
        knn_accuracy(train, labels, np.ones((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="entries"):
        knn_accuracy(train, labels[:2], train, labels)
    with pytest.raises(ValueError, match="entries"):
        knn_accuracy(train, labels, train, labels[:2])
    with pytest.raises(ValueError, match="NaN"):
        knn_accuracy(np.where(train > 0.9, np.nan, train), labels, train, labels)
    with pytest.raises(ValueError, match="positive integer"):
        knn_accuracy(train, labels, train, labels, k=0)
    with pytest.raises(ValueError, match="temperature"):
        knn_accuracy(train, labels, train, labels, temperature=0.0)
    with pytest.raises(ValueError, match="num_classes is 1"):
        knn_accuracy(train, labels, train, labels, num_classes=1)
    with pytest.raises(ValueError, match="integer class ids"):
        knn_accuracy(train, [0.5, 1, 1], train, labels)
    with pytest.raises(ValueError, match="same number of rows"):
        knn_accuracy(train, labels, train[:2], labels[:2], exclude_self=True)


def test_centred_knn_ignores_a_large_shared_mean():
    rng = np.random.default_rng(5)
    train_x, train_y = _blobs(rng, 600, spread=2.0)
    test_x, test_y = _blobs(rng, 300, spread=2.0)
    shift = np.full(16, 1e6)  # a mean shared by every row: float32 cosines can no longer tell the classes apart
    plain = knn_accuracy(train_x + shift, train_y, test_x + shift, test_y, 20, num_classes=10)
    centred = knn_accuracy(train_x + shift, train_y, test_x + shift, test_y, 20, num_classes=10, centre=True)
    reference = knn_accuracy(train_x - train_x.mean(0), train_y, test_x - train_x.mean(0), test_y, 20,
                             num_classes=10)
    assert centred.accuracy == pytest.approx(reference.accuracy)  # centring = subtracting the training mean
    assert centred.accuracy > 0.9 and plain.accuracy < centred.accuracy - 0.3
    loo = knn_sweep(train_x + shift, train_y, train_x + shift, train_y, (20,), exclude_self=True, centre=True)
    assert loo[0].accuracy > 0.9
