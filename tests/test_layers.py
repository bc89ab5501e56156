"""The layer rule of docs/architecture.md: a layer imports only the layers its row allows; inside ``vision`` a stage
imports only the stages before it; no module imports itself back through others (every import counts, at module
level or inside a function; an import under ``if TYPE_CHECKING:`` counts for the order, not for cycles, as it never
runs); the trainer looks a method up once; the config reads its sections as declared fields."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "jepalab"
SHARED = {"config", "rundir", "progress", "plotting", "discovery"}
ALLOWED = {
    "theory": set(),
    "eval": SHARED,
    "data": SHARED,
    "linear": {"theory", "eval"} | SHARED,
    "vision": {"data", "eval", "theory", "linear"} | SHARED,
    "report": {"theory", "eval", "data", "linear", "vision"} | SHARED,
}
VISION_STAGES = ("models", "methods", "training", "readout", "experiments", "commands")
"""The vision layer's stages in pipeline order; modules directly in ``vision/`` (the CLI commands) are "commands"."""


def _module(path: Path) -> str:
    return ".".join(("jepalab", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")


def _imports(path: Path, runtime_only: bool = False) -> set[str]:
    """Dotted names ``path`` imports (``from a import b`` gives a and a.b), from anywhere in the file."""
    tree = ast.parse(path.read_text())
    skipped = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
                skipped |= {id(inner) for statement in node.body for inner in ast.walk(statement)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return {n for n in names if n == "jepalab" or n.startswith("jepalab.")}


def _imported_layers(path: Path) -> set[str]:
    return {n.split(".")[1] for n in _imports(path) if len(n.split(".")) > 1}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["jepalab", "vision"]:
        return None
    return parts[2] if len(parts) > 2 and parts[2] in VISION_STAGES else "commands"


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


def test_vision_stages_import_only_earlier_stages() -> None:
    """models ← methods ← training ← readout ← experiments ← commands."""
    wrong = []
    for path in sorted((SRC / "vision").rglob("*.py")):
        stage = _stage(_module(path))
        for name in _imports(path):
            other = _stage(name)
            if other is not None and VISION_STAGES.index(other) > VISION_STAGES.index(stage):
                wrong.append(f"{path.relative_to(SRC)} ({stage}) imports {name} ({other})")
    assert not wrong, "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while component[-1:] != [v]:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_back() -> None:
    paths = {_module(path): path for path in SRC.rglob("*.py")}
    graph = {m: {n for n in _imports(p, runtime_only=True) if n in paths and n != m} for m, p in paths.items()}
    assert not _cycles(graph)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check itself


def test_the_trainer_looks_the_method_up_once_and_the_config_declares_its_fields() -> None:
    lookups = [f"{p.name}:{i + 1}" for p in sorted((SRC / "vision" / "training").glob("*.py"))
               for i, line in enumerate(p.read_text().splitlines()) if "method_spec(" in line]
    assert len(lookups) <= 1, lookups
    config = ast.parse((SRC / "vision" / "methods" / "config.py").read_text())
    assert not [n for n in ast.walk(config) if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
