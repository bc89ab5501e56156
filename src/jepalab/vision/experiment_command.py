"""``jepalab experiment``: train the named experiments' runs, evaluate them and decide each claim by its rule."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
import types
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jepalab.vision.experiments import ExperimentSettings


def run_experiment_command(args: argparse.Namespace) -> int:
    """Run (or plan, or record) the named experiments with the mode's settings; print each verdict; exit code 0."""
    from jepalab.rundir import output_dir
    from jepalab.vision.experiments import experiment, run_experiments, write_plan
    from jepalab.vision.experiments.launchers import launch_options
    from jepalab.vision.experiments.results import folder_name
    from jepalab.vision.experiments.store import restore_light, run_folder, save_light

    names = [item for item in args.items if "=" not in item]
    if not names:
        raise SystemExit("jepalab experiment: name at least one experiment (see --help)")
    for name in names:
        experiment(name)  # a clear error for an unknown name before anything runs
    mode, settings = _mode_settings(args)
    launch = launch_options(vars(args))
    root = Path(args.out) if args.out else Path("results") if mode == "standard" else None
    if len(names) == 1 and root is not None and mode != "standard":
        outs = {names[0]: root}
    else:
        root = root or output_dir(None, "experiment-" + "-".join(names))
        outs = {name: root / folder_name(name, settings) for name in names}
    if args.resummarise:
        return _resummarise(outs)
    if args.reanalyse:
        return _reanalyse(outs)
    if args.plan:
        for name, out in outs.items():
            print(f"wrote {write_plan(name, out, settings)}: commit it, then run the same command without --plan")
        return 0
    store = Path(settings.runs_dir) if settings.runs_dir else Path("runs/store") if mode == "standard" else \
        next(iter(outs.values())) / "runs"
    record = root / "store" if mode == "standard" else None  # light copies of finished runs, committed with results
    planned = {run_folder(store, cfg).name for name in names for _, cfg in experiment(name).runs(settings)}
    if args.progress:
        from jepalab.vision.experiments.campaign import measurement_progress, progress_table, registration_lines

        print(progress_table(measurement_progress(names, settings, store, record)))
        if settings.confirmatory:
            print("\n".join(registration_lines(outs, settings, store, record)))
        return 0
    if args.save_finished:
        target = record or store.parent / "store-light"
        saved = save_light(store, target, planned)
        print(f"recorded {len(saved)} finished, evaluated run(s) of {store} in {target}: commit them")
        return 0
    if record is not None:
        restored = restore_light(record, store)
        if restored:
            print(f"restored {len(restored)} finished run(s) from {record} into {store}")
    summaries = run_experiments(names, outs, settings, store, require_plan=mode in ("standard", "full"), launch=launch)
    if record is not None:
        save_light(store, record, planned)
    _print_verdicts(summaries, outs)
    return 0


def _mode_settings(args: argparse.Namespace) -> tuple[str, ExperimentSettings]:
    """The mode (quick, standard or full) and its settings with the command's ``key=value`` overrides, data folder
    and job count."""
    from jepalab.config import config_to_dict, from_dict, merge_dicts, parse_overrides
    from jepalab.vision.experiments import ExperimentSettings

    mode = "standard" if args.standard else "full" if args.full else "quick"
    overrides = parse_overrides([item for item in args.items if "=" in item])
    settings = from_dict(ExperimentSettings, merge_dicts(config_to_dict(ExperimentSettings.for_mode(mode)), overrides))
    if args.data_dir is not None:
        settings = dataclasses.replace(settings, data_root=args.data_dir)
    if args.jobs is not None:
        settings = dataclasses.replace(settings, jobs=args.jobs)
    return mode, settings


def _resummarise(outs: dict[str, Path]) -> int:
    """Rewrite each folder's summary.json and figures from its committed results.csv; print the verdicts."""
    from jepalab.vision.experiments.runner import resummarise

    _print_verdicts({name: resummarise(out) for name, out in outs.items()}, outs)
    return 0


def _reanalyse(outs: dict[str, Path]) -> int:
    """Write each folder's reanalysis.json (the confirmatory rule on its committed results.csv); print the verdicts."""
    from jepalab.vision.experiments.runner import reanalyse

    for name, out in outs.items():
        found = reanalyse(out)
        print(f"{name} ({out}), {found['label']}: {found['verdict']}" + (f" ({found['reason']})" if found["reason"]
                                                                         else ""))
        for check in found["checks"].values():
            print(f"  {check}")
    return 0


def _print_verdicts(summaries: dict[str, dict], outs: dict[str, Path]) -> None:
    """Each experiment's claim, rule checks and verdict."""
    for name, summary in summaries.items():
        print(f"{name}: {summary['claim']}")
        for check in summary["checks"].values():
            print(f"  {check}")
        reason = f" ({summary['reason']})" if summary["reason"] else ""
        print(f"  verdict: {summary['verdict']}{reason} ({summary['mode']} mode, {summary['seeds']} seed(s)); "
              f"wrote {outs[name]}/summary.json, results.csv and figures")


