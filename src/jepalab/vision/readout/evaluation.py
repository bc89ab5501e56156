"""``jepalab eval RUN``: frozen-feature evaluation of a pretraining run's checkpoints, every number next to its
baselines (raw pixels, pixels PCA-reduced to the representation's width, and a random encoder of the same
architecture and init), computed the same way (docs/evaluation.md).

Headline, per representation: linear probe (top-1), weighted kNN (k = 20, 200) and RankMe on **centred** features
(the uncentred values are kept as ``*_uncentred``), LiDAR on augmented views, the top/bottom pixel-variance subspace
dependence ("our protocol") and, on a dataset with an injected distractor, the R² of decoding its amplitude.
The read-out table adds, for every read-out (:data:`~jepalab.vision.models.features.READOUTS`) and every encoder
(I-JEPA: context and target), the probe, centred kNN-20 and centred RankMe of the trained and the random encoder.
A checkpoint whose centred RankMe is below :data:`~jepalab.eval.COLLAPSE_RANK_SHARE` of the encoder's width is
marked ``collapsed`` (the width, not the read-out's dimension: the last4 and grid2 read-outs concatenate correlated
copies of the same d features).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jepalab.config import config_to_dict, from_dict, param
from jepalab.data import augment, build_dataset, dataset_spec, eval_view, sample_crops, step_generator
from jepalab.eval import (
    COLLAPSE_RANK_SHARE,
    distractor_r2,
    fit_pixel_pca,
    is_collapsed,
    knn_sweep,
    lidar,
    linear_probe,
    rankme,
    subspace_copies,
    subspace_dependence,
)
from jepalab.progress import progress_bar
from jepalab.rundir import to_jsonable, write_csv, write_json
from jepalab.vision.methods import condition_names, encoder_names
from jepalab.vision.methods.config import RUNTIME_FIELDS, PretrainConfig
from jepalab.vision.models.features import READOUTS, encode
from jepalab.vision.models.vit import ViT
from jepalab.vision.readout.run import Run
from jepalab.vision.readout.tables import METRIC_COLUMNS
from jepalab.vision.training.precision import autocast_for
from jepalab.vision.training.run_lock import RunLock

__all__ = ["EvalSettings", "carries_distractor", "current_settings", "eval_table", "evaluate_run", "readout_table"]

PRECISIONS = ("fp32", "run")
RANDOM_INITS = ("eval-seed", "run")


@dataclass(frozen=True)
class EvalSettings:
    """Sizes and protocol of ``jepalab eval``."""

    train_images: int = param(10000, ge=20, help="probe/kNN training images (seeded subset of the train split)")
    test_images: int = param(2000, ge=20, help="test images (first N of the test split)")
    probe: str = param("logistic", choices=("logistic", "ridge", "sgd"), help="linear probe method")
    lidar_images: int = param(256, ge=2, help="surrogate classes for LiDAR")
    lidar_views: int = param(4, ge=2, help="augmented views per LiDAR class")
    subspace_share: float = param(0.9, gt=0, lt=1, help="cumulative pixel-variance share of the top subspace")
    seed: int = param(0, ge=0, help="seeds subsets, views and random encoders")
    batch_size: int = param(512, ge=1, help="images per encoder forward")
    readout: str = param("mean", choices=READOUTS, help="read-out of the headline metrics: mean (final tokens), "
                         "last4 (last 4 blocks concatenated) or grid2 (2×2 pooled token grid)")
    readouts: tuple[str, ...] = param(READOUTS, choices=READOUTS, help="read-outs of the read-out table ([] none)")
    encoder: str = param("auto", help="encoder of the headline metrics: auto (the method's default: I-JEPA "
                                      "target, the paper's evaluation) or one of its encoders (I-JEPA: context)")
    condition: str | None = param(None, help="conditioned methods: the encoders' conditioning at evaluation, one of "
                                  "the method's conditions (default: the run's own setting)")
    precision: str = param("fp32", choices=PRECISIONS, help="encoder forwards: fp32, or run (the precision the run "
                           "trained in: bf16 autocast where it did, about 2× faster on CPUs with bf16 units)")
    random_init: str = param("eval-seed", choices=RANDOM_INITS, help="the random-init baseline: eval-seed (an "
                             "encoder of the run's architecture drawn from the evaluation seed, the same for every "
                             "run) or run (the run's own initialisation, rebuilt from its training seed)")
    subspace: str = param("always", choices=("always", "clean"), help="the top/bottom subspace read-outs: always, "
                          "or clean (only on images without an injected distractor: half the forward passes of a "
                          "noisy run, whose subspace numbers no rule reads)")
    cache_pixels: bool = param(False, help="reuse the raw-pixel and pixel-PCA baselines of another run of the same "
                               "store with the same data and evaluation settings (store/baselines/)")

    def __post_init__(self) -> None:
        if self.encoder not in encoder_names():
            raise ValueError(f"encoder must be one of {list(encoder_names())}; got {self.encoder!r}")
        if self.condition is not None and self.condition not in condition_names():
            raise ValueError(f"condition must be one of {list(condition_names())}; got {self.condition!r}")


def _views(images: torch.Tensor, image_size: int, mean: tuple[float, ...], std: tuple[float, ...], views: int,
           seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """``views`` augmented views of every image (random resized crop, scale 0.3–1, aspect 3/4–4/3, flip p = 0.5,
    whatever the run trained with, so that LiDAR is comparable across runs), and their group ids."""
    generator = step_generator(seed, "lidar-views", 0)
    n, size = len(images), images.shape[-1]
    repeated = images.repeat_interleave(views, 0)
    boxes = sample_crops(n * views, size, size, (0.3, 1.0), (3 / 4, 4 / 3), generator)
    flips = torch.rand(n * views, generator=generator) < 0.5
    return augment(repeated, boxes, flips, image_size, mean, std), np.repeat(np.arange(n), views)


LIGHT_KEYS = ("probe", "knn20", "knn200", "knn20_uncentred", "knn200_uncentred", "rankme", "rankme_uncentred", "dim")
"""The read-out table's columns: what :func:`_light_metrics` measures, less the probe protocol."""


