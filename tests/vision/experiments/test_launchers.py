"""The experiment launchers: options fail at load time naming the field; a sweep sent through submitit (a real
one-node SLURM where its daemons run here, else submitit's local executor, with a warning saying why) names a
failed job with its log, runs nothing finished again, and a job signalled mid-training checkpoints, is requeued and
resumes bit-identically: losses and summary equal the local run's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from one_node_slurm import start_cluster

from jepalab.cli import main
from jepalab.vision.experiments.launchers import LaunchOptions, launch_options
from jepalab.vision.experiments.launchers.registry import THREAD_VARIABLES, worker_threads
from jepalab.vision.training.checkpoint import read_record

TINY_EVAL = ["eval.train_images=64", "eval.test_images=32", "eval.lidar_images=8", "eval.lidar_views=2",
             "eval.readouts=[]"]
SWEEP = ["context-size", "dim=32", "depth=1", "epochs=8", "train_images=128", "global_batch=16", "snapshots=1",
         "context_scales=[[0.85, 1.0]]", "device=cpu", *TINY_EVAL]


def test_options_fail_at_load_time_naming_the_field() -> None:
    with pytest.raises(ValueError, match="launcher 'local' takes no partition"):
        LaunchOptions(partition="gpu")
    with pytest.raises(ValueError, match="launcher must be one of"):
        launch_options({"launcher": "pbs"})
    with pytest.raises(ValueError, match="time_min must be >= 1"):
        launch_options({"launcher": "slurm", "time_min": 0})
    with pytest.raises(ValueError, match="takes no detach"):
        launch_options({"launcher": "submitit-local", "detach": True})


def test_worker_processes_get_their_share_of_threads_unless_the_user_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process started inside worker_threads(1) sees 1 in every thread variable the user left unset (numpy's BLAS
    of two --jobs 2 workers would otherwise take 2 threads each on 2 cores); the user's own value is kept; all are
    restored after."""
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    child = [sys.executable, "-c", f"import os; print([os.environ.get(n) for n in {THREAD_VARIABLES!r}])"]
    with worker_threads(1):
        seen = subprocess.run(child, capture_output=True, text=True, check=True).stdout.strip()
    assert seen == str(["1" if name != "MKL_NUM_THREADS" else "3" for name in THREAD_VARIABLES])
    assert [os.environ.get(name) for name in THREAD_VARIABLES] == [None, None, "3"]


def test_a_job_out_of_squeue_without_a_result_is_waited_for_in_case_it_is_being_requeued(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A requeued job leaves squeue while its old step is killed: out of the queue without its result pickle, a job
    has ended only after the grace period (then it is neither waited for nor adopted); with its result, at once."""
    from jepalab.vision.experiments.launchers import submitit_array

    class Clock:
        now = 0.0

        def monotonic(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.now += seconds

    def launcher(looks: list[set[str]]) -> submitit_array.SlurmArrayLauncher:
        clock.now, queue = 0.0, iter(looks + [set()] * 1000)
        made = submitit_array.SlurmArrayLauncher(LaunchOptions(launcher="slurm", poll_s=5.0))
        monkeypatch.setattr(made, "alive", lambda jobs, say: next(queue))
        return made

    clock = Clock()
    monkeypatch.setattr(submitit_array, "time", clock)
    entry = {"run-a": {"job": "7", "result": str(tmp_path / "7_0_result.pkl")}}
    said: list[str] = []
    slurm = launcher([set(), set(), {"7"}, {"7"}])  # out, out, back (requeued, running), then out for good
    slurm._wait(entry, said.append)
    assert said == ["job 7 (run-a) ended; 0 in flight"] and clock.now == 20.0 + slurm.ended_grace_s
    assert launcher([set(), set(), {"7"}])._queued(entry, said.append) == {"7"}  # back within the grace: adopted
    assert "out of the queue without a result: waiting up to 120 s" in said[-1]
    assert launcher([])._queued(entry, said.append) == set() and clock.now == slurm.ended_grace_s
    (tmp_path / "7_0_result.pkl").write_bytes(b"")  # the job wrote its outcome: ended, no waiting
    launcher([])._wait(entry, said.append)
    assert clock.now == 0.0 and launcher([])._queued(entry, said.append) == set() and clock.now == 0.0


def test_slurm_without_submitit_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit raises ImportError
    assert main(["experiment", *SWEEP, "--launcher", "slurm", "--out", str(tmp_path)]) == 2
    assert "pip install 'jepalab[slurm]'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def submitit_launcher() -> Iterator[str]:
    """"slurm", with SLURM_CONF naming a one-node cluster started for these tests; where its daemons cannot run,
    "submitit-local" and a warning with the reason."""
    pytest.importorskip("submitit", reason="submitit is not installed (pip install 'jepalab[slurm]')")
    folder = Path(tempfile.mkdtemp(prefix="jepalab-slurm-"))
    cluster, why = start_cluster(folder)
    if cluster is None:
        warnings.warn(f"SLURM cannot run here ({why}); the launcher is tested through submitit's local executor",
                      stacklevel=1)
        yield "submitit-local"
    else:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLURM_CONF", cluster.env["SLURM_CONF"])
            try:
                yield "slurm"
            finally:
                cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _training(run: Path) -> bool:
    """Whether the run's trainer has logged a whole record (the diagnostics before step 0)."""
    path = run / "metrics.jsonl"
    return path.is_file() and path.read_text().endswith("\n")


def _scheduler_log(job_log: str) -> str:
    """What to read when a cluster command failed: the job's stderr and the SLURM controller's log, last lines."""
    conf = os.environ.get("SLURM_CONF")
    paths = [Path(job_log), *([Path(conf).parent / "slurmctld.log"] if conf else [])]
    return "\n".join(f"--- {path}:\n" + "\n".join(path.read_text().splitlines()[-30:]) for path in paths
                     if path.is_file())


def _preempt(launcher_name: str, job: str, run: Path) -> None:
    """Send the preemption signal to the run's job: SLURM's ``scancel --signal=USR2`` (then, once the job is
    requeued and the node has finished its first run, lift SLURM's fixed 120 s hold on requeued jobs: a restart while
    the old run is still being cleaned up can fail with "Job credential revoked" on a busy machine), or USR2 to the
    local executor's training process."""
    if launcher_name != "slurm":
        os.kill(json.loads((run / "status.json").read_text())["pid"], signal.SIGUSR2)
        return
    subprocess.run(["scancel", "--signal=USR2", job], check=True)

    def requeued() -> bool:
        queue = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, check=False)
        return queue.stdout.startswith("PENDING")

    def node_idle() -> bool:
        return subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                              check=False).stdout.strip() == "idle"

    _until(requeued, 60, f"job {job} to be requeued")
    _until(node_idle, 60, f"the node to finish job {job}'s first run")
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)


