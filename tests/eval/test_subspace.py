"""jepalab.eval.subspace: pixel PCA, top/bottom variance copies, A(K) and the encoder comparison (metrics.md §6)."""

import json

import numpy as np
import pytest
import torch

from jepalab.eval import (
    PROTOCOL,
    fit_pixel_pca,
    linear_probe,
    standardise_per_image,
    subspace_copies,
    subspace_dependence,
    task_alignment,
)


def _label_in_low_variance_dim(n, seed):
    """metrics.md §6: D = 20, 19 noise dims with variance 100, the label = sign of one dim with variance 1."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 20)) * np.r_[np.full(19, 10.0), 1.0]
    return x, (x[:, 19] > 0).astype(int)


def _anisotropic_images(seed=0, n=300):
    rng = np.random.default_rng(seed)
    mixing = np.linalg.qr(rng.normal(size=(30, 30)))[0] * np.geomspace(5.0, 0.05, 30)
    return (rng.normal(size=(n, 30)) @ mixing.T + 0.5).reshape(n, 1, 6, 5)


def test_pca_projection_identities():
    images = _anisotropic_images()
    pca = fit_pixel_pca(images)
    assert pca.image_shape == (1, 6, 5) and pca.n_samples == 300
    assert np.all(np.diff(pca.eigenvalues) <= 0)
    assert pca.components.T @ pca.components == pytest.approx(np.eye(30), abs=1e-12)
    t = pca.cutoff(0.75)
    share = pca.explained_share
    assert share[t - 1] >= 0.75 > share[t - 2]
    top, bottom = pca.project(images, t)
    assert top.shape == images.shape
    assert (top + bottom - pca.mean.reshape(1, 6, 5)) == pytest.approx(images, abs=1e-10)
    assert pca.components[:, :t].T @ pca.components[:, t:] == pytest.approx(np.zeros((t, 30 - t)), abs=1e-12)
    copies = subspace_copies(pca, torch.from_numpy(images), 0.75)
    assert copies.top_share + copies.bottom_share == 1.0 and copies.rank == t
    assert copies.top_share == pytest.approx(share[t - 1]) and copies.protocol == PROTOCOL
    assert copies.full == pytest.approx(images) and copies.bottom == pytest.approx(bottom)


def test_pca_takes_components_in_descending_order():
    # Independent pixels with known variances: ascending order would put the quietest pixel first.
    rng = np.random.default_rng(1)
    variances = np.array([1.0, 9.0, 0.01, 4.0, 0.25])
    x = rng.normal(size=(20000, 5)) * np.sqrt(variances)
    pca = fit_pixel_pca(x)
    assert np.abs(pca.components[:, 0]) == pytest.approx(np.eye(5)[1], abs=0.02)
    assert np.abs(pca.components[:, -1]) == pytest.approx(np.eye(5)[2], abs=0.02)
    assert pca.eigenvalues == pytest.approx(np.sort(variances)[::-1], rel=0.05)
    top, _ = pca.project(x, 1)
    assert np.argmax(top.var(axis=0)) == 1
    assert pca.cutoff(0.6) == 1 and pca.cutoff(0.64) == 2


def test_label_in_low_variance_dim_lives_in_the_bottom_subspace():
    x, y = _label_in_low_variance_dim(5000, seed=2)
    x_test, y_test = _label_in_low_variance_dim(2000, seed=3)
    pca = fit_pixel_pca(x)
    train, test = subspace_copies(pca, x, 0.9), subspace_copies(pca, x_test, 0.9)
    assert train.rank <= 19
    accuracy = {part: linear_probe(getattr(train, part), y, getattr(test, part), y_test, "ridge").accuracy
                for part in ("full", "top", "bottom")}
    assert accuracy["full"] >= 0.95 and accuracy["bottom"] >= 0.95
    assert accuracy["top"] == pytest.approx(0.5, abs=0.05)
    alignment = task_alignment(x, y)
    assert alignment.shape == (20,) and np.all(np.diff(alignment) >= -1e-15)
    assert alignment[18] < 0.15 and alignment[19] == pytest.approx(1.0, abs=1e-12)


def test_standardise_per_image():
    images = _anisotropic_images(4, n=50)
    out = standardise_per_image(images)
    flat = out.reshape(50, -1)
    assert out.shape == images.shape
    assert flat.mean(axis=1) == pytest.approx(np.zeros(50), abs=1e-12)
    assert flat.std(axis=1) == pytest.approx(np.ones(50), abs=1e-12)
    assert np.all(standardise_per_image(np.full((2, 4), 3.0)) == 0.0)
    pca = fit_pixel_pca(images)
    copies = subspace_copies(pca, images, 0.5, standardise=True)
    assert copies.standardised and copies.top.reshape(50, -1).std(axis=1) == pytest.approx(np.ones(50))


def test_subspace_dependence_separates_encoders_by_the_subspace_they_read():
    x, y = _label_in_low_variance_dim(3000, seed=5)
    pca = fit_pixel_pca(x)
    copies = subspace_copies(pca, x, 0.9)
    readers = np.random.default_rng(6).normal(size=(20, 8))
    quiet, loud = readers.copy(), readers.copy()
    quiet[:19], loud[19] = 0.0, 0.0  # reads only the label dim / only the noise dims
    for encoder, sign in ((quiet, 1), (loud, -1)):
        result = subspace_dependence(copies.full @ encoder, copies.top @ encoder, copies.bottom @ encoder, y)
        for measure in ("cka", "cka_debiased", "mean_cca"):
            # mean CCA averages over the smaller copy's few directions, so only its sign is sharp for `loud`
            assert sign * result.delta(measure) > (0.5 if sign > 0 or measure != "mean_cca" else 0.1)
            assert abs(result.similarity[measure]["bottom_shuffled"]) < 0.1
        assert result.cca_dims["top"][0] == result.cca_dims["bottom"][0]
        probes = {part: result.probes[part].accuracy for part in ("full", "top", "bottom")}
        if sign > 0:
            assert probes["full"] > 0.95 and probes["bottom"] > 0.95 and probes["top"] < 0.65
        else:  # the bottom copy can leak the label into noise pixels (sample PCA is not axis-aligned): not tested
            assert probes["full"] < 0.65 and probes["top"] < 0.65
    assert result.protocol == PROTOCOL and result.probes["full"].n_test == 600
    assert json.loads(json.dumps(result.to_dict()))["similarity"]["cka"]["delta"] == result.delta("cka")


def test_subspace_bad_inputs():
    images = _anisotropic_images(7, n=40)
    pca = fit_pixel_pca(images)
    with pytest.raises(ValueError, match="pixels"):
        pca.project(np.ones((3, 7)), 2)
    with pytest.raises(ValueError, match="t must"):
        pca.project(images, 30)
    with pytest.raises(ValueError, match="bottom subspace empty"):
        pca.cutoff(1.0 - 1e-15)
    with pytest.raises(ValueError, match="no pixel variance"):
        fit_pixel_pca(np.ones((5, 4)))
    with pytest.raises(ValueError, match="NaN"):
        fit_pixel_pca(np.where(images > 1, np.nan, images))
    with pytest.raises(ValueError, match="single class"):
        task_alignment(images, np.zeros(40, int))
    f = images.reshape(40, -1)
    with pytest.raises(ValueError, match="same number of rows"):
        subspace_dependence(f, f[:-1], f, np.arange(40) % 2)
    with pytest.raises(ValueError, match="probe"):
        subspace_dependence(f, f, f, np.arange(40) % 2, probe="svm")


def test_more_pixels_than_images_uses_the_gram_matrix() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((30, 200)) * np.linspace(3, 0.1, 200)
    pca = fit_pixel_pca(x)
    full = np.linalg.eigvalsh(np.cov(x.T, bias=True))[::-1]
    assert pca.components.shape == (200, 29)  # rank n − 1 after centring
    np.testing.assert_allclose(pca.eigenvalues, full[:29], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(pca.components.T @ pca.components, np.eye(29), atol=1e-8)
    fresh = rng.standard_normal((5, 200))  # test images leave the training span: bottom keeps what top misses
    top, bottom = pca.project(fresh, 10)
    np.testing.assert_allclose(top + bottom - pca.mean, fresh, atol=1e-10)
    assert np.abs(pca.components[:, :10].T @ (bottom - pca.mean).T).max() < 1e-8
