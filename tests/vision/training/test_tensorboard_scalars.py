"""train.tensorboard: a 3-step run's event files hold metrics.jsonl's numbers (loss, lr, images/s, RankMe, the
collapse flags) at their steps; a session resumed from an earlier checkpoint than the last one logged continues the
curves with no step twice; without the package the run stops before making a folder, naming the extra."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from pretrain_helpers import run_pretrain, step_losses

accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                  reason="tensorboard is not installed (pip install 'jepalab[tensorboard]')")

THREE_STEPS = ("train.tensorboard=true", "optim.epochs=1", "optim.global_batch=21", "train.diag_every=2")


def _events(run: Path) -> dict[str, list[tuple[int, float]]]:
    """tag → [(step, value)] as TensorBoard shows them (purged events hidden)."""
    events = accumulator.EventAccumulator(str(run))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _expected(run: Path) -> dict[str, list[tuple[int, float]]]:
    """tag → [(step, value)] from metrics.jsonl: every number of a step record as train/KEY, of a diagnostics
    record as diag/KEY, and each diagnosed encoder's collapse flag as diag/ENCODER.collapsed."""
    expected: dict[str, list[tuple[int, float]]] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        diag = record.get("kind") == "diag"
        values = {f"{'diag' if diag else 'train'}/{k}": float(v) for k, v in record.items()
                  if k not in ("step", "kind") and isinstance(v, (int, float))}
        if diag:
            for encoder in (k.removesuffix(".dim") for k in record if k.endswith(".dim")):
                values[f"diag/{encoder}.collapsed"] = float(encoder in record["collapsed"])
        for tag, value in values.items():
            expected.setdefault(tag, []).append((record["step"], value))
    return {tag: sorted(points) for tag, points in expected.items()}


def _assert_events_equal_metrics(run: Path) -> None:
    events, expected = _events(run), _expected(run)
    assert set(events) == set(expected)
    for tag, points in expected.items():
        assert [step for step, _ in events[tag]] == [step for step, _ in points], tag  # each step once, in order
        assert [value for _, value in events[tag]] == pytest.approx([value for _, value in points], rel=1e-6), tag


def test_three_steps_leave_event_files_equal_to_metrics(fmnist_root: Path, tmp_path: Path) -> None:
    run = run_pretrain("ijepa", fmnist_root, tmp_path / "run", *THREE_STEPS)
    assert sorted(step_losses(run)) == [0, 1, 2] and list(run.glob("events.out.tfevents.*"))
    _assert_events_equal_metrics(run)
    events = _events(run)
    for tag in ("train/loss", "train/lr", "train/images_per_s", "diag/target.rankme_centred", "diag/target.collapsed",
                "diag/context.collapsed"):
        assert tag in events, tag
    assert [step for step, _ in events["diag/target.rankme"]] == [0, 2, 3]


def test_a_resumed_run_continues_the_curves_without_duplicate_steps(fmnist_root: Path, tmp_path: Path) -> None:
    """Stopped at 4 without TensorBoard, resumed with it: the events start with the run's whole history. Then a
    session killed after logging steps past its checkpoint (the checkpoint of step 4 put back after training on to
    8) resumes at 4: TensorBoard hides the orphaned steps and shows every step once."""
    run = run_pretrain("ijepa", fmnist_root, tmp_path / "run", stop_after=4)
    shutil.copy(run / "checkpoint.safetensors", tmp_path / "step4.safetensors")
    run_pretrain("ijepa", fmnist_root, run, "train.tensorboard=true", resume=True)
    _assert_events_equal_metrics(run)
    shutil.copy(tmp_path / "step4.safetensors", run / "checkpoint.safetensors")
    run_pretrain("ijepa", fmnist_root, run, "train.tensorboard=true", resume=True)
    assert len(list(run.glob("events.out.tfevents.*"))) == 2
    _assert_events_equal_metrics(run)
    assert [step for step, _ in _events(run)["train/loss"]] == list(range(8))


def test_tensorboard_without_the_package_names_the_extra(fmnist_root: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import raises ImportError
    with pytest.raises(ValueError, match=r"pip install 'jepalab\[tensorboard\]'"):
        run_pretrain("ijepa", fmnist_root, tmp_path / "run", *THREE_STEPS)
    assert not (tmp_path / "run").exists()