def _losses(run: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if "loss" in r]


def test_a_sweep_through_submitit_equals_the_local_run(submitit_launcher: str, tiny_fmnist: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Two 64-step runs on the same threads, locally in two processes; then as a job array whose first job fails
    (a broken config.yaml in its folder) and is named with its log; then, repaired, that run alone (on SLURM
    submitted with --detach, its job adopted by the same command run again), signalled as it starts training: it
    checkpoints, is requeued and resumes. Losses, results.csv, curves.csv and summary.json equal the local run's."""
    sweep = [*SWEEP, f"data_root={tiny_fmnist}"]
    threads = max(1, len(os.sched_getaffinity(0)) // 2)  # what --jobs 2 gives each local run
    assert main(["experiment", *sweep, "--out", str(tmp_path / "local"), "--jobs", "2"]) == 0
    first = sorted(p.name for p in (tmp_path / "local" / "runs").iterdir() if p.is_dir())[0]
    run = tmp_path / "cluster" / "runs" / first
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("seed: -1\n")
    cluster = ["experiment", *sweep, "--out", str(tmp_path / "cluster"), "--launcher", submitit_launcher,
               "--cpus-per-run", str(threads), "--time", "10", "--poll", "0.5"]
    capsys.readouterr()
    assert main(cluster) == 2
    error = capsys.readouterr().err
    assert "1 of 2 run(s) did not finish" in error and f"{first}: job " in error and "ConfigError" in error
    log = Path(error.split("; log ")[1].split()[0])
    assert log.is_file() and "seed must be >= 0" in log.read_text()

    shutil.rmtree(run)
    detach = submitit_launcher == "slurm"  # submitit's local jobs end with their command: no --detach there
    if detach:
        assert main([*cluster, "--detach"]) == 0
        assert "1 job(s) submitted, 0 adopted" in capsys.readouterr().out  # the finished run is not run again
        assert not (tmp_path / "cluster" / "summary.json").exists()
    codes: list[int] = []
    command = threading.Thread(target=lambda: codes.append(main(cluster)), daemon=True)  # a failure may not hang
    command.start()
    _until(lambda: _training(run), 90, "the repaired run's job to start training")
    job = json.loads((run.parent / "jobs" / "launched.json").read_text())[first]
    _preempt(submitit_launcher, job["job"], run)
    command.join(timeout=120)
    assert codes == [0], _scheduler_log(job["log"])
    assert ("0 job(s) submitted, 1 adopted" if detach else "1 job(s) submitted, 0 adopted") in capsys.readouterr().out
    output = Path(job["log"]).with_suffix(".out").read_text()
    assert "stop requested: ended this session at step" in output and f"resumed {run} at step" in output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["finished"] and summary["steps_this_session"] < summary["total_steps"]
    assert _losses(run) == _losses(tmp_path / "local" / "runs" / first)
    for name in ("results.csv", "curves.csv", "summary.json"):
        assert (tmp_path / "cluster" / name).read_text() == (tmp_path / "local" / name).read_text(), name


def test_the_stop_signal_checkpoints_the_runs_in_training_and_starts_no_other(tiny_fmnist: Path,
                                                                            tmp_path: Path) -> None:
    """SIGUSR2 to ``jepalab experiment --jobs 2`` (4 runs): both runs in training end their session at the next
    step with a checkpoint at that step, the other two never start, no summary is written, the command exits 0."""
    items = [item if not item.startswith("epochs=") else "epochs=32" for item in SWEEP]
    command = [sys.executable, "-m", "jepalab", "experiment", *items, "seeds=[0, 1]", f"data_root={tiny_fmnist}",
               "--jobs", "2", "--out", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    runs = tmp_path / "runs"

    def two_training() -> bool:
        logged = [run for run in runs.glob("*/metrics.jsonl") if '"loss"' in run.read_text()]
        return len(logged) == 2 or process.poll() is not None

    _until(two_training, 120, "two runs to log a loss")
    process.send_signal(signal.SIGUSR2)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 0, output
    assert "stopped on request (SIGUSR2)" in output and output.count("stop requested: ended this session") == 2
    started = [run for run in runs.iterdir() if (run / "config.yaml").is_file()]
    assert len(started) == 2 and len([run for run in runs.iterdir() if run.is_dir()]) == 2
    for run in started:
        summary = json.loads((run / "summary.json").read_text())
        assert 0 < summary["steps_done"] < summary["total_steps"] == 256
        assert read_record(run / "checkpoint.safetensors")["step"] == summary["steps_done"]
        assert not (run / "eval.json").exists()
    assert not (tmp_path / "summary.json").exists()
