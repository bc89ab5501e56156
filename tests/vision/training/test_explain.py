"""``jepalab pretrain ... --dry-run --explain``: each effective setting with where it came from."""

import json
from pathlib import Path

import pytest

from jepalab.cli import main

PRESET = str(Path(__file__).resolve().parents[3] / "configs" / "fmnist-mae-cpu.yaml")


def test_explain_names_the_source_of_every_setting(fmnist_root: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """key=value beats the recipe rule, the rule beats the preset's empty value, the preset beats the default; the
    values resolved at build follow; RUN/explain.json holds the same rows."""
    out = tmp_path / "run"
    assert main(["pretrain", PRESET, f"data.root={fmnist_root}", "optim.global_batch=16", "optim.epochs=2",
                 "mae.decoder_depth=1", "train.device=cpu", "--dry-run", "--explain", "--out", str(out)]) == 0
    rows = {r["setting"]: r for r in json.loads((out / "explain.json").read_text())}
    assert rows["mae.decoder_depth"]["source"] == "key=value" and rows["mae.decoder_depth"]["value"] == 1
    assert rows["optim.lr"]["source"].startswith("rule: optim.base_lr × global_batch / 256")
    assert rows["optim.lr"]["value"] == pytest.approx(1.5e-3 * 16 / 256)  # the CPU preset's base_lr
    assert rows["optim.betas"]["source"] == "MAE recipe"
    assert rows["model.size"]["source"] == f"preset {PRESET}" and rows["optim.eps"]["source"] == "default"
    assert rows["steps.total"]["value"] == 8 and rows["steps.total"]["source"].startswith("built:")
    assert "ijepa.ema" not in rows and "target EMA momenta" not in rows  # MAE reads neither
    printed = capsys.readouterr().out
    assert "optim.lr" in printed and "MAE recipe" in printed
    assert main(["pretrain", PRESET, "--explain", "--out", str(tmp_path / "other")]) == 2
    assert "--explain goes with --dry-run" in capsys.readouterr().err
