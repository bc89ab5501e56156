"""Budget of an experiment (:class:`ExperimentSettings`) and the pretraining config it gives each run
(:func:`pretrain_config`): the method's small-image recipe with everything that must be equal between methods on top.

Three modes: ``quick`` (≤ 20 min on 2 CPU cores, 1 seed: exercises the pipeline), ``standard`` (the CPU presets' scale:
all 60,000 training images, 4 epochs, the micro ViT, 3 seeds; about 3 h for R1–R3 with ``--jobs 2`` on 2 cores,
evaluation included) and
``full`` (a GPU: ViT-tiny width, 100 epochs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jepalab.config import from_dict, merge_dicts, param
from jepalab.data.folder import FOLDER_DATASET
from jepalab.vision.experiments.rules import LEARNING_GATES
from jepalab.vision.methods import method_spec
from jepalab.vision.methods.config import COMPILE_MODES, PretrainConfig
from jepalab.vision.readout.evaluation import EvalSettings

__all__ = ["MODES", "ORDER_BASES", "STATISTICS", "ExperimentSettings", "pretrain_config"]

MODES = ("quick", "standard", "full")
STATISTICS = ("spread", "interval")
ORDER_BASES = ("pca", "cross")


@dataclass(frozen=True)
class ExperimentSettings:
    """Budget of an experiment: model width/depth, steps, views, seeds, sweep values, evaluation sizes."""

    mode: str = param("quick", choices=MODES, help="quick (≤ 20 min on 2 CPU cores), standard (the CPU presets' "
                      "scale, 3 seeds) or full (GPU scale); names the mode in summaries and the report")
    methods: tuple[str, ...] = param(("ijepa", "mae"), help="the joint-embedding method, then the reconstruction "
                                     "method it is compared with")
    seeds: tuple[int, ...] = param((0,), help="training seeds (standard and full: 3)")
    strengths: tuple[float, ...] = param((0.0, 0.05, 0.1), ge=0, le=1, help="distractor strengths (noisy-features)")
    jitter: float = param(2.0, ge=0, help="distractor per-patch jitter σ")
    depths: tuple[int, ...] = param((1, 4), ge=1, help="encoder depths (depth experiment)")
    context_scales: tuple[tuple[float, float], ...] = param(((0.4, 0.4), (0.6, 0.6), (0.85, 1.0)), gt=0, le=1,
                                                            help="context-block area ranges (context-size)")
    dim: int = param(96, ge=8, help="encoder width (the CPU presets' ViT-micro width)")
    depth: int = param(4, ge=1, help="encoder depth (noisy-features, variance-subspaces, context-size)")
    epochs: int = param(10, ge=1, help="passes over the training images")
    train_images: int = param(6000, ge=128, help="training images (first N of the train split)")
    global_batch: int = param(128, ge=2, help="images per step")
    crop_scale: tuple[float, float] = param((1.0, 1.0), gt=0, le=1, help="random-resized-crop area range of every "
                                            "run's views ([1, 1]: no crop); never flipped")
    snapshots: int = param(3, ge=1, help="checkpoints kept over training (evenly spaced, the last at the end)")
    snapshot_steps: tuple[int, ...] = param((), ge=1, help="further checkpoints kept at these steps (early ones, so "
                                            "that a matched-gain read-out falls between two measured checkpoints)")
    evaluate: str = param("last", choices=("last", "all"), help="evaluate the last checkpoint or every snapshot")
    data_root: str | None = param(None, help="Fashion-MNIST folder (default: the usual search)")
    folder: str | None = param(None, help="variance-subspaces: an image folder instead of Fashion-MNIST")
    runs_dir: str | None = param(None, help="run store shared by experiments: a run is trained once per resolved "
                                 "config (default: OUT/runs)")
    device: str = param("auto", help="training/eval device")
    jobs: int = param(1, ge=1, help="runs at once on the device, each in its own process and folder (on a CPU "
                                    "the cores are split between them)")
    compile: bool = param(False, help="train.compile of every run (a GPU option; docs/speed.md)")
    compile_mode: str = param("default", choices=COMPILE_MODES, help="train.compile_mode")
    tensorboard: bool = param(False, help="train.tensorboard of every run: TensorBoard scalars beside metrics.jsonl "
                              "(docs/cluster.md)")
    gate: str = param("probe", choices=tuple(LEARNING_GATES), help="read-out of the learning gate: a claim is decided "
                      "only when every encoder gained ≥ 5 points on it over its random init (probe: the label "
                      "probe; knn20: centred kNN-20), or (noise) a label-probe gain ≥ 4 × its sampling noise; not "
                      "learning-order, which has its own")
    statistics: str = param("spread", choices=STATISTICS, help="how per-seed effects are decided: spread (mean > 0 "
                            "and > their sd: holds / does not hold) or interval (t-interval, one-sided p, Holm across "
                            "a claim's tests, smallest effects of interest: holds / does not hold / inconclusive)")
    confirmatory: bool = param(False, help="the plan is a confirmatory measurement (registered before any of its "
                               "runs, on fresh seeds); the report headlines it")
    power_from: tuple[str, ...] = param((), help="interval statistics: measurement folders (first holding "
                                        "<experiment>/summary.json) whose per-seed effects plan the seeds needed")
    order_basis: str = param("pca", choices=ORDER_BASES, help="learning-order: pool of pixel directions, pca (the "
                             "leading pixel-PCA directions) or cross (the leading eigenvectors of the joint-embedding "
                             "method's masked context-target cross-covariance: λ > 0 by construction)")
    order_eps: float | None = param(None, gt=0, lt=1, help="learning-order: the theory's initialisation scale ε "
                                    "(default: the protocol's 1e-3)")
    eval: EvalSettings = field(default_factory=lambda: EvalSettings(train_images=5000, test_images=1000,
                                                                   probe="ridge", readouts=()))

    def __post_init__(self) -> None:
        if len(self.methods) != 2:
            raise ValueError(f"methods must name two methods (joint-embedding, reconstruction); got {self.methods}")
        for name in self.methods:
            method_spec(name)

    @staticmethod
    def for_mode(mode: str) -> ExperimentSettings:
        """The defaults of ``mode`` (quick, standard or full)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
        return {"quick": ExperimentSettings, "standard": _standard, "full": _full}[mode]()


