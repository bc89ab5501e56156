"""CLI commands of the vision layer: ``jepalab pretrain``, ``embed``, ``eval``, ``compare``, ``runs`` and ``data
stats``; ``experiment`` lives in :mod:`jepalab.vision.experiment_command`."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from jepalab.vision.experiment_command import add_experiment


def split_config(items: list[str]) -> tuple[str | None, list[str]]:
    """``[CONFIG] key=value ...`` → (CONFIG or None, overrides)."""
    if items and "=" not in items[0]:
        return items[0], items[1:]
    return None, items


def _pretrain(args: argparse.Namespace) -> int:
    from jepalab.config import load_config
    from jepalab.vision.methods.config import PretrainConfig
    from jepalab.vision.training.loop import pretrain
    from jepalab.vision.training.run_dir import load_run_config

    config, overrides = split_config(args.items)
    if args.data_dir is not None:
        overrides.append(f"data.root={args.data_dir}")
    if args.resume is not None:
        cfg = load_config(PretrainConfig, config, overrides) if config else load_run_config(args.resume, overrides)
        pretrain(cfg, args.resume, resume=True, stop_after=args.stop_after, allow_data_change=args.allow_data_change)
        return _leave_distributed()
    if args.allow_data_change:
        raise ValueError("--allow-data-change continues a run: use it with --resume RUN")
    if config is None:
        raise ValueError("give a config file (see configs/*.yaml), e.g. jepalab pretrain configs/fmnist-ijepa-cpu.yaml")
    if args.explain and not args.dry_run:
        raise ValueError("--explain goes with --dry-run")
    cfg = load_config(PretrainConfig, config, overrides)
    run = pretrain(cfg, args.out, stop_after=args.stop_after, dry_run=args.dry_run)
    if args.explain:
        _explain(cfg, config, overrides, run)
    if args.dry_run:
        print(f"dry run: config valid; wrote {run}/config.yaml and run.json")
    return _leave_distributed()


def _explain(cfg: Any, config: str, overrides: list[str], run: Path) -> None:
    """Print every effective setting with its source and write RUN/explain.json."""
    from jepalab.rundir import write_json
    from jepalab.vision.training.explain import explain_settings, format_explanation

    rows = explain_settings(cfg, config, overrides, json.loads((run / "run.json").read_text()))
    print(format_explanation(rows))
    write_json(run / "explain.json", rows)


def _leave_distributed() -> int:
    """0; a torchrun worker whose run finished (files written, process group destroyed) exits here at once: on
    CPUs a gloo worker was seen to abort in interpreter teardown ("terminate called without an active exception",
    about one launch in 24), turning a finished run into a failed launch."""
    import os
    import sys

    from jepalab.vision.training.distributed import launched_world_size

    if launched_world_size() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _data_config(run_data: dict, spec: str, data_dir: str | None, limit: int | None, on_corrupt: str | None):
    """The run's data settings with the dataset replaced by ``spec``: "NAME[:SPLIT]" or an image folder path."""
    from jepalab.config import from_dict
    from jepalab.data import DataConfig, available_datasets, dataset_spec
    from jepalab.data.folder import FOLDER_DATASET

    name, _, split = spec.partition(":")
    fields = dict(run_data)
    if name in available_datasets():
        if name != fields["dataset"]:
            fields.update(root=None, options={})
        fields["dataset"] = name
    elif Path(spec).is_dir():
        fields.update(dataset=FOLDER_DATASET, root=spec, options={})
        split = ""
    else:
        raise ValueError(f"--data {spec!r} is neither a dataset ({', '.join(available_datasets())}) nor a folder")
    if data_dir is not None:
        fields["root"] = data_dir
    fields.update(split=split or dataset_spec(fields["dataset"]).eval_split, limit=limit)
    if on_corrupt is not None:
        fields["on_corrupt"] = on_corrupt
    return from_dict(DataConfig, fields, prefix="data.")


