"""``--launcher local`` (the default): every run's job in this process one after another, or with ``--jobs N``
in N processes at once, each on its share of the CPU cores.

SIGUSR2 to the command (``pkill -USR2 -f 'jepalab experiment'``) stops it without losing training: each run in
training ends its session at the next step with a checkpoint, no further run starts, no summary is written, and the
same command later resumes every run where it stopped. A run being evaluated finishes its evaluation first."""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from jepalab.vision.experiments.launchers.registry import Launcher, RunWork, Say, register_launcher, worker_threads
from jepalab.vision.training.stop_signal import StopSignal

if TYPE_CHECKING:
    from jepalab.vision.experiments.settings import ExperimentSettings

__all__ = ["STOP_SIGNAL", "LocalLauncher"]

STOP_SIGNAL = signal.SIGUSR2
_WORKER_STOP = StopSignal(STOP_SIGNAL)  # a pool worker's own, for its whole life (see _start_worker)


def _start_worker() -> None:
    """In each pool worker: the stop signal only sets a flag, whether the worker is training, evaluating or idle
    (an idle worker would otherwise die of it and break the pool)."""
    _WORKER_STOP.__enter__()


def _worker_job(item: RunWork, settings: ExperimentSettings, threads: int) -> int:
    from jepalab.vision.experiments.store import run_job

    return run_job(item, settings, threads, should_stop=_WORKER_STOP.requested)


def _pass_on(jobs: list[Future[int]]) -> None:
    """Cancel the jobs not started yet and pass the stop signal on to the workers (this process's only children:
    its pool trains nothing itself)."""
    for job in jobs:
        job.cancel()
    for child in multiprocessing.active_children():
        os.kill(child.pid, STOP_SIGNAL)


def _images(job: Future[int]) -> int:
    """The images a job trained; 0 for a job the stop signal cancelled before it started."""
    try:
        return job.result()
    except CancelledError:
        return 0


@register_launcher
class LocalLauncher(Launcher):
    """Runs the jobs on this machine, ``settings.jobs`` at a time."""

    name = "local"

    def launch(self, work: list[RunWork], store: Path, settings: ExperimentSettings, say: Say) -> int | None:
        """Every job to its end (finished runs only evaluate what is missing); returns the images trained, or None
        when the stop signal ended the command first."""
        from jepalab.vision.experiments.store import run_job

        images, jobs = 0, []
        with StopSignal(STOP_SIGNAL, then=(lambda: _pass_on(jobs)) if settings.jobs > 1 else None) as stop:
            if settings.jobs == 1:
                for index, item in enumerate(work, 1):
                    if stop.received:
                        break
                    say(f"[{index}/{len(work)}] {item.cfg.method} seed {item.cfg.seed} → {item.run}")
                    images += run_job(item, settings, should_stop=stop.requested)
            else:
                cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
                threads = max(1, cores // settings.jobs)
                say(f"{len(work)} runs, {settings.jobs} at a time in their own processes ({threads} thread(s) each)")
                context = multiprocessing.get_context("spawn")  # CUDA and OpenMP state must not be forked
                with worker_threads(threads), ProcessPoolExecutor(settings.jobs, mp_context=context,
                                                                  initializer=_start_worker) as pool:
                    jobs += [pool.submit(_worker_job, item, settings, threads) for item in work]
                    images = sum(_images(job) for job in jobs)
        if stop.received:
            say(f"stopped on request ({signal.Signals(STOP_SIGNAL).name}) after {images} images: the runs in "
                "training were checkpointed at their last step; the same command resumes them")
            return None
        return images
