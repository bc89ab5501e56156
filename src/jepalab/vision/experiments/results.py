"""An experiment's results folder: ``plan.json`` (claim, rule, control, settings and verdict criteria, written and
committed before any run), then ``results.csv`` (one row per run and evaluated checkpoint), ``summary.json`` (the
verdict computed from results.csv by the experiment's rule), ``curves.csv`` (training losses), ``provenance.json``
(device, torch, precision, git revision of the code that trained, command lines, wall time, images/s) and PNG
figures. :func:`verify` recomputes summary.json from results.csv and plan.json and names the file that disagrees.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from jepalab.config import config_to_dict, from_dict
from jepalab.rundir import to_jsonable
from jepalab.vision.experiments.power import plan_power
from jepalab.vision.experiments.registration import (
    RegistrationError,
    git,
    in_work_tree,
    registration_record,
    trained_revisions,
)
from jepalab.vision.experiments.registry import Experiment, experiment
from jepalab.vision.experiments.rules import LEARNING_GATES, MIN_GAIN_POINTS, min_gains
from jepalab.vision.experiments.settings import ExperimentSettings
from jepalab.vision.experiments.statistics import INTERVAL_RULE, interval_tests, interval_verdict
from jepalab.vision.experiments.store import run_folder

__all__ = ["ResultsMismatch", "check_plan", "file_sha256", "folder_name", "plan",
           "read_plan", "read_rows", "reanalysis_settings", "registration", "statement", "summarise", "summary_writer",
           "verify"]

RUNTIME_SETTINGS = ("jobs", "device", "runs_dir", "data_root", "compile", "compile_mode", "tensorboard")
"""Settings that say where and how fast runs train, not what they are: ignored when a plan is compared."""


class ResultsMismatch(ValueError):
    """A results folder whose files disagree: the message names the file."""


def folder_name(name: str, settings: ExperimentSettings) -> str:
    """The results folder of experiment ``name`` inside a measurement's folder: ``name``, or ``name-<read-out>-gate``
    when the learning gate is not on the label probe (the same runs decided under another registered gate)."""
    return name if settings.gate == "probe" or settings.confirmatory else f"{name}-{settings.gate}-gate"


def statement(exp: Experiment, settings: ExperimentSettings) -> dict[str, str]:
    """``claim``, ``rule`` and ``control`` of ``exp`` as registered at ``settings``: the experiment's own under the
    spread statistics; under interval statistics the claim its tests decide and the interval rule."""
    own = exp.statement(settings)
    if settings.statistics == "spread":
        return own
    tests, smallest = exp.test_definitions(settings), exp.smallest_effects
    if set(tests) != set(smallest):
        raise ValueError(f"{exp.name}: its tests {sorted(tests)} and smallest effects {sorted(smallest)} differ")
    rule = ("Per-seed effects (> 0 supports the claim), each seed compared with its own random init: "
            + "; ".join(f"{name} = {text}" for name, text in tests.items()) + ". " + INTERVAL_RULE
            + " Smallest effects of interest: " + ", ".join(f"{n} {smallest[n][0]:+g}" for n in tests) + ". "
            + exp.gate_sentence(settings))
    return {"claim": exp.tested_claim(settings), "rule": rule, "control": own["control"]}


def reanalysis_settings(settings: ExperimentSettings, name: str) -> ExperimentSettings:
    """``settings`` with the confirmatory rule: interval statistics and (but for learning-order, which has its own
    gate) the noise learning gate."""
    from dataclasses import replace

    return replace(settings, statistics="interval", gate=settings.gate if name == "learning-order" else "noise")


def _interval_plan(exp: Experiment, settings: ExperimentSettings) -> dict[str, Any]:
    """What a plan under interval statistics registers besides the rule: smallest effects with their reasons, the
    learning gate, the power computation and the three-way verdict criteria."""
    smallest = {name: value for name, (value, _) in exp.smallest_effects.items()}
    return {"confirmatory": settings.confirmatory,
            "smallest_effect_of_interest": {n: {"value": v, "reason": r} for n, (v, r) in exp.smallest_effects.items()},
            "learning_gate": exp.learning_gate(settings),
            "power": plan_power(exp.name, smallest, settings.power_from),
            "verdicts": {"holds": "the learning gate is met and every Holm-adjusted one-sided p < 0.05",
                         "does not hold": "the learning gate is met and some test's 95 % interval lies wholly below "
                                          "its smallest effect of interest",
                         "inconclusive": "the learning gate is met and neither of the above (the intervals printed)",
                         "not tested here": "the learning gate is not met, or the runs are missing"}}


def plan(exp: Experiment, settings: ExperimentSettings) -> dict[str, Any]:
    """The pre-registration of ``exp`` at ``settings``: claim, rule, control, settings, runs (labels and the run
    folder, whose name hashes the run's resolved config: a changed recipe changes the plan) and verdict criteria."""
    runs = [{**labels, "run": run_folder(Path(), cfg).name} for labels, cfg in exp.runs(settings)]
    gain = f"the minimum {LEARNING_GATES[settings.gate]} gain"
    registered = {"experiment": exp.name, "claim_key": exp.claim_key, "mode": settings.mode,
                  **statement(exp, settings), "settings": config_to_dict(settings),
                  **({"protocol": exp.protocol()} if exp.protocol() else {}), "seeds": list(settings.seeds),
                  "runs": runs,
                  "verdicts": exp.verdicts() or {
                      "holds": f"every encoder gained ≥ {gain} and the rule's conditions pass",
                      "does not hold": f"every encoder gained ≥ {gain} and a condition of the rule fails",
                      "not tested here": f"an encoder gained less than {gain} over its random init (the "
                                         "claim is then not decided), or the runs are missing"},
                  "min_probe_gain_points": MIN_GAIN_POINTS}
    return registered if settings.statistics == "spread" else {**registered, **_interval_plan(exp, settings)}


def _comparable(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as JSON with its settings resolved (a setting added since the plan was written reads as its default)
    and the runtime settings dropped."""
    data = json.loads(json.dumps(to_jsonable(data)))
    data["settings"] = json.loads(json.dumps(to_jsonable(config_to_dict(from_dict(ExperimentSettings,
                                                                                  data["settings"])))))
    for key in RUNTIME_SETTINGS:
        data["settings"].pop(key, None)
    return data


def check_plan(out: Path, expected: dict[str, Any]) -> None:
    """Raise unless ``out/plan.json`` holds ``expected`` (runtime settings aside) and, inside a git work tree, is
    committed unchanged: a claim and its rule are fixed before the data."""
    path = out / "plan.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: write it with `jepalab experiment {expected['experiment']} "
                                f"--{expected['mode']} --plan`, commit it, then run")
    if _comparable(json.loads(path.read_text())) != _comparable(expected):
        raise ResultsMismatch(f"{path} differs from the plan of these settings: the claim, rule or settings changed "
                              "after pre-registration (write a new plan in a new folder)")
    if not in_work_tree(out):
        return
    tracked = git(out, "ls-files", "--error-unmatch", "plan.json")
    changed = git(out, "diff", "--quiet", "HEAD", "--", "plan.json")
    if tracked is None or tracked.returncode != 0 or changed is None or changed.returncode != 0:
        raise ResultsMismatch(f"{path} is not committed as it is: commit the plan before running")


def training_revisions(folder: Path) -> list[str]:
    """Every code revision that trained ``folder``'s runs (provenance.json: each run's first revision and the
    revision of every training session its run.json records)."""
    path = folder / "provenance.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: it names the code that trained the runs")
    provenance = json.loads(path.read_text())
    runs = provenance.get("runs", [])
    sessions = trained_revisions(None, [s for run in runs for s in run.get("train_sessions", [])])
    return sorted({*map(str, provenance.get("git_revisions", [])), *sessions})


def summary_writer(folder: Path) -> str | None:
    """The code revision that last wrote ``folder``'s summary.json: its ``written_at_revision``, else (summaries
    written before they named it) provenance.json's last ``resummarised`` entry or last session; None if unrecorded."""
    summary = json.loads((folder / "summary.json").read_text())
    path = folder / "provenance.json"
    provenance = json.loads(path.read_text()) if path.is_file() else {}
    logged = [*provenance.get("sessions", [])[-1:], *provenance.get("resummarised", [])[-1:]]
    found = summary.get("written_at_revision") or (logged[-1].get("revision") if logged else None)
    return str(found) if found else None


