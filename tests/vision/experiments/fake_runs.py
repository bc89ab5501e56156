"""A stand-in for training and evaluation: every run gets synthetic eval.json checkpoints from a formula of its
config, and the files the results folder reads (run.json, summary.json, metrics.jsonl); trainings are counted."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jepalab.vision.experiments import store

Formula = Callable[[Any, float], dict[str, float]]


def default_formula(cfg: Any, progress: float) -> dict[str, float]:
    """Probe rises by 10 points over training on clean images; with a distractor by 9 (I-JEPA) or 6 (MAE); MAE takes up
    0.2 of distractor R², I-JEPA 0.05 (seed-jittered)."""
    jitter = 0.002 * cfg.seed
    mae = cfg.method == "mae"
    rise = 0.1 if not cfg.data.options.get("strength") else 0.06 if mae else 0.09
    return {"probe": 0.6 + rise * progress + jitter, "distractor_r2": 0.3 + (0.2 if mae else 0.05) * progress,
            "cca_delta": -0.5 + (0.01 if mae else 0.05) * progress + jitter, "knn20": 0.5, "top_probe": 0.5,
            "bottom_probe": 0.3, "cca_top": 0.9, "cca_bottom": 0.4}


def install(monkeypatch: pytest.MonkeyPatch, formula: Formula = default_formula) -> Counter[str]:
    """Replace :func:`store.train_and_eval`; returns the counter of trainings per run folder."""
    trained: Counter[str] = Counter()

    def fake(cfg: Any, run: Path, settings: Any, should_stop: Any = None) -> dict[str, Any]:
        run.mkdir(parents=True, exist_ok=True)
        if not (run / "summary.json").is_file():
            trained[run.name] += 1
            (run / "run.json").write_text(json.dumps({"precision": "fp32", "environment": {"git_revision": "abc"}}))
            (run / "summary.json").write_text(json.dumps({"finished": True, "steps_done": 30, "images_per_s": 100.0,
                                                          "wall_s": 1.0, "steps_this_session": 30}))
            (run / "metrics.jsonl").write_text('{"step": 10, "loss": 1.0, "lr": 0.1}\n')
        points = [{"step": step, "rankme": 5.0, "collapsed": False, **formula(cfg, step / 30)} for step in (10, 20, 30)]
        random = {"probe": 0.6, "distractor_r2": 0.3, "cca_delta": -0.5, "knn20": 0.5, "rankme": 4.0}
        return {"checkpoints": points, "baselines": {"random": random, "pixels": {"probe": 0.8}}}

    monkeypatch.setattr(store, "train_and_eval", fake)
    return trained
