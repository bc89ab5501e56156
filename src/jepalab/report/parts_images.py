"""Report parts for the real-image experiments, built from the experiment registry: every registered experiment with
a ``report_claim`` (R1–R3; E1 and others marked ``report_optional`` appear only when their results exist). Each is read
from its committed results folder (``results/<experiment>/``, written by ``jepalab experiment ... --standard``) with
its verdict recomputed from results.csv, or from a folder passed with ``--reuse``, or run at GPU scale in
``--full``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jepalab.report.claims import ClaimSpec, Finding, Part, PartContext, PartOutput, report_part_factory
from jepalab.report.results_figure import FOREST_ALT, effect_rows, forest_figure

SHARED_RUNS = ("noisy-features", "variance-subspaces", "depth")
"""Experiments whose standard runs are shared: rerun them with one command."""


def rerun(name: str, plan: dict[str, Any] | None = None, out: str | None = None, beside: Path | None = None) -> str:
    """The command that (re)runs experiment ``name`` at standard scale, resuming finished runs: with ``plan``'s
    settings that differ from the standard mode's as ``key=value`` (``eval.key=value`` for the evaluation's), and
    ``--out`` where the plan lives elsewhere than ``results/<name>``; ``beside`` (the folder holding the plan's
    folder) limits the experiments sharing its runs to those planned there."""
    from jepalab.config import config_to_dict
    from jepalab.vision.experiments import ExperimentSettings
    from jepalab.vision.experiments.results import RUNTIME_SETTINGS

    shared = [n for n in SHARED_RUNS if beside is None or n == name or (beside / n / "plan.json").is_file()]
    names = " ".join(shared) if name in SHARED_RUNS else name
    planned = (plan or {}).get("settings", {})
    defaults = config_to_dict(ExperimentSettings.for_mode("standard"))
    flat = [(f"{key}.{sub}", value, defaults.get(key, {}).get(sub)) for key, values in planned.items()
            if isinstance(values, dict) for sub, value in values.items()]
    flat += [(key, value, defaults.get(key)) for key, value in planned.items() if not isinstance(value, dict)]
    overrides = [f"{key}={value if isinstance(value, str) else json.dumps(value, separators=(',', ':'))}"
                 for key, value, default in flat if key.split(".")[0] not in RUNTIME_SETTINGS and value != default]
    return " ".join(["jepalab experiment", names, "--standard", *overrides, *(["--out", out] if out else []),
                     "--jobs 2"])


def standard_folders(name: str, results: Path) -> list[Path]:
    """The pre-registered standard measurements of experiment ``name``: ``results/<name>``, every
    ``results/<variant>/<name>`` (a further plan of the same claim, e.g. more epochs), and beside each the same runs
    decided under another learning gate (``<name>-<read-out>-gate``), each holding a plan.json of ``name``."""
    candidates = [results / name, *sorted(results.glob(f"{name}-*-gate")), *sorted(results.glob(f"*/{name}")),
                  *sorted(results.glob(f"*/{name}-*-gate"))]
    return [f for f in candidates if (f / "plan.json").is_file() and _plan(f)["experiment"] == name]


def _plan(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "plan.json").read_text())


def _epochs(folder: Path) -> str:
    """Epochs of ``folder``'s plan, and its learning gate when not the label probe's: "24 epochs[, kNN-20 gate]"."""
    from jepalab.vision.experiments.rules import LEARNING_GATES

    settings = _plan(folder)["settings"]
    gate = settings.get("gate", "probe")
    return f"{int(settings['epochs'])} epochs" + ("" if gate == "probe" else f", {LEARNING_GATES[gate]} learning gate")


def _images_seen(folder: Path) -> int:
    """Training images each run of ``folder``'s plan sees: epochs × training images."""
    settings = _plan(folder)["settings"]
    return int(settings["epochs"]) * int(settings["train_images"])


def _out(folder: Path, results: Path) -> str | None:
    """``--out`` of the command that writes ``folder`` (None: the standard default ``results/<name>``)."""
    return None if folder.parent == results else (Path(results.name) / folder.parent.name).as_posix()


