from dataclasses import dataclass, field
from typing import Literal

import pytest

from jepalab.config import ConfigError, config_to_dict, load_config, param, parse_overrides, save_config


@dataclass
class Optim:
    lr: float = param(1e-3, gt=0, help="peak learning rate")
    warmup: int = param(10, ge=0)
    betas: tuple[float, ...] = param((0.9, 0.95), ge=0, lt=1)
    schedule: str = param("cosine", choices=("cosine", "constant"))


@dataclass
class Run:
    method: Literal["ijepa", "mae"] = "ijepa"
    seed: int = param(0, ge=0)
    compile: bool = False
    note: str | None = None
    optim: Optim = field(default_factory=Optim)


def test_defaults_yaml_and_overrides_compose(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("method: mae\noptim:\n  lr: 2.0e-4\n  betas: [0.9, 0.99]\n")
    cfg = load_config(Run, path, ["optim.warmup=3", "seed=7", "compile=true", "note=hello"])
    assert cfg.method == "mae" and cfg.seed == 7 and cfg.compile is True and cfg.note == "hello"
    assert cfg.optim.lr == 2e-4 and cfg.optim.warmup == 3 and cfg.optim.betas == (0.9, 0.99)
    assert load_config(Run).optim.lr == 1e-3
    assert load_config(Run, overrides=["optim.lr=1e-3"]).optim.lr == 1e-3  # YAML reads 1e-3 as a string


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config(Run, overrides=["optim.lr=0.01", "method=mae"])
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(Run, tmp_path / "resolved.yaml") == cfg
    assert config_to_dict(cfg)["optim"]["betas"] == [0.9, 0.95]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optim.lr=0"], r"optim.lr must be > 0"),
        (["optim.lr=fast"], r"optim.lr must be a number"),
        (["optim.warmup=-1"], r"optim.warmup must be >= 0"),
        (["optim.warmup=1.5"], r"optim.warmup must be an integer"),
        (["optim.betas=[0.9, 1.0]"], r"optim.betas must be < 1"),
        (["optim.schedule=linear"], r"optim.schedule must be one of \['cosine', 'constant'\]"),
        (["method=simclr"], r"method must be one of \['ijepa', 'mae'\]"),
        (["compile=1"], r"compile must be true or false"),
        (["optim.lrr=1"], r"unknown config key 'optim.lrr'; allowed keys in optim: betas, lr, schedule, warmup"),
        (["sed=1"], r"unknown config key 'sed'"),
        (["optim=3"], r"optim must be a mapping"),
        (["seed"], r"must look like key=value"),
    ],
)
def test_invalid_values_fail_at_load_with_the_field_name(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Run, overrides=overrides)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Run, tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("method: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Run, tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Run, tmp_path / "list.yaml")


def test_parse_overrides_nests_dotted_keys():
    assert parse_overrides(["a.b=1", "a.c=[1, 2]", "d=x"]) == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
