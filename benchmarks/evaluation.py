"""Cost of evaluating a standard run, and whether the cheaper protocol reads the same numbers.

Evaluates copies of one finished run (every kept snapshot, its random-init and pixel baselines) twice, one thread:
the exploratory protocol (fp32 forwards, pixel baselines recomputed, subspace read-outs on every run) and the
confirmatory one (forwards in the run's training precision, bf16 on a CPU with bf16 units; pixel baselines cached
in the store; subspace read-outs only on clean images). Prints the wall time of each and, per headline number, the
largest difference over checkpoints next to the probe's own sampling noise.

    python benchmarks/evaluation.py RUN [RUN ...] [--test-images N --train-images N]
    python benchmarks/evaluation.py --smoke     # a tiny run trained here: a crash test, its numbers mean nothing

Goal (standard scale, 10,000 + 10,000 images, 9 snapshots): ≤ 3 min a run, every difference within the noise.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import math
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from jepalab.vision.readout.evaluation import EvalSettings, evaluate_run

KEYS = ("probe", "knn20", "distractor_r2", "cca_delta", "rankme")
EXPLORATORY = {"precision": "fp32", "cache_pixels": False, "subspace": "always"}
CONFIRMATORY = {"precision": "run", "cache_pixels": True, "subspace": "clean", "random_init": "run"}


def _evaluate(run: Path, settings: EvalSettings, scratch: Path) -> tuple[float, dict]:
    """(wall seconds, eval.json) of a copy of ``run`` (its own store folder, so no cache is shared)."""
    copy = scratch / f"{run.name}-{settings.precision}" / run.name
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("eval*", "*.measure.json"))
    start = time.perf_counter()
    result = evaluate_run(copy, "all", settings, progress=False)
    return time.perf_counter() - start, result


def _noise(accuracy: float, images: int) -> float:
    """Sampling sd of an accuracy on ``images`` test images, in points."""
    return 100 * math.sqrt(accuracy * (1 - accuracy) / images)


def compare(run: Path, base: EvalSettings, scratch: Path) -> None:
    """Print the wall time of both protocols on ``run`` and the largest difference of each headline number."""
    old_s, old = _evaluate(run, replace(base, **EXPLORATORY, random_init="run"), scratch)
    new_s, new = _evaluate(run, replace(base, **CONFIRMATORY), scratch)
    print(f"\n{run.name}: {len(old['checkpoints'])} checkpoints; exploratory protocol {old_s:.0f} s, "
          f"confirmatory {new_s:.0f} s ({old_s / new_s:.2f}× faster)")
    print(f"{'number':<15}{'max |difference|':>18}{'probe noise':>14}")
    noise = max(_noise(c["probe"], base.test_images) for c in old["checkpoints"])
    for key in KEYS:
        pairs = [(a[key], b[key]) for a, b in zip(old["checkpoints"], new["checkpoints"]) if key in a and key in b]
        if pairs:
            scale = 100 if key in ("probe", "knn20") else 1
            gap = max(abs(a - b) for a, b in pairs) * scale
            print(f"{key:<15}{gap:>18.4f}{noise if scale == 100 else float('nan'):>14.3f}")


def _smoke_run(scratch: Path) -> Path:
    """A run of a few steps on random IDX files shaped like Fashion-MNIST's, with a distractor and two snapshots."""
    import numpy as np

    from jepalab.data import write_idx
    from jepalab.vision.experiments.settings import ExperimentSettings, pretrain_config
    from jepalab.vision.training.loop import pretrain

    rng = np.random.default_rng(0)
    (scratch / "data").mkdir()
    for stem, n in (("train", 512), ("t10k", 256)):
        write_idx(scratch / "data" / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28), np.uint8))
        write_idx(scratch / "data" / f"{stem}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    settings = ExperimentSettings(train_images=128, epochs=1, global_batch=64, snapshots=2, dim=32, depth=1,
                                  data_root=str(scratch / "data"))
    cfg = pretrain_config("mae", "noisy-fashion-mnist", {"strength": 0.1, "jitter": 2.0}, settings, seed=0)
    return pretrain(cfg, scratch / "run", resume=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--train-images", type=int, default=10000)
    parser.add_argument("--test-images", type=int, default=10000)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        runs = args.runs
        base = EvalSettings(train_images=args.train_images, test_images=args.test_images, probe="ridge", readouts=())
        if args.smoke:
            runs = [_smoke_run(scratch)]
            base = replace(base, train_images=200, test_images=200, lidar_images=8)
        if not runs:
            parser.error("name at least one run folder (or --smoke)")
        for run in runs:
            compare(run, base, scratch)


if __name__ == "__main__":
    main()
