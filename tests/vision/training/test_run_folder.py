"""What a run folder guarantees: one writer at a time (a second ``--resume`` is refused naming the holder, a killed
holder frees the run at once, experiment commands sharing a store wait and train a run once), the data it started
on (a change is refused, or continued and recorded with --allow-data-change), and a failed write named in one line
(file, step, bytes, fix) with the last good checkpoint intact and no temporary file left."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from pretrain_helpers import step_losses, tiny_overrides

from jepalab import rundir
from jepalab.cli import main
from jepalab.config import load_config, save_config
from jepalab.data import DataConfig, build_dataset
from jepalab.data.fingerprint import data_fingerprint, fingerprint_changes
from jepalab.vision import PretrainConfig, read_checkpoint
from jepalab.vision.experiments import store
from jepalab.vision.experiments.launchers import RunWork
from jepalab.vision.experiments.settings import ExperimentSettings
from jepalab.vision.readout.run_states import list_runs
from jepalab.vision.training import checkpoint, metrics_log
from jepalab.vision.training.run_lock import lock_holder


def _no_space(*_: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _config(tmp_path: Path, root: Path, *extra: str) -> Path:
    """A config file of a pico I-JEPA run (8 steps, checkpoints every 2) on the tiny dataset at ``root``."""
    path = tmp_path / "pico.yaml"
    save_config(load_config(PretrainConfig, None, [*tiny_overrides("ijepa", root), *extra]), path)
    return path


def _held_by(run: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until ``process`` holds ``run``'s lock (its lock file names it)."""
    deadline = time.monotonic() + timeout
    while (lock_holder(run) or {}).get("pid") != process.pid:
        assert process.poll() is None, f"the holder ended first: {process.communicate()}"
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.005)


