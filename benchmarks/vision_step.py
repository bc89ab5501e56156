"""Training-step benchmark: jepalab's I-JEPA and MAE steps next to the official facebookresearch code.

    python benchmarks/vision_step.py                                   # ours only, config tiny32 on the CPU
    python benchmarks/vision_step.py --official ~/src/ijepa --official-mae ~/src/mae --repeats 3

Each (implementation, method) is timed in a fresh subprocess, so the CPU peak memory is that process's RSS
high-water mark (``ru_maxrss``) minus its RSS before any model was built; on a GPU it is
``torch.cuda.max_memory_allocated`` over the timed steps. Repeats alternate ours / official so a load change hits
both; the table shows the median over repeats of each run's median step time.

The official I-JEPA step is the body of ``src/train.py::train_step``, calling their modules unchanged (``init_model``,
``init_opt``, ``apply_masks``, ``repeat_interleave_batch``, ``AllReduce``, ``grad_logger``, the per-parameter EMA
loop, ``float(loss)``); both sides get the same batch and the same masks (jepalab's multi-block sampler,
seeded by step). The official MAE step is ``engine_pretrain.train_one_epoch``'s body (``MaskedAutoencoderViT``, its
own random masking, ``NativeScalerWithGradNormCount``); it needs timm. Data loading is excluded on both sides; the
batch is random uint8 images, which jepalab's step views whole and normalises itself (its step draws its views: a
crop-resize of the whole image and the normalisation are in its timing), the official step gets those views
precomputed.

Warm-up: ``--warmup`` steps, then one untimed step for each (context, target) length pair of the timed masks not
met yet, on both sides, so no first-time cost of a shape (oneDNN primitive creation on a CPU, cuDNN plans on a GPU)
falls into the timed steps; the header prints how many such shapes there were.

jepalab's side is :class:`jepalab.vision.training.step.TrainStep`, the step ``pretrain`` runs; ``--compile`` /
``--compile-mode`` / ``--attention`` set its ``train.compile`` / ``train.compile_mode`` / ``train.attention`` (compile
time falls into the warm-up, printed apart). On CUDA it also counts host synchronisations inside the step
(``torch.cuda.set_sync_debug_mode``) and prints the largest count per step.

FLOPs are jepalab's count (``jepalab.vision.training.flops.step_flops``, forward + backward, mean over the timed steps'
masks) for both rows: the useful work of the step. MFU = FLOPs / median step time / peak, the peak being measured
in the same run (``--peak-tflops`` overrides it): a fresh process with the benchmark's thread count times square
matmuls (1024, 2048 and 4096 on a GPU) in fp32 and in bf16 and keeps the best rate of each; the precision benchmarked
picks which. With ``--clock cpu`` the peak is divided by the threads, as CPU time sums over them. ``--precision
bf16`` on a CPU is bf16 autocast, which oneDNN runs on the AVX512-BF16 / AMX units where the CPU has them (the header
names them; the bf16 peak shows whether they are used).

The machine may be shared: ``--clock cpu --threads 1`` measures each step's process CPU time on one thread, which
other processes on the same cores disturb far less than the wall clock.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class Bench:
    """One named configuration: model sizes, image and batch, for both methods."""

    size: str  # jepalab / official ViT name: tiny, small, base, ...
    image: int
    patch: int
    batch: int
    predictor_dim: int
    predictor_depth: int
    targets: int
    decoder_dim: int
    decoder_depth: int
    decoder_heads: int
    channels: int = 3


CONFIGS = {
    # --smoke (CI): the smallest model on tiny32's 8×8 grid, a second per run.
    "smoke": Bench("pico", 32, 4, 8, 32, 2, 2, 32, 2, 2),
    # ViT-Tiny/4 on 32 px at batch 64, predictor 6×192, 2 target blocks (a small-image GPU size).
    "tiny32": Bench("tiny", 32, 4, 64, 192, 6, 2, 192, 4, 3),
    # ViT-S/16 on 224 px, predictor 6×384 with 4 targets (I-JEPA), decoder 8×512 (MAE): the official small sizes.
    "vits16": Bench("small", 224, 16, 128, 384, 6, 4, 512, 8, 16),
    # ViT-B/16 on 224 px at batch 256, predictor 6×384, decoder 8×512 (the MFU target size; a GPU size).
    "vitb16": Bench("base", 224, 16, 256, 384, 6, 4, 512, 8, 16),
}
OFFICIAL_IJEPA_SCHEDULE = {"start_lr": 2e-4, "ref_lr": 1e-3, "final_lr": 1e-6, "wd": 0.04, "final_wd": 0.4,
                           "warmup": 40, "num_epochs": 300, "ema": (0.996, 1.0)}  # configs/in1k_vith14_ep300.yaml


def pretrain_config(bench: Bench, method: str, precision: str, *train: str) -> Any:
    """The jepalab :class:`PretrainConfig` of ``bench`` for ``method``; ``train`` extra ``train.*=…`` overrides."""
    from jepalab.config import load_config
    from jepalab.vision.methods.config import PretrainConfig

    return load_config(PretrainConfig, None, [
        f"method={method}", f"data.image_size={bench.image}", f"model.size={bench.size}",
        f"model.patch_size={bench.patch}", f"optim.global_batch={bench.batch}", f"train.precision={precision}",
        f"ijepa.predictor_dim={bench.predictor_dim}", f"ijepa.predictor_depth={bench.predictor_depth}",
        f"mask.num_targets={bench.targets}", f"mae.decoder_dim={bench.decoder_dim}",
        f"mae.decoder_depth={bench.decoder_depth}", f"mae.decoder_heads={bench.decoder_heads}", *train])


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _masks(cfg: Any, batch: int, steps: int, device: torch.device) -> list[Any]:
    """The masks of steps 0 … steps − 1: multi-block (I-JEPA) or random (MAE), seeded as training seeds them."""
    from jepalab.data import step_generator
    from jepalab.vision.methods.ijepa import masker as ijepa_masker
    from jepalab.vision.methods.mae import MAEConfig
    from jepalab.vision.models.masks import random_masks

    if cfg.method == "ijepa":
        masker = ijepa_masker(cfg)
        return [masker(batch, step_generator(cfg.seed, "masks", k)).to(device) for k in range(steps)]
    tokens = cfg.grid[0] * cfg.grid[1]
    ratio = cfg.section(MAEConfig).mask_ratio
    return [random_masks(batch, tokens, ratio, step_generator(cfg.seed, "masks", k)).to(device) for k in range(steps)]


def _whole(images: torch.Tensor) -> torch.Tensor:
    """Crop boxes [top, left, h, w] covering each whole image of ``images`` (B, C, S, S)."""
    b, _, h, w = images.shape
    return torch.tensor([[0, 0, h, w]] * b, device=images.device)


def ours_step(cfg: Any, images: torch.Tensor, masks: list[Any], device: torch.device,
              syncs: list[int]) -> Callable[[int], float]:
    """jepalab's training step exactly as ``pretrain`` runs it (:class:`~jepalab.vision.training.step.TrainStep`:
    views, schedules, forward, loss, backward, decay, AdamW, EMA; compiled with ``train.compile``) over a 10,000-step
    schedule, on the uint8 ``images`` viewed whole with step k's ``masks[k]``. On CUDA each step appends to ``syncs``
    how many host synchronisations happened inside it."""
    from jepalab.vision.methods import method_spec
    from jepalab.vision.models.attention import use_attention
    from jepalab.vision.training.build import build_model
    from jepalab.vision.training.precision import autocast_for
    from jepalab.vision.training.schedules import build_schedules
    from jepalab.vision.training.step import StepViews, TrainStep

    if device.type == "cpu":
        torch.set_flush_denormal(True)  # as pretrain() does
    spec = method_spec(cfg.method)
    model = build_model(cfg, spec, images.shape[1]).to(device).train()
    boxes = _whole(images)
    channels = images.shape[1]
    train_step = TrainStep(model, cfg, build_schedules(cfg, spec.target_ema(cfg), 10_000, 100),
                           lambda k: StepViews(boxes, None, masks[k]), (0.5,) * channels, (0.25,) * channels, device,
                           autocast=autocast_for(cfg.train.precision, device))

    def step(k: int) -> float:
        if device.type != "cuda":
            with use_attention(cfg.train.attention):
                return float(train_step(images, k)[0])
        with warnings.catch_warnings(record=True) as caught, use_attention(cfg.train.attention):
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")  # count host synchronisations inside the step itself
            try:
                loss = train_step(images, k)[0]
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs.append(sum("synchroniz" in str(w.message) for w in caught))
        return float(loss)

    return step


def official_ijepa_step(root: str, bench: Bench, images: torch.Tensor, masks: list[Any], bf16: bool,
                        device: torch.device) -> Callable[[int], float]:
    """The official ``train_step`` body on their modules (see the module docstring)."""
    import copy

    import torch.nn.functional as F

    sys.path.insert(0, str(Path(root).resolve()))
    from src.helper import init_model, init_opt
    from src.masks.utils import apply_masks
    from src.utils.distributed import AllReduce
    from src.utils.logging import grad_logger
    from src.utils.tensors import repeat_interleave_batch

    s = OFFICIAL_IJEPA_SCHEDULE
    encoder, predictor = init_model(device=device, patch_size=bench.patch, model_name=f"vit_{bench.size}",
                                    crop_size=bench.image, pred_depth=bench.predictor_depth,
                                    pred_emb_dim=bench.predictor_dim)
    target_encoder = copy.deepcopy(encoder)
    for p in target_encoder.parameters():
        p.requires_grad = False
    ipe = 1000
    optimizer, scaler, scheduler, wd_scheduler = init_opt(
        encoder=encoder, predictor=predictor, wd=s["wd"], final_wd=s["final_wd"], start_lr=s["start_lr"],
        ref_lr=s["ref_lr"], final_lr=s["final_lr"], iterations_per_epoch=ipe, warmup=s["warmup"],
        num_epochs=s["num_epochs"], ipe_scale=1.25, use_bfloat16=bf16)
    total = int(ipe * s["num_epochs"] * 1.25)
    ema = s["ema"]
    momentum_scheduler = (ema[0] + i * (ema[1] - ema[0]) / total for i in range(total + 1))
    official = [([m.context], [m.targets[:, j].contiguous() for j in range(m.targets.shape[1])]) for m in masks]

    def step(k: int) -> float:
        imgs, (masks_enc, masks_pred) = images, official[k]
        scheduler.step()
        wd_scheduler.step()

        def forward_target() -> torch.Tensor:
            with torch.no_grad():
                h = target_encoder(imgs)
                h = F.layer_norm(h, (h.size(-1),))
                h = apply_masks(h, masks_pred)
                return repeat_interleave_batch(h, len(imgs), repeat=len(masks_enc))

        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            h = forward_target()
            z = predictor(encoder(imgs, masks_enc), masks_enc, masks_pred)
            loss = AllReduce.apply(F.smooth_l1_loss(z, h))
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        grad_logger(encoder.named_parameters())
        optimizer.zero_grad()
        with torch.no_grad():
            m = next(momentum_scheduler)
            for param_q, param_k in zip(encoder.parameters(), target_encoder.parameters()):
                param_k.data.mul_(m).add_((1.0 - m) * param_q.detach().data)
        return float(loss)

    return step


def official_mae_step(root: str, bench: Bench, images: torch.Tensor, bf16: bool,
                      device: torch.device) -> Callable[[int], float]:
    """The official MAE step (``engine_pretrain.train_one_epoch`` body); needs timm. Shims: ``np.float``,
    ``torch._six`` and timm's ``Block`` without ``qk_scale`` (the official code predates timm 0.9)."""
    import functools
    import types

    import numpy as np

    setattr(np, "float", float)  # noqa: B010 (removed in numpy 1.24, used by util/pos_embed.py)
    sys.modules.setdefault("torch._six", types.SimpleNamespace(inf=float("inf")))  # type: ignore[arg-type]
    sys.path.insert(0, str(Path(root).resolve()))
    import models_mae
    from util.misc import NativeScalerWithGradNormCount

    class Block(models_mae.Block):
        """timm's Block without the ``qk_scale`` argument recent timm rejects (the official code passes None)."""

        def __init__(self, *args: Any, qk_scale: None = None, **kwargs: Any):
            super().__init__(*args, **kwargs)

    models_mae.Block = Block
    model = models_mae.MaskedAutoencoderViT(
        img_size=bench.image, patch_size=bench.patch, in_chans=bench.channels, embed_dim=_width(bench.size),
        depth=12, num_heads=_heads(bench.size), decoder_embed_dim=bench.decoder_dim, decoder_depth=bench.decoder_depth,
        decoder_num_heads=bench.decoder_heads, mlp_ratio=4, norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6),
        norm_pix_loss=True).to(device)
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1 and not n.endswith(".bias")]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and (p.ndim <= 1 or n.endswith(".bias"))]
    optimizer = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": 0.05}],
                                  lr=1.5e-4 * bench.batch / 256, betas=(0.9, 0.95))
    loss_scaler = NativeScalerWithGradNormCount()
    torch.manual_seed(0)

    def step(k: int) -> float:
        with torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16,
                            enabled=bf16):
            loss, _, _ = model(images, mask_ratio=0.75)
        value = loss.item()
        loss_scaler(loss, optimizer, parameters=model.parameters(), update_grad=True)
        optimizer.zero_grad()
        return value

    return step