def _pending(folder: Path, name: str, results: Path) -> str:
    """A pre-registered measurement without results: how many of its runs have finished and the command."""
    plan = _plan(folder)
    record = folder.parent / "store"
    done = sum((record / run["run"] / "summary.json").is_file() for run in plan["runs"])
    return (f"{folder / 'plan.json'} ({_epochs(folder)}) is pre-registered, {done} of its "
            f"{len(plan['runs'])} runs finished and recorded in {record}: "
            f"`{rerun(name, plan, _out(folder, results), folder.parent)}` resumes them")


def experiment_summaries(paths: tuple[Path, ...]) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, summary) of every experiment folder among ``paths`` (each a folder holding summary.json, or a parent
    of such folders), in the order given."""
    found = []
    for path in paths:
        for summary in [path / "summary.json", *sorted(path.glob("*/summary.json"))]:
            if summary.is_file():
                found.append((summary.parent, json.loads(summary.read_text())))
    return found


def find_experiment(name: str, ctx: PartContext) -> tuple[Path, dict[str, Any]] | None:
    """(folder, summary) of experiment ``name``: the last among ``--reuse``, else of its committed standard
    measurements (:func:`standard_folders`) a confirmatory one, else the one whose runs trained on the most images
    (among equals: a decided one before one its learning gate left "not tested here", then the first listed), each
    measurement verified against its results.csv (a disagreement raises, naming the file)."""
    from jepalab.vision.experiments.results import verify

    reused = [(f, s) for f, s in experiment_summaries(ctx.reuse) if s.get("experiment") == name]
    if reused:
        return reused[-1]
    planned = standard_folders(name, ctx.results) if ctx.results is not None else []
    measured = [(f, verify(f)) for f in planned if (f / "summary.json").is_file()]
    return max(measured, key=lambda hit: (bool(hit[1].get("confirmatory")), _images_seen(hit[0]),
                                          hit[1]["verdict"] != "not tested here")) if measured else None


def other_measurements(name: str, shown: Path, ctx: PartContext, shown_sha256: str | None = None) -> list[str]:
    """One sentence per standard measurement of ``name`` other than the folder ``shown``: its verdict and scale (and
    its reanalysis, unless of the results.csv ``shown_sha256`` that ``shown`` reads), or how far its pre-registered
    runs have come."""
    sentences = []
    for folder in standard_folders(name, ctx.results) if ctx.results is not None else []:
        if folder.resolve() == shown.resolve():
            continue
        if not (folder / "summary.json").is_file():
            sentences.append(_pending(folder, name, ctx.results))
            continue
        summary, reanalysed = json.loads((folder / "summary.json").read_text()), _reanalysis(folder)
        if reanalysed and shown_sha256 and reanalysed.get("results_sha256") == shown_sha256:
            reanalysed = None  # the reading of the shown runs, stated with them
        sentences.append(f"{folder} ({_epochs(folder)}, {summary['seeds']} seed(s)): "
                         f"{summary['verdict']}" + (f" ({summary['reason']})" if summary.get("reason") else "")
                         + (f"; {_reanalysis_sentence(reanalysed)}" if reanalysed else ""))
    return sentences


def _revisions(revisions: Iterable[str]) -> str:
    return ", ".join(r[:12] + ("-dirty" if r.endswith("-dirty") else "") for r in sorted(revisions))


def provenance_line(folder: Path, summary: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """("measured on <device> at <revision>, N seeds, <mode> scale", the numbers claims.json carries); on CPUs the
    device is every CPU model that trained a session of the runs, else the machine that wrote the summary."""
    path = folder / "provenance.json"
    facts = json.loads(path.read_text()) if path.is_file() else {}
    device = facts.get("device", {}).get("name", "an unrecorded device")
    trained_on = sorted({s["cpu"] for r in facts.get("runs", []) for s in r.get("train_sessions", []) if s.get("cpu")})
    if trained_on and facts.get("device", {}).get("kind") == "cpu":
        device = " and ".join(trained_on)
    revision = _revisions(facts.get("git_revisions", ["unrecorded"]))
    read = _revisions({s["revision"] for s in facts.get("sessions", []) if s.get("revision")})
    numbers = {"seeds": summary["seeds"], "device": device, "revision": revision,
               "min_probe_gain": summary.get("min_probe_gain", {}), "mode": summary["mode"],
               **({"learning_gate": summary["learning_gate"]} if "learning_gate" in summary else {})}
    if read and read != revision:  # the code that measured the runs differs from the code that trained them
        numbers["read_at"] = read
    where = f"at {revision}" + (f" (read at {read})" if "read_at" in numbers else "")
    epochs = f" ({_epochs(folder)})" if (folder / "plan.json").is_file() else ""
    return f"measured on {device} {where}, {summary['seeds']} seed(s), {summary['mode']} scale{epochs}", numbers


LEARNING_COLUMNS = ("probe", "random_probe", "knn20", "random_knn20", "rankme", "random_rankme")


def learning_measures(folder: Path) -> dict[str, dict[str, float]]:
    """method → the smallest over its runs' last checkpoints of: label-probe and centred kNN-20 gain over the
    random-init encoder (points), and centred RankMe over the random-init encoder's (ratio); {} where results.csv
    lacks those columns."""
    from jepalab.vision.experiments.results import read_rows
    from jepalab.vision.experiments.rules import last_rows, min_gains

    path = folder / "results.csv"
    rows = last_rows(read_rows(path)) if path.is_file() else []
    if not rows or any(rows[0].get(column) is None for column in LEARNING_COLUMNS):
        return {}
    methods = sorted({r["method"] for r in rows})
    probe, knn = min_gains(rows, methods, "probe"), min_gains(rows, methods, "knn20")
    return {m: {"probe_points": probe[m], "knn20_points": knn[m],
                "rankme_ratio": min(r["rankme"] / r["random_rankme"] for r in rows if r["method"] == m)}
            for m in methods}


def _learning_sentence(measures: dict[str, dict[str, float]]) -> str:
    """What the other read-outs say each encoder learned, for a claim its learning gate left undecided."""
    return "the same encoders by other read-outs (smallest over runs): " + ", ".join(
        f"{m} kNN-20 {v['knn20_points']:+.1f} points, centred RankMe ×{v['rankme_ratio']:.2f} its random init's"
        for m, v in measures.items())


def finding_of(key: str, name: str, folder: Path, summary: dict[str, Any], ctx: PartContext,
               output: PartOutput) -> Finding:
    """The report's finding for one experiment folder (copied into the report when it lies outside it)."""
    others = other_measurements(name, folder, ctx, summary.get("results_sha256"))
    source, reanalysed = folder, same_runs_reanalysis(name, folder, summary, ctx)
    command = rerun(name, _plan(folder) if (folder / "plan.json").is_file() else None,
                    _out(folder, ctx.results) if ctx.results is not None else None, folder.parent)
    if not folder.resolve().is_relative_to(ctx.report_dir.resolve()):
        copy = ctx.out_dir / name
        copy.mkdir(parents=True, exist_ok=True)
        for item in [*folder.glob("*.png"), *folder.glob("*.json"), *folder.glob("*.csv")]:
            shutil.copy2(item, copy / item.name)
        output.notes.append(f"{name}: from {folder}")
        folder = copy
    where, numbers = provenance_line(folder, summary)
    checks = "; ".join(summary["checks"].values())
    verdict = summary.get("verdict") or ("holds" if summary["held"] else "does not hold")
    learning = learning_measures(folder)
    details = [_learning_sentence(learning)] if (verdict == "not tested here" and summary.get("min_probe_gain")
                                                  and learning) else []
    details += [_reanalysis_sentence(reanalysed)] if reanalysed else []
    intervals = interval_numbers(source, summary, reanalysed)
    details += [_registration_sentence(intervals["registration"])] if "registration" in intervals else []
    details += [f"other standard measurement of this claim: {other}" for other in others]
    figure = next(iter(sorted(folder.glob("*.png"))), None)
    if figure is not None:
        output.figures.append((ctx.relative(figure), f"{name}: {summary['claim']}"))
    plan = folder / "plan.json"
    return Finding(key, f"{where}: {checks}", verdict, reason=summary["rule"], headline=summary.get("reason", ""),
                   tested=summary["claim"] if "tests" in summary else "", details=details,
                   figure=None if figure is None else ctx.relative(figure),
                   config=ctx.relative(plan if plan.is_file() else folder / "settings.json"),
                   numbers={**numbers, **summary["measured"], "effects": summary.get("effects", {}),
                            "learning": learning, **intervals,
                            "rerun": command if summary["mode"] == "standard" else None})


