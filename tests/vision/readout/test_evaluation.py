"""``jepalab eval``/``compare`` on a tiny trained run: files, baselines, checkpoint selection, bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from jepalab.cli import main
from jepalab.config import from_dict
from jepalab.eval import is_collapsed
from jepalab.vision.methods.config import PretrainConfig
from jepalab.vision.readout.evaluation import EvalSettings, carries_distractor, evaluate_run
from jepalab.vision.readout.run import Run
from jepalab.vision.training.loop import pretrain

SETTINGS = EvalSettings(train_images=200, test_images=100, probe="ridge", lidar_images=16, lidar_views=2)


@pytest.fixture(scope="module")
def tiny_run(tiny_fmnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = from_dict(PretrainConfig, {
        "method": "mae", "data": {"root": str(tiny_fmnist), "image_size": 28},
        "model": {"size": "pico", "patch_size": 4},
        "mae": {"decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 2},
        "optim": {"epochs": 2, "warmup_epochs": 0.5, "global_batch": 64},
        "train": {"progress": False, "diag_every": 0, "diag_images": 64, "checkpoint_every": 4, "snapshot_every": 4}})
    return pretrain(cfg, tmp_path_factory.mktemp("runs") / "mae")


def test_eval_writes_results_with_every_baseline_and_readout(tiny_run: Path) -> None:
    result = evaluate_run(tiny_run, "all", SETTINGS, progress=False)
    assert [c["step"] for c in result["checkpoints"]] == [4, 8]
    for name in ("pixels", "random", "pixels_pca"):
        baseline = result["baselines"][name]
        assert 0.0 <= baseline["probe"] <= 1.0 and baseline["rankme"] > 0
        assert {"knn20", "knn20_uncentred", "rankme_uncentred"} <= set(baseline)
    assert result["baselines"]["pixels"]["dim"] == 784
    assert result["baselines"]["pixels_pca"]["dim"] == result["checkpoints"][-1]["dim"] == 32
    assert result["baselines"]["pixels"]["probe"] > 0.5  # the stand-in's classes are linearly separable
    assert "distractor_r2" not in result["checkpoints"][-1]  # clean data: no distractor read-out
    assert result["checkpoints"][-1]["collapsed"] in (True, False)
    assert json.loads((tiny_run / "eval.json").read_text())["method"] == "mae"
    assert (tiny_run / "eval.csv").read_text().count("\n") == 1 + 3 + 2  # header + 3 baselines + 2 checkpoints
    rows = {(r["representation"], r["readout"]): r for r in result["readouts"]}
    assert set(rows) == {(rep, ro) for rep in ("encoder @ 8", "random init") for ro in ("mean", "last4", "grid2")} \
        | {("pixels", "pixels"), ("pixels pca", "pixels")}
    assert rows[("encoder @ 8", "mean")]["dim"] == 32
    assert rows[("encoder @ 8", "last4")]["dim"] == 2 * 32  # pico: 2 blocks, so "last four" is both
    assert rows[("random init", "grid2")]["dim"] == 4 * 32
    assert rows[("encoder @ 8", "mean")]["probe"] == pytest.approx(result["checkpoints"][-1]["probe"])
    assert (tiny_run / "eval_readouts.csv").read_text().count("\n") == 1 + 8
    for row in result["readouts"][:6]:  # the collapse rule reads the encoder's width, whatever the read-out's
        assert row["collapsed"] == is_collapsed(row["rankme"], 32)


def test_eval_of_ijepa_reads_both_encoders_and_the_chosen_readout(tiny_fmnist: Path, tmp_path: Path) -> None:
    cfg = from_dict(PretrainConfig, {
        "method": "ijepa", "data": {"root": str(tiny_fmnist), "image_size": 28}, "model": {"size": "pico",
                                                                                         "patch_size": 4},
        "ijepa": {"predictor_dim": 32, "predictor_depth": 1}, "optim": {"epochs": 1, "global_batch": 64},
        "train": {"progress": False, "diag_every": 0, "diag_images": 64}})
    run = pretrain(cfg, tmp_path / "ijepa")
    settings = EvalSettings(train_images=200, test_images=100, probe="ridge", lidar_images=16, lidar_views=2,
                            readout="grid2", readouts=("mean",), encoder="context")
    result = evaluate_run(run, "last", settings, progress=False)
    assert result["checkpoints"][-1]["encoder"] == "context"
    assert result["checkpoints"][-1]["dim"] == result["baselines"]["random"]["dim"] == 4 * 32
    assert [r["representation"] for r in result["readouts"]] == ["context @ 4", "target @ 4", "random init",
                                                                 "pixels", "pixels pca"]


@pytest.mark.parametrize(("dataset", "options", "distractor"), [("fashion-mnist", {}, False),
                                                              ("noisy-fashion-mnist", {"strength": 0.0}, False),
                                                              ("noisy-fashion-mnist", {"strength": 0.1}, True)])
def test_subspace_clean_measures_every_image_set_without_a_distractor(tiny_fmnist: Path, dataset: str,
                                                                       options: dict, distractor: bool) -> None:
    """``subspace: clean`` skips only images carrying a distractor: noisy Fashion-MNIST at strength 0 keeps its
    amplitudes (the distractor read-out's control) but is clean."""
    from jepalab.data import DataConfig, build_dataset

    data = from_dict(DataConfig, {"dataset": dataset, "root": str(tiny_fmnist), "options": options})
    assert carries_distractor(build_dataset(data, "test").info) is distractor


def test_a_run_on_noisy_images_at_strength_0_keeps_the_subspace_read_out(tiny_fmnist: Path, tmp_path: Path) -> None:
    cfg = from_dict(PretrainConfig, {
        "method": "mae", "data": {"dataset": "noisy-fashion-mnist", "root": str(tiny_fmnist), "image_size": 28,
                                  "options": {"strength": 0.0}},
        "model": {"size": "pico", "patch_size": 4},
        "mae": {"decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 2},
        "optim": {"epochs": 1, "warmup_epochs": 0.5, "global_batch": 64},
        "train": {"progress": False, "diag_every": 0, "diag_images": 64, "checkpoint_every": 4}})
    run = pretrain(cfg, tmp_path / "clean")
    result = evaluate_run(run, "last", replace(SETTINGS, subspace="clean"), progress=False)
    assert {"cca_delta", "top_probe", "distractor_r2"} <= set(result["checkpoints"][-1])
    assert result["protocol"]["subspace"].startswith("our protocol")


def test_checkpoint_selection_and_errors(tiny_run: Path, tmp_path: Path) -> None:
    run = Run(tiny_run)
    assert run.select("4") == [4] and run.select("last") == [8] and run.select("all") == run.steps == [4, 8]
    assert run.paths[8].name == "checkpoint.safetensors" and run.paths[4].name == "checkpoint-00000004.safetensors"
    assert run.encoder("auto", 4).run_info["step"] == 4 and run.config.method == "mae"
    with pytest.raises(ValueError, match="last', 'all' or a step"):
        run.select("latest")
    with pytest.raises(FileNotFoundError, match="step 5"):
        run.select("5")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Run(tmp_path)


def test_eval_and_compare_cli(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", str(tiny_run), "train_images=200", "test_images=100", "probe=ridge", "lidar_images=16"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "random init (same arch)" in out and "headline read-out: 'mean'" in out and "last4" in out
    assert main(["compare", str(tiny_run), str(tiny_run), "--out", str(tmp_path / "cmp")]) == 0
    assert (tmp_path / "cmp" / "compare.png").is_file()
    assert main(["compare", str(tmp_path)]) == 2  # no eval.json: a clean error, not a traceback
    assert "eval.json" in capsys.readouterr().err
    assert main(["eval", str(tiny_run), "probe=svm"]) == 2
    assert "probe" in capsys.readouterr().err


def test_image_folder_without_test_split_holds_out_a_fifth(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(2):
        (tmp_path / "folder" / f"class{c}").mkdir(parents=True)
        for i in range(40):
            pixels = rng.integers(0, 80, (40, 36, 3)).astype(np.uint8)
            pixels[:, :, c] += 150  # class = dominant colour channel
            Image.fromarray(pixels).save(tmp_path / "folder" / f"class{c}" / f"{i}.png")
    cfg = from_dict(PretrainConfig, {
        "method": "ijepa", "data": {"dataset": "image-folder", "root": str(tmp_path / "folder"), "image_size": 16,
                                    "cache_dir": str(tmp_path / "cache")},
        "model": {"size": "pico", "patch_size": 2}, "ijepa": {"predictor_dim": 32, "predictor_depth": 1},
        "optim": {"epochs": 1, "warmup_epochs": 0, "global_batch": 32},
        "train": {"progress": False, "diag_every": 0, "diag_images": 16}})
    run = pretrain(cfg, tmp_path / "run")
    result = evaluate_run(run, "last", EvalSettings(train_images=64, test_images=20, probe="ridge", lidar_images=8,
                                                    lidar_views=2), progress=False)
    assert result["baselines"]["pixels"]["dim"] == 3 * 16 * 16
    assert result["baselines"]["pixels"]["probe"] == 1.0  # colour separates the classes perfectly
    assert result["checkpoints"][-1]["encoder"] == "target"


def test_load_model_gives_the_trained_model_its_config_and_record(tiny_run: Path) -> None:
    """load_model: the method's whole model (encoder and decoder) at the last or a chosen checkpoint, in eval mode;
    its encoder is the one load_encoder reads."""
    from jepalab.vision import load_encoder, load_model

    model, cfg, record = load_model(tiny_run)
    assert cfg.method == "mae" and record["step"] == 8 and not model.training and hasattr(model, "decoder_pred")
    encoder = load_encoder(tiny_run)
    assert all(torch.equal(a, b) for a, b in zip(model.encoder.state_dict().values(), encoder.state_dict().values()))
    _, _, early = load_model(tiny_run, tiny_run / "checkpoint-00000004.safetensors")
    assert early["step"] == 4
