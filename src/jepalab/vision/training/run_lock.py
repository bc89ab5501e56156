"""One writer per run folder: ``RUN/.lock``, held with the operating system's advisory file lock (``fcntl.flock``)
by every command that writes a run (``jepalab pretrain``, ``jepalab eval``, ``jepalab experiment`` for each run it
trains). The kernel releases the lock when its holder's process ends, however it ends, so a SIGKILLed trainer's run
can be resumed at once. The file itself stays; it holds its last holder's pid, host, command and start time as JSON,
for the message another writer gets. Readers (``jepalab runs``, the report) never take the lock and never wait.

Within one process the lock is re-entrant: ``jepalab experiment`` holds a run while the trainer and the evaluation it
calls take it again. On a network file system, Linux emulates ``flock`` with the server's byte-range locks (NFS) so
that processes on different hosts exclude each other too."""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from jepalab.rundir import WriteFailed, command_line

__all__ = ["LOCK", "RunInUse", "RunLock", "lock_holder"]

LOCK = ".lock"
_HELD: dict[Path, int] = {}  # run folder (resolved) → the descriptor through which this process holds its lock


class RunInUse(OSError):
    """Another process holds the run's lock; the message names the run, the holder and how to wait or stop it."""


def lock_holder(run: str | Path) -> dict[str, Any] | None:
    """What ``RUN/.lock`` says of its last holder (pid, host, command, since), or None when it names none. This
    reads the file only: whether the lock is held now, only taking it can tell."""
    try:
        return json.loads((Path(run) / LOCK).read_text()) or None
    except (OSError, ValueError):
        return None


def _in_use(run: Path, holder: dict[str, Any] | None) -> str:
    """Who holds ``run``: "RUN is in use by `jepalab pretrain` (pid 12 on host h, since ...)"."""
    if holder is None:
        return f"{run} is in use by another process (its lock file {run / LOCK} names none yet)"
    return (f"{run} is in use by `{holder.get('purpose', 'another command')}` (pid {holder['pid']} on host "
            f"{holder['host']}, since {holder.get('since', '?')})")


def _advice(run: Path, holder: dict[str, Any] | None) -> str:
    """How to wait for the holder of ``run`` or stop it."""
    stop = ""
    if holder is not None:
        stop = f" or stop it (kill {holder['pid']}" + (")" if holder["host"] == socket.gethostname()
                                                      else f" on {holder['host']})")
    return f"wait for it to end (`jepalab runs {run.parent}` shows its progress){stop}, then run this command again"


class RunLock:
    """Context manager holding ``run``'s lock for ``purpose`` (e.g. "jepalab pretrain"). When another process holds
    it, :class:`RunInUse` is raised at once, or with ``wait`` given, ``wait(message)`` is called once and the lock
    is waited for. ``enabled=False`` does nothing (the ranks of a DDP run other than rank 0)."""

    def __init__(self, run: str | Path, purpose: str, wait: Callable[[str], None] | None = None,
                 enabled: bool = True) -> None:
        self.run, self.purpose, self.wait, self.enabled = Path(run), purpose, wait, enabled
        self.key = self.run.resolve()
        self.fd: int | None = None  # set when this context took the lock (not when it was already held here)

    def __enter__(self) -> RunLock:
        if not self.enabled or self.key in _HELD:
            return self
        path = self.run / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise WriteFailed.of(path, None, error) from error
        try:
            self._acquire(fd)
        except BaseException:
            os.close(fd)
            raise
        self.fd, _HELD[self.key] = fd, fd
        self._sign(fd)
        return self

    def _acquire(self, fd: int) -> None:
        """Take the lock on ``fd``: at once, or after waiting for its holder when ``wait`` is set."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(self.run)
            if self.wait is None:
                raise RunInUse(f"{_in_use(self.run, holder)}: {_advice(self.run, holder)}") from None
            self.wait(f"{_in_use(self.run, holder)}: waiting for it to end")
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as error:
            raise OSError(error.errno, f"cannot lock {self.run / LOCK}: {error.strerror} (the file system of "
                                       f"{self.run} takes no file locks; keep runs on one that does)") from error

    def _sign(self, fd: int) -> None:
        """Write this process's pid, host, purpose, command and start time into the lock file."""
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose,
                  "command": command_line(),
                  "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
        with contextlib.suppress(OSError):  # a full disk: the lock holds all the same, its record names no holder
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        del _HELD[self.key]
        os.ftruncate(fd, 0)  # before unlocking: the next holder's record must not be erased
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
