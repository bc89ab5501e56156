"""CLI commands of the vision layer: ``jepalab pretrain`` and ``jepalab embed``."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def split_config(items: list[str]) -> tuple[str | None, list[str]]:
    """``[CONFIG] key=value ...`` → (CONFIG or None, overrides)."""
    if items and "=" not in items[0]:
        return items[0], items[1:]
    return None, items


def _pretrain(args: argparse.Namespace) -> int:
    from jepalab.config import load_config
    from jepalab.vision.config import PretrainConfig
    from jepalab.vision.runs import load_run_config
    from jepalab.vision.train import pretrain

    config, overrides = split_config(args.items)
    if args.data_dir is not None:
        overrides.append(f"data.root={args.data_dir}")
    if args.resume is not None:
        cfg = load_config(PretrainConfig, config, overrides) if config else load_run_config(args.resume, overrides)
        pretrain(cfg, args.resume, resume=True, stop_after=args.stop_after)
        return 0
    if config is None:
        raise ValueError("give a config file (see configs/*.yaml), e.g. jepalab pretrain configs/fmnist-ijepa-cpu.yaml")
    cfg = load_config(PretrainConfig, config, overrides)
    run = pretrain(cfg, args.out, stop_after=args.stop_after, dry_run=args.dry_run)
    if args.dry_run:
        print(f"dry run: config valid; wrote {run}/config.yaml and run.json")
    return 0


def _data_config(run_data: dict, spec: str, data_dir: str | None, limit: int | None, on_corrupt: str | None):
    """The run's data settings with the dataset replaced by ``spec``: "NAME[:SPLIT]" or an image folder path."""
    from jepalab.config import from_dict
    from jepalab.data import DataConfig, available_datasets

    name, _, split = spec.partition(":")
    fields = dict(run_data)
    if name in available_datasets():
        if name != fields["dataset"]:
            fields.update(root=None, options={})
        fields["dataset"] = name
    elif Path(spec).is_dir():
        fields.update(dataset="image-folder", root=spec, options={})
        split = ""
    else:
        raise ValueError(f"--data {spec!r} is neither a dataset ({', '.join(available_datasets())}) nor a folder")
    if data_dir is not None:
        fields["root"] = data_dir
    fields.update(split=split or ("test" if fields["dataset"] == "fashion-mnist" else "train"), limit=limit)
    if on_corrupt is not None:
        fields["on_corrupt"] = on_corrupt
    return from_dict(DataConfig, fields, prefix="data.")


def _embed(args: argparse.Namespace) -> int:
    from jepalab.vision.checkpoint import read_checkpoint
    from jepalab.vision.distributed import resolve_device
    from jepalab.vision.embeddings import embed

    _, record = read_checkpoint(Path(args.run) / "checkpoint.safetensors" if args.checkpoint is None
                                else args.checkpoint)
    data = _data_config(record["config"]["data"], args.data, args.data_dir, args.limit, args.on_corrupt)
    data = dataclasses.replace(data, channels=record["dataset"]["channels"]) if data.dataset == "image-folder" else data
    device = resolve_device(args.device)
    folder = embed(args.run, data, None, args.pooling, args.encoder, args.out, args.checkpoint, args.batch_size, device)
    print(f"wrote {folder}/embeddings.npy (+ labels.npy, embed.json)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``pretrain`` and ``embed`` to the root parser."""
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
    p.set_defaults(handler=_pretrain)

    e = subparsers.add_parser("embed", help="frozen embeddings of a pretraining run's encoder (.npy)",
                              description="I-JEPA: target encoder; MAE: encoder on all patches; pooled features "
                                          "of every image of --data, in dataset order, with the labels.")
    e.add_argument("run", help="pretraining run folder")
    e.add_argument("--data", required=True, help="NAME[:SPLIT] of a registered dataset (e.g. fashion-mnist:test) "
                                                 "or an image folder")
    e.add_argument("--data-dir", default=None, help="folder of a registered dataset (its data.root)")
    e.add_argument("--pooling", default="mean", choices=("mean", "cls", "tokens"),
                   help="mean of patch tokens (default), MAE class token, or all patch tokens")
    e.add_argument("--encoder", default="auto", choices=("auto", "target", "context"),
                   help="auto: I-JEPA target / MAE encoder")
    e.add_argument("--checkpoint", default=None, help="checkpoint file (default: RUN/checkpoint.safetensors)")
    e.add_argument("--out", default=None, help="output folder (default: RUN/embeddings/<data>-<split>-<enc>-<pool>)")
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--limit", type=int, default=None, help="first N images only")
    e.add_argument("--on-corrupt", default=None, choices=("fail", "skip"), help="unreadable images (image folders)")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    e.set_defaults(handler=_embed)
