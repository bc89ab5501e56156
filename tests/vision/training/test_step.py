"""The training step: schedule values as device tensors, AdamW's decoupled decay, and the compiled path's logic
(on a CPU through dynamo + AOTAutograd with eager kernels: the same graphs inductor would get, in seconds)."""

import copy
import functools
import json
from pathlib import Path

import pytest
import torch
import torch._dynamo.testing
from pretrain_helpers import run_pretrain, step_losses

from jepalab.config import load_config
from jepalab.data.augment import augment
from jepalab.vision.methods import method_spec
from jepalab.vision.methods.config import PretrainConfig
from jepalab.vision.methods.ijepa import masker
from jepalab.vision.methods.mae import MAEConfig
from jepalab.vision.models.masks import random_masks
from jepalab.vision.training.build import build_model
from jepalab.vision.training.schedules import build_schedules
from jepalab.vision.training.step import StepViews, TrainStep, parameter_groups


def _config(method: str, *extra: str) -> PretrainConfig:
    return load_config(PretrainConfig, None, [
        f"method={method}", "model.size=pico", "data.image_size=28", "model.patch_size=4", "optim.global_batch=8",
        "ijepa.predictor_dim=32", "ijepa.predictor_depth=1", "mae.decoder_dim=32", "mae.decoder_depth=1",
        "mae.decoder_heads=2", *extra])


# Adam's ε well above the gradients' rounding noise: a parameter whose exact gradient is zero (the attention key
# bias: softmax ignores it) would otherwise move by ±lr on the sign of that noise, differently on each side.
_LINEAR_ADAM = ("optim.eps=0.01",)


def _masks(cfg: PretrainConfig, seed: int) -> object:
    if cfg.method != "mae":
        return masker(cfg)(8, torch.Generator().manual_seed(seed))
    return random_masks(8, 49, cfg.section(MAEConfig).mask_ratio, torch.Generator().manual_seed(seed))


_WHOLE = torch.tensor([[0, 0, 28, 28]] * 8)  # crop boxes covering the whole stored image
_IMAGES = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def _step(cfg: PretrainConfig, model: torch.nn.Module, total: int, warmup: int,
          seeds: list[int] | None = None) -> TrainStep:
    """The step of ``cfg`` on ``model``; step k views the whole image with the masks of ``seeds[k]`` (default k)."""
    spec = method_spec(cfg.method)

    def views(k: int) -> StepViews:
        return StepViews(_WHOLE, None, _masks(cfg, k if seeds is None else seeds[k]))

    schedules = build_schedules(cfg, spec.target_ema(cfg), total, warmup)
    return TrainStep(model, cfg, schedules, views, (0.5,), (0.25,), torch.device("cpu"))


@pytest.fixture
def compile_counter(monkeypatch: pytest.MonkeyPatch) -> torch._dynamo.testing.CompileCounterWithBackend:
    """torch.compile through dynamo + AOTAutograd with eager kernels, counting the graphs it compiles."""
    torch._dynamo.reset()
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=counter))
    yield counter
    torch._dynamo.reset()


def test_schedule_values_are_device_tensors_the_optimiser_reads() -> None:
    """Before each step the 0-d tensors hold that step's lr, wd and EMA momentum; the groups read the lr tensor,
    also after a state-dict reload and bind()."""
    cfg = _config("ijepa")
    step = _step(cfg, build_model(cfg, method_spec("ijepa"), 1), total=20, warmup=5)
    assert set(step.values) == {"lr", "wd", "momentum"}
    for k in (0, 3, 12):
        _, values = step(_IMAGES, k)
        assert values == {name: float(table[k]) for name, table in step.schedules.tables.items()}
        for name, value in values.items():
            assert step.values[name].item() == pytest.approx(value, rel=1e-6)
    assert all(group["lr"] is step.values["lr"] for group in step.optimizer.param_groups)
    state = copy.deepcopy(step.optimizer.state_dict())
    # as a checkpoint holds it; an older one also kept that step's weight decay in the decayed group
    state["param_groups"] = [{**g, "lr": float(g["lr"]), "weight_decay": 0.04 if g["decay"] else 0.0}
                             for g in state["param_groups"]]
    step.optimizer.load_state_dict(state)
    step.bind()
    assert all(group["lr"] is step.values["lr"] and group["weight_decay"] == 0.0
               for group in step.optimizer.param_groups)