def _assert_consistent(run: Path, steps: int) -> None:
    """metrics.jsonl holds each step once, whole lines only; the checkpoint verifies at ``steps``."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    logged = [json.loads(line)["step"] for line in lines if "loss" in json.loads(line)]
    assert logged == list(range(steps))
    assert read_checkpoint(run / "checkpoint.safetensors")[1]["step"] == steps
    assert not list(run.glob(".*.tmp"))


def _equal_to(run: Path, reference: Path) -> None:
    """Every logged loss and every tensor of the final checkpoint equal the uninterrupted run's."""
    assert step_losses(run) == step_losses(reference)
    ours, theirs = (read_checkpoint(r / "checkpoint.safetensors")[0] for r in (run, reference))
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_second_resume_is_refused_and_a_killed_holder_frees_the_run_at_once(
        reference_runs: dict[str, Path], fmnist_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two ``--resume`` calls: the one holding the run proceeds, the other (this process) exits at once with one line
    naming the run, the holder's pid and host and how to wait or stop it; readers still list the run. SIGKILLed, the
    holder's lock is gone at once: the run resumes and ends like the uninterrupted run."""
    config, run = _config(tmp_path, fmnist_root), tmp_path / "run"
    assert main(["pretrain", str(config), "--out", str(run), "--stop-after", "3"]) == 0
    first = subprocess.Popen([sys.executable, "-m", "jepalab", "pretrain", "--resume", str(run)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _held_by(run, first)
        first.send_signal(signal.SIGSTOP)  # hold it mid-session, wherever it is
        capsys.readouterr()
        assert main(["pretrain", "--resume", str(run)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("jepalab: error: ")
        assert f"{run} is in use by `jepalab pretrain` (pid {first.pid} on host " in err
        assert "wait for it to end" in err and f"kill {first.pid}" in err
        began = time.monotonic()
        assert [row["run"] for row in list_runs(tmp_path)] == ["run"]  # a reader neither waits nor takes the lock
        assert time.monotonic() - began < 10
    finally:
        first.kill()  # SIGKILL: the kernel releases the lock
        first.communicate()
    assert main(["pretrain", "--resume", str(run)]) == 0
    _assert_consistent(run, 8)
    sessions = json.loads((run / "run.json").read_text())["sessions"]
    assert sessions[0]["steps"] == [0, 3] and sessions[-1]["steps"] == [3, 8]
    assert sessions[0]["ended"] and sessions[-1]["ended"] and len(sessions) in (2, 3)
    assert all(s["ended"] is None for s in sessions[1:-1])  # the killed one, where it had opened its session
    _equal_to(run, reference_runs["ijepa"])


def test_experiment_commands_sharing_a_store_train_a_run_once(fmnist_root: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A run of the store held by another command's job is waited for, then adopted: this job trains no image of
    it, and run.json records one training session."""
    config = _config(tmp_path, fmnist_root)
    cfg = load_config(PretrainConfig, config)
    run = store.run_folder(tmp_path / "store", cfg)
    other = subprocess.Popen([sys.executable, "-c", "import sys; from pathlib import Path; "
                              "from jepalab.config import load_config; from jepalab.vision import PretrainConfig; "
                              "from jepalab.vision.experiments.store import claim, train_run; "
                              "run = Path(sys.argv[2]); cfg = load_config(PretrainConfig, sys.argv[1]); "
                              "claim(run).__enter__(); train_run(cfg, run)", str(config), str(run)])
    evaluated = []
    monkeypatch.setattr(store, "evaluate_run", lambda folder, *_, **__: evaluated.append(folder) or {})
    images: list[int] = []
    try:
        _held_by(run, other)
        other.send_signal(signal.SIGSTOP)
        job = threading.Thread(target=lambda: images.append(store.run_job(RunWork(run, cfg),
                                                                             ExperimentSettings(device="cpu"))))
        job.start()
        job.join(timeout=3)
        assert job.is_alive() and not evaluated  # waiting for the other command
    finally:
        other.send_signal(signal.SIGCONT)
    assert other.wait(timeout=300) == 0
    job.join(timeout=120)
    assert images == [0] and evaluated == [run]
    assert f"{run} is in use by `jepalab experiment` (pid {other.pid}" in capsys.readouterr().out
    assert len(json.loads((run / "run.json").read_text())["sessions"]) == 1
    _assert_consistent(run, 8)


def _image_folder(root: Path, per_class: int) -> Path:
    """``per_class`` 28×28 grey PNGs in each of two class folders."""
    from PIL import Image

    for label in ("a", "b"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shade = 40 * (label == "b") + 5 * i
            Image.new("L", (28, 28), shade).save(root / label / f"{i:02d}.png")
    return root


def test_a_data_change_is_refused_then_continued_with_the_flag(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """48 images, stopped at step 2 of 6; 16 deleted: --resume refuses in one line saying what changed and leaves the
    folder as it was; --allow-data-change continues (4 steps planned now) and run.json records the change."""
    images = _image_folder(tmp_path / "images", 24)
    config = _config(tmp_path, images, "data.dataset=image-folder", "data.num_workers=0", "data.channels=1",
                     f"data.cache_dir={tmp_path / 'cache'}")
    run = tmp_path / "run"
    assert main(["pretrain", str(config), "--out", str(run), "--stop-after", "2"]) == 0
    started = json.loads((run / "run.json").read_text())["data_fingerprint"]
    assert started["images"] == 48 and started["classes"] == 2 and started["files"]["of"].endswith("of 48 files")
    for label in ("a", "b"):
        for path in sorted((images / label).iterdir())[16:]:
            path.unlink()
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["pretrain", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"jepalab: error: the data of {run} changed since the run started: "
                                                   "32 images now, 48 when the run started; its schedules would "
                                                   "change: 4 steps planned now, 6 when the run started.")
    assert "--allow-data-change" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert main(["pretrain", "--resume", str(run), "--allow-data-change"]) == 0
    record = json.loads((run / "run.json").read_text())
    [change] = record["data_changes"]
    assert change["at_step"] == 2 and change["changes"][0] == "32 images now, 48 when the run started"
    assert change["before"]["data_fingerprint"] == started and change["before"]["steps"]["total"] == 6
    assert record["data_fingerprint"]["images"] == 32 and record["steps"]["total"] == 4
    _assert_consistent(run, 4)


def test_the_fingerprint_names_changed_bytes_and_transforms(fmnist_root: Path, tmp_path: Path) -> None:
    """Fashion-MNIST: the IDX files' bytes are hashed (one pixel changed, same size: named); a transform setting
    changed is named with both values."""
    copy = Path(shutil.copytree(fmnist_root, tmp_path / "fmnist"))
    cfg = DataConfig(root=str(copy))
    then = data_fingerprint(build_dataset(cfg), cfg)
    assert then["files"]["of"] == "the bytes of train-images-idx3-ubyte, train-labels-idx1-ubyte"
    images = copy / "train-images-idx3-ubyte"
    data = bytearray(images.read_bytes())
    data[-1] ^= 0xFF
    images.write_bytes(bytes(data))
    flipped = DataConfig(root=str(copy), hflip=True)
    assert fingerprint_changes(then, data_fingerprint(build_dataset(flipped), flipped)) == [
        "its files changed (SHA-256 over the bytes of train-images-idx3-ubyte, train-labels-idx1-ubyte differs)",
        "data.hflip True now, False when the run started"]
    assert fingerprint_changes(then, then) == []


@pytest.fixture
def disk_full_at(monkeypatch: pytest.MonkeyPatch):
    """``disk_full_at(name, nth)``: the ``nth`` write of the run's file ``name`` hits a full disk (ENOSPC) after
    writing half its bytes: atomic writes (checkpoints, figures) fail at their fsync, metrics.jsonl mid-append."""
    def install(name: str, nth: int) -> None:
        real, seen = rundir.atomic_write_bytes, []

        def atomic(path: str | Path, data: bytes) -> Path:
            seen.append(Path(path).name)
            if seen.count(name) != nth:
                return real(path, data)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(os, "fsync", _no_space)
                return real(path, data)

        class FillingFile(io.FileIO):
            def write(self, data: bytes) -> int:
                seen.append(Path(self.name).name)
                if seen.count(name) != nth:
                    return super().write(data)
                super().write(bytes(data)[:len(data) // 2])
                _no_space()

        for module in (rundir, checkpoint):
            monkeypatch.setattr(module, "atomic_write_bytes", atomic)
        monkeypatch.setattr(metrics_log, "open", lambda path, mode, buffering: FillingFile(path, mode), raising=False)
    return install


@pytest.mark.parametrize("name, nth, step, kept", [
    ("checkpoint.safetensors", 2, 4, 2),  # the second checkpoint
    ("metrics.jsonl", 3, 4, 2),  # the initial diagnostics, steps 0–1, then steps 2–3
    ("loss.png", 1, 8, 8)])  # the curves, after the last checkpoint
def test_a_failed_write_is_named_and_leaves_the_last_checkpoint(
        reference_runs: dict[str, Path], fmnist_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, disk_full_at, name: str, nth: int, step: int, kept: int) -> None:
    """One line names the file, the bytes it needed, the step, the intact checkpoint and the fix; no temporary
    file is left and metrics.jsonl holds whole lines only. After the space is freed, --resume ends the run like an
    uninterrupted one."""
    config, run = _config(tmp_path, fmnist_root), tmp_path / "run"
    disk_full_at(name, nth)
    assert main(["pretrain", str(config), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"jepalab: error: could not write {run / name} (needs ")
    assert f"free): No space left on device, at step {step}; the last good checkpoint " \
           f"({run / 'checkpoint.safetensors'}, step {kept}) is intact: free space, then `jepalab pretrain --resume " \
           f"{run}`" in err
    assert not list(run.glob(".*.tmp")) and read_checkpoint(run / "checkpoint.safetensors")[1]["step"] == kept
    assert all(json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines())
    if name == "checkpoint.safetensors":
        monkeypatch.undo()  # space freed
        assert main(["pretrain", "--resume", str(run)]) == 0
        _assert_consistent(run, 8)
        _equal_to(run, reference_runs["ijepa"])


@pytest.fixture
def small_disk(tmp_path: Path, reference_runs: dict[str, Path]) -> Iterator[Path]:
    """A tmpfs that holds one checkpoint of the pico run and its small files, not a second one beside it (root only:
    skipped where mounting is not allowed)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    size = (reference_runs["ijepa"] / "checkpoint.safetensors").stat().st_size
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={(3 * size // 2 + 64 * 1024) // 1024}k", "tmpfs",
                              str(disk)], capture_output=True, check=False) if os.geteuid() == 0 else None
    if mounted is None or mounted.returncode:
        pytest.skip("mounting a small tmpfs needs root (the injected ENOSPC tests cover the same code)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_full_file_system_stops_the_run_at_a_named_checkpoint(
        reference_runs: dict[str, Path], fmnist_root: Path, tmp_path: Path, small_disk: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """On a real full file system the second checkpoint fails: one line, the first checkpoint intact, no temporary
    file; grown, the file system takes the rest of the run, which ends like the uninterrupted one."""
    run = small_disk / "run"
    assert main(["pretrain", str(_config(tmp_path, fmnist_root)), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"could not write {run / 'checkpoint.safetensors'} (needs " in err
    assert "No space left on device, at step 4; the last good checkpoint" in err and ", step 2) is intact" in err
    assert not list(run.glob(".*.tmp"))
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    assert main(["pretrain", "--resume", str(run)]) == 0
    _assert_consistent(run, 8)
    _equal_to(run, reference_runs["ijepa"])
