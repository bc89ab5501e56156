"""Progress bars that stay readable when stderr is not a terminal (a log file, a pipe, CI).

On a terminal :func:`progress_bar` is a plain tqdm bar. Elsewhere it writes whole lines, never carriage returns
or cursor moves, at most every ``plain_interval`` seconds plus one final line, so nested bars piped to a file
read as a log instead of a garbled redraw.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

__all__ = ["progress_bar"]


class _LineBar(tqdm):
    """tqdm writing one full line per refresh (no ``\\r``, no cursor movement) and a final line on close."""

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg == "":  # tqdm asks to clear the bar: nothing was drawn in place, so nothing to clear
            return True
        self.fp.write((self.__str__() if msg is None else msg) + "\n")
        getattr(self.fp, "flush", lambda: None)()
        return True

    def clear(self, nolock: bool = False) -> None:
        return None

    def moveto(self, n: int) -> None:
        return None

    def close(self) -> None:
        if self.disable:
            return
        if hasattr(self, "last_print_t"):
            self.display()
        self.disable = True
        self._decr_instances(self)


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    disable: bool = False,
    file: Any = None,
    plain_interval: float = 30.0,
    **kwargs: Any,
) -> tqdm:
    """A tqdm bar on ``file`` (default stderr); when that is not a TTY, plain lines every ``plain_interval`` s."""
    stream = sys.stderr if file is None else file
    if _is_tty(stream):
        return tqdm(iterable, disable=disable, file=stream, **kwargs)
    kwargs["mininterval"] = max(float(kwargs.get("mininterval", 0.1)), plain_interval)
    kwargs["maxinterval"] = max(float(kwargs.get("maxinterval", 10.0)), plain_interval)
    kwargs.setdefault("ascii", True)
    kwargs["dynamic_ncols"] = False  # no terminal to measure
    return _LineBar(iterable, disable=disable, file=stream, **kwargs)