def same_runs_reanalysis(name: str, folder: Path, summary: dict[str, Any], ctx: PartContext) -> dict[str, Any] | None:
    """The confirmatory rule's reading of ``folder``'s runs (labelled exploratory): its own reanalysis.json, else
    that of another standard measurement of ``name`` reanalysed from the identical results.csv (the same runs
    decided under another learning gate)."""
    own = _reanalysis(folder)
    if own is not None or not summary.get("results_sha256") or ctx.results is None:
        return own
    found = (_reanalysis(other) for other in standard_folders(name, ctx.results))
    return next((r for r in found if r is not None and r.get("results_sha256") == summary["results_sha256"]), None)


def _reanalysis(folder: Path) -> dict[str, Any] | None:
    """``folder``'s reanalysis.json (the confirmatory rule on exploratory data), if any."""
    path = folder / "reanalysis.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _reanalysis_sentence(found: dict[str, Any]) -> str:
    """One sentence: the confirmatory rule's verdict on this folder's data, labelled exploratory."""
    why = f" ({found['reason']})" if found.get("reason") else " (" + "; ".join(found["checks"].values()) + ")"
    return f"under the confirmatory rule, {found['label']}: {found['verdict']}{why}"


def _registration_sentence(record: dict[str, Any]) -> str:
    """One sentence: where git shows the plan committed, before the code that trained the runs and their results."""
    if not record["checked"]:
        return f"registration order not checked by git here ({record['reason']})"
    results = f"results.csv first committed at {record['results_commit'][:12]}" if record["results_commit"] \
        else "results.csv not yet committed"
    return (f"plan.json committed at {record['plan_commit'][:12]} ({record['plan_committed']}), contained in all "
            f"{len(record['training_revisions'])} code revision(s) that trained the runs; {results}, after it")


