"""``--launcher local`` (the default): every run's job in this process one after another, or with ``--jobs N``
in N processes at once, each on its share of the CPU cores."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from jepalab.vision.experiments.launchers.registry import Launcher, RunWork, Say, register_launcher

if TYPE_CHECKING:
    from jepalab.vision.experiments.settings import ExperimentSettings

__all__ = ["LocalLauncher"]


@register_launcher
class LocalLauncher(Launcher):
    """Runs the jobs on this machine, ``settings.jobs`` at a time."""

    name = "local"

    def launch(self, work: list[RunWork], store: Path, settings: ExperimentSettings, say: Say) -> int:
        """Every job to its end (finished runs only evaluate what is missing); returns the images trained."""
        from jepalab.vision.experiments.store import run_job

        if settings.jobs == 1:
            images = 0
            for index, item in enumerate(work, 1):
                say(f"[{index}/{len(work)}] {item.cfg.method} seed {item.cfg.seed} → {item.run}")
                images += run_job(item, settings)
            return images
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, cores // settings.jobs)
        say(f"{len(work)} runs, {settings.jobs} at a time in their own processes ({threads} thread(s) each)")
        context = multiprocessing.get_context("spawn")  # CUDA and OpenMP state must not be forked
        with ProcessPoolExecutor(settings.jobs, mp_context=context) as pool:
            pending = [pool.submit(run_job, item, settings, threads) for item in work]
            return sum(job.result() for job in pending)