def registration(folder: Path) -> dict[str, Any]:
    """The git record that ``folder``'s plan.json was committed before the code that trained its runs and before
    its results (:func:`~.registration.registration_record`); :class:`ResultsMismatch` where git shows otherwise."""
    try:
        return registration_record(folder, training_revisions(folder))
    except RegistrationError as error:
        raise ResultsMismatch(str(error)) from error


def _interval_summary(exp: Experiment, rows: list[dict[str, Any]], settings: ExperimentSettings) -> dict[str, Any]:
    """summary.json under interval statistics: per test its effects, mean, 95 % interval, one-sided p and Holm p;
    the learning gate; the three-way verdict (or "not tested here")."""
    decided = {k: v for k, v in exp.decide(rows, settings).items() if k not in ("checks", "held")}
    gains, short = exp.gate(rows, settings)
    tests = interval_tests(decided["effects"])
    smallest = {name: value for name, (value, _) in exp.smallest_effects.items()}
    verdict, lines = interval_verdict(tests, smallest)
    return {"experiment": exp.name, "claim_key": exp.claim_key, "mode": settings.mode, **statement(exp, settings),
            **decided, "tests": tests, "checks": lines, "smallest_effect_of_interest": smallest,
            "learning_gate": {**exp.learning_gate(settings), "measured": gains},
            "min_probe_gain": min_gains(rows, sorted({r["method"] for r in rows}), "probe"),
            "verdict": "not tested here" if short else verdict, "reason": short, "seeds": len(settings.seeds),
            "seed_list": list(settings.seeds), "confirmatory": settings.confirmatory}