def _embed(args: argparse.Namespace) -> int:
    from jepalab.config import config_to_dict
    from jepalab.vision.readout.embeddings import embed
    from jepalab.vision.readout.run import Run
    from jepalab.vision.training.distributed import resolve_device

    run = Run(args.run, resolve_device(args.device))
    data = _data_config(config_to_dict(run.config.data), args.data, args.data_dir, args.limit, args.on_corrupt)
    data = dataclasses.replace(data, channels=run.dataset["channels"])  # an image folder is read as the run's
    folder = embed(run, data, None, args.pooling, args.encoder, args.out, args.checkpoint, args.batch_size,
                   run.device, args.condition)
    note = json.loads((folder / "embed.json").read_text())["condition"]
    print(f"wrote {folder}/embeddings.npy (+ labels.npy, embed.json){'; ' + note if note else ''}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from jepalab.config import load_config
    from jepalab.vision.readout.evaluation import EvalSettings, eval_table, evaluate_run, readout_table
    from jepalab.vision.training.distributed import resolve_device

    settings = load_config(EvalSettings, None, args.set)
    if args.readout is not None:
        settings = dataclasses.replace(settings, readout=args.readout)
    if args.condition is not None:
        settings = dataclasses.replace(settings, condition=args.condition)
    result = evaluate_run(args.run, args.checkpoint, settings, resolve_device(args.device))
    print(eval_table(result))
    print(f"protocol: {result['checkpoints'][-1]['probe_protocol']}")
    if result["readouts"]:
        print("\nread-outs (kNN and RankMe centred; 'unc.' = uncentred):")
        print(readout_table(result))
    print(f"wrote {Path(args.run) / 'eval.json'}, eval.csv and eval_readouts.csv")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from jepalab.rundir import output_dir, write_csv, write_json
    from jepalab.vision.readout.tables import compare_rows, compare_table, plot_compare

    rows = compare_rows(args.runs)
    out = output_dir(args.out, "compare")
    out.mkdir(parents=True, exist_ok=True)
    print(compare_table(rows))
    write_csv(out / "compare.csv", rows)
    write_json(out / "compare.json", rows)
    plot_compare(rows, out / "compare")
    print(f"wrote {out}/compare.csv, compare.png")
    return 0


def _runs(args: argparse.Namespace) -> int:
    from jepalab.rundir import to_jsonable
    from jepalab.vision.readout.run_states import list_runs, runs_table

    rows = list_runs(args.dir, args.stale_after)
    if args.json:
        print(json.dumps(to_jsonable(rows), indent=1))
    else:
        print(runs_table(rows) if rows else f"no run folders below {args.dir}")
    return 0


def _data_stats(args: argparse.Namespace) -> int:
    from jepalab.config import load_config
    from jepalab.rundir import write_json
    from jepalab.vision.methods.config import PretrainConfig
    from jepalab.vision.readout.view_stats import dataset_feature_stats

    config, overrides = split_config(args.items)
    if args.data_dir is not None:
        overrides.append(f"data.root={args.data_dir}")
    cfg = load_config(PretrainConfig, config, overrides)
    records = dataset_feature_stats(cfg, args.images, args.components, args.draws)
    print(f"{cfg.data.dataset} {cfg.data.options or ''}: {cfg.method} masks on a {cfg.grid[0]}×{cfg.grid[1]} grid, "
          f"{args.images} images × {args.draws} mask draws (pixels in [0, 1], centred; unit directions)")
    print(f"{'direction':<14}{'lambda':>10}{'rho':>10}{'E[(v.x)^2]':>13}{'E[(v.y)^2]':>13}")
    for r in records:
        print(f"{r['direction']:<14}{r['lam']:>10.4f}{r['rho']:>10.4f}{r['var_context']:>13.4f}{r['var_target']:>13.4f}")
    if records[0]["direction"] == "distractor":
        noise, top = records[0], records[1]
        larger = "larger" if noise["lam"] > top["lam"] else "NOT larger"
        smaller = "smaller" if noise["rho"] < top["rho"] else "NOT smaller"
        print(f"distractor vs content PC1: lambda {larger} ({noise['lam']:.3f} vs {top['lam']:.3f}), rho {smaller} "
              f"({noise['rho']:.3f} vs {top['rho']:.3f})")
    if args.out:
        write_json(Path(args.out), {"dataset": cfg.data.dataset, "options": cfg.data.options, "method": cfg.method,
                                    "images": args.images, "draws": args.draws, "directions": records})
        print(f"wrote {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``pretrain``, ``embed``, ``eval``, ``compare``, ``experiment``, ``runs`` and ``data stats`` to the root
    parser."""
    for add in (_add_pretrain, _add_embed, _add_eval, _add_compare, add_experiment, _add_runs, _add_data):
        add(subparsers)


def _add_pretrain(subparsers: argparse._SubParsersAction) -> None:
    """The parser of ``jepalab pretrain``."""
    p = subparsers.add_parser(
        "pretrain", help="I-JEPA / MAE ViT pretraining on Fashion-MNIST or an image folder (torchrun for DDP)",
        description="Train from a YAML config (configs/*.yaml) with key=value overrides, e.g. "
                    "`jepalab pretrain configs/fmnist-ijepa-cpu.yaml optim.epochs=2`. Resume a run with "
                    "`jepalab pretrain --resume RUN`. Several GPUs: `torchrun --nproc_per_node N -m jepalab pretrain "
                    "...`. See docs/pretraining.md.")
    p.add_argument("items", nargs="*", metavar="ARG", help="CONFIG file, then key=value overrides")
    p.add_argument("--out", default=None, help="run folder (default: runs/pretrain-<method>-<time>)")
    p.add_argument("--resume", default=None, metavar="RUN", help="continue the run in this folder from its checkpoint")
    p.add_argument("--data-dir", default=None, help="dataset folder (same as data.root=DIR)")
    p.add_argument("--stop-after", type=int, default=None, metavar="STEP",
                   help="end this session at STEP (with a checkpoint); --resume continues")
    p.add_argument("--dry-run", action="store_true", help="validate, print sizes, FLOPs and mask statistics, stop")
    p.add_argument("--explain", action="store_true", help="with --dry-run: print every effective setting, its value "
                   "and where it came from (key=value, a recipe rule, the preset, the default); RUN/explain.json")
    p.add_argument("--allow-data-change", action="store_true",
                   help="with --resume: continue although the data differs from the data the run started with "
                        "(refused otherwise; the change is recorded in run.json)")
    p.set_defaults(handler=_pretrain)


def _add_embed(subparsers: argparse._SubParsersAction) -> None:
    """The parser of ``jepalab embed``."""
    e = subparsers.add_parser("embed", help="frozen embeddings of a pretraining run's encoder (.npy)",
                              description="The method's default encoder (I-JEPA: target; MAE: encoder) on all "
                                          "patches; pooled features "
                                          "of every image of --data, in dataset order, with the labels.")
    e.add_argument("run", help="pretraining run folder")
    e.add_argument("--data", required=True, help="NAME[:SPLIT] of a registered dataset (e.g. fashion-mnist:test) "
                                                 "or an image folder")
    e.add_argument("--data-dir", default=None, help="folder of a registered dataset (its data.root)")
    e.add_argument("--pooling", default="mean", choices=("mean", "cls", "tokens"),
                   help="mean of patch tokens (default), MAE class token, or all patch tokens")
    e.add_argument("--encoder", default="auto",
                   help="auto: the method's default (I-JEPA target, MAE encoder), or one of its encoders by name")
    e.add_argument("--checkpoint", default=None, help="checkpoint file (default: RUN/checkpoint.safetensors)")
    e.add_argument("--condition", default=None,
                   help="conditioned methods: the encoders' conditioning, one of the method's conditions (default: "
                        "the run's own setting; docs/ecijepa.md)")
    e.add_argument("--out", default=None, help="output folder (default: RUN/embeddings/<data>-<split>-<enc>-<pool>)")
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--limit", type=int, default=None, help="first N images only")
    e.add_argument("--on-corrupt", default=None, choices=("fail", "skip"), help="unreadable images (image folders)")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    e.set_defaults(handler=_embed)


def _add_eval(subparsers: argparse._SubParsersAction) -> None:
    """The parser of ``jepalab eval``."""
    e = subparsers.add_parser("eval", help="frozen-feature evaluation of a pretraining run, with its baselines",
                              description="Linear probe, kNN, RankMe, LiDAR, top/bottom-variance subspace dependence "
                                          "and distractor R² of a run's checkpoints, each next to raw pixels and a "
                                          "random encoder of the same architecture. Writes RUN/eval.json and eval.csv.")
    e.add_argument("run", help="pretraining run folder")
    e.add_argument("--checkpoint", default="last", help="last (default), all, or a step number")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    e.add_argument("--readout", default=None, choices=("mean", "last4", "grid2"),
                   help="read-out of the headline metrics (default mean); the read-out table lists every one")
    e.add_argument("--condition", default=None,
                   help="conditioned methods: the encoders' conditioning, one of the method's conditions (default: "
                        "the run's own setting; docs/ecijepa.md)")
    e.add_argument("set", nargs="*", metavar="key=value",
                   help="evaluation settings: train_images, test_images, probe, lidar_images, lidar_views, "
                        "subspace_share, seed, batch_size")
    e.set_defaults(handler=_eval)


def _add_compare(subparsers: argparse._SubParsersAction) -> None:
    """The parser of ``jepalab compare``."""
    c = subparsers.add_parser("compare", help="one table and one plot across evaluated runs")
    c.add_argument("runs", nargs="+", help="run folders holding eval.json")
    c.add_argument("--out", default=None, help="output folder (default runs/compare-<time>)")
    c.set_defaults(handler=_compare)


def _add_runs(subparsers: argparse._SubParsersAction) -> None:
    """The parser of ``jepalab runs``."""
    r = subparsers.add_parser("runs", help="every run folder below DIR with its state, step, loss, speed and probe",
                              description="One row per pretraining run folder below DIR: method, dataset, step/total, "
                                          "state (running, finished, stopped, failed, collapsed; the rule: "
                                          "docs/cluster.md), last loss, images/s and the headline probe if evaluated.")
    r.add_argument("dir", nargs="?", default="runs", help="folder to search (default runs)")
    r.add_argument("--json", action="store_true", help="the rows as JSON")
    r.add_argument("--stale-after", type=float, default=600.0, metavar="S", help="a run training on another host "
                   "whose heartbeat is older than S seconds counts as stopped (default 600)")
    r.set_defaults(handler=_runs)


def _add_data(subparsers: argparse._SubParsersAction) -> None:
    """The parser of ``jepalab data stats``."""
    d = subparsers.add_parser("data", help="dataset tools")
    sub = d.add_subparsers(dest="data_command", required=True)
    s = sub.add_parser("stats", help="λ and ρ of the distractor and of the top content directions under the masks",
                       description="Measure, under a pretraining config's actual masks, the covariance λ between "
                                   "context and target views and the regression coefficient ρ along the distractor "
                                   "texture (noisy-fashion-mnist) and the top pixel-PCA content directions, e.g. "
                                   "`jepalab data stats configs/fmnist-mae-cpu.yaml data.dataset=noisy-fashion-mnist "
                                   "'data.options={strength: 0.1}'`.")
    s.add_argument("items", nargs="*", metavar="ARG", help="[CONFIG] then key=value overrides")
    s.add_argument("--images", type=int, default=5000, help="images to average over")
    s.add_argument("--components", type=int, default=3, help="content PCA directions")
    s.add_argument("--draws", type=int, default=4, help="mask draws per image")
    s.add_argument("--data-dir", default=None, help="Fashion-MNIST folder")
    s.add_argument("--out", default=None, help="write the numbers to this JSON file")
    s.set_defaults(handler=_data_stats)
