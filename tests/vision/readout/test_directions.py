"""Pixel directions read out of a real (pico) run: the pool, the choice, and decoding curves from the run's own
initialisation through every checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pretrain_helpers import run_pretrain, tiny_overrides, write_tiny_fmnist

from jepalab.config import load_config
from jepalab.vision import PretrainConfig
from jepalab.vision.readout.directions import choose_directions, decode_curves, direction_pool, pixel_views
from jepalab.vision.readout.run import Run
from jepalab.vision.training.build import build_model


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PretrainConfig]:
    root = write_tiny_fmnist(tmp_path_factory.mktemp("data"))
    run = run_pretrain("mae", root, tmp_path_factory.mktemp("run") / "mae", "train.snapshot_every=4")
    return run, load_config(PretrainConfig, None, tiny_overrides("mae", root))


def test_the_pool_holds_each_methods_lambda_and_rho_and_the_choice_adds_disagreeing_directions(
        tiny_run: tuple[Path, PretrainConfig]) -> None:
    _, cfg = tiny_run
    ijepa = load_config(PretrainConfig, None, [*tiny_overrides("ijepa", Path(cfg.data.root))])
    pool = direction_pool({"mae": cfg, "ijepa": ijepa}, pool=10, images=64, draws=2)
    assert pool["directions"].shape == (10, 28 * 28)
    np.testing.assert_allclose(np.linalg.norm(pool["directions"], axis=1), 1.0)
    assert set(pool) >= {"mae", "ijepa"} and pool["mae"]["lam"].shape == (10,)
    chosen = choose_directions({m: pool[m] for m in ("mae", "ijepa")}, top=4, extra=3)
    assert list(chosen[:4]) == [0, 1, 2, 3] and len(set(chosen)) == 7 and chosen.max() < 10
    with pytest.raises(ValueError, match="top \\+ extra"):
        choose_directions({m: pool[m] for m in ("mae", "ijepa")}, top=8, extra=3)


def test_decoding_curves_start_at_the_runs_own_initialisation(tiny_run: tuple[Path, PretrainConfig]) -> None:
    run, cfg = tiny_run
    handle = Run(run)
    images = pixel_views(cfg, "test", 32)
    assert images.shape == (32, 1, 28, 28) and 0 <= float(images.min()) and float(images.max()) <= 1
    pool = direction_pool({"mae": cfg}, pool=6, images=64, draws=1)
    curves = decode_curves(handle, pool["directions"], pool["mean"], images, folds=4)
    assert curves["steps"] == [0, *handle.steps] and curves["r2"].shape == (1 + len(handle.steps), 6)
    assert np.all(curves["r2"] <= 1)
    initial = build_model(handle.config, handle.spec, 1).encoder.state_dict()  # what training started from
    rebuilt = handle.random_encoder(seed=handle.config.seed)[0].state_dict()
    assert all(torch.equal(initial[k], rebuilt[k]) for k in initial)
    with pytest.raises(ValueError, match="directions must be"):
        decode_curves(handle, pool["directions"][:, :10], pool["mean"], images)