def interval_numbers(folder: Path, summary: dict[str, Any], reanalysed: dict[str, Any] | None) -> dict[str, Any]:
    """What claims.json carries of a measurement decided by interval statistics: confirmatory, folder, seeds, the
    tests with their intervals and p-values, the smallest effects of interest; of an exploratory measurement, its
    reanalysis under the confirmatory rule (labelled); of a confirmatory one, git's record of its registration."""
    from jepalab.vision.experiments.results import registration

    numbers: dict[str, Any] = {"confirmatory": bool(summary.get("confirmatory")), "folder": folder.as_posix(),
                               "seed_list": summary.get("seed_list") or (_plan(folder)["seeds"] if
                                                                         (folder / "plan.json").is_file() else [])}
    if "tests" in summary:
        numbers.update(tests={name: {k: t[k] for k in ("effects", "mean", "ci95", "p_one_sided", "p_holm")}
                              for name, t in summary["tests"].items()},
                       smallest_effect_of_interest=summary["smallest_effect_of_interest"])
    if numbers["confirmatory"]:
        numbers["registration"] = registration(folder)
    if reanalysed:
        numbers["exploratory_reanalysis"] = {key: reanalysed[key] for key in ("label", "verdict", "reason", "tests",
                                                                              "smallest_effect_of_interest")}
    return numbers


def _claims(optional: bool) -> dict[str, ClaimSpec]:
    """experiment name → its report claim, for the registered experiments with (``optional``) or without the
    report_optional flag, in claim-key order."""
    from jepalab.vision.experiments import available_experiments

    found = {name: ClaimSpec(exp.claim_key, **exp.report_claim) for name, exp in available_experiments().items()
             if exp.report_claim is not None and exp.report_optional == optional}
    return dict(sorted(found.items(), key=lambda item: item[1].key))


def _missing(name: str, ctx: PartContext) -> str:
    """Why experiment ``name`` has no finding: pre-registered but its runs not all finished, or not there at all."""
    planned = standard_folders(name, ctx.results) if ctx.results is not None else []
    if planned:
        return "; ".join(_pending(folder, name, ctx.results) for folder in planned)
    return f"no results/{name} folder and no `jepalab experiment {name}` folder among --reuse; run `{rerun(name)}`"