def _light_metrics(train: np.ndarray, test: np.ndarray, train_y: np.ndarray, test_y: np.ndarray,
                   settings: EvalSettings, classes: int) -> dict[str, Any]:
    """Probe, weighted kNN (k = 20, 200) and RankMe of one representation, kNN and RankMe centred and not."""
    probe = linear_probe(train, train_y, test, test_y, settings.probe, num_classes=classes, seed=settings.seed)
    out: dict[str, Any] = {"probe": probe.accuracy, "probe_protocol": str(probe)}
    for centre, suffix in ((True, ""), (False, "_uncentred")):
        for r in knn_sweep(train, train_y, test, test_y, (20, 200), num_classes=classes, centre=centre):
            out[f"knn{r.k}{suffix}"] = r.accuracy
    out.update(rankme=rankme(test, centre=True), rankme_uncentred=rankme(test), dim=int(test.shape[1]))
    return out


def _metrics(features: dict[str, np.ndarray], train_y: np.ndarray, test_y: np.ndarray, lidar_groups: np.ndarray,
             amplitude: np.ndarray | None, settings: EvalSettings, classes: int) -> dict[str, Any]:
    """Every read-out of one representation from its features of the train/test/view/subspace images."""
    out = _light_metrics(features["train"], features["test"], train_y, test_y, settings, classes)
    spread = lidar(features["views"], lidar_groups)
    out.update({"lidar": spread.value, "lidar_degenerate": spread.degenerate})
    if "top" in features:  # the subspace copies were made (EvalSettings.subspace)
        subspace = subspace_dependence(features["test"], features["top"], features["bottom"], test_y, probe="ridge",
                                       num_classes=classes, seed=settings.seed)
        out.update({
            "top_probe": subspace.probes["top"].accuracy, "bottom_probe": subspace.probes["bottom"].accuracy,
            "cca_top": subspace.similarity["mean_cca"]["top"], "cca_bottom": subspace.similarity["mean_cca"]["bottom"],
            "cca_delta": subspace.delta("mean_cca"), "cka_top": subspace.similarity["cka"]["top"],
            "cka_bottom": subspace.similarity["cka"]["bottom"], "cka_delta": subspace.delta("cka"),
        })
    if amplitude is not None:
        out["distractor_r2"] = distractor_r2(features["test"], amplitude, seed=settings.seed).r2
    return out


def _pca_features(pixels: dict[str, np.ndarray], dim: int) -> dict[str, np.ndarray]:
    """Pixels projected on their top ``dim`` principal directions (fitted on the training images)."""
    pca = fit_pixel_pca(pixels["train"].astype(np.float64))
    basis = pca.components[:, :min(dim, pca.components.shape[1])]
    return {key: ((value - pca.mean) @ basis).astype(np.float32) for key, value in pixels.items()}


