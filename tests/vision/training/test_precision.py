"""train.precision: what auto resolves to, and short fp32 and bf16-autocast CPU runs that give the same losses."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pretrain_helpers import free_port, run_pretrain, step_losses, tiny_overrides

from jepalab.vision import read_checkpoint
from jepalab.vision.training import precision
from jepalab.vision.training.precision import describe_precision, resolve_precision

# Per-step losses of a bf16-autocast run vs the fp32 run (same seed, data and masks; 32 steps, pico model, lr 1e-3;
# the losses fall to 55 % (I-JEPA) and 41 % (MAE) of their start). Observed on an AVX512-BF16 CPU: per step at most
# 1.1e-4 (I-JEPA) and 1.4e-3 (MAE) relative, last-8-step means 3e-5 and 1e-5. bf16 keeps 8 mantissa bits (one
# rounding: up to 2^-9 = 2e-3 relative); the tolerances leave ~7× room over the worst observation.
STEP_TOLERANCE = 1e-2  # relative, any single step
CURVE_TOLERANCE = 2e-3  # relative, mean of the last 8 steps


def test_explicit_settings_are_taken_as_given() -> None:
    for device in ("cpu", "cuda", "meta"):
        assert resolve_precision("bf16", device) is torch.bfloat16
        assert resolve_precision("fp32", device) is None
    with pytest.raises(ValueError, match="auto, fp32 or bf16"):
        resolve_precision("fp16", "cpu")


@pytest.mark.parametrize("units", ["AMX-BF16", "AVX512-BF16", None])
def test_auto_is_bf16_on_gpus_and_cpus_with_bf16_units(monkeypatch: pytest.MonkeyPatch, units: str | None) -> None:
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: units)
    assert resolve_precision("auto", "cuda") is torch.bfloat16
    assert resolve_precision("auto", "cpu") is (torch.bfloat16 if units else None)
    text = describe_precision("auto", "cpu")
    assert text.startswith("bf16 autocast" if units else "fp32") and text.endswith("from auto")
    assert (units or "without native bf16") in text


def test_cpu_bf16_units_agree_with_the_kernel_flags() -> None:
    """Where /proc/cpuinfo exists, torch's probe and the kernel's flags name the same units."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo")
    flags = set(cpuinfo.read_text().split())
    expected = "AMX-BF16" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags else None
    assert precision.cpu_bf16_units() == expected


@pytest.mark.parametrize("method", ["ijepa", "mae"])
def test_bf16_and_fp32_cpu_runs_give_matching_loss_curves(tiny_fmnist: Path, tmp_path: Path, method: str) -> None:
    """32 steps (2 epochs of 256 images, batch 16) in fp32 and under bf16 autocast: same losses within tolerance."""
    from jepalab.config import load_config
    from jepalab.vision import PretrainConfig, pretrain

    curves = {}
    for setting in ("fp32", "bf16"):
        overrides = [*tiny_overrides(method, tiny_fmnist), "train.checkpoint_every=1000", "train.log_every=1",
                     f"train.precision={setting}"]
        if method == "mae":
            overrides.append("optim.lr=1e-3")  # MAE's recipe lr at batch 16 (1e-5) barely moves in 32 steps
        run = pretrain(load_config(PretrainConfig, None, overrides), tmp_path / setting)
        losses = step_losses(run)
        curves[setting] = np.array([losses[s] for s in sorted(losses)])
    fp32, bf16 = curves["fp32"], curves["bf16"]
    assert len(fp32) == len(bf16) == 32 and np.isfinite(bf16).all()
    assert fp32[-8:].mean() < 0.9 * fp32[:4].mean()  # the curve moves: the comparison is not of a flat line
    step_error = np.abs(bf16 - fp32) / np.abs(fp32)
    assert step_error.max() <= STEP_TOLERANCE, f"largest per-step relative difference {step_error.max():.2e}"
    curve_error = abs(bf16[-8:].mean() - fp32[-8:].mean()) / fp32[-8:].mean()
    assert curve_error <= CURVE_TOLERANCE, f"last-8-step mean differs by {curve_error:.2e}"


def test_bf16_resume_is_bit_identical(fmnist_root: Path, tmp_path: Path) -> None:
    """Under bf16 autocast too, stop at step 3 and resume: every loss and the final weights are bit-identical."""
    reference = run_pretrain("ijepa", fmnist_root, tmp_path / "reference", "train.precision=bf16")
    run = run_pretrain("ijepa", fmnist_root, tmp_path / "run", "train.precision=bf16", stop_after=3)
    run_pretrain("ijepa", fmnist_root, run, "train.precision=bf16", resume=True)
    assert step_losses(run) == step_losses(reference)
    ours, _ = read_checkpoint(run / "checkpoint.safetensors")
    theirs, _ = read_checkpoint(reference / "checkpoint.safetensors")
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


@pytest.mark.slow  # two process launches
def test_bf16_two_ranks_match_one_process(fmnist_root: Path, tmp_path: Path) -> None:
    """DDP under bf16 autocast: two gloo ranks log the single-process bf16 losses to bf16 rounding of the split
    batches (observed 5.9e-5 relative for MAE; fp32 I-JEPA runs agree to 1e-7, test_ddp.py). The one MAE DDP test."""
    single = run_pretrain("mae", fmnist_root, tmp_path / "single", "train.precision=bf16")
    config, out = tmp_path / "tiny.yaml", tmp_path / "ddp"
    config.write_text("method: mae\n")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "-m", "jepalab", "pretrain", str(config),
               *tiny_overrides("mae", fmnist_root), "train.precision=bf16", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    ddp, reference = step_losses(out), step_losses(single)
    assert sorted(ddp) == sorted(reference) == list(range(8))
    worst = max(abs(ddp[s] - reference[s]) / abs(reference[s]) for s in reference)
    assert worst <= 1e-3, f"largest relative loss difference {worst:.2e}"