def _run_experiments(ctx: PartContext, optional: bool) -> PartOutput:
    """Findings of the experiments' claims from the results folders (or reused folders); in full mode the
    missing non-optional experiments are run at GPU scale."""
    claims = _claims(optional)
    found = {name: find_experiment(name, ctx) for name in claims}
    if ctx.mode == "full" and not optional:
        from jepalab.vision.experiments import ExperimentSettings, run_experiment

        for name, hit in found.items():
            if hit is None:
                folder = ctx.out_dir / name
                found[name] = (folder, run_experiment(name, folder, ExperimentSettings.for_mode("full")))
    output = PartOutput(config={"reused": [str(p) for p in ctx.reuse], "results": str(ctx.results),
                                "mode": ctx.mode})
    for name, claim in claims.items():
        if found[name] is None:
            why = "its pre-registered runs have not all finished" if ctx.results is not None and standard_folders(
                name, ctx.results) else "no results folder"
            output.findings.append(Finding(claim.key, "-", "not tested here", reason=_missing(name, ctx),
                                           headline=why))
            continue
        output.findings.append(finding_of(claim.key, name, *found[name], ctx, output))
    if not optional:
        _forest(ctx, found, output)
    return output


def registered_smallest(name: str, ctx: PartContext) -> dict[str, float]:
    """Smallest effects of interest pre-registered for experiment ``name`` in a plan of its standard measurements
    (its confirmatory plan); {} where none registers any."""
    for folder in standard_folders(name, ctx.results) if ctx.results is not None else []:
        registered = _plan(folder).get("smallest_effect_of_interest")
        if registered:
            return {test: float(entry["value"]) for test, entry in registered.items()}
    return {}


FOREST_CAPTION = (f"{FOREST_ALT.capitalize()}: for each test of each claim, the per-seed effects (dots; > 0 supports "
                  "the claim), their mean, mean ± sd (grey bar) where the earlier shared test (mean > sd) decided "
                  "the claim, and the 95 % Student-t interval (black) where interval statistics were computed: the "
                  "confirmatory measurement's, or these runs reanalysed under the confirmatory rule, labelled "
                  "exploratory; 0 (grey line) and the smallest effect of interest (orange, dashed) marked")


def _forest(ctx: PartContext, found: dict[str, tuple[Path, dict[str, Any]] | None], output: PartOutput) -> None:
    """Add the forest plot of every measured real-image claim (the optional ones too) to ``output``'s figures."""
    rows = []
    for name, claim in [*_claims(False).items(), *_claims(True).items()]:
        hit = found[name] if name in found else find_experiment(name, ctx)
        if hit is not None:
            folder, summary = hit
            rows += effect_rows(claim.key, summary, same_runs_reanalysis(name, folder, summary, ctx),
                                registered_smallest(name, ctx))
    if rows:
        figure = forest_figure(rows, ctx.out_dir / "intervals")
        output.figures.insert(0, (ctx.relative(figure), FOREST_CAPTION))


def run_images(ctx: PartContext) -> PartOutput:
    """R1–R3 (and any other registered experiment's claim that the report always shows)."""
    return _run_experiments(ctx, optional=False)


def run_beyond(ctx: PartContext) -> PartOutput:
    """The optional claims (E1: EC-IJEPA, our reading), shown when their results exist."""
    return _run_experiments(ctx, optional=True)


def _any_optional_found(reuse: tuple[Path, ...], results: Path | None) -> bool:
    names = set(_claims(optional=True))
    reused = {s.get("experiment") for _, s in experiment_summaries(reuse)}
    return bool(names & reused) or any((folder / "summary.json").is_file() for n in names
                                       for folder in (standard_folders(n, results) if results is not None else []))


@report_part_factory
def experiment_parts() -> tuple[Part, ...]:
    """The real-image parts, with the claims of the experiments registered now."""
    return (Part("images", "Real images: I-JEPA vs MAE ViTs on (noisy) Fashion-MNIST", tuple(_claims(False).values()),
                 run_images, {"quick": 5.0, "full": 4 * 3600.0}, uses_reuse=True, order=60, group="images"),
            Part("beyond", "Beyond the paper: EC-IJEPA (our reading) and other optional experiments",
                 tuple(_claims(True).values()), run_beyond, {"quick": 1.0, "full": 1.0}, uses_reuse=True,
                 shown=_any_optional_found, order=70, group="images"))
