"""DDP on CPU: two gloo processes under torchrun give the losses of one process with the same global batch (I-JEPA
here in fp32; MAE under bf16 autocast in test_precision.py, EC-IJEPA in tests/vision/methods/test_ecijepa.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pretrain_helpers import RELATIVE_TOLERANCE, free_port, step_losses, tiny_overrides


@pytest.mark.slow  # two process launches: ~18 s on 2 busy cores
def test_two_ranks_match_one_process(reference_runs: dict[str, Path], fmnist_root: Path, tmp_path: Path) -> None:
    """torchrun --nproc_per_node 2 (gloo, 8 images per rank) logs the single-process losses (16 images)."""
    method = "ijepa"
    out, config = tmp_path / "ddp", tmp_path / "tiny.yaml"
    config.write_text(f"method: {method}\n")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "-m", "jepalab", "pretrain", str(config),
               *tiny_overrides(method, fmnist_root), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "batch 8 per rank × 2 rank(s) = 16" in result.stdout + result.stderr
    ddp, single = step_losses(out), step_losses(reference_runs[method])
    assert sorted(ddp) == sorted(single) == list(range(8))
    worst = max(abs(ddp[s] - single[s]) / abs(single[s]) for s in single)
    assert worst <= RELATIVE_TOLERANCE, f"largest relative loss difference {worst:.2e}"