@dataclass
class _EvalImages:
    """The images every representation is measured on (normalised views by part), their labels and the facts."""

    views: dict[str, torch.Tensor]  # train, test, views (LiDAR), top, bottom (subspace copies of test)
    groups: np.ndarray  # LiDAR surrogate class of each view
    train_y: np.ndarray
    test_y: np.ndarray
    amplitude: np.ndarray | None  # the injected distractor's per-image amplitude (noisy datasets)
    classes: int
    subspace_rank: int


def _eval_images(run: Run, settings: EvalSettings) -> _EvalImages:
    """Seeded training subset and test images (or, for an image folder without test/, a seeded fifth of the
    training images held out), normalised as the run trained, plus LiDAR views and the subspace copies."""
    mean, std = tuple(run.dataset["mean"]), tuple(run.dataset["std"])
    data = replace(run.config.data, limit=None)
    train_set = build_dataset(data, "train")
    chosen = torch.randperm(len(train_set), generator=step_generator(settings.seed, "eval-train", 0))
    try:
        test_set = build_dataset(data, "test")
    except FileNotFoundError:
        if not dataset_spec(data.dataset).test_optional:
            raise
        held_out = max(2, len(train_set) // 5)  # no test split (an image folder): hold out a seeded fifth of train
        test_set, chosen = train_set.subset(chosen[:held_out].sort().values), chosen[held_out:]
    train_set = train_set.subset(chosen[:settings.train_images].sort().values)
    test_set = test_set.subset(torch.arange(min(settings.test_images, len(test_set))))
    if train_set.images is None or test_set.images is None:
        raise ValueError("jepalab eval needs an in-memory dataset (image folders are cached when small)")
    size = run.config.data.image_size
    views = {split: eval_view(part.images, size, mean, std)  # type: ignore[arg-type]
             for split, part in (("train", train_set), ("test", test_set))}
    views["views"], groups = _views(test_set.images[:settings.lidar_images], size, mean, std, settings.lidar_views,
                                    settings.seed)
    amplitude = test_set.info["amplitude"].numpy() if "amplitude" in test_set.info else None
    rank = 0
    if settings.subspace == "always" or not carries_distractor(test_set.info):
        unit = ((0.0,) * train_set.channels, (1.0,) * train_set.channels)  # centre views in [0, 1] for the PCA
        raw = eval_view(test_set.images, size, *unit).double().numpy()  # type: ignore[arg-type]
        pca = fit_pixel_pca(eval_view(train_set.images, size, *unit).double().numpy())  # type: ignore[arg-type]
        copies = subspace_copies(pca, raw, settings.subspace_share)
        for part in ("top", "bottom"):
            pixels = torch.from_numpy(getattr(copies, part)).float()
            views[part] = (pixels - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
        rank = copies.rank
    return _EvalImages(views, groups, train_set.labels.numpy(), test_set.labels.numpy(), amplitude,
                       len(train_set.classes), rank)


def carries_distractor(info: dict[str, Any]) -> bool:
    """Whether a dataset's ``info`` describes images with an injected distractor: a per-image amplitude drawn at a
    strength above 0 (noisy Fashion-MNIST at strength 0 keeps its amplitudes, for the distractor read-out's control,
    but adds nothing to the images)."""
    return "amplitude" in info and float(info.get("options", {}).get("strength", 1.0)) > 0


def _protocol(run: Run, settings: EvalSettings, headline_encoder: str, note: str, rank: int) -> dict[str, str]:
    """How every number of eval.json was measured, in words."""
    return {"features": f"{run.spec.label}: {headline_encoder} encoder on all patches; read-out "
                        f"{settings.readout!r}; centre view, no masking{'; ' + note if note else ''}",
            "knn_rankme": "centred features (training mean subtracted); *_uncentred without",
            "subspace": f"our protocol, f = {settings.subspace_share}, PCA rank {rank}" if rank else "not measured "
                        "(subspace: clean, on images with a distractor)",
            "lidar": f"{settings.lidar_images} test images × {settings.lidar_views} views (random resized crop 0.3–1, "
                     "flip)",
            "distractor_r2": "5-fold cross-validated ridge R² of the per-image amplitude (test images)",
            "collapse": f"collapsed = centred RankMe < {COLLAPSE_RANK_SHARE:g} × width"}


class _Measure:
    """Features of an encoder on the evaluation images, and every metric of them."""

    def __init__(self, data: _EvalImages, settings: EvalSettings, device: str | torch.device, precision: str):
        self.data, self.settings, self.device = data, settings, device
        self.precision = "fp32" if settings.precision == "fp32" else precision  # the run's train.precision

    def features(self, encoder: ViT, readout: str, parts: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        encoder = encoder.to(self.device)
        return {key: encode(encoder, self.data.views[key].to(self.device), readout, self.settings.batch_size,
                            autocast_for(self.precision, self.device)).cpu().numpy()
                for key in (parts or tuple(self.data.views))}

    def full(self, features: dict[str, np.ndarray]) -> dict[str, Any]:
        d = self.data
        return _metrics(features, d.train_y, d.test_y, d.groups, d.amplitude, self.settings, d.classes)

    def light(self, features: dict[str, np.ndarray]) -> dict[str, Any]:
        d = self.data
        return _light_metrics(features["train"], features["test"], d.train_y, d.test_y, self.settings, d.classes)


def _readout_rows(run: Run, measure: _Measure, result: dict[str, Any], baseline: ViT) -> list[dict[str, Any]]:
    """The read-out table: probe, kNN and RankMe of every encoder (and the random init) under every read-out; the
    headline rows are taken from the measurements already made."""
    settings, last = measure.settings, result["checkpoints"][-1]
    trained = run.encoders(last["step"], settings.condition)
    computed = {(last["encoder"], settings.readout): last, ("random", settings.readout): result["baselines"]["random"]}
    rows = []
    for readout in settings.readouts:
        for name, encoder in [*((n, trained[n]) for n in run.spec.encoders), ("random", baseline)]:
            known = computed.get((name, readout))
            metrics = measure.light(measure.features(encoder, readout, ("train", "test"))) if known is None \
                else {key: known[key] for key in LIGHT_KEYS}
            metrics.pop("probe_protocol", None)
            rows.append({"representation": "random init" if name == "random" else f"{name} @ {last['step']}",
                         "readout": readout, **metrics, "collapsed": is_collapsed(metrics["rankme"], encoder.dim)})
    if rows:
        for name in ("pixels", "pixels_pca"):
            row = {key: result["baselines"][name][key] for key in LIGHT_KEYS}
            rows.append({"representation": name.replace("_", " "), "readout": "pixels", **row})
    return rows


def evaluate_run(run: str | Path, checkpoint: str = "last", settings: EvalSettings | None = None,
                 device: str | torch.device = "cpu", progress: bool = True) -> dict[str, Any]:
    """Evaluate ``run``'s checkpoints and its baselines; writes ``RUN/eval.json`` and ``RUN/eval.csv``. Test images:
    the test split, or for an image folder without ``test/`` a seeded fifth of the training images held out. Holds
    the run's lock throughout (:mod:`~jepalab.vision.training.run_lock`): no session trains it meanwhile."""
    folder, handle = Path(run), Run(run, device)
    with RunLock(folder, "jepalab eval"):
        return _evaluate(folder, handle, checkpoint, settings or EvalSettings(), device, progress)


def _evaluate(folder: Path, handle: Run, checkpoint: str, settings: EvalSettings, device: str | torch.device,
              progress: bool) -> dict[str, Any]:
    """:func:`evaluate_run` of an opened run whose lock is held."""
    steps = handle.select(checkpoint)
    data = _eval_images(handle, settings)
    cfg = handle.config
    measure = _Measure(data, settings, device, cfg.train.precision)
    baseline, note = handle.random_encoder(cfg.seed if settings.random_init == "run" else settings.seed,
                                           settings.condition)
    result: dict[str, Any] = {
        "run": str(folder), "method": cfg.method, "dataset": cfg.data.dataset, "options": dict(cfg.data.options),
        "settings": vars(settings).copy(), "readout": settings.readout, "condition": note, "protocol": {},
        "baselines": {}, "checkpoints": [], "readouts": []}
    units = len(steps) + 3 + len(settings.readouts) * (len(handle.spec.encoders) + 1)
    bar = progress_bar(total=units, disable=not progress, desc=f"eval {folder.name}", unit="repr")
    random_features = measure.features(baseline, settings.readout)
    result["baselines"]["random"] = measure.full(random_features)
    result["baselines"].update(_pixel_baselines(folder, cfg, measure, random_features["train"].shape[1]))
    bar.update(3)
    for step in steps:
        encoder = handle.encoder(settings.encoder, step, settings.condition)
        metrics = measure.full(measure.features(encoder, settings.readout))
        metrics["collapsed"] = is_collapsed(metrics["rankme"], encoder.dim)  # the encoder's width, any read-out
        result["checkpoints"].append({"step": step, "checkpoint": Path(encoder.run_info["checkpoint"]).name,
                                      "encoder": encoder.run_info["encoder"], **metrics})
        bar.update()
    result["protocol"] = _protocol(handle, settings, result["checkpoints"][-1]["encoder"], note, data.subspace_rank)
    result["readouts"] = _readout_rows(handle, measure, result, baseline)
    bar.close()
    _write_eval(folder, result)
    return result


def _pixel_baselines(run: Path, cfg: PretrainConfig, measure: _Measure, dim: int) -> dict[str, Any]:
    """The raw-pixel and pixel-PCA (to ``dim``) baselines of the run's evaluation images; with ``cache_pixels``,
    read from (or written to) ``<store>/baselines/<key>.json``, keyed by the data config and the settings."""
    cache = None
    if measure.settings.cache_pixels:
        data = config_to_dict(replace(cfg.data, limit=None))
        for dotted in RUNTIME_FIELDS:  # where the data is and how it is read, not what it is
            section, name = dotted.split(".")
            if section == "data":
                data.pop(name, None)
        key = json.dumps(to_jsonable({"data": data, "settings": vars(measure.settings), "dim": dim}), sort_keys=True)
        cache = run.parent / "baselines" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
        if cache.is_file():
            return json.loads(cache.read_text())
    pixels = {key: value.flatten(1).numpy() for key, value in measure.data.views.items()}
    baselines = {"pixels": measure.full(pixels), "pixels_pca": measure.full(_pca_features(pixels, dim))}
    if cache is not None:
        cache.parent.mkdir(exist_ok=True)
        write_json(cache, baselines)
    return baselines


def current_settings(stored: dict[str, Any]) -> dict[str, Any]:
    """An eval.json's settings with the fields added since it was written at their defaults (as JSON)."""
    return to_jsonable(vars(from_dict(EvalSettings, stored)))


def _write_eval(run: Path, result: dict[str, Any]) -> None:
    """eval.json, eval.csv (baselines and checkpoints) and eval_readouts.csv of ``result``."""
    write_json(run / "eval.json", result)
    rows = [{"step": "baseline", "representation": name, **{k: v for k, v in m.items() if k != "probe_protocol"}}
            for name, m in result["baselines"].items()]
    rows += [{"representation": "encoder", **{k: v for k, v in c.items() if k not in ("probe_protocol", "checkpoint",
                                                                                        "encoder")}}
             for c in result["checkpoints"]]
    write_csv(run / "eval.csv", rows)
    if result["readouts"]:
        write_csv(run / "eval_readouts.csv", result["readouts"])


def eval_table(result: dict[str, Any]) -> str:
    """Text table of an ``eval.json``: the last checkpoint next to its baselines, read-out and encoder named."""
    last = result["checkpoints"][-1]
    columns = [(k, f) for k, f in METRIC_COLUMNS if k in last]
    readout = result.get("readout", "mean")
    condition = f"; {result['condition']}" if result.get("condition") else ""
    lines = [f"headline read-out: {readout!r}, encoder {last['encoder']!r}{condition}; kNN and RankMe on centred "
             "features",
             f"{'representation':<28}" + "".join(f"{k:>13}" for k, _ in columns)]
    flag = " (COLLAPSED)" if last.get("collapsed") else ""
    rows = [(f"{result['method']} step {last['step']}{flag}", last),
            ("random init (same arch)", result["baselines"]["random"]), ("raw pixels", result["baselines"]["pixels"])]
    if "pixels_pca" in result["baselines"]:
        rows.append((f"pixels PCA to {result['baselines']['pixels_pca']['dim']}", result["baselines"]["pixels_pca"]))
    for name, metrics in rows:
        lines.append(f"{name:<28}" + "".join(f"{f.format(metrics[k]):>13}" for k, f in columns))
    return "\n".join(lines)


def readout_table(result: dict[str, Any]) -> str:
    """Text table of the read-out rows: probe, centred kNN-20 and centred RankMe per representation and read-out."""
    if not result.get("readouts"):
        return ""
    lines = [result["condition"]] if result.get("condition") else []
    lines.append(f"{'representation':<22}{'read-out':>10}{'dim':>6}{'probe':>9}{'kNN-20':>9}{'RankMe':>9}"
                 f"{'kNN-20 unc.':>13}{'RankMe unc.':>13}")
    for row in result["readouts"]:
        flag = "  collapsed" if row.get("collapsed") else ""
        lines.append(f"{row['representation']:<22}{row['readout']:>10}{row['dim']:>6}{row['probe']:>9.2%}"
                     f"{row['knn20']:>9.2%}{row['rankme']:>9.1f}{row['knn20_uncentred']:>13.2%}"
                     f"{row['rankme_uncentred']:>13.1f}{flag}")
    return "\n".join(lines)
