"""Result records: frozen dataclasses that keep every number next to the settings that produced it."""

from __future__ import annotations

import dataclasses
from typing import cast

import numpy as np


def jsonable(value: object) -> object:
    """``value`` with numpy arrays and scalars, tuples and nested results turned into JSON-ready Python objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Result:
    """Mixin for result dataclasses: ``to_dict()`` gives the JSON-ready record (numbers and settings together)."""

    def to_dict(self) -> dict[str, object]:
        return cast(dict[str, object], jsonable(self))
