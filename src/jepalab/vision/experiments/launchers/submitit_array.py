"""``--launcher slurm``: every run that is not finished and evaluated becomes one job of a submitit job array
(``--partition``, ``--gpus-per-run``, ``--cpus-per-run``, ``--time``, ``--array-parallelism``); the command waits
for them, or with ``--detach`` returns at once and the same command later adopts the jobs still in the queue,
resubmits the runs whose jobs ended unfinished and, once every run is done, writes the results.

A job that SLURM signals before its time limit or a preemption (USR2, :mod:`.cluster_job`) ends training at the
next step with a checkpoint and is requeued; its next start resumes the same run folder bit-identically.
``STORE/jobs/`` holds the job scripts, pickles and logs (``<job>/<job>_0_log.err``) and ``launched.json`` (run
folder → job id and log), which a later command reads. ``submitit-local`` sends the same jobs to submitit's local
executor (processes of this machine), to try the cluster path without a cluster. submitit is imported only here,
when a job is submitted: ``pip install 'jepalab[slurm]'``."""

from __future__ import annotations

import contextlib
import getpass
import json
import pickle
import subprocess
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jepalab.rundir import write_json
from jepalab.vision.experiments.launchers.cluster_job import ClusterJob
from jepalab.vision.experiments.launchers.registry import (
    JobsFailed,
    Launcher,
    LaunchOptions,
    RunWork,
    Say,
    register_launcher,
    worker_threads,
)

if TYPE_CHECKING:
    from jepalab.vision.experiments.settings import ExperimentSettings

__all__ = ["JOBS", "RECORD", "SlurmArrayLauncher", "SubmititLocalLauncher"]

