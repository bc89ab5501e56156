"""``jepalab experiment NAME [NAME ...]``: plan, train (every distinct run once, in one pool across the named
experiments), evaluate, decide and write each experiment's results folder (:mod:`.results`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jepalab.rundir import command_line, environment, host_facts, write_csv, write_json
from jepalab.vision.experiments.launchers import LaunchOptions
from jepalab.vision.experiments.registration import in_work_tree
from jepalab.vision.experiments.registry import Experiment, experiment
from jepalab.vision.experiments.results import (
    ResultsMismatch,
    check_plan,
    file_sha256,
    plan,
    read_plan,
    read_rows,
    reanalysis_settings,
    registration,
    summarise,
)
from jepalab.vision.experiments.settings import ExperimentSettings
from jepalab.vision.experiments.store import execute, run_folder

__all__ = ["device_facts", "reanalyse", "resummarise", "run_experiment", "run_experiments", "write_plan"]

Say = Callable[[str], None]


def device_facts(device: str = "auto") -> dict[str, Any]:
    """The machine runs trained on: GPU name, or CPU model, core count and matrix-unit flags (:func:`host_facts`)."""
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return {"kind": "cuda", "name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count()}
    host = host_facts()
    return {"kind": "cpu", "name": host["cpu"], "cores": host["cores"], "flags": host["flags"]}


def write_plan(name: str, out: Path, settings: ExperimentSettings) -> Path:
    """Write ``out/plan.json`` for experiment ``name`` at ``settings`` (then commit it, then run)."""
    out.mkdir(parents=True, exist_ok=True)
    return write_json(out / "plan.json", plan(experiment(name), settings))


def _loss_curves(labelled: list[tuple[dict[str, Any], Path]], every: int = 10) -> list[dict[str, Any]]:
    """The training loss of every run (metrics.jsonl) at every ``every``-th step, labelled."""
    rows = []
    for labels, run in labelled:
        for line in (run / "metrics.jsonl").read_text().splitlines():
            record = json.loads(line)
            if "loss" in record and record.get("kind") != "diag" and record["step"] % every == 0:
                rows.append({**labels, "run": run.name, "step": record["step"], "loss": record["loss"],
                             "lr": record.get("lr")})
    return rows


def _provenance(out: Path, labelled: list[tuple[dict[str, Any], Path]], session: dict[str, Any],
                settings: ExperimentSettings) -> dict[str, Any]:
    """provenance.json: device, torch, precision, the code revisions that trained, every command that worked on the
    runs (wall time, images trained) and each run's data fingerprint (None for runs trained before run.json held
    one; with any change it was allowed to continue on), training wall time and images/s (its last session; and
    every training session's command, host, wall time and images/s where run.json records them)."""
    import torch

    records = [json.loads((run / "run.json").read_text()) for _, run in labelled]
    summaries = [json.loads((run / "summary.json").read_text()) for _, run in labelled]
    earlier = json.loads((out / "provenance.json").read_text()).get("sessions", []) \
        if (out / "provenance.json").is_file() else []
    sessions = [*earlier, session] if session["images_trained"] or not earlier else earlier
    untimed = [_steps_without_wall(r, s) for r, s in zip(records, summaries)]
    return {"device": device_facts(settings.device), "torch": torch.__version__,
            "precision": sorted({r["precision"] for r in records}),
            "git_revisions": sorted({str(r["environment"]["git_revision"]) for r in records}),
            "sessions": sessions, "commands_wall_s": sum(s["wall_s"] for s in sessions),
            "runs_train_wall_s": sum(_train_wall(r, s) for r, s in zip(records, summaries)),
            "runs_train_steps_without_wall_s": sum(untimed),
            "runs": [{**labels, "run": run.name, "steps": s["steps_done"], "images_per_s_last_session":
                      s["images_per_s"], "wall_s_last_session": s["wall_s"],
                      "data_fingerprint": r.get("data_fingerprint"),
                      **({"data_changes": r["data_changes"]} if r.get("data_changes") else {}),
                      **({"steps_without_wall_s": n} if n else {}),
                      **({"train_sessions": r["sessions"]} if r.get("sessions") else {})}
                     for (labels, run), r, s, n in zip(labelled, records, summaries, untimed)]}


def _train_wall(record: dict[str, Any], summary: dict[str, Any]) -> float:
    """A run's training wall time: every session's that run.json records, else its last session's (summary.json;
    runs trained before sessions were recorded)."""
    sessions = record.get("sessions")
    return sum(float(s["wall_s"]) for s in sessions) if sessions else float(summary["wall_s"])


def _steps_without_wall(record: dict[str, Any], summary: dict[str, Any]) -> int:
    """Steps a run trained that :func:`_train_wall` counts no time for: steps_done − Σ (to − from) over run.json's
    sessions (a session of code that wrote its record only on a normal end, ended by a kill), else − the last
    session's steps (0 where summary.json predates that count)."""
    sessions = record.get("sessions")
    timed = sum(to - start for start, to in (s["steps"] for s in sessions)) if sessions \
        else summary.get("steps_this_session", summary["steps_done"])
    return int(summary["steps_done"]) - int(timed)


def _finish(exp: Experiment, out: Path, labelled: list[tuple[dict[str, Any], Path]],
            results: dict[Path, dict[str, Any]], session: dict[str, Any], settings: ExperimentSettings) -> dict:
    """Write results.csv, curves.csv, provenance.json, the figures and summary.json of one experiment."""
    rows = [row for labels, run in labelled for row in exp.run_rows(labels, run, results[run], settings)]
    write_csv(out / "results.csv", rows)
    write_csv(out / "curves.csv", _loss_curves(labelled))
    write_json(out / "provenance.json", _provenance(out, labelled, session, settings))
    return _write_summary(exp, out, rows, settings)


def _write_summary(exp: Experiment, out: Path, rows: list[dict[str, Any]], settings: ExperimentSettings) -> dict:
    """The figures and summary.json of ``rows`` (those of ``out``/results.csv) by ``exp``'s rule; returns it. Refused
    into a folder of a git work tree while the code deciding it has uncommitted changes, and (a confirmatory plan)
    where git shows the plan committed after the code that trained the runs."""
    revision = str(environment()["git_revision"])
    if revision.endswith("-dirty") and in_work_tree(out):
        raise ResultsMismatch(f"refusing to write {out / 'summary.json'} from uncommitted code ({revision}): commit "
                              "first, so that the summary names the code that decided it")
    if settings.confirmatory:
        registration(out)
    exp.plot(rows, settings, out)
    summary = {**summarise(exp, rows, settings), "results_sha256": file_sha256(out / "results.csv"),
               "written_at_revision": revision}
    write_json(out / "summary.json", summary)
    return summary


def run_experiments(names: Sequence[str], outs: dict[str, Path], settings: ExperimentSettings, store: Path,
                    say: Say = print, require_plan: bool = False,
                    launch: LaunchOptions | None = None) -> dict[str, dict[str, Any]]:
    """Run experiments ``names`` into ``outs[name]``, every distinct run once in ``store`` through the launcher of
    ``launch`` (default: local processes); returns each experiment's summary, none while runs are still in flight
    (a detached launch) or were stopped on request. With ``require_plan`` each folder must hold its committed
    plan.json (:func:`~.results.check_plan`), else the plan is written first."""
    exps = [experiment(name) for name in names]
    runs: dict[str, list[tuple[dict[str, Any], Path]]] = {}
    configs, measures = [], {}
    for exp in exps:
        out = outs[exp.name]
        out.mkdir(parents=True, exist_ok=True)
        if require_plan:
            check_plan(out, plan(exp, settings))
        else:
            write_json(out / "plan.json", plan(exp, settings))
        pairs = exp.runs(settings)
        runs[exp.name] = [(labels, run_folder(store, cfg)) for labels, cfg in pairs]
        configs += [cfg for _, cfg in pairs]
        for _, run in runs[exp.name]:
            measures[run] = (*measures.get(run, ()), exp.name)
    say(f"{len(configs)} runs asked for by {', '.join(names)}: {len({run_folder(store, c) for c in configs})} "
        f"distinct, in {store}")
    started, revision = time.strftime("%Y-%m-%dT%H:%M:%S%z"), environment()["git_revision"]  # the code measuring
    executed = execute(configs, store, settings, say, measures, launch)
    if executed is None:
        return {}
    results, session = executed
    session = {**session, "started": started, "command": command_line(), "experiments": list(names),
               "revision": revision}
    return {exp.name: _finish(exp, outs[exp.name], runs[exp.name], results, session, settings) for exp in exps}


def run_experiment(name: str, out: str | Path, settings: ExperimentSettings, say: Say = print) -> dict[str, Any]:
    """One experiment into ``out`` (its runs in ``settings.runs_dir`` or ``out/runs``; finished runs are reused)."""
    out = Path(out)
    store = Path(settings.runs_dir) if settings.runs_dir else out / "runs"
    return run_experiments([name], {name: out}, settings, store, say)[name]


def resummarise(out: Path) -> dict[str, Any]:
    """Rewrite ``out``'s summary.json and figures from its committed plan.json and results.csv with the rule code of
    this revision (after a fix to a rule or a rank statistic; the measured rows are left as they are) and record it as
    provenance.json's ``resummarised`` (the rewrite now there; earlier ones are in git history); returns the summary."""
    out = Path(out)
    _, exp, settings = read_plan(out)
    summary = _write_summary(exp, out, read_rows(out / "results.csv"), settings)
    provenance = json.loads((out / "provenance.json").read_text())
    provenance["resummarised"] = [{
        "revision": summary["written_at_revision"], "command": command_line(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}]
    write_json(out / "provenance.json", provenance)
    return summary


def reanalyse(out: Path) -> dict[str, Any]:
    """Write ``out``/reanalysis.json: the folder's committed results.csv decided by the confirmatory rule (interval
    statistics and, except for learning-order, the noise learning gate), labelled exploratory: the rule was chosen
    after these data were seen. summary.json, the verdict registered for these data, is left as it was."""
    out = Path(out)
    _, exp, settings = read_plan(out)
    revision = str(environment()["git_revision"])
    if revision.endswith("-dirty") and in_work_tree(out):
        raise ResultsMismatch(f"refusing to write {out / 'reanalysis.json'} from uncommitted code ({revision})")
    summary = summarise(exp, read_rows(out / "results.csv"), reanalysis_settings(settings, exp.name))
    seeds = ", ".join(str(s) for s in settings.seeds)
    after = "; its learning gate was registered after data" if settings.gate == "knn20" else ""
    gate = "finite-prediction gate" if exp.name == "learning-order" else "noise gate"
    label = (f"exploratory (seeds {seeds}, each compared with one shared random init; the interval rule and the "
             f"{gate} were chosen after these data{after})")
    reanalysis = {"label": label, "revision": revision, **summary,
                  "results_sha256": file_sha256(out / "results.csv")}
    write_json(out / "reanalysis.json", reanalysis)
    return reanalysis
