"""``RUN/status.json``: what a run's trainer is doing, written by rank 0 of every training session and read by
``jepalab runs``. ``running`` (with the process id, host, step and a heartbeat at most every ``HEARTBEAT_S``
seconds), then at the session's end ``finished`` (every step done), ``stopped`` (``--stop-after``, a preemption
signal, Ctrl-C) or ``failed`` (an exception, e.g. :class:`~jepalab.vision.training.loop.TrainingDiverged`, its text
in ``error``). A process killed outright leaves ``running`` behind; :func:`trainer_alive` tells the two apart."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from jepalab.rundir import WriteFailed, write_json

__all__ = ["HEARTBEAT_S", "STALE_AFTER_S", "STATUS", "RunStatus", "read_status", "trainer_alive"]

STATUS = "status.json"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0
"""A ``running`` record of another host whose heartbeat is older than this is taken for a killed trainer."""


class RunStatus:
    """Context manager of one session's status record: ``running`` on entry, the session's outcome on exit."""

    def __init__(self, run: Path, step: int, total: int, enabled: bool = True) -> None:
        self.run, self.step, self.total, self.enabled = run, step, total, enabled
        self.started = self.written = time.time()

    def _write(self, state: str, error: str | None = None) -> None:
        if self.enabled:
            self.written = time.time()
            write_json(self.run / STATUS, {"state": state, "step": self.step, "total": self.total, "pid": os.getpid(),
                                           "host": socket.gethostname(), "started": self.started,
                                           "updated": self.written, "error": error})

    def __enter__(self) -> RunStatus:
        self._write("running")
        return self

    def beat(self, step: int) -> None:
        """Note that ``step`` steps are done; rewrite the record if the last write is ``HEARTBEAT_S`` old."""
        self.step = step
        if time.time() - self.written >= HEARTBEAT_S:
            self._write("running")

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            if isinstance(error, Exception):
                self._write("failed", f"{type(error).__name__}: {error}")
            else:
                self._write("finished" if error is None and self.step == self.total else "stopped")
        except WriteFailed:
            if error is None:
                raise
            # the disk that ended the session refuses its status too: the session's own error says more


def read_status(run: Path) -> dict[str, Any] | None:
    """The run's status record, or None when its trainer wrote none (runs from before status records)."""
    path = run / STATUS
    return json.loads(path.read_text()) if path.is_file() else None


def trainer_alive(status: dict[str, Any], now: float | None = None, stale_after: float = STALE_AFTER_S) -> bool:
    """Whether the trainer of a ``running`` record still runs: on this host, its process exists; on another host
    (a cluster node), its heartbeat is younger than ``stale_after`` seconds."""
    if status["host"] != socket.gethostname():
        return (time.time() if now is None else now) - float(status["updated"]) < stale_after
    try:
        os.kill(int(status["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
