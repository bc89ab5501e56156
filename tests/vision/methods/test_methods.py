"""The method registry: the contract every registered method must pass, a toy method registered in a few lines,
the small-image recipes against the shipped CPU presets, and unknown method names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from pretrain_helpers import ARCHITECTURE, docs_example, step_losses

from jepalab.config import ConfigError, config_to_dict, from_dict, load_config, merge_dicts, parse_overrides
from jepalab.data import step_generator
from jepalab.vision import PretrainConfig, load_encoder, pretrain, read_checkpoint
from jepalab.vision.methods import available_methods, method_spec, registry

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


# -- the toy method of docs/architecture.md, "Adding a method", run as written there ----------------------------------
@pytest.fixture
def toy_method(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Register the documented toy method for one test (the registry is restored afterwards)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(available_methods()))
    namespace: dict[str, Any] = {"__name__": "docs_toy_method"}
    exec(compile(docs_example("## Adding a method"), str(ARCHITECTURE), "exec", dont_inherit=True), namespace)
    yield namespace["PixelMethod"].name


# -- the contract --------------------------------------------------------------------------------------------------
def check_method(name: str, root: Path, out: Path) -> None:
    """What every registered method must pass: its small-image recipe validates; masks give a context and a
    target; 3 steps through ``pretrain`` log finite losses and the method's hook values; a stop after 2 steps
    plus ``--resume`` equals the uninterrupted run bit for bit; the checkpoint loads back and every named encoder
    (the default first) is a ViT; parameter counts name the encoder and the head."""
    spec = method_spec(name)
    overrides = [f"method={name}", f"data.root={root}", "model.size=pico", "optim.epochs=1", "optim.global_batch=16",
                 "train.log_every=1", "train.diag_every=0", "train.diag_images=16", "train.progress=false",
                 "train.checkpoint_every=2", "train.device=cpu", "train.threads=1", "data.limit=48"]
    cfg = from_dict(PretrainConfig, merge_dicts(spec.small_image_recipe, parse_overrides(overrides)))
    masks = spec.mask_sampler(cfg)(4, step_generator(0, "masks", 0))
    context, target = masks.membership(cfg.grid[0] * cfg.grid[1])
    assert context.shape == target.shape == (4, cfg.grid[0] * cfg.grid[1])
    assert context.any(dim=1).all() and target.any(dim=1).all()

    whole = pretrain(cfg, out / "whole")
    losses = step_losses(whole)
    assert sorted(losses) == [0, 1, 2] and all(torch.isfinite(torch.tensor(list(losses.values()))))
    split = pretrain(cfg, out / "split", stop_after=2)
    pretrain(cfg, split, resume=True)
    assert step_losses(split) == losses
    ours, _ = read_checkpoint(split / "checkpoint.safetensors")
    theirs, record = read_checkpoint(whole / "checkpoint.safetensors")
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs) and record["method"] == name

    default = load_encoder(whole)
    assert default.run_info["encoder"] == (spec.default_encoder or next(iter(spec.encoders)))
    for encoder in spec.encoders:
        assert load_encoder(whole, encoder).run_info["encoder"] == encoder
    counts = json.loads((whole / "run.json").read_text())["parameters"]
    assert counts["encoder"] > 0 and spec.head in counts and counts["trainable"] > 0


@pytest.mark.parametrize("name", list(available_methods()))
def test_every_registered_method_passes_the_contract(name: str, fmnist_root: Path, tmp_path: Path) -> None:
    check_method(name, fmnist_root, tmp_path)


def test_a_toy_method_registers_in_one_file_and_trains(toy_method: str, fmnist_root: Path,
                                                         tmp_path: Path) -> None:
    """The documented toy method gets its own config section (and only it), trains 3 steps through pretrain and
    passes the contract."""
    cfg = load_config(PretrainConfig, None, [f"method={toy_method}", "model.patch_size=4", "pixel.mask_ratio=0.25"])
    assert list(cfg.sections) == ["pixel"] and cfg.sections["pixel"].mask_ratio == 0.25
    check_method(toy_method, fmnist_root, tmp_path)


def test_adding_a_method_renames_no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every committed run folder keeps its name once another method with its own section is registered, and an
    MAE or I-JEPA config does not take up the new section."""
    from jepalab.vision.experiments.store import run_folder

    committed = sorted((CONFIGS.parent / "results").rglob("config.yaml"))
    assert committed
    before = {path: run_folder(Path(), load_config(PretrainConfig, path)).name for path in committed}
    assert all(name == path.parent.name for path, name in before.items())
    monkeypatch.setattr(registry, "_REGISTRY", dict(available_methods()))
    exec(compile(docs_example("## Adding a method"), str(ARCHITECTURE), "exec", dont_inherit=True), {"__name__": "toy"})
    assert "pixel" in available_methods()
    after = {path: run_folder(Path(), load_config(PretrainConfig, path)).name for path in committed}
    assert after == before
    assert "pixel" not in load_config(PretrainConfig, None, ["method=mae", "model.patch_size=4"]).sections


def test_ijepa_logs_the_ema_momentum(reference_runs: dict[str, Path]) -> None:
    """The step's schedule values reach metrics.jsonl (I-JEPA: the EMA momentum, rising from the ``auto`` start,
    0.9 for a run this short)."""
    records = [yaml.safe_load(line) for line in (reference_runs["ijepa"] / "metrics.jsonl").read_text().splitlines()]
    momenta = [r["momentum"] for r in records if "loss" in r]
    assert momenta[0] == pytest.approx(0.9) and momenta == sorted(momenta)


@pytest.mark.parametrize("name", ["ijepa", "mae"])
def test_cpu_presets_follow_the_small_image_recipe(name: str) -> None:
    """configs/fmnist-<method>-cpu.yaml agrees with the method's small-image recipe on every key the recipe sets."""
    preset = yaml.safe_load((CONFIGS / f"fmnist-{name}-cpu.yaml").read_text())

    def leaves(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
        for key, value in tree.items():
            yield from leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [(f"{prefix}{key}", value)]

    flat = dict(leaves(preset))
    recipe = dict(leaves(method_spec(name).small_image_recipe))
    assert preset["method"] == name and recipe
    assert {key: flat.get(key) for key in recipe} == recipe


def test_unknown_method_lists_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match=r"method must be one of \['ijepa', 'ecijepa', 'mae'"):
        load_config(PretrainConfig, None, ["method=data2vec"])


def test_saved_configs_keep_their_layout_and_load(reference_runs: dict[str, Path], tmp_path: Path) -> None:
    """config.yaml holds the shared sections and the method's own at the top level and round-trips; one from before
    (integer data.num_workers, every method's sections, no ecijepa section) loads too, keeping the method's own."""
    saved = yaml.safe_load((reference_runs["mae"] / "config.yaml").read_text())
    assert list(saved) == ["method", "seed", "data", "model", "mae", "optim", "train"]
    assert config_to_dict(load_config(PretrainConfig, reference_runs["mae"] / "config.yaml")) == saved
    old = {**saved, "data": {**saved["data"], "num_workers": 0}, "mask": {"min_keep": 3}, "ijepa": {"loss": "l2"}}
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    loaded = load_config(PretrainConfig, tmp_path / "old.yaml")
    assert loaded.data.workers == 0 and list(loaded.sections) == ["mae"]
