"""Run directories and result files: atomic writes, JSON/CSV/figures, and the environment record."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "CPU_FLAGS",
    "WriteFailed",
    "atomic_write_bytes",
    "atomic_write_text",
    "environment",
    "free_space",
    "host_facts",
    "new_run_dir",
    "output_dir",
    "readable_bytes",
    "save_figure",
    "to_jsonable",
    "write_csv",
    "write_json",
]


class WriteFailed(OSError):
    """A file that could not be written (disk full, quota, read-only folder, ...): ``message`` names it; ``path``
    and ``size`` (the bytes it needed, None if unknown) say which write failed."""

    def __init__(self, code: int | None, message: str, path: str | Path, size: int | None) -> None:
        super().__init__(code, message)
        self.path, self.size = Path(path), size

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple:
        return type(self), (self.errno, self.strerror, self.path, self.size)  # picklable across job processes

    @classmethod
    def of(cls, path: str | Path, size: int | None, cause: OSError) -> WriteFailed:
        """The failure ``cause`` of writing ``size`` bytes to ``path``, saying how much space is left."""
        needed = f"needs {readable_bytes(size)}, " if size is not None else ""
        return cls(cause.errno, f"could not write {path} ({needed}{free_space(Path(path))} free): "
                                f"{cause.strerror or cause}", path, size)


def readable_bytes(size: float) -> str:
    """``size`` bytes in B, KiB, MiB or GiB, e.g. "1.4 MiB"."""
    for scale, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size:.0f} B"


def free_space(path: Path) -> str:
    """The space left on the file system of ``path``'s folder, or "unknown"."""
    try:
        return readable_bytes(shutil.disk_usage(path.parent).free)
    except OSError:
        return "unknown"


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``; any failure leaves
    ``path`` as it was and no temporary file, and an ``OSError`` is raised as :class:`WriteFailed`."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, WriteFailed):
            raise WriteFailed.of(path, len(data), error) from error
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, paths and tuples to plain JSON types (NaN/inf become strings)."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return to_jsonable(value.tolist())
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    return value


def write_json(path: str | Path, payload: Any) -> Path:
    """Atomically write ``payload`` as indented JSON."""
    return atomic_write_text(path, json.dumps(to_jsonable(payload), indent=2, sort_keys=False) + "\n")


def write_csv(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Atomically write dict rows as CSV; the header is the union of keys in first-seen order."""
    rows = [dict(r) for r in rows]
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: to_jsonable(v) for k, v in row.items()})
    return atomic_write_text(path, buffer.getvalue())


def save_figure(figure: Any, stem: str | Path, formats: tuple[str, ...] = ("png", "svg"), dpi: int = 150) -> list[Path]:
    """Save a matplotlib figure as ``stem.<fmt>`` for each format, atomically; returns the paths."""
    paths = []
    for fmt in formats:
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight")
        paths.append(atomic_write_bytes(Path(f"{stem}.{fmt}"), buffer.getvalue()))
    return paths


def new_run_dir(root: str | Path, prefix: str) -> Path:
    """Create and return ``root/prefix-YYYYmmdd-HHMMSS`` (suffixed ``-2``, ``-3``… if it exists)."""
    root = Path(root)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{prefix}-{stamp}"
    n = 2
    while True:
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return candidate
        except FileExistsError:
            candidate = root / f"{prefix}-{stamp}-{n}"
            n += 1


def output_dir(out: str | Path | None, prefix: str, root: str | Path = "runs") -> Path:
    """``out`` (created if missing) or, when None, a new ``root/prefix-<time>`` run directory."""
    if out is None:
        return new_run_dir(root, prefix)
    Path(out).mkdir(parents=True, exist_ok=True)
    return Path(out)


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def command_line(argv: list[str] | None = None) -> str:
    """The command this process was started with (``sys.argv`` by default), as one can type it again: the package
    run as a module reads ``python -m jepalab``, a script reads its file name, arguments are shell-quoted."""
    argv = sys.argv if argv is None else argv
    if not argv:
        return ""
    program = Path(argv[0])
    head = "python -m jepalab" if program.parts[-2:] == ("jepalab", "__main__.py") else program.name
    return " ".join([head, *(shlex.quote(arg) for arg in argv[1:])])


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")
"""The /proc/cpuinfo flags that decide CPU speed and bf16 support, recorded with every run."""


def host_facts() -> dict[str, Any]:
    """This machine: host name, kernel, CPU model, core count and the flags of :data:`CPU_FLAGS` (/proc/cpuinfo)."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    return {"host": platform.node(), "kernel": platform.release(), "cpu": model, "cores": os.cpu_count(),
            "flags": [f for f in CPU_FLAGS if f in flags]}


def environment() -> dict[str, Any]:
    """Versions, platform, CPU count and git revision, for the record of every run."""
    packages = {}
    for name in ("jepalab", "numpy", "scipy", "torch", "matplotlib"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "time": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": packages,
        "git_revision": _git_revision(),
    }
