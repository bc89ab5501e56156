"""Launcher registry: name → :class:`Launcher`, the way an experiment's runs are executed. Every module of
``jepalab.vision.experiments.launchers`` is imported on first use, so a launcher is one file holding a
:class:`Launcher` subclass decorated with :func:`register_launcher`. :class:`LaunchOptions` holds every launcher's
settings (``jepalab experiment --launcher NAME ...``); a launcher reads only the ones it lists in ``takes``, and
setting another is an error at load time."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jepalab.config import from_dict, param
from jepalab.discovery import import_plugins

if TYPE_CHECKING:
    from jepalab.vision.experiments.settings import ExperimentSettings
    from jepalab.vision.methods.config import PretrainConfig

__all__ = ["THREAD_VARIABLES", "JobsFailed", "LaunchOptions", "Launcher", "RunWork", "available_launchers",
           "launch_options", "launcher", "register_launcher", "worker_threads"]

Say = Callable[[str], None]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def worker_threads(threads: int) -> Iterator[None]:
    """Processes started inside see ``threads`` in each of :data:`THREAD_VARIABLES` the user has not set: their
    evaluation's BLAS (numpy's, read when it loads) and torch's default stay on the worker's share of the cores, as
    its training does; restored on exit."""
    unset = [name for name in THREAD_VARIABLES if name not in os.environ]
    os.environ.update({name: str(threads) for name in unset})
    try:
        yield
    finally:
        for name in unset:
            os.environ.pop(name, None)


class JobsFailed(ValueError):
    """Runs whose jobs ended without finishing them; the message names each with its job's log."""


@dataclass(frozen=True)
class RunWork:
    """One run of the store to bring to trained, evaluated and measured."""

    run: Path  # its folder in the store
    cfg: PretrainConfig
    measures: tuple[str, ...] = ()  # experiments whose measure_run it needs


@dataclass(frozen=True)
class LaunchOptions:
    """How an experiment's runs are executed: the launcher and its settings."""

    launcher: str = param("local", help="local (processes on this machine, --jobs at once), slurm (one job of a "
                          "submitit job array per run) or submitit-local (the same jobs through submitit's local "
                          "executor)")
    partition: str | None = param(None, help="SLURM partition (default: the cluster's)")
    gpus_per_run: int = param(0, ge=0, help="GPUs of each run's job; more than 1: one DDP rank per GPU")
    cpus_per_run: int | None = param(None, ge=1, help="CPU cores of each run's job, its torch threads (default: "
                                     "the scheduler's, threads: the cores the job may use)")
    time_min: int = param(240, ge=1, help="time limit of each job in minutes; a job near it checkpoints and is "
                          "requeued")
    array_parallelism: int = param(64, ge=1, help="jobs of the array running at once")
    detach: bool = param(False, help="submit and return; the same command later collects the finished runs")
    poll_s: float = param(10.0, gt=0, help="seconds between looks at the jobs while waiting")
    order: str = param("planned", choices=("planned", "cheapest-first"), help="the order jobs start in: the plan's, or "
                       "cheapest first (training FLOPs): a session that ends mid-run loses the least work")

    def __post_init__(self) -> None:
        known = available_launchers()
        if self.launcher not in known:
            raise ValueError(f"launcher must be one of {sorted(known)}; got {self.launcher!r}")
        takes = known[self.launcher].takes
        foreign = [f.name for f in dataclasses.fields(self)
                   if f.name not in ("launcher", "order") and f.name not in takes
                   and getattr(self, f.name) != f.default]
        if foreign:
            raise ValueError(f"launcher {self.launcher!r} takes no {', '.join(foreign)} (it takes: "
                             f"{', '.join(takes) or 'nothing'})")


def launch_options(values: dict[str, Any]) -> LaunchOptions:
    """:class:`LaunchOptions` from ``values`` (e.g. ``vars(args)``): its fields that are not None, validated."""
    names = {f.name for f in dataclasses.fields(LaunchOptions)}
    return from_dict(LaunchOptions, {k: v for k, v in values.items() if k in names and v is not None})


class Launcher(ABC):
    """Executes the jobs of an experiment's runs (train, evaluate, measure; :func:`~..store.run_job`)."""

    name: ClassVar[str] = ""  # ``--launcher NAME``
    takes: ClassVar[tuple[str, ...]] = ()  # the LaunchOptions fields it reads

    def __init__(self, options: LaunchOptions) -> None:
        self.options = options

    @abstractmethod
    def launch(self, work: list[RunWork], store: Path, settings: ExperimentSettings, say: Say) -> int | None:
        """Bring every run of ``work`` to trained, evaluated and measured; returns the images trained by this
        command's jobs, or None while runs are still in flight (a detached launch) or were stopped on request
        (checkpointed, to resume). Finished runs are not run again; a run whose job failed raises
        :class:`JobsFailed`."""


_REGISTRY: dict[str, type[Launcher]] = {}


def register_launcher(cls: type[Launcher]) -> type[Launcher]:
    """Class decorator registering ``cls`` under ``cls.name`` (names are unique)."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} sets no name")
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ValueError(f"launcher {cls.name!r} is already registered by {existing.__module__}")
    _REGISTRY[cls.name] = cls
    return cls


def available_launchers() -> dict[str, type[Launcher]]:
    """Every registered launcher class by name (imports every module of the package once)."""
    import_plugins("jepalab.vision.experiments.launchers")
    return dict(_REGISTRY)


def launcher(options: LaunchOptions) -> Launcher:
    """The launcher ``options.launcher`` names, set up with ``options``."""
    return available_launchers()[options.launcher](options)
