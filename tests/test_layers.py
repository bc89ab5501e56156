"""The layer rule of docs/architecture.md: a layer imports only the layers its row allows (every import, at module
level or inside a function)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "jepalab"
SHARED = {"config", "rundir", "progress", "plotting"}
ALLOWED = {
    "theory": set(),
    "eval": SHARED,
    "data": SHARED,
    "linear": {"theory", "eval"} | SHARED,
    "vision": {"data", "eval", "theory", "linear"} | SHARED,
    "report": {"theory", "eval", "data", "linear", "vision"} | SHARED,
}


def _imported_layers(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else \
            [a.name for a in node.names] if isinstance(node, ast.Import) else []
        found |= {n.split(".")[1] for n in names if n.startswith("jepalab.") and len(n.split(".")) > 1}
    return found


def test_every_layer_imports_only_what_its_row_allows() -> None:
    wrong = []
    for layer, allowed in ALLOWED.items():
        for path in sorted((SRC / layer).rglob("*.py")):
            extra = _imported_layers(path) - allowed - {layer}
            if extra:
                wrong.append(f"{path.relative_to(SRC)} imports {sorted(extra)}")
    assert not wrong, "\n".join(wrong)


def test_shared_utilities_import_no_layer() -> None:
    for name in SHARED:
        assert not _imported_layers(SRC / f"{name}.py") - SHARED, name
