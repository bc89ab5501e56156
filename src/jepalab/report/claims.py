"""Claims, findings and report parts: the data model of ``jepalab reproduce``.

A *part* is one unit of work (the theory figures, the deep linear validation, an experiment). It declares the
claims it can test (:class:`ClaimSpec`: the sentence, where it comes from, what the paper reports) and, when
run, returns :class:`Finding` objects (what jepalab measured and the verdict, decided by a rule in code).
A claim whose part did not run, or failed, is reported as "not tested here" with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jepalab.discovery import import_plugins

VERDICTS = ("holds", "does not hold", "inconclusive", "not tested here")
SOURCES = ("paper", "derived here", "beyond the paper")
GROUPS = {"theory": "Exact theory", "linear": "Deep linear networks", "images": "Real images"}
"""Group of a part → its name in the report's summary strip (one line per group)."""


@dataclass(frozen=True)
class ClaimSpec:
    """A checkable statement: ``source`` is one of SOURCES; ``provenance`` cites the paper's section or figure
    (Littwin et al. 2024) and jepalab's docs where the derivation lives."""

    key: str
    statement: str
    source: str
    provenance: str
    paper_says: str

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"claim {self.key}: source must be one of {SOURCES}; got {self.source!r}")


@dataclass
class Finding:
    """What was measured for one claim and the verdict; ``figure``/``config`` are paths relative to the report.
    ``reason``: the rule that decided it; ``headline``: the verdict's immediate cause where the rule alone does not
    say it (a learning gate not met), shown beside the verdict; ``details``: further evidence (other read-outs,
    reanalyses, other measurements of the claim), shown with the rule; ``tested``: the sentence the measurement's
    rule decides, shown in place of the claim's general statement."""

    key: str
    measured: str
    verdict: str
    reason: str = ""
    figure: str | None = None
    config: str | None = None
    numbers: dict[str, Any] = field(default_factory=dict)
    headline: str = ""
    details: list[str] = field(default_factory=list)
    tested: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"finding {self.key}: verdict must be one of {VERDICTS}; got {self.verdict!r}")


def verdict(holds: bool) -> str:
    """'holds' or 'does not hold' from a boolean computed on measured numbers."""
    return "holds" if bool(holds) else "does not hold"


@dataclass
class PartOutput:
    """Everything a part produced: findings, figures (path, caption), tables (title, rows), notes, its config."""

    findings: list[Finding] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    tables: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartOutput:
        return cls(
            findings=[Finding(**f) for f in data["findings"]],
            figures=[tuple(f) for f in data["figures"]],
            tables=[(t[0], t[1]) for t in data["tables"]],
            notes=list(data["notes"]),
            config=dict(data["config"]),
        )


@dataclass(frozen=True)
class PartContext:
    """What a part gets: its own output folder, the mode, runs to reuse, the seed, and the folder of committed
    experiment results (``results/``; None: none)."""

    out_dir: Path
    report_dir: Path
    mode: str
    reuse: tuple[Path, ...]
    seed: int
    results: Path | None = None

    def relative(self, path: Path | str) -> str:
        """``path`` relative to the report folder, for links in the report."""
        return Path(path).resolve().relative_to(self.report_dir.resolve()).as_posix()


@dataclass(frozen=True)
class Part:
    """A unit of ``jepalab reproduce``; ``estimate_s`` (per mode) drives the overall ETA."""

    name: str
    title: str
    claims: tuple[ClaimSpec, ...]
    run: Callable[[PartContext], PartOutput]
    estimate_s: dict[str, float]
    modes: tuple[str, ...] = ("quick", "full")
    uses_reuse: bool = False
    shown: Callable[[tuple[Path, ...], Path | None], bool] | None = None  # None: always; else when true for
    # (--reuse folders, results folder)
    order: int = 0  # report order (ascending)
    group: str = ""  # a key of GROUPS: the line of the summary strip that reads this part's claims ("": its own)

    def runs_in(self, mode: str, reuse: tuple[Path, ...]) -> bool:
        """Whether the part runs: in its modes, or in any mode when it can evaluate runs passed with --reuse."""
        return mode in self.modes or (self.uses_reuse and bool(reuse))


_PARTS: dict[str, Part] = {}


def report_part(name: str, title: str, claims: tuple[ClaimSpec, ...], estimate_s: dict[str, float], *, order: int,
                group: str = "", modes: tuple[str, ...] = ("quick", "full"), uses_reuse: bool = False,
                shown: Callable[[tuple[Path, ...], Path | None], bool] | None = None) -> Callable:
    """Decorator registering ``run(ctx) -> PartOutput`` as the report part ``name`` (names are unique; the modules
    ``jepalab.report.parts_*`` are discovered by :func:`registered_parts`)."""

    def decorate(run: Callable[[PartContext], PartOutput]) -> Callable[[PartContext], PartOutput]:
        existing = _PARTS.get(name)
        if existing is not None and existing.run.__qualname__ != run.__qualname__:
            raise ValueError(f"report part {name!r} is already registered by {existing.run.__module__}")
        _PARTS[name] = Part(name, title, claims, run, estimate_s, modes, uses_reuse, shown, order, group)
        return run

    return decorate


_FACTORIES: list[Callable[[], tuple[Part, ...]]] = []


def report_part_factory(build: Callable[[], tuple[Part, ...]]) -> Callable[[], tuple[Part, ...]]:
    """Decorator registering a function that builds parts when the report runs (parts whose claims come from another
    registry, such as the real-image experiments)."""
    if build not in _FACTORIES:
        _FACTORIES.append(build)
    return build


def registered_parts() -> tuple[Part, ...]:
    """Every registered report part in report order, factories' parts included (imports every
    ``jepalab.report.parts_*`` module once)."""
    import_plugins("jepalab.report", lambda name: name.startswith("parts_"))
    built = [part for build in _FACTORIES for part in build()]
    return tuple(sorted([*_PARTS.values(), *built], key=lambda part: part.order))


def module_parts(module: str) -> tuple[Part, ...]:
    """The parts registered by ``module`` (its ``run`` functions live there), in report order."""
    return tuple(sorted((p for p in _PARTS.values() if p.run.__module__ == module), key=lambda part: part.order))
