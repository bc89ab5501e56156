"""A training session's log: every record is appended to ``RUN/metrics.jsonl`` and, with ``train.tensorboard``, its
numbers are written as TensorBoard scalars into event files beside it (``tensorboard --logdir`` on a run store
shows one curve per run folder).

Scalars: every number of a step record as ``train/<key>`` (loss, lr, wd, images_per_s, the method's schedules,
...), every number of a diagnostics record as ``diag/<key>`` (``diag/target.rankme_centred``, ...) and each
diagnosed encoder's collapse flag as ``diag/<encoder>.collapsed`` (1 collapsed, 0 not), all at the record's step.
A resumed session opens its writer with ``purge_step`` = the checkpoint's step, so TensorBoard hides what a killed
session logged after it (as :func:`~.run_dir.truncate_metrics` drops it from metrics.jsonl), then replays the
records metrics.jsonl keeps from that step on (the diagnostics made just before the checkpoint), or all of them
when the run has no event files yet: the curves continue without a duplicate step."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jepalab.rundir import WriteFailed
from jepalab.vision.training.curves import read_metrics

__all__ = ["MetricsLog", "require_tensorboard", "scalars"]

EVENT_FILES = "events.out.tfevents.*"


def require_tensorboard() -> None:
    """Raise a ``ValueError`` naming the extra to install unless TensorBoard's writer imports."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as error:
        raise ValueError("train.tensorboard=true needs the tensorboard package: pip install 'jepalab[tensorboard]' "
                         f"({error})") from error


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """TensorBoard tag → value of one metrics.jsonl record (see the module docstring)."""
    diag = record.get("kind") == "diag"
    prefix = "diag/" if diag else "train/"
    values = {f"{prefix}{key}": float(value) for key, value in record.items()
              if key not in ("step", "kind") and isinstance(value, (int, float))}
    if diag:
        encoders = [key[:-len(".dim")] for key in record if key.endswith(".dim")]
        values.update({f"diag/{name}.collapsed": float(name in record.get("collapsed", [])) for name in encoders})
    return values


class MetricsLog:
    """Appends records to ``run/metrics.jsonl`` (and TensorBoard scalars with ``tensorboard``); a session resumed
    at step ``start`` continues the curves from there."""

    def __init__(self, run: Path, start: int, tensorboard: bool) -> None:
        self.path = run / "metrics.jsonl"
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            replay_from = start if any(run.glob(EVENT_FILES)) else 0
            self.writer = SummaryWriter(str(run), purge_step=start)
            steps, diags = read_metrics(run)
            self._scalars(r for r in [*steps, *diags] if r["step"] >= replay_from)
        self.file = open(self.path, "ab", buffering=0)  # closed by close(); unbuffered: write() knows what landed

    def _scalars(self, records: Iterable[dict[str, Any]]) -> None:
        if self.writer is not None:
            for record in records:
                for tag, value in scalars(record).items():
                    self.writer.add_scalar(tag, value, record["step"])
            self.writer.flush()

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append ``records`` to metrics.jsonl and TensorBoard. A failed append (a full disk) is cut back off, so the
        file never ends in a partial line, and raised as :class:`~jepalab.rundir.WriteFailed`."""
        data = "".join(json.dumps(record, allow_nan=True) + "\n" for record in records).encode()
        size = os.fstat(self.file.fileno()).st_size
        try:
            written = 0
            while written < len(data):
                written += self.file.write(data[written:])
        except OSError as error:
            os.ftruncate(self.file.fileno(), size)
            raise WriteFailed.of(self.path, len(data), error) from error
        self._scalars(records)

    def close(self) -> None:
        """Close metrics.jsonl and the event file."""
        self.file.close()
        if self.writer is not None:
            self.writer.close()
