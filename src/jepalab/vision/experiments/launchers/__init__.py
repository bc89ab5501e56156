"""How an experiment's runs are executed (``jepalab experiment ... --launcher NAME``), one module per launcher,
registered with :func:`register_launcher` and discovered on first use:

- ``local`` (:mod:`.local`): processes on this machine, ``--jobs`` at once (the default);
- ``slurm`` (:mod:`.submitit_array`): one job of a submitit job array per run on a SLURM cluster; a preempted or
  timed-out job checkpoints and is requeued, ``--detach`` returns at once and the same command later collects;
- ``submitit-local``: the same jobs through submitit's local executor (the cluster path on one machine).
"""

from jepalab.vision.experiments.launchers.registry import (
    JobsFailed,
    Launcher,
    LaunchOptions,
    RunWork,
    available_launchers,
    launch_options,
    launcher,
    register_launcher,
)

__all__ = ["JobsFailed", "LaunchOptions", "Launcher", "RunWork", "available_launchers", "launch_options", "launcher",
           "register_launcher"]