def _width(size: str) -> int:
    from jepalab.vision.models.vit import VIT_SIZES

    return VIT_SIZES[size].dim


def _heads(size: str) -> int:
    from jepalab.vision.models.vit import VIT_SIZES

    return VIT_SIZES[size].heads


def shape_key(mask: Any) -> tuple[int, ...]:
    """The tensor shapes a step's masks give the model: (context, targets, target length) or (kept patches,)."""
    if hasattr(mask, "context"):
        return (mask.context.shape[1], *mask.targets.shape[1:])
    return tuple(mask.keep.shape[1:]) if hasattr(mask, "keep") else ()


def warm_steps(masks: list[Any], warmup: int) -> list[int]:
    """Untimed step indices: 0 … warmup − 1, then the first timed step of each mask shape not met by then."""
    seen = {shape_key(m) for m in masks[:warmup]}
    extra = []
    for k in range(warmup, len(masks)):
        if shape_key(masks[k]) not in seen:
            seen.add(shape_key(masks[k]))
            extra.append(k)
    return list(range(warmup)) + extra


def measure_peak(device: torch.device, seconds: float = 0.6) -> dict[str, float]:
    """Best matmul rate in TFLOP/s, fp32 and bf16, of square products on ``device`` with this process's threads."""
    sizes = (1024, 2048, 4096) if device.type == "cuda" else (512, 1024, 2048)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 peak without TF32 (autocast does not use it)
    peaks = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        best = 0.0
        for n in sizes:
            a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
            a @ b  # first call: kernel selection, caches
            reps = 1
            while True:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                began = time.perf_counter()
                for _ in range(reps):
                    a @ b
                if device.type == "cuda":
                    torch.cuda.synchronize()
                elapsed = time.perf_counter() - began
                best = max(best, 2 * n ** 3 * reps / elapsed / 1e12)
                if elapsed > seconds / len(sizes):
                    break
                reps *= 2
        peaks[name] = best
    return peaks


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Time one (implementation, method) in this process; returns the measurements."""
    from jepalab.data.augment import augment
    from jepalab.vision.methods import method_spec
    from jepalab.vision.training.flops import step_flops

    bench = CONFIGS[args.config]
    device = torch.device(args.device)
    bf16 = args.precision == "bf16"
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.impl == "peak":
        return {"impl": "peak", **measure_peak(device), "threads": torch.get_num_threads()}
    method = args.method
    cfg = pretrain_config(bench, method, args.precision, f"train.compile={str(args.compile).lower()}",
                          f"train.compile_mode={args.compile_mode}", f"train.attention={args.attention}")
    steps = args.warmup + args.steps  # masks[warmup:] are the timed steps'
    stored = torch.randint(0, 256, (bench.batch, bench.channels, bench.image, bench.image), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0)).to(device)
    images = augment(stored, _whole(stored), None, bench.image, (0.5,) * bench.channels, (0.25,) * bench.channels)
    masks = _masks(cfg, bench.batch, steps, device)
    baseline = rss_bytes()
    syncs: list[int] = []
    if args.impl == "ours":
        step = ours_step(cfg, stored, masks, device, syncs)
    elif method == "ijepa":
        step = official_ijepa_step(args.official_root, bench, images, masks, bf16, device)
    else:
        step = official_mae_step(args.official_root, bench, images, bf16, device)
    warm = warm_steps(masks, args.warmup)
    began = time.perf_counter()
    losses = [step(k) for k in warm]
    warm_s = time.perf_counter() - began
    times, cpu_times = [], []
    for k in range(args.warmup, steps):
        if k == args.warmup and device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        began, cpu_began = time.perf_counter(), time.process_time()
        losses.append(step(k))
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
        cpu_times.append(time.process_time() - cpu_began)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
    timed = masks[args.warmup:]
    spec = method_spec(cfg.method)
    flops = statistics.fmean(step_flops(cfg, spec, bench.channels, bench.batch, m.to(torch.device("cpu")))
                             for m in timed)
    return {"impl": args.impl, "method": method, "ms": [1000 * t for t in times], "warm_steps": len(warm),
            "shapes": len({shape_key(m) for m in timed}), "cpu_ms": [1000 * t for t in cpu_times], "peak_bytes": peak,
            "flops": flops, "loss_first": losses[0], "loss_last": losses[-1], "threads": torch.get_num_threads(),
            "warmup_s": warm_s, "syncs": syncs[len(warm):]}


def run_child(args: argparse.Namespace, impl: str, method: str | None, root: str | None) -> dict[str, Any] | str:
    """Run :func:`child` in a fresh interpreter; its JSON result, or the error text when it failed."""
    command = [sys.executable, __file__, "--child", impl, "--method", str(method), "--config", args.config,
               "--device", args.device, "--precision", args.precision, "--warmup", str(args.warmup),
               "--steps", str(args.steps), "--threads", str(args.threads), "--attention", args.attention,
               "--compile-mode", args.compile_mode] + (["--compile"] if args.compile else []) + (
               ["--official-root", root] if root else [])
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        return (result.stderr.strip().splitlines() or ["no output"])[-1]
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="tiny32", choices=sorted(CONFIGS))
    parser.add_argument("--methods", default="ijepa,mae", help="comma-separated: ijepa, mae")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs per implementation; median shown")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per process (0: torch's default)")
    parser.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                        help="img/s and the speedup from wall time, or from process CPU time (robust to other "
                             "processes sharing the cores; meaningful with --threads 1)")
    parser.add_argument("--official", default=None, metavar="DIR", help="checkout of facebookresearch/ijepa")
    parser.add_argument("--official-mae", default=None, metavar="DIR", help="checkout of facebookresearch/mae")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="peak for MFU instead of the one measured in this run (see above)")
    parser.add_argument("--compile", action="store_true", help="jepalab's step with train.compile=true (compile "
                        "time falls into the warm-up, printed apart)")
    parser.add_argument("--compile-mode", default="default", help="train.compile_mode (reduce-overhead: CUDA graphs)")
    parser.add_argument("--attention", default="auto", help="train.attention for jepalab's step")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write every measurement here")
    parser.add_argument("--smoke", action="store_true",
                        help="CI: config smoke, 1 warm-up + 2 timed steps, one repeat, one thread unless --threads "
                             "(< 60 s; official only if given)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--method", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--official-root", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.impl = args.child
        print(json.dumps(child(args)))
        return

    if args.smoke:
        args.config, args.warmup, args.steps, args.repeats = "smoke", 1, 2, 1
        args.threads = args.threads or 1  # tiny ops on busy cores: OpenMP barriers would dominate 2 threads
    bench = CONFIGS[args.config]
    measured = run_child(args, "peak", None, None)
    if isinstance(measured, str) and not args.peak_tflops:
        raise SystemExit(f"peak measurement failed: {measured}")
    peaks = measured if isinstance(measured, dict) else {}
    threads = peaks.get("threads", args.threads or torch.get_num_threads())
    peak = args.peak_tflops or peaks[args.precision]
    peak_clock = peak / threads if args.clock == "cpu" else peak  # CPU time sums over the threads
    methods = args.methods.split(",")
    roots = {"ijepa": args.official, "mae": args.official_mae}
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    errors: dict[tuple[str, str], str] = {}
    for _ in range(args.repeats):
        for method in methods:
            for impl in ("ours", "official") if roots[method] else ("ours",):
                outcome = run_child(args, impl, method, roots[method])
                if isinstance(outcome, str):
                    errors[(impl, method)] = outcome
                else:
                    results.setdefault((impl, method), []).append(outcome)

    from jepalab.vision.training.precision import cpu_bf16_units

    print(f"config {args.config}: {json.dumps(asdict(bench))}")
    units = f"CPU bf16 units: {cpu_bf16_units() or 'none'}; " if args.device == "cpu" else ""
    shapes = sorted({(r["warm_steps"], r["shapes"]) for runs in results.values() for r in runs})
    print(f"device {args.device}, {args.precision}, {args.warmup} warm-up + one per new mask shape, then "
          f"{args.steps} timed steps (warm-up steps, timed shapes: {shapes}); {args.repeats} repeat(s) (median of "
          f"per-run medians); img/s, MFU and speedup from {args.clock} time; threads {threads}; {units}"
          f"torch {torch.__version__}, {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}")
    if peaks:
        print(f"measured matmul peak ({threads} thread(s)): fp32 {1000 * peaks['fp32']:.0f} GFLOP/s, bf16 "
              f"{1000 * peaks['bf16']:.0f} GFLOP/s (×{peaks['bf16'] / peaks['fp32']:.1f}); MFU against "
              f"{1000 * peak:.0f} GFLOP/s" + (" (--peak-tflops)" if args.peak_tflops else ""))
    else:
        print(f"MFU against --peak-tflops {peak:g} TFLOP/s (peak measurement failed: {measured})")
    header = f"{'method':<7} {'impl':<9} {'img/s':>8} {'ms/step':>9} {'p10–p90 ms':>15} {'CPU ms/step':>12} " \
             f"{'peak MiB':>9} {'GFLOP/step':>11} {'MFU %':>6}"
    print(header)
    print("-" * len(header))
    rates: dict[tuple[str, str], float] = {}
    for (impl, method), runs in sorted(results.items(), key=lambda item: (item[0][1], item[0][0] != "ours")):
        ms = statistics.median(statistics.median(r["ms"]) for r in runs)
        cpu_ms = statistics.median(statistics.median(r["cpu_ms"]) for r in runs)
        every = sorted(t for r in runs for t in r["ms"])
        p10, p90 = every[len(every) // 10], every[(9 * len(every)) // 10]
        mem = statistics.median(r["peak_bytes"] for r in runs) / 2**20
        flops = statistics.fmean(r["flops"] for r in runs)
        clock_ms = ms if args.clock == "wall" else cpu_ms
        rates[(impl, method)] = bench.batch / (clock_ms / 1000)
        print(f"{method:<7} {impl:<9} {rates[(impl, method)]:>8.1f} {ms:>9.1f} {f'{p10:.0f}–{p90:.0f}':>15} "
              f"{cpu_ms:>12.1f} {mem:>9.0f} {flops / 1e9:>11.2f} "
              f"{100 * flops / (clock_ms / 1000) / (peak_clock * 1e12):>6.2f}")
    for (impl, method), message in errors.items():
        print(f"{method:<7} {impl:<9} n/a: {message}")
    for (impl, method), runs in sorted(results.items()):
        syncs = [n for r in runs for n in r["syncs"]]
        print(f"{method} {impl}: warm-up {statistics.median(r['warmup_s'] for r in runs):.1f} s for "
              f"{runs[0]['warm_steps']} steps" + (" (includes compiling)" if impl == "ours" and args.compile else "")
              + (f"; host synchronisations inside the step: {max(syncs)} at most per step" if syncs else ""))
    if "ijepa" in methods:
        from jepalab.vision.methods import method_spec
        from jepalab.vision.training.step import mask_summary

        summary = mask_summary(pretrain_config(bench, "ijepa", args.precision), method_spec("ijepa"))
        print(f"I-JEPA masks ({summary['grid'][0]}×{summary['grid'][1]} grid, first 20 batches): "
              f"{summary['num_targets']} targets × {summary['target_tokens_per_block']['mean']:.1f} tokens "
              f"({summary['target_tokens_per_block']['min']}–{summary['target_tokens_per_block']['max']}), context "
              f"{summary['context_tokens']['mean']:.1f} ({summary['context_tokens']['min']}–"
              f"{summary['context_tokens']['max']}) = {100 * summary['context_share']:.0f} % of "
              f"{summary['tokens']} tokens, min_keep {summary['min_keep']}, full_grid {summary['full_grid']}, "
              f"relaxed {100 * summary['relaxed_share']:.1f} %")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": asdict(bench), "peak_tflops": peak, "peaks": peaks,
                                               "load_average": os.getloadavg(), "errors": {
            f"{i}/{m}": e for (i, m), e in errors.items()}, "runs": {f"{i}/{m}": r for (i, m), r in results.items()}},
            indent=1))

    def speedup(method: str) -> str:
        if ("ours", method) in rates and ("official", method) in rates:
            return f"{rates[('ours', method)] / rates[('official', method)]:.2f}"
        return "n/a"

    print(f"speedup_vs_official ijepa={speedup('ijepa')} mae={speedup('mae')}")
    if any(impl == "ours" for impl, _ in errors):
        sys.exit(1)  # our own step must always run (CI's --smoke)


if __name__ == "__main__":
    main()
