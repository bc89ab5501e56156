"""Experiment registry: name → :class:`Experiment`. Every module of ``jepalab.vision.experiments`` is imported on
first use, so a new file that subclasses :class:`Experiment` and decorates it with :func:`register_experiment` is
picked up without editing anything else (docs/architecture.md, "Adding an experiment").

An experiment says which runs it needs (:meth:`Experiment.runs`: labels → pretraining config), states its claim, rule
and control for learning (:meth:`Experiment.statement`, fixed before any run and written to ``plan.json``), and
decides the claim from the rows of ``results.csv`` alone (:meth:`Experiment.decide`), so that a report can recompute
the verdict from the committed numbers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jepalab.discovery import import_plugins

if TYPE_CHECKING:
    from jepalab.vision.experiments.settings import ExperimentSettings
    from jepalab.vision.methods.config import PretrainConfig

__all__ = ["Experiment", "available_experiments", "experiment", "register_experiment"]

Labels = dict[str, Any]


class Experiment(ABC):
    """One real-image claim: its runs, its pre-registered statement and its rule."""

    name: ClassVar[str] = ""  # ``jepalab experiment NAME``
    claim_key: ClassVar[str] = ""  # the report's claim id (R1, ...), "" when the report has none
    labels: ClassVar[tuple[str, ...]] = ("method", "seed")  # the columns that name a run in results.csv
    report_claim: ClassVar[dict[str, str] | None] = None  # the report's claim: statement, source, provenance,
    # paper_says (jepalab.report.claims.ClaimSpec); None: not in the report
    report_optional: ClassVar[bool] = False  # shown in the report only when its results exist
    smallest_effects: ClassVar[dict[str, tuple[float, str]]] = {}  # test → (smallest effect of interest, why):
    # registered in a plan decided by interval statistics (a "does not hold" needs an interval below it)

    @abstractmethod
    def runs(self, settings: ExperimentSettings) -> list[tuple[Labels, PretrainConfig]]:
        """(labels, config) of every run the claim needs; identical configs are trained once (the run store)."""

    @abstractmethod
    def statement(self, settings: ExperimentSettings) -> dict[str, str]:
        """``claim``, ``rule`` and ``control`` (how the rule keeps "learns less" apart from the effect)."""

    @abstractmethod
    def decide(self, rows: list[dict[str, Any]], settings: ExperimentSettings) -> dict[str, Any]:
        """``measured`` (raw and controlled numbers), ``effects`` (per-seed values of each tested effect),
        ``checks`` (one sentence per condition) and ``held`` from the rows of results.csv."""

    def plot(self, rows: list[dict[str, Any]], settings: ExperimentSettings, out: Path) -> None:
        """Figures of the measured rows into ``out`` (default: none)."""
        return None

    def tested_claim(self, settings: ExperimentSettings) -> str:
        """What the rule's tests decide, in one sentence (stated by a plan decided by interval statistics)."""
        return self.statement(settings)["claim"]

    def test_definitions(self, settings: ExperimentSettings) -> dict[str, str]:
        """Test name → how its per-seed effect is computed (> 0 supports the claim); default: none."""
        return {}

    def gate_sentence(self, settings: ExperimentSettings) -> str:
        """The sentence naming the claim's learning gate (default: the shared gate on ``settings.gate``)."""
        from jepalab.vision.experiments.rules import gate_rule

        return gate_rule(settings.gate)

    def learning_gate(self, settings: ExperimentSettings) -> dict[str, Any]:
        """The learning gate a plan registers: read-out, threshold and why it sits there."""
        from jepalab.vision.experiments.rules import MIN_GAIN_POINTS, NOISE_MULTIPLE

        if settings.gate == "noise":
            return {"read_out": "noise", "threshold": NOISE_MULTIPLE, "sentence": self.gate_sentence(settings),
                    "reason": "the control reads each method at the probe gain both reached (g*); below "
                              f"{NOISE_MULTIPLE:g} × its test-set sampling noise a gain, and so g*, is known to worse "
                              "than ±25 % and the matched read compares encoders at noise. On 10,000 test images the "
                              "noise of a gain is 0.59–0.68 points, so the gate asks for 2.4–2.7 points. On the "
                              "committed exploratory measurements it passes every depth-6 encoder (4 and 24 epochs: "
                              "≥ 4.3 × its noise) and gates out the depth-2 runs (4 epochs: I-JEPA 3.7 ×, MAE 3.5 ×; "
                              "24 epochs: MAE 0.6 ×), where the 5-point gates passed none or, on kNN-20, all."}
        return {"read_out": settings.gate, "threshold": MIN_GAIN_POINTS, "sentence": self.gate_sentence(settings),
                "reason": f"{MIN_GAIN_POINTS:g} points over the random init"}

    def protocol(self) -> dict[str, Any]:
        """The measurement's fixed constants, written into plan.json beside the settings (default: none)."""
        return {}

    def verdicts(self) -> dict[str, str] | None:
        """What counts as holds / does not hold / not tested here, when not the shared learning gate's (default)."""
        return None

    def measure_run(self, run: Path, settings: ExperimentSettings) -> None:
        """A measurement of a trained, evaluated run beyond its evaluation, made in the run's own job and left in
        ``run/<name>.measure.json`` (kept with the run's light files); default: none."""
        return None

    def run_rows(self, labels: Labels, run: Path, result: dict[str, Any],
                 settings: ExperimentSettings) -> list[dict[str, Any]]:
        """The rows of results.csv for one run (default: one per evaluated checkpoint of its eval.json): labels, the
        read-outs, the random-init and pixel baselines, and what training added: ``probe_gain`` (points),
        ``distractor_uptake`` and ``cca_shift``."""
        random, pixels = result["baselines"]["random"], result["baselines"]["pixels"]
        rows = []
        for point in result["checkpoints"]:
            row = {**labels, "run": run.name, **{k: v for k, v in point.items() if k not in ("probe_protocol",
                                                                                             "checkpoint")}}
            row.update({f"random_{k}": random.get(k) for k in ("probe", "knn20", "rankme", "cca_delta",
                                                               "distractor_r2")})
            row["pixels_probe"] = pixels.get("probe")
            row["probe_gain"] = 100 * (point["probe"] - random["probe"])
            row["cca_shift"] = point["cca_delta"] - random["cca_delta"] if "cca_delta" in point else None
            if point.get("distractor_r2") is not None and random.get("distractor_r2") is not None:
                row["distractor_uptake"] = point["distractor_r2"] - random["distractor_r2"]
            rows.append(row)
        return rows

    def gate(self, rows: list[dict[str, Any]], settings: ExperimentSettings) -> tuple[dict[str, float], str]:
        """(smallest gain per method on the gate's read-out, why the claim is not tested here or ""): default the
        shared learning gate (every encoder ≥ 5 points over its random init on ``settings.gate``)."""
        from jepalab.vision.experiments.rules import gate

        return gate(rows, sorted({r["method"] for r in rows}), settings.gate, settings.eval.test_images)


_REGISTRY: dict[str, Experiment] = {}


def register_experiment(cls: type[Experiment]) -> type[Experiment]:
    """Class decorator registering an instance of ``cls`` under ``cls.name`` (names are unique)."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} sets no name")
    existing = _REGISTRY.get(cls.name)
    if existing is not None and type(existing).__qualname__ != cls.__qualname__:
        raise ValueError(f"experiment {cls.name!r} is already registered by {type(existing).__module__}")
    _REGISTRY[cls.name] = cls()
    return cls


def available_experiments() -> dict[str, Experiment]:
    """All registered experiments by name (imports every module of the package once)."""
    import_plugins("jepalab.vision.experiments")
    return dict(_REGISTRY)


def experiment(name: str) -> Experiment:
    """The experiment registered under ``name``; ``ValueError`` listing the registered names otherwise."""
    known = available_experiments()
    if name not in known:
        raise ValueError(f"experiment must be one of {list(known)}; got {name!r}")
    return known[name]