JOBS = "jobs"
RECORD = "launched.json"
MAX_REQUEUES = 100  # time limits a run may span (submitit's max_num_timeout); preemptions do not count
ENDED = ("BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "OUT_OF_MEMORY", "TIMEOUT")
"""squeue states of a job that will not run again (a preempted or node-failed job may be requeued: still alive)."""


def _submitit() -> Any:
    """The submitit module, or a ``ValueError`` saying how to install it."""
    try:
        import submitit
    except ImportError as error:
        raise ValueError("--launcher slurm needs submitit: pip install 'jepalab[slurm]'") from error
    return submitit


def _why_unfinished(entry: dict[str, str]) -> str:
    """How a job that left its run unfinished ended, from its result pickle."""
    path = Path(entry["result"])
    if not path.is_file():
        return "ended without a result (cancelled, killed, out of memory or out of requeues)"
    with open(path, "rb") as handle:
        outcome, detail = pickle.load(handle)
    if outcome == "error":
        return "raised " + next((line for line in reversed(str(detail).splitlines()) if line.strip()), "an error")
    return "returned without finishing its run"


@register_launcher
class SlurmArrayLauncher(Launcher):
    """One job per run in a SLURM job array through submitit; preempted jobs checkpoint and are requeued."""

    name = "slurm"
    cluster: ClassVar[str] = "slurm"  # submitit's executor
    ended_grace_s: ClassVar[float] = 120.0  # how long a job without a result must stay out of squeue to have ended
    takes = ("partition", "gpus_per_run", "cpus_per_run", "time_min", "array_parallelism", "detach", "poll_s")

    def __init__(self, options: LaunchOptions) -> None:
        super().__init__(options)
        self.submitted: dict[str, Any] = {}  # job id → submitit job, of this command

    def launch(self, work: list[RunWork], store: Path, settings: ExperimentSettings, say: Say) -> int | None:
        """Submit, adopt or resubmit the jobs of the unfinished runs, then wait (unless detached); see the module."""
        from jepalab.vision.experiments.store import complete, steps_done

        todo = [item for item in work if not complete(item.run, settings)]
        if not todo:
            say(f"all {len(work)} runs are finished and evaluated: no job to submit")
            return 0
        folder, before = store / JOBS, {item.run: steps_done(item.run) for item in todo}
        record = self._record(folder)
        alive = self._queued({item.run.name: record[item.run.name] for item in todo if item.run.name in record}, say)
        fresh = [item for item in todo if record.get(item.run.name, {}).get("job") not in alive]
        for item in fresh:
            if item.run.name in record:
                entry = record[item.run.name]
                say(f"{item.run.name}: job {entry['job']} {_why_unfinished(entry)} (log {entry['log']}); "
                    "submitting it again")
        if fresh:
            record.update(self._submit(fresh, folder, settings))
            write_json(folder / RECORD, record)
        jobs = {item.run.name: record[item.run.name]["job"] for item in todo}
        say(f"{len(fresh)} job(s) submitted, {len(todo) - len(fresh)} adopted from an earlier command "
            f"({', '.join(jobs.values())}); logs in {folder}")
        if self.options.detach:
            say("detached: run the same command again to collect the finished runs and write the results")
            return None
        self._wait({name: record[name] for name in jobs}, say)
        failed = [item for item in todo if not complete(item.run, settings)]
        if failed:
            lines = [f"  {item.run.name}: job {record[item.run.name]['job']} {_why_unfinished(record[item.run.name])}"
                     f"; log {record[item.run.name]['log']}" for item in failed]
            raise JobsFailed(f"{len(failed)} of {len(todo)} run(s) did not finish (the same command submits them "
                             "again; finished runs are kept):\n" + "\n".join(lines))
        return sum((steps_done(item.run) - before[item.run]) * item.cfg.optim.global_batch for item in todo)

    def _record(self, folder: Path) -> dict[str, dict[str, str]]:
        """launched.json: run folder name → the job last submitted for it (id, log, result pickle)."""
        path = folder / RECORD
        return json.loads(path.read_text()) if path.is_file() else {}

    def _parameters(self) -> dict[str, Any]:
        """submitit's executor parameters from the launch options."""
        o = self.options
        parameters: dict[str, Any] = {"name": "jepalab", "timeout_min": o.time_min, "nodes": 1,
                                      "tasks_per_node": max(1, o.gpus_per_run),
                                      "slurm_array_parallelism": o.array_parallelism}
        optional = {"slurm_partition": o.partition, "gpus_per_node": o.gpus_per_run or None,
                    "cpus_per_task": o.cpus_per_run}
        return {**parameters, **{key: value for key, value in optional.items() if value is not None}}

    def _submit(self, work: list[RunWork], folder: Path, settings: ExperimentSettings) -> dict[str, dict[str, str]]:
        """One array of jobs, one per run; their record entries."""
        submitit = _submitit()
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster=self.cluster,
                                         **{f"{self.cluster}_max_num_timeout": MAX_REQUEUES})
        executor.update_parameters(**self._parameters())
        threads = worker_threads(self.options.cpus_per_run) if self.options.cpus_per_run else contextlib.nullcontext()
        with threads, executor.batch():  # the jobs' environment is this process's at submission
            jobs = [executor.submit(ClusterJob(), item, settings, self.options.cpus_per_run) for item in work]
        self.submitted.update({job.job_id: job for job in jobs})
        return {item.run.name: {"job": job.job_id, "log": str(job.paths.stderr), "result": str(job.paths.result_pickle)}
                for item, job in zip(work, jobs)}

    def alive(self, jobs: Collection[str], say: Say) -> set[str]:
        """The jobs among ``jobs`` still pending, running or requeued (squeue; a failed query counts all alive)."""
        if not jobs:
            return set()
        try:
            listed = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T", "-u", getpass.getuser()],
                                    capture_output=True, text=True, timeout=60, check=True).stdout
        except (OSError, subprocess.SubprocessError) as error:
            say(f"squeue failed ({error}); taking every job for alive until the next look")
            return set(jobs)
        states = dict(line.split(maxsplit=1) for line in listed.splitlines() if line.strip())
        return {job for job in jobs if job in states and states[job].strip() not in ENDED}

    def _gone(self, entries: dict[str, dict[str, str]], say: Say, out_since: dict[str, float]) -> set[str]:
        """The runs of ``entries`` (run name → record entry) whose jobs have ended for good: out of the queue with
        their result pickle written, or out of it for ``ended_grace_s`` since ``out_since`` (updated here): a job
        being requeued leaves squeue while its old step is killed (SLURM's KillWait, 30 s by default)."""
        alive, now = self.alive([entry["job"] for entry in entries.values()], say), time.monotonic()
        gone = set()
        for name, entry in entries.items():
            if entry["job"] in alive:
                out_since.pop(name, None)
            elif Path(entry["result"]).is_file() or now - out_since.setdefault(name, now) >= self.ended_grace_s:
                gone.add(name)
        return gone

    def _queued(self, entries: dict[str, dict[str, str]], say: Say) -> set[str]:
        """The jobs of ``entries`` still queued or being requeued (to adopt, not to submit again); waits while a job
        is out of the queue without a result, up to ``ended_grace_s``."""
        out_since: dict[str, float] = {}
        told = False
        while True:
            gone = self._gone(entries, say, out_since)
            undecided = sorted(set(out_since) - gone)  # out of the queue, no result yet, within the grace period
            if not undecided:
                return {entry["job"] for name, entry in entries.items() if name not in gone}
            if not told:
                say(f"job(s) {', '.join(entries[n]['job'] for n in undecided)} out of the queue without a result: "
                    f"waiting up to {self.ended_grace_s:.0f} s in case they are being requeued")
                told = True
            time.sleep(self.options.poll_s)

    def _wait(self, entries: dict[str, dict[str, str]], say: Say) -> None:
        """Until every job of ``entries`` (run name → record entry) has ended for good (:meth:`_gone`)."""
        remaining, out_since = dict(entries), {}
        while remaining:
            for name in sorted(self._gone(remaining, say, out_since)):
                job = remaining.pop(name)["job"]
                say(f"job {job} ({name}) ended; {len(remaining)} in flight")
            if remaining:
                time.sleep(self.options.poll_s)


@register_launcher
class SubmititLocalLauncher(SlurmArrayLauncher):
    """The same jobs through submitit's local executor: processes of this machine, requeued on the same signal."""

    name = "submitit-local"
    cluster = "local"
    ended_grace_s = 0.0  # a finished process does not come back
    takes = ("gpus_per_run", "cpus_per_run", "time_min", "poll_s")

    def alive(self, jobs: Collection[str], say: Say) -> set[str]:
        """The jobs among ``jobs`` this command started whose processes still run."""
        return {job for job in jobs if job in self.submitted and not self.submitted[job].done()}