def test_decoupled_decay_and_adam_equal_torch_adamw() -> None:
    """θ·(1 − ηλ) on matrices and tokens, then Adam, is torch's AdamW with that decay on the same groups."""
    cfg = _config("mae", "optim.lr=0.01", "optim.weight_decay=0.3", "optim.final_weight_decay=0.3", *_LINEAR_ADAM)
    torch.manual_seed(0)
    ours = build_model(cfg, method_spec("mae"), 1)
    theirs = copy.deepcopy(ours)
    step = _step(cfg, ours, total=10, warmup=0)
    decayed, plain = parameter_groups(theirs)
    o = cfg.optim
    adamw = torch.optim.AdamW([{"params": decayed, "weight_decay": 0.3}, {"params": plain, "weight_decay": 0.0}],
                              lr=o.lr, betas=tuple(o.betas), eps=o.eps, foreach=False)
    images = augment(_IMAGES, _WHOLE, None, 28, (0.5,), (0.25,))
    for k in range(3):
        step(_IMAGES, k)
        for group in adamw.param_groups:
            group["lr"] = float(step.schedules.tables["lr"][k])
        theirs.loss(*theirs(images, _masks(cfg, k))).backward()
        adamw.step()
        adamw.zero_grad()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize("method", ["ijepa", "ecijepa", "mae"])
def test_compiled_step_matches_eager_and_compiles_once_per_shape(method: str, compile_counter) -> None:
    """train.compile: the same losses and weights as eager (fp32, 1e-5); neither changing lr / wd / momentum nor
    a new mask length (I-JEPA, EC-IJEPA: 4 context lengths here) recompiles anything."""
    cfg = _config(method, "train.compile=true", "optim.clip_grad=1.0", "train.precision=fp32", *_LINEAR_ADAM)
    torch.manual_seed(0)
    method_module = build_model(cfg, method_spec(method), 1)
    eager_module = copy.deepcopy(method_module)
    varying = method != "mae"  # multi-block masks change length from batch to batch
    seeds = [0, 0, 1, 1, 2, 4, 4, 7] if varying else [0, 1, 2, 3]
    compiled = _step(cfg, method_module, total=20, warmup=2, seeds=seeds)
    eager_cfg = _config(method, "optim.clip_grad=1.0", "train.precision=fp32", *_LINEAR_ADAM)
    eager = _step(eager_cfg, eager_module, total=20, warmup=2, seeds=seeds)
    shapes = {}
    for k, seed in enumerate(seeds):
        a, _ = compiled(_IMAGES, k)
        b, _ = eager(_IMAGES, k)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
        shapes[seed] = compile_counter.frame_count
    for a, b in zip(method_module.parameters(), eager_module.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    if varying:
        assert len({_masks(cfg, seed).context.shape for seed in seeds}) == 4
        assert shapes[7] == shapes[0]  # the lengths are symbolic from the first compile: no recompile
    else:  # MAE's masks keep their shape: nothing recompiles after the first step
        assert shapes[3] == shapes[0]


def test_compiled_pretrain_logs_the_eager_losses(fmnist_root: Path, tmp_path: Path,
                                                 reference_runs: dict[str, Path], compile_counter) -> None:
    """`jepalab pretrain ... train.compile=true` runs the whole loop (logging, checkpoints) with the eager losses;
    run.json records the compile mode and the attention kernel (MAE: the cheapest method to compile; the step test
    above covers I-JEPA's varying mask lengths and EMA update)."""
    run = run_pretrain("mae", fmnist_root, tmp_path / "compiled", "train.compile=true")
    compiled, eager = step_losses(run), step_losses(reference_runs["mae"])
    assert sorted(compiled) == sorted(eager)
    for k in eager:
        assert compiled[k] == pytest.approx(eager[k], rel=1e-5)
    assert compile_counter.frame_count > 0
    record = json.loads((run / "run.json").read_text())
    assert record["compile"] == "default" and record["attention"] == "sdpa"  # fp32 on a CPU
    assert json.loads((reference_runs["mae"] / "run.json").read_text())["compile"] == "off"
