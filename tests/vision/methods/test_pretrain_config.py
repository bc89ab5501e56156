"""Pretraining config: presets, overrides, validation errors naming the field, recipe defaults."""

from pathlib import Path

import pytest

from jepalab.config import ConfigError, load_config
from jepalab.vision.methods.config import PretrainConfig

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


@pytest.mark.parametrize("preset", sorted(p.name for p in CONFIGS.glob("*.yaml")
                                          if p.name.startswith(("fmnist-", "folder-"))))
def test_presets_load(preset: str) -> None:
    """Every shipped pretraining preset is a valid config (folder presets given a data.root)."""
    overrides = ["data.root=/tmp"] if preset.startswith("folder-") else []
    cfg = load_config(PretrainConfig, CONFIGS / preset, overrides)
    assert cfg.method in ("ijepa", "mae") and cfg.data.image_size % cfg.model.patch_size == 0


@pytest.mark.parametrize("override, field", [
    ("optim.lrr=1", "optim.lrr"),
    ("bogus.key=1", "bogus"),
    ("optim.lr=-1", "optim.lr"),
    ("mae.mask_ratio=1.5", "mae.mask_ratio"),
    ("model.size=enormous", "model.size"),
    ("data.crop_scale=[0.5, 1.5]", "crop_scale"),
    ("train.precision=fp8", "train.precision"),
    ("optim.epochs=two", "optim.epochs"),
])
def test_bad_values_name_the_field(override: str, field: str) -> None:
    """Unknown keys, wrong types and out-of-range values raise a ConfigError naming the dotted field."""
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(PretrainConfig, CONFIGS / "fmnist-ijepa-cpu.yaml", [override])


@pytest.mark.parametrize("overrides, words", [
    (["model.patch_size=5"], "data.image_size (28) must be divisible by model.patch_size (5)"),
    (["optim.warmup_epochs=3", "optim.epochs=2"], "warmup_epochs"),
    (["ijepa.predictor_dim=30"], "predictor_dim"),
    (["mask.min_keep=20"], "min_keep"),
    (["method=mae", "mae.decoder_dim=40", "mae.decoder_heads=3"], "decoder_dim"),
    (["data.dataset=imagenet"], "dataset must be one of"),
])
def test_inconsistent_settings_are_refused(overrides: list[str], words: str) -> None:
    """Cross-field checks: patch vs image size, warm-up, head divisibility, masks, unknown dataset."""
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load_config(PretrainConfig, CONFIGS / "fmnist-ijepa-cpu.yaml", overrides)


def test_method_recipes_fill_empty_optimiser_fields() -> None:
    """Empty optimiser fields take the official I-JEPA / MAE recipe; explicit values win."""
    ijepa = load_config(PretrainConfig, None, ["method=ijepa", "data.image_size=28", "model.patch_size=4",
                                               "optim.global_batch=2048"])
    assert (ijepa.optim.lr, ijepa.optim.weight_decay, ijepa.optim.final_weight_decay) == (1e-3, 0.04, 0.4)
    small = load_config(PretrainConfig, None, ["method=ijepa", "model.patch_size=4", "optim.global_batch=128"])
    assert (small.optim.lr, small.optim.start_lr) == pytest.approx((2.5e-4, 5e-5))  # √(128 / 2048) = 1/4
    mae = load_config(PretrainConfig, None, ["method=mae", "data.image_size=28", "model.patch_size=4",
                                             "optim.global_batch=512", "optim.weight_decay=0.1"])
    assert mae.optim.lr == pytest.approx(3e-4) and mae.optim.betas == (0.9, 0.95) and mae.optim.weight_decay == 0.1


def test_schedule_arithmetic_scales_with_the_run() -> None:
    """lr = base_lr · B/256; warm-up as a share of the run or in epochs."""
    def load(overrides: list[str]) -> PretrainConfig:
        return load_config(PretrainConfig, None, ["model.patch_size=4", *overrides])

    mae = load(["method=mae", "optim.global_batch=512", "optim.epochs=10"])
    assert mae.optim.lr == pytest.approx(1.5e-4 * 2)  # the official MAE rule
    scaled = load(["method=mae", "optim.global_batch=128", "optim.base_lr=1.5e-3"])
    assert scaled.optim.lr == pytest.approx(7.5e-4)
    fixed = load(["method=mae", "optim.lr=2e-3", "optim.base_lr=1.5e-3"])
    assert fixed.optim.lr == 2e-3  # an explicit lr wins over the rule
    assert mae.warmup_steps(100) == 100  # default: 10 % of 10 × 100 steps
    assert load(["optim.epochs=4", "optim.warmup_fraction=0.25"]).warmup_steps(50) == 50
    assert load(["optim.epochs=4", "optim.warmup_epochs=1.5"]).warmup_steps(50) == 75
    with pytest.raises(ConfigError, match="not both"):
        load(["optim.warmup_epochs=1", "optim.warmup_fraction=0.1"])


def test_ema_setting_is_validated() -> None:
    """``ijepa.ema`` is "auto" or two momenta in [0, 1]."""
    with pytest.raises(ConfigError, match=r"ijepa\.ema"):
        load_config(PretrainConfig, None, ["ijepa.ema=fast"])


def test_a_config_holds_only_its_methods_sections_read_typed(tmp_path: Path) -> None:
    """An MAE config (and its saved config.yaml) has no ``ijepa``/``mask``/``ecijepa`` section, an I-JEPA one no
    ``mae``; another method's section is validated and dropped; ``section(kind)`` is typed and refuses a section the
    method does not read; the config has no ``__getattr__``."""
    from jepalab.config import save_config
    from jepalab.vision.methods.ijepa import IJEPAConfig
    from jepalab.vision.methods.mae import MAEConfig

    mae = load_config(PretrainConfig, None, ["method=mae", "model.patch_size=4", "ijepa.predictor_dim=32"])
    assert set(mae.sections) == {"mae"} and mae.section(MAEConfig).mask_ratio == 0.75
    assert mae.ignored_sections == ["ijepa"]  # pretrain prints a note naming them
    save_config(mae, tmp_path / "config.yaml")
    saved = (tmp_path / "config.yaml").read_text()
    assert "mae:" in saved and not {"ijepa:", "mask:", "ecijepa:"} & set(saved.splitlines())
    ijepa = load_config(PretrainConfig, None, ["model.patch_size=4", "mae.mask_ratio=0.5"])
    assert set(ijepa.sections) == {"mask", "ijepa"} and ijepa.section(IJEPAConfig).predictor_dim == 384
    with pytest.raises(ValueError, match="reads no MAEConfig"):
        ijepa.section(MAEConfig)
    with pytest.raises(ConfigError, match=r"mae\.mask_ratio"):  # validated although an I-JEPA run drops it
        load_config(PretrainConfig, None, ["model.patch_size=4", "mae.mask_ratio=2"])
    with pytest.raises(ConfigError, match="unknown config key 'maee'"):
        load_config(PretrainConfig, None, ["maee.mask_ratio=0.5"])
    assert "__getattr__" not in vars(PretrainConfig)