def _standard() -> ExperimentSettings:
    """The CPU presets' scale: micro ViT (96 wide, 6 blocks), all 60,000 images, 4 epochs (1872 steps of 128), the
    I-JEPA preset's crop for both methods, 3 seeds, the clean and the strongest distractor, depths 2 and 6."""
    return ExperimentSettings(mode="standard", seeds=(0, 1, 2), strengths=(0.0, 0.1), depths=(2, 6), depth=6,
                              epochs=4, train_images=60000, crop_scale=(0.3, 1.0), snapshots=6, evaluate="all",
                              eval=EvalSettings(train_images=10000, test_images=10000, probe="ridge", readouts=()))


def _full() -> ExperimentSettings:
    """The GPU scale (ViT-tiny width, 3 seeds, the whole training split, logistic probes)."""
    return ExperimentSettings(mode="full", seeds=(0, 1, 2), strengths=(0.0, 0.05, 0.1, 0.15), depths=(2, 6, 12),
                              dim=192, depth=12, epochs=100, train_images=60000, global_batch=256,
                              crop_scale=(0.3, 1.0), snapshots=10, evaluate="all",
                              eval=EvalSettings(train_images=60000, test_images=10000, probe="logistic"))


def pretrain_config(method: str, dataset: str, options: dict[str, Any], settings: ExperimentSettings, seed: int,
                    depth: int | None = None, extra: dict[str, Any] | None = None) -> PretrainConfig:
    """``method``'s small-image recipe with the experiment's own settings on top: the same data, views, encoder
    width and depth, steps and batch for every method; ``extra`` (nested) last."""
    depth = settings.depth if depth is None else depth
    total_steps = settings.epochs * (settings.train_images // settings.global_batch)
    ratio = [1.0, 1.0] if tuple(settings.crop_scale) == (1.0, 1.0) else [0.75, 1.333]
    own: dict[str, Any] = {
        "method": method, "seed": seed,
        "data": {"dataset": dataset, "root": settings.data_root, "image_size": 28,
                 "crop_scale": list(settings.crop_scale), "crop_ratio": ratio, "hflip": False,
                 "limit": settings.train_images, "options": options},
        "model": {"dim": settings.dim, "depth": depth, "heads": max(1, settings.dim // 32)},
        "optim": {"epochs": settings.epochs, "global_batch": settings.global_batch},  # warm-up: the recipe's
        "train": {"device": settings.device, "progress": False, "log_every": 10, "diag_every": 0,
                  "diag_images": 256, "compile": settings.compile, "compile_mode": settings.compile_mode,
                  "tensorboard": settings.tensorboard,
                  "checkpoint_every": max(1, total_steps // settings.snapshots),
                  "snapshot_every": max(1, total_steps // settings.snapshots),
                  "snapshot_steps": [s for s in settings.snapshot_steps if s < total_steps]},
    }
    if dataset == FOLDER_DATASET:
        own["data"].update(root=settings.folder, image_size=32, store_size=36, crop_scale=[0.3, 1.0],
                           crop_ratio=[0.75, 1.333], limit=None)
    return from_dict(PretrainConfig, merge_dicts(merge_dicts(method_spec(method).small_image_recipe, own), extra or {}))
