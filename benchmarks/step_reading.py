"""What a reader must open to follow one training step: the jepalab functions one step of ``jepalab pretrain`` runs.

    python benchmarks/step_reading.py            # I-JEPA; --method mae for MAE (about 20 s)

Runs ``jepalab pretrain`` (pico ViT, tiny synthetic data, one thread) for 3 steps through ``jepalab.cli.main`` and
records, with ``sys.setprofile``, every jepalab function called from the end of step 1 to the end of step 2 (one
iteration of the training loop: read-out bookkeeping, batch, views and masks, forward, loss, backward, optimiser,
the method's target update), plus the function holding the loop. It prints those functions by file with their source
lines, the totals, and the call stack from ``cli.main`` down to the EMA update (``update_target``): the hops a reader
follows from the command line to I-JEPA's defining detail. Lines are whole function definitions (docstrings
included), the unit a reader opens; subtotals split them into the step and the method (views, schedules, the step,
the model, the config it reads), the loop's bookkeeping (read-outs, status, progress) and data and models (batch
loading, augmentation, masks, the ViT).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import numpy as np

import jepalab
from jepalab.data import write_idx
from jepalab.data.fashion_mnist import FILES

PACKAGE = Path(jepalab.__file__).resolve().parent


def write_data(root: Path, n: int = 64) -> None:
    """``n`` random 28×28 images and labels as Fashion-MNIST IDX files (train and test)."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        write_idx(root / FILES[split][0], rng.integers(0, 255, (n, 28, 28), dtype=np.uint8))
        write_idx(root / FILES[split][1], (np.arange(n) % 10).astype(np.uint8))


class StepRecorder:
    """Profile hook: jepalab code objects called while ``recording``; the stack at the first ``update_target``."""

    def __init__(self) -> None:
        self.recording = False
        self.called: set[CodeType] = set()
        self.loop: CodeType | None = None
        self.ema_stack: list[str] | None = None

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or not frame.f_code.co_filename.startswith(str(PACKAGE)):
            return
        if self.recording and "<" not in frame.f_code.co_name:  # comprehensions and lambdas: part of their function
            self.called.add(frame.f_code)
        if frame.f_code.co_name == "update_target" and self.ema_stack is None:
            self.ema_stack = _jepalab_stack(frame)

    def bar_updated(self, count: int, caller: FrameType) -> None:
        """The progress bar moved after step ``count``: record the next loop iteration only."""
        self.recording = count == 1
        if count == 1:
            self.loop = caller.f_code


def _jepalab_stack(frame: FrameType) -> list[str]:
    names = []
    while frame is not None:
        if frame.f_code.co_filename.startswith(str(PACKAGE)):
            names.append(f"{_where(frame.f_code)}:{frame.f_code.co_qualname}")
        frame = frame.f_back
    return names[::-1]


def _where(code: CodeType) -> str:
    return str(Path(code.co_filename).resolve().relative_to(PACKAGE))


def _lines(code: CodeType) -> int:
    try:
        return len(inspect.getsourcelines(code)[0])
    except OSError:
        return 0


def measure(method: str) -> tuple[dict[str, list[tuple[str, int]]], list[str]]:
    """file → [(function, lines)] of one step of ``method``, and the stack down to the EMA update."""
    import tqdm.std

    from jepalab.cli import main

    recorder = StepRecorder()
    update = tqdm.std.tqdm.update

    def counted(bar: Any, n: int = 1) -> Any:
        result = update(bar, n)
        recorder.bar_updated(bar.n, sys._getframe(1))
        return result

    tqdm.std.tqdm.update = counted
    with tempfile.TemporaryDirectory() as work:
        write_data(Path(work))
        head = ["ijepa.predictor_dim=32", "ijepa.predictor_depth=1"] if method != "mae" else \
            ["mae.decoder_dim=32", "mae.decoder_depth=1", "mae.decoder_heads=2"]
        argv = ["pretrain", f"configs/fmnist-{'mae' if method == 'mae' else 'ijepa'}-cpu.yaml", f"method={method}",
                f"data.root={work}", "model.size=pico", "model.patch_size=4", "optim.epochs=1", "optim.global_batch=16",
                "data.limit=48", "train.diag_every=0", "train.diag_images=16", "train.device=cpu", "train.threads=1",
                "train.precision=fp32", "train.log_every=1", *head, "--out", f"{work}/run"]
        sys.setprofile(recorder)
        try:
            main(argv)
        finally:
            sys.setprofile(None)
            tqdm.std.tqdm.update = update
    found: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for code in sorted({*recorder.called, *([recorder.loop] if recorder.loop else [])},
                       key=lambda c: (c.co_filename, c.co_firstlineno)):
        found[_where(code)].append((code.co_qualname, _lines(code)))
    return dict(found), recorder.ema_stack or []


GROUPS = (("data and models", ("data/", "vision/models/")),
          ("loop bookkeeping", ("vision/training/loop.py", "vision/training/metrics_log.py",
                                "vision/training/run_status.py", "vision/training/distributed.py", "progress.py")))
"""Where a file's functions are counted; every other file is "step and method" (views, schedules, the step, the
method's model and its config)."""


def group_of(where: str) -> str:
    return next((name for name, prefixes in GROUPS if where.startswith(prefixes)), "step and method")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="ijepa")
    parser.add_argument("--smoke", action="store_true", help="make test's check; the measurement is tiny already")
    args = parser.parse_args()
    found, stack = measure(args.method)
    print(f"one {args.method} step: {len(found)} files, {sum(len(v) for v in found.values())} functions, "
          f"{sum(n for v in found.values() for _, n in v)} lines")
    print(f"{'file':44s} {'functions':>9s} {'lines':>6s}")
    for where, functions in found.items():
        print(f"{where:44s} {len(functions):9d} {sum(n for _, n in functions):6d}   "
              + ", ".join(name for name, _ in functions))
    for name in ("step and method", *(n for n, _ in GROUPS)):
        files = {w: f for w, f in found.items() if group_of(w) == name}
        print(f"  {name}: {len(files)} files, {sum(len(f) for f in files.values())} functions, "
              f"{sum(n for f in files.values() for _, n in f)} lines")
    if stack:
        print(f"\ncli.main → update_target: {len(stack) - 1} hops")
        for depth, name in enumerate(stack):
            print(f"{'  ' * depth}{name}")


if __name__ == "__main__":
    main()
