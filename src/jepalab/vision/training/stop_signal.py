"""A signal that asks a trainer to stop: while a :class:`StopSignal` is active its signal only sets a flag, which
``pretrain``'s ``should_stop`` reads after every step, so the session ends at the next step with a checkpoint and
nothing trained is lost (a kill loses everything since the last checkpoint)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

__all__ = ["StopSignal"]


class StopSignal:
    """Context manager: while active, ``signum`` sets :meth:`requested` and calls ``then`` (e.g. to pass the request
    on to worker processes); :meth:`hand_over` gives the signal to the handler it replaced. Signal handlers belong
    to the main thread: elsewhere it installs nothing and is never requested."""

    def __init__(self, signum: int, then: Callable[[], None] | None = None) -> None:
        self.signum = signum
        self.then = then
        self.received = False
        self.previous: Any = None
        self.installed = False

    def __enter__(self) -> StopSignal:
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:
            self.previous = signal.signal(self.signum, self._note)
        return self

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        if self.then is not None:
            self.then()

    def requested(self) -> bool:
        """Whether the signal arrived (the trainer polls this after every step)."""
        return self.received

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.installed:
            signal.signal(self.signum, self.previous)

    def hand_over(self) -> None:
        """Run the replaced handler for the signal that arrived (submitit's requeues the job and exits)."""
        if callable(self.previous):
            self.previous(self.signum, None)