def _experiment_help(parser: argparse.ArgumentParser) -> str:
    """``jepalab experiment --help`` with the registered experiments (discovered only when help is asked for) and
    the key=value settings."""
    from jepalab.vision.experiments import ExperimentSettings, available_experiments

    lines = [f"  {name}: {(type(exp).__doc__ or '').strip().splitlines()[0]}"
             for name, exp in available_experiments().items()]
    settings = [textwrap.fill(f"{f.name}: {f.metadata['help']}" + (f" (one of {', '.join(f.metadata['choices'])})"
                                                                    if f.metadata.get("choices") else ""),
                              100, initial_indent="  ", subsequent_indent="      ", break_on_hyphens=False)
                for f in dataclasses.fields(ExperimentSettings) if f.metadata.get("help")]
    parser.epilog = ("registered experiments:\n" + "\n".join(lines) + "\n\nsettings (key=value over the mode's "
                     "defaults; eval.<key> for the evaluation's):\n" + "\n".join(settings))
    parser.description = textwrap.fill(parser.description or "", 100)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    return argparse.ArgumentParser.format_help(parser)


def add_experiment(subparsers: argparse._SubParsersAction) -> None:
    """The parser of ``jepalab experiment``."""
    x = subparsers.add_parser("experiment", help="real-image experiments (noisy-features, variance-subspaces, depth, "
                                                 "context-size, ...; --help lists every registered one)",
                              description="Train two methods (default I-JEPA and MAE) with the same encoder and "
                                          "budget, evaluate them, and decide each named experiment's claim by its "
                                          "rule (jepalab.vision.experiments). --quick (default) fits 2 CPU cores in "
                                          "≤ 20 min; --standard is the CPU presets' scale with 3 seeds (results/NAME, "
                                          "runs shared through runs/store); --full is for a GPU. --standard and "
                                          "--full need a committed plan.json (--plan writes it). Re-running reuses "
                                          "finished runs.")
    x.add_argument("items", nargs="+", metavar="NAME|key=value",
                   help="experiment names, then settings, e.g. noisy-features depth seeds=[0,1,2] epochs=5 gate=knn20")
    mode = x.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small models, few steps, 1 seed (default)")
    mode.add_argument("--standard", action="store_true", help="the CPU presets' scale, 3 seeds (noisy-features, "
                      "variance-subspaces and depth with --jobs 2 on 2 cores: about 3 h at the presets' 4 epochs, "
                      "about 10 h at epochs=24; resumable)")
    mode.add_argument("--full", action="store_true", help="GPU scale, 3 seeds")
    x.add_argument("--plan", action="store_true", help="write each experiment's plan.json (claim, rule, control, "
                   "settings) and stop")
    x.add_argument("--save-finished", action="store_true", help="--standard: copy the finished, evaluated runs' light "
                   "files (no checkpoints) into OUT/store, to commit while runs go on; a later --standard run on "
                   "a fresh machine restores them and trains only the rest")
    x.add_argument("--progress", action="store_true", help="train nothing: each planned run's state (recorded, "
                   "finished, running, stopped, not started), the step it resumes from and the training time left, "
                   "from the speed its sessions measured; for a confirmatory plan, git's check that the plan precedes "
                   "every revision that has trained its runs")
    x.add_argument("--resummarise", action="store_true", help="--standard/--full: rewrite each folder's summary.json "
                   "and figures from its committed results.csv with this revision's rule code (after a fix to a rule; "
                   "no run is trained or evaluated) and log it in provenance.json")
    x.add_argument("--reanalyse", action="store_true", help="--standard: write each folder's reanalysis.json, its "
                   "committed results.csv decided by the confirmatory rule (interval statistics, noise gate), "
                   "labelled exploratory; summary.json is left as it was")
    x.add_argument("--out", default=None, help="experiment folder (several names: their parent; default "
                   "runs/experiment-<names>-<time>, results/ with --standard)")
    x.add_argument("--data-dir", default=None, help="Fashion-MNIST folder")
    x.add_argument("--jobs", type=int, default=None, help="--launcher local: runs at once on the device, each in its "
                   "own process (default 1; on a CPU the cores are split between them)")
    x.add_argument("--launcher", default=None, help="local (default; this machine), slurm (one job of a submitit job "
                   "array per run; docs/cluster.md) or submitit-local (those jobs as local processes)")
    x.add_argument("--partition", default=None, help="slurm: the partition")
    x.add_argument("--gpus-per-run", type=int, default=None, help="slurm: GPUs per run's job (default 0; > 1: DDP)")
    x.add_argument("--cpus-per-run", type=int, default=None, help="slurm: CPU cores per run's job (its threads)")
    x.add_argument("--time", type=int, default=None, dest="time_min", metavar="MIN", help="slurm: time limit per "
                   "job in minutes (default 240); a job near it checkpoints and is requeued")
    x.add_argument("--array-parallelism", type=int, default=None, help="slurm: jobs running at once (default 64)")
    x.add_argument("--order", default=None, choices=("planned", "cheapest-first"), help="the order runs start in "
                   "(cheapest-first: by training FLOPs, so that a session ending mid-run loses the least)")
    x.add_argument("--detach", action="store_true", default=None, help="slurm: submit and return; the same command "
                   "later collects finished runs and writes the results")
    x.add_argument("--poll", type=float, default=None, dest="poll_s", metavar="S", help="slurm: seconds between looks "
                   "at the queue while waiting (default 10)")
    x.format_help = types.MethodType(_experiment_help, x)  # lists the registered experiments when asked
    x.set_defaults(handler=run_experiment_command)
