"""Plugin discovery shared by every registry (datasets, methods, experiments, launchers, report parts): a registry
imports the modules of its package once, and each module registers itself on import, so a new plugin is one new
file."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

__all__ = ["import_plugins"]

_imported: set[tuple[str, str]] = set()


def import_plugins(package: str, accept: Callable[[str], bool] = lambda name: not name.startswith("_"),
                   key: str = "") -> None:
    """Import, once per (``package``, ``key``), every module of ``package`` (a dotted name) whose name ``accept``
    takes (default: names not starting with "_")."""
    if (package, key) in _imported:
        return
    _imported.add((package, key))
    found = importlib.import_module(package)
    for module in pkgutil.iter_modules(found.__path__):
        if accept(module.name):
            importlib.import_module(f"{package}.{module.name}")
