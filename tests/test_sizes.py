"""The size rule of docs/architecture.md: no module of the package over 400 lines, no function (its ``def`` line to
its last line) over 60."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "jepalab"
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines()))
            > MAX_MODULE_LINES}
    assert not long, f"split these modules: {long}"


def test_no_function_is_over_60_lines() -> None:
    long = {f"{p.relative_to(SRC)}:{node.name}": node.end_lineno - node.lineno + 1
            for p in SRC.rglob("*.py") for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES}
    assert not long, f"split these functions: {long}"
