"""Helpers of the vision tests: a tiny synthetic Fashion-MNIST-format dataset and pico training runs."""

import json
import socket
from pathlib import Path

import numpy as np

from jepalab.data import write_idx
from jepalab.data.fashion_mnist import FILES

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def docs_example(heading: str) -> str:
    """The first Python block after the line ``heading`` in docs/architecture.md."""
    text = ARCHITECTURE.read_text()
    after = text[text.index(f"\n{heading}\n"):]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


RELATIVE_TOLERANCE = 1e-5  # two ranks vs one, observed: 1.4e-7 (I-JEPA), 9.3e-8 (MAE): float32 rounding of the split
# means


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_tiny_fmnist(root: Path, n: int = 64, seed: int = 0) -> Path:
    """Write ``n`` 28×28 images (blurred noise blobs, so there is structure to learn) as train and test IDX files."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    for split, count in (("train", n), ("test", n // 2)):
        centres = rng.uniform(6, 22, (count, 2, 1, 1))
        blobs = np.exp(-((yy - centres[:, 0]) ** 2 + (xx - centres[:, 1]) ** 2) / 30.0)
        images = np.clip(255 * blobs + rng.normal(0, 10, blobs.shape), 0, 255).astype(np.uint8)
        write_idx(root / FILES[split][0], images)
        write_idx(root / FILES[split][1], (np.arange(count) % 10).astype(np.uint8))
    return root


def tiny_overrides(method: str, root: Path, epochs: int = 2, batch: int = 16) -> list[str]:
    """key=value overrides for a pico run on the tiny dataset: 4 steps per epoch, one thread, fp32, no diagnostics."""
    common = [f"method={method}", f"data.root={root}", "model.size=pico", "model.patch_size=4",
              f"optim.epochs={epochs}", f"optim.global_batch={batch}", "optim.warmup_epochs=0.5",
              "optim.warmup_fraction=null",  # the presets set a warm-up share; these runs give it in epochs
              "train.log_every=2", "train.diag_every=0", "train.diag_images=16", "train.progress=false",
              "train.checkpoint_every=2", "train.device=cpu", "train.threads=1",
              "train.precision=fp32"]  # auto is bf16 on CPUs with bf16 units: keep these runs the same everywhere
    if method == "ijepa":  # lr 1e-3: the √ rule gives 8.8e-5 at batch 16, too slow to see 8 steps learn
        return [*common, "ijepa.predictor_dim=32", "ijepa.predictor_depth=1", "optim.lr=1e-3"]
    return [*common, "mae.decoder_dim=32", "mae.decoder_depth=1", "mae.decoder_heads=2"]


def run_pretrain(method: str, root: Path, out: Path, *extra: str, stop_after: int | None = None,
                 resume: bool = False) -> Path:
    """Run (or resume) a pico pretraining in this process; returns the run folder."""
    from jepalab.config import load_config
    from jepalab.vision import PretrainConfig, pretrain

    cfg = load_config(PretrainConfig, None, [*tiny_overrides(method, root), *extra])
    return pretrain(cfg, out, resume=resume, stop_after=stop_after)


def step_losses(run: Path) -> dict[int, float]:
    """step → logged loss from a run's metrics.jsonl (diagnostic lines skipped)."""
    entries = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {e["step"]: e["loss"] for e in entries if "loss" in e}
