"""The pretraining loop end to end on a tiny synthetic dataset: run files, exact resume, divergence, corrupt
checkpoints, resume guards, embeddings and CLI errors."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pretrain_helpers import run_pretrain, step_losses, tiny_overrides

from jepalab.cli import main
from jepalab.config import ConfigError
from jepalab.data import DataConfig, build_dataset, eval_view
from jepalab.vision import CheckpointError, TrainingDiverged, load_encoder, load_run_config, read_checkpoint

CONFIG = str(Path(__file__).resolve().parents[3] / "configs" / "fmnist-ijepa-cpu.yaml")


@pytest.mark.parametrize("method", ["ijepa", "mae"])
def test_run_writes_its_files_with_finite_losses(reference_runs: dict[str, Path], method: str) -> None:
    """A finished run holds config, run record, metrics for every step, checkpoint and summary."""
    run = reference_runs[method]
    for name in ("config.yaml", "run.json", "metrics.jsonl", "checkpoint.safetensors", "summary.json", "loss.png"):
        assert (run / name).is_file(), name
    losses = step_losses(run)
    assert sorted(losses) == list(range(8)) and all(math.isfinite(v) for v in losses.values())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["finished"] and summary["steps_done"] == 8
    record = json.loads((run / "run.json").read_text())
    assert record["batch"] == {"global": 16, "per_rank": 16, "ranks": 1} and record["flops_per_step_first"] > 0
    _, state = read_checkpoint(run / "checkpoint.safetensors")
    assert state["step"] == 8 and state["method"] == method
    if method == "ijepa":  # lr 1e-3 moves the predictor within 8 steps; MAE's 1e-5 barely does
        assert np.mean([losses[6], losses[7]]) < 0.95 * np.mean([losses[0], losses[1]])
        assert record["masks"]["num_targets"] == 2 and record["masks"]["context_tokens"]["mean"] > 8


@pytest.mark.parametrize("method", ["ijepa", "mae"])
def test_resume_after_stop_equals_uninterrupted(reference_runs: dict[str, Path], fmnist_root: Path,
                                                tmp_path: Path, method: str) -> None:
    """Stop at step 3 (between checkpoints), resume: every loss and the final weights are bit-identical."""
    run = run_pretrain(method, fmnist_root, tmp_path / "run", stop_after=3)
    assert sorted(step_losses(run)) == [0, 1, 2] and read_checkpoint(run / "checkpoint.safetensors")[1]["step"] == 3
    run_pretrain(method, fmnist_root, run, resume=True)
    assert step_losses(run) == step_losses(reference_runs[method])
    ours, _ = read_checkpoint(run / "checkpoint.safetensors")
    theirs, _ = read_checkpoint(reference_runs[method] / "checkpoint.safetensors")
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_non_finite_loss_raises_and_keeps_the_checkpoint(fmnist_root: Path, tmp_path: Path) -> None:
    """optim.lr=1e30 blows the loss up: TrainingDiverged names the last checkpoint, which still reads."""
    with pytest.raises(TrainingDiverged) as info:
        run_pretrain("ijepa", fmnist_root, tmp_path / "run", "optim.lr=1e30")
    checkpoint = tmp_path / "run" / "checkpoint.safetensors"
    assert str(checkpoint) in str(info.value) and "optim.lr" in str(info.value)
    _, record = read_checkpoint(checkpoint)
    assert record["step"] >= 2 and record["step"] < 8


def test_divergence_factor_stops_a_finite_blow_up(fmnist_root: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A finite loss 100× its first logged mean stops the run too (train.divergence_factor 10)."""
    from jepalab.vision.methods.mae import MAE

    loss = MAE.loss
    steps = []

    def growing(self: MAE, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.device.type == "meta":  # the FLOP count, not a training step
            return loss(self, pred, target)
        steps.append(1)
        return loss(self, pred, target) * (100.0 if len(steps) > 2 else 1.0)

    monkeypatch.setattr(MAE, "loss", growing)
    with pytest.raises(TrainingDiverged, match="divergence_factor"):
        run_pretrain("mae", fmnist_root, tmp_path / "run")
    assert len(steps) == 4  # stopped at the second read-out


def damage(path: Path, how: str) -> None:
    """Truncate the file, or flip bytes in its tensor data or in its JSON header."""
    data = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    if how == "truncate":
        del data[len(data) // 2:]
    elif how == "data":
        for i in range(header + 100, header + 110):
            data[i] ^= 0xFF
    else:
        data[10] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how, words", [("truncate", "corrupt"), ("data", "SHA-256"), ("header", "corrupt")])
def test_corrupt_checkpoint_is_named_on_read_and_resume(reference_runs: dict[str, Path], fmnist_root: Path,
                                                        tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        how: str, words: str) -> None:
    """A damaged checkpoint raises CheckpointError naming the file, in read_checkpoint and on --resume."""
    run = Path(shutil.copytree(reference_runs["mae"], tmp_path / "run"))
    checkpoint = run / "checkpoint.safetensors"
    damage(checkpoint, how)
    with pytest.raises(CheckpointError, match=words) as info:
        read_checkpoint(checkpoint)
    assert str(checkpoint) in str(info.value)
    with pytest.raises(CheckpointError):
        run_pretrain("mae", fmnist_root, run, resume=True)
    assert main(["pretrain", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jepalab: error: checkpoint") and str(checkpoint) in err


def test_resume_refuses_changed_fields(reference_runs: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Only runtime fields may change on --resume; anything that changes the numbers is refused."""
    run = reference_runs["ijepa"]
    assert load_run_config(run, ["train.threads=1", "data.num_workers=0"]).train.threads == 1
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        load_run_config(run, ["optim.lr=0.5"])
    assert main(["pretrain", "--resume", str(run), "ijepa.predictor_depth=2"]) == 2
    assert "cannot change ijepa.predictor_depth" in capsys.readouterr().err
    overrides = tiny_overrides("ijepa", Path(load_run_config(run).data.root))
    assert main(["pretrain", CONFIG, *overrides, "seed=3", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "differs from the one" in err and "seed" in err


def test_embed_writes_arrays_matching_the_encoder(reference_runs: dict[str, Path], fmnist_root: Path,
                                                  tmp_path: Path) -> None:
    """jepalab embed: (n, dim) mean-pooled target-encoder features of the test split, labels, a record."""
    run = reference_runs["ijepa"]
    out = tmp_path / "emb"
    assert main(["embed", str(run), "--data", "fashion-mnist:test", "--data-dir", str(fmnist_root),
                 "--out", str(out), "--device", "cpu"]) == 0
    features, labels = np.load(out / "embeddings.npy"), np.load(out / "labels.npy")
    assert features.shape == (32, 32) and features.dtype == np.float32
    assert labels.tolist() == [i % 10 for i in range(32)]
    assert json.loads((out / "embed.json").read_text())["encoder"] == "target"
    encoder = load_encoder(run)
    test = build_dataset(DataConfig(root=str(fmnist_root), split="test"))
    with torch.no_grad():
        expected = encoder(eval_view(test.images, 28, encoder.run_info["mean"], encoder.run_info["std"])).mean(1)
    np.testing.assert_allclose(features, expected.numpy(), atol=1e-5, rtol=1e-5)
    tokens = tmp_path / "tokens"
    assert main(["embed", str(reference_runs["mae"]), "--data", "fashion-mnist:test", "--data-dir", str(fmnist_root),
                 "--out", str(tokens), "--pooling", "tokens", "--limit", "5", "--device", "cpu"]) == 0
    assert np.load(tokens / "embeddings.npy").shape == (5, 49, 32)


def test_dry_run_validates_and_writes_no_checkpoint(fmnist_root: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """--dry-run prints sizes and the mask statistics, writes config.yaml and run.json only (and the empty lock file,
    released)."""
    out = tmp_path / "dry"
    assert main(["pretrain", CONFIG, f"data.root={fmnist_root}", "optim.global_batch=16", "train.progress=false",
                 "--dry-run", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "masks (7×7 grid): 2 targets" in captured.out + captured.err
    assert sorted(p.name for p in out.iterdir()) == [".lock", "config.yaml", "run.json"]
    assert (out / ".lock").read_text() == ""


@pytest.mark.parametrize("args, words", [
    (["pretrain", CONFIG, "optim.lr=-1"], "optim.lr must be > 0"),
    (["pretrain", CONFIG, "data.root=/nonexistent/fmnist"], "dataset-fashion-mnist"),
    (["pretrain", "/nonexistent.yaml"], "config file /nonexistent.yaml does not exist"),
    (["pretrain", "optim.lr=1"], "give a config file"),
    (["pretrain", "--resume", "/nonexistent-run"], "not a pretraining run folder"),
    (["embed", "/nonexistent-run", "--data", "fashion-mnist:test"], "does not exist"),
])
def test_cli_user_errors(args: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """User errors print one 'jepalab: error:' line and exit 2, leaving no run folder behind."""
    out = tmp_path / "never"
    extra = ["--out", str(out)] if args[0] == "pretrain" and "--resume" not in args else []
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jepalab: error:") and words in err and "Traceback" not in err
    assert not out.exists()


def test_dataset_smaller_than_a_batch_leaves_no_run_folder(fmnist_root: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """64 images cannot fill a global batch of 128: a user error before the run folder is made."""
    out = tmp_path / "never"
    assert main(["pretrain", CONFIG, f"data.root={fmnist_root}", "--out", str(out)]) == 2
    assert "fewer than one global batch (128)" in capsys.readouterr().err and not out.exists()


def test_cli_exit_status_in_a_subprocess() -> None:
    """The installed entry point exits with status 2 on a bad config value."""
    result = subprocess.run([sys.executable, "-m", "jepalab", "pretrain", CONFIG, "model.patch_size=5"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("jepalab: error:") and "model.patch_size (5)" in result.stderr


def test_folder_preset_dry_run_on_a_tiny_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """configs/folder-ijepa-vits16.yaml on 16 RGB PNGs: valid, 14×14 grid with the official mask settings."""
    from PIL import Image

    for i in range(16):
        folder = tmp_path / "images" / ("even" if i % 2 == 0 else "odd")
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40 + i, 30), (10 * i, 0, 255 - 10 * i)).save(folder / f"{i}.png")
    preset = str(Path(CONFIG).with_name("folder-ijepa-vits16.yaml"))
    out = tmp_path / "dry"
    assert main(["pretrain", preset, "optim.global_batch=16", "data.num_workers=0", f"data.cache_dir={tmp_path}",
                 "--data-dir", str(tmp_path / "images"), "--dry-run", "--out", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["dataset"]["images"] == 16 and record["dataset"]["channels"] == 3
    assert record["dataset"]["classes"] == ["even", "odd"] and record["dataset"]["stored_size"] == 256
    masks = record["masks"]
    assert masks["grid"] == [14, 14] and masks["num_targets"] == 4 and masks["min_keep"] == 10
    assert not masks["full_grid"]
    assert "masks (14×14 grid): 4 targets" in "".join(capsys.readouterr())


def test_random_encoder_matches_the_architecture(reference_runs: dict[str, Path]) -> None:
    """random_encoder(run): same shapes as the trained encoder, other weights, reproducible per seed."""
    from jepalab.vision import random_encoder

    trained = load_encoder(reference_runs["mae"])
    a, b, c = (random_encoder(reference_runs["mae"], seed=s) for s in (1, 1, 2))
    shapes = {k: v.shape for k, v in trained.state_dict().items()}
    assert {k: v.shape for k, v in a.state_dict().items()} == shapes and a.cls_token is not None
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in shapes)
    assert not torch.equal(a.patch_embed.weight, c.patch_embed.weight)
    assert not torch.equal(a.patch_embed.weight, trained.patch_embed.weight)


def test_pretraining_leaves_subnormal_floats_working(reference_runs: dict[str, Path]) -> None:
    """Training flushes denormals for speed, then restores the default: later float64 maths must see 1e-320."""
    assert reference_runs  # a pretraining run has happened in this process
    assert (np.array([1e-320]) * 1.0)[0] > 0.0
    assert (torch.tensor([1e-320], dtype=torch.float64) * 1.0)[0] > 0.0


def test_pretrain_restores_the_thread_count(fmnist_root: Path, tmp_path: Path) -> None:
    """train.threads=1 holds during training only: torch's thread count is the caller's again afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        run_pretrain("mae", fmnist_root, tmp_path / "run", stop_after=1)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_resume_before_the_first_checkpoint_starts_from_step_zero(reference_runs: dict[str, Path], fmnist_root: Path,
                                                                  tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A run killed before its first checkpoint (config.yaml, a few metrics) restarts from step 0 with its saved
    config on --resume, says so, and ends like an uninterrupted run."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(reference_runs["ijepa"] / "config.yaml", run / "config.yaml")
    (run / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n')
    assert main(["pretrain", "--resume", str(run), "train.progress=false"]) == 0
    assert "no checkpoint.safetensors yet: starting it from step 0" in capsys.readouterr().out
    assert step_losses(run) == step_losses(reference_runs["ijepa"])
