"""Early snapshots (``train.snapshot_steps``): kept at the steps asked, evaluated with the periodic ones, and left out
of a run's key while at their default, so that adding the field renamed no existing run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pretrain_helpers import run_pretrain

from jepalab.config import config_to_dict, load_config
from jepalab.rundir import to_jsonable
from jepalab.vision import PretrainConfig
from jepalab.vision.experiments.store import KEY_SECTIONS_FROZEN, _expected_steps, run_key
from jepalab.vision.methods.config import RUNTIME_FIELDS
from jepalab.vision.readout.run import Run


def test_snapshots_are_kept_at_the_steps_asked(fmnist_root: Path, tmp_path: Path) -> None:
    run = run_pretrain("mae", fmnist_root, tmp_path / "run", "train.snapshot_every=4", "train.snapshot_steps=[1,3]")
    assert Run(run).steps == [1, 3, 4, 8]
    assert _expected_steps(run, "all") == [1, 3, 4, 8] and _expected_steps(run, "last") == [8]


def test_the_default_leaves_the_run_key_as_it_was(fmnist_root: Path) -> None:
    preset = Path(__file__).resolve().parents[3] / "configs" / "fmnist-ijepa-cpu.yaml"
    cfg = load_config(PretrainConfig, preset, [f"data.root={fmnist_root}"])
    data = {**KEY_SECTIONS_FROZEN, **config_to_dict(cfg)}  # every method's section, as configs held them then
    for dotted in RUNTIME_FIELDS:
        section, name = dotted.split(".")
        data[section].pop(name, None)
    data["train"].pop("snapshot_steps")  # the key as computed before the field existed
    before = hashlib.sha256(json.dumps(to_jsonable(data), sort_keys=True).encode()).hexdigest()[:12]
    assert run_key(cfg) == before
    cfg.train.snapshot_steps = (10,)
    assert run_key(cfg) != before
