"""What a submitit job of :mod:`.submitit_array` runs: one run of the store trained, evaluated and measured.

submitit answers the preemption signal (USR2: SLURM sends it ``signal_delay_s`` before the time limit, and a
preemption through submitit's conventions) by calling the job's ``checkpoint`` and requeueing the job at once,
wherever the program is. During training this job takes the signal over: it only asks the trainer to stop
(``pretrain``'s ``should_stop``), the trainer ends the session at the next step with a checkpoint, and then submitit's
own handler requeues the job. The next start finds the run's checkpoint and resumes it bit-identically (steps are
pure functions of config, seed and step). A signal during evaluation requeues at once; evaluation starts over.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from jepalab.vision.training.stop_signal import StopSignal

if TYPE_CHECKING:
    from jepalab.vision.experiments.launchers.registry import RunWork
    from jepalab.vision.experiments.settings import ExperimentSettings

__all__ = ["ClusterJob"]


class ClusterJob:
    """One run as a submitit job (picklable: submitit stores it and runs it again after a requeue)."""

    def __call__(self, work: RunWork, settings: ExperimentSettings, threads: int | None) -> None:
        """Train ``work`` (``threads``: CPU threads, default the cores this job may use), then on rank 0 evaluate
        and measure it. Several tasks (one per GPU) train it as DDP ranks."""
        import submitit

        from jepalab.vision.experiments.store import claim, measure, train_and_eval, train_run, with_threads

        env = submitit.JobEnvironment()
        if env.num_tasks > 1:
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        # rank 0 waits for the run's lock: a requeued job's old step may still hold it while SLURM kills it
        with StopSignal(env._usr_sig()) as stop, claim(work.run) if env.global_rank == 0 else contextlib.nullcontext():
            train_run(with_threads(work.cfg, threads or cores), work.run, should_stop=stop.requested)
        if stop.received:
            stop.hand_over()
        if env.global_rank == 0:
            train_and_eval(work.cfg, work.run, settings)
            measure(work.run, settings, work.measures)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """What submitit stores before requeueing: this job with the same arguments (it resumes the run)."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)