def summarise(exp: Experiment, rows: list[dict[str, Any]], settings: ExperimentSettings) -> dict[str, Any]:
    """summary.json of ``exp`` from its results rows: the rule's numbers and checks, the learning gate, the verdict."""
    if settings.statistics == "interval":
        return _interval_summary(exp, rows, settings)
    decided = exp.decide(rows, settings)
    gains, short = exp.gate(rows, settings)
    verdict = "not tested here" if short else "holds" if decided["held"] else "does not hold"
    gated = {} if settings.gate == "probe" else {"learning_gate": {"read_out": settings.gate, "min_gain": gains}}
    probe_gains = gains if settings.gate == "probe" else min_gains(rows, sorted(gains), "probe")
    return {"experiment": exp.name, "claim_key": exp.claim_key, "mode": settings.mode, **exp.statement(settings),
            **decided, "min_probe_gain": probe_gains, **gated, "verdict": verdict, "reason": short,
            "seeds": len(settings.seeds)}


def _value(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_rows(path: Path) -> list[dict[str, Any]]:
    """results.csv with its values typed back (int, float, bool, None, str)."""
    with path.open(newline="") as handle:
        return [{k: _value(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _difference(a: Any, b: Any, where: str = "") -> str | None:
    """The first key path where ``a`` and ``b`` differ (floats to 1e-9 relative), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _difference(a.get(key), b.get(key), f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return where
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := _difference(x, y, f"{where}[{i}]"))), None)
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    if numbers and (isinstance(a, float) or isinstance(b, float)):
        return None if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else where
    return None if a == b else where


def read_plan(folder: Path) -> tuple[dict[str, Any], Experiment, ExperimentSettings]:
    """``folder``'s plan.json, the experiment it names and the settings it registered."""
    planned = json.loads((Path(folder) / "plan.json").read_text())
    return planned, experiment(planned["experiment"]), from_dict(ExperimentSettings, planned["settings"])


def verify(folder: Path) -> dict[str, Any]:
    """Recompute ``folder``'s verdict from results.csv with the rule of the experiment named in plan.json; raise
    :class:`ResultsMismatch` naming the file when summary.json disagrees, or plan.json with the summary, or it was
    last written from uncommitted code (:func:`summary_writer`, inside a git work tree), or (a confirmatory plan) git
    shows the plan committed after the code that trained the runs or with its results."""
    folder = Path(folder)
    for name in ("plan.json", "summary.json", "results.csv"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing")
    planned, exp, settings = read_plan(folder)
    try:
        recomputed = json.loads(json.dumps(to_jsonable(summarise(exp, read_rows(folder / "results.csv"), settings))))
    except (KeyError, ValueError, TypeError) as error:
        raise ResultsMismatch(f"{folder / 'results.csv'} cannot be read by the {exp.name} rule: {error}") from error
    committed = json.loads((folder / "summary.json").read_text())
    if committed.get("results_sha256") != file_sha256(folder / "results.csv"):
        raise ResultsMismatch(f"{folder / 'results.csv'} changed after {folder / 'summary.json'} was written from it "
                              "(its SHA-256 differs from results_sha256)")
    for key in ("claim", "rule", "control", "smallest_effect_of_interest", "confirmatory"):
        registered = planned.get(key)
        if key == "smallest_effect_of_interest" and registered:
            registered = {name: entry["value"] for name, entry in registered.items()}
        if committed.get(key) != registered:
            raise ResultsMismatch(f"{folder / 'summary.json'}: its {key} differs from {folder / 'plan.json'}")
    committed = {k: v for k, v in committed.items() if k in recomputed}
    where = _difference(to_jsonable(committed), recomputed)
    if where is not None:
        raise ResultsMismatch(f"{folder / 'summary.json'} disagrees with the verdict recomputed from "
                              f"{folder / 'results.csv'} at '{where}'")
    writer = summary_writer(folder)
    if writer is not None and writer.endswith("-dirty") and in_work_tree(folder):
        raise ResultsMismatch(f"{folder / 'summary.json'} was last written from uncommitted code ({writer}): rewrite "
                              "it from a clean checkout (--resummarise)")
    if (folder / "reanalysis.json").is_file():
        _verify_reanalysis(folder, exp, settings)
    if planned.get("confirmatory"):
        registration(folder)
    return json.loads((folder / "summary.json").read_text())


def _verify_reanalysis(folder: Path, exp: Experiment, settings: ExperimentSettings) -> None:
    """Raise unless reanalysis.json is the confirmatory rule's decision of this results.csv."""
    saved = json.loads((folder / "reanalysis.json").read_text())
    if saved.get("results_sha256") != file_sha256(folder / "results.csv"):
        raise ResultsMismatch(f"{folder / 'results.csv'} changed after {folder / 'reanalysis.json'} was written")
    recomputed = to_jsonable(summarise(exp, read_rows(folder / "results.csv"), reanalysis_settings(settings,
                                                                                                  exp.name)))
    where = _difference(to_jsonable({k: v for k, v in saved.items() if k in recomputed}), recomputed)
    if where is not None:
        raise ResultsMismatch(f"{folder / 'reanalysis.json'} disagrees with its recomputation at '{where}'")
