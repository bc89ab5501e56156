"""jepalab.eval.decode: ridge R² of a distractor amplitude against closed-form signal-to-noise ratios."""

import json

import numpy as np
import pytest
import torch

from jepalab.eval import RidgePath, distractor_r2, standardise


def _embeddings(seed, n=1500, d=12, noise=0.5):
    """Amplitude = a unit-variance linear read-out of the embedding + N(0, noise²): R² = 1/(1 + noise²)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    w = rng.normal(size=d)
    signal = z @ w
    signal = (signal - signal.mean()) / signal.std()
    return z, signal + noise * rng.normal(size=n)


def test_cross_validated_r2_matches_signal_to_noise():
    z, amplitude = _embeddings(0)
    result = distractor_r2(z, amplitude)
    assert result.r2 == pytest.approx(1 / (1 + 0.25), abs=0.03)
    assert result.scheme == "5-fold cross-validation" and len(result.lambdas) == 5
    assert float(result) == result.r2 and json.loads(json.dumps(result.to_dict()))["dim"] == 12


def test_independent_amplitude_gives_zero_and_vector_targets():
    z, amplitude = _embeddings(1)
    unrelated = np.random.default_rng(2).uniform(size=1500)
    assert distractor_r2(z, unrelated).r2 == pytest.approx(0.0, abs=0.03)
    both = distractor_r2(torch.from_numpy(z), np.column_stack([amplitude, unrelated]), folds=3)
    assert both.r2_per_output[0] == pytest.approx(0.8, abs=0.03)
    assert both.r2_per_output[1] == pytest.approx(0.0, abs=0.03)
    assert both.r2 == pytest.approx(np.mean(both.r2_per_output))


def test_train_test_scheme_equals_a_manual_ridge_fit():
    z, amplitude = _embeddings(3, n=2000)
    result = distractor_r2(z[:1500], amplitude[:1500], test_embeddings=z[1500:], test_amplitude=amplitude[1500:])
    assert result.scheme == "train/test" and (result.n_train, result.n_test) == (1500, 500)
    train, test = standardise(z[:1500], z[1500:])
    prediction = RidgePath.fit(train, amplitude[:1500]).predict(test, [result.lambdas[0] * 1500])[0, :, 0]
    truth = amplitude[1500:]
    manual = 1 - np.sum((truth - prediction) ** 2) / np.sum((truth - truth.mean()) ** 2)
    assert result.r2 == pytest.approx(manual, abs=1e-12)


def test_decoding_bad_inputs():
    z, amplitude = _embeddings(4, n=100)
    with pytest.raises(ValueError, match="rows"):
        distractor_r2(z, amplitude[:-1])
    with pytest.raises(ValueError, match="no variance"):
        distractor_r2(z, np.ones(100))
    with pytest.raises(ValueError, match="both"):
        distractor_r2(z, amplitude, test_embeddings=z)
    with pytest.raises(ValueError, match="folds"):
        distractor_r2(z, amplitude, folds=1)
    with pytest.raises(ValueError, match="NaN"):
        distractor_r2(np.where(z > 3, np.nan, z), amplitude)
    with pytest.raises(ValueError, match="features"):
        distractor_r2(z, amplitude, test_embeddings=z[:, :3], test_amplitude=amplitude)
