"""The run's schedules, resolved once at build: lr (warm-up + cosine), wd (cosine), the EMA momentum and its
``auto`` choice, against their closed forms."""

import math

import pytest

from jepalab.config import load_config
from jepalab.vision.methods.config import PretrainConfig
from jepalab.vision.training import schedules
from jepalab.vision.training.schedules import (
    EMA_AUTO_FLOOR,
    EMA_AUTO_LAG_SHARE,
    auto_ema,
    build_schedules,
    ema_lag,
    ema_mass,
    resolve_ema,
    schedule_facts,
)


def _config(*overrides: str) -> PretrainConfig:
    return load_config(PretrainConfig, None, ["model.patch_size=4", *overrides])


def test_ema_mass_is_the_closed_form_of_the_momenta() -> None:
    """Σ_{s<T} (1 − m_s) of the linear momenta equals T·(1 − a) − (b − a)·(T − 1)/2; a frozen target has none."""
    total, a, b = 1000, 0.99, 0.999
    momenta = build_schedules(_config("ijepa.ema=[0.99,0.999]"), (a, b), total, 0).tables["momentum"]
    assert ema_mass(a, b, total) == pytest.approx(float((1 - momenta).sum()))
    assert ema_mass(a, b, total) == pytest.approx(total * (1 - a) - (b - a) * (total - 1) / 2)
    assert ema_mass(1.0, 1.0, total) == 0.0


def test_ema_auto_keeps_the_target_lag_a_fixed_share_of_the_run() -> None:
    """``ijepa.ema: auto``: the official 0.996 → 1 where its target lags by ≤ 20 % of the run; a lower start (floor
    0.9) for shorter runs; the lag and the init share are exact sums over the run's momenta."""
    assert ema_lag(0.9, 0.9, 2000) == pytest.approx(1 / (1 - 0.9))  # constant m: mean age 1/(1 − m) steps
    assert ema_lag(1.0, 1.0, 100) == 0.0  # a target that never moves
    assert auto_ema(400_000) == (0.996, 1.0) and ema_lag(0.996, 1.0, 400_000) < 0.05 * 400_000
    for total in (460, 1872, 5000):
        start, end = auto_ema(total)
        assert EMA_AUTO_FLOOR < start < 0.996 and end == 1.0
        assert ema_lag(start, end, total) == pytest.approx(EMA_AUTO_LAG_SHARE * total, rel=1e-3)
        assert ema_lag(0.996, 1.0, total) > EMA_AUTO_LAG_SHARE * total  # the official schedule lags more
    assert auto_ema(50) == (EMA_AUTO_FLOOR, 1.0)  # too short even at the floor
    cfg = _config()
    built = build_schedules(cfg, "auto", 1872, 187)
    assert built.ema == auto_ema(1872) == resolve_ema("auto", 1872)
    facts = schedule_facts(cfg, built, "auto", 1872, 187)
    start = auto_ema(1872)[0]
    assert facts["ema"] == [start, 1.0] and facts["target_lag_share"] == pytest.approx(0.2, rel=1e-3)
    assert facts["target_init_share"] == pytest.approx(math.prod(start + (1 - start) * s / 1872 for s in range(1872)))
    assert resolve_ema((0.99, 1.0), 1872) == (0.99, 1.0)


def test_schedules_are_resolved_once_into_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building solves ``ema: auto`` once; the tables are the schedule functions at every step (MAE: no
    momentum)."""
    calls = []
    solve = schedules.auto_ema
    monkeypatch.setattr(schedules, "auto_ema", lambda total: calls.append(total) or solve(total))
    cfg = _config("optim.epochs=1")
    built = build_schedules(cfg, "auto", 300, 30)
    assert calls == [300]
    o, (a, b), tables = cfg.optim, built.ema, built.tables
    for k in (0, 29, 30, 150, 299):
        assert tables["lr"][k] == schedules.warmup_cosine(k, 300, 30, o.start_lr, o.lr, o.final_lr)
        assert tables["wd"][k] == schedules.cosine(k, 300, o.weight_decay, o.final_weight_decay)
        assert tables["momentum"][k] == a + (b - a) * k / 300
    assert calls == [300]
    assert set(build_schedules(_config("method=mae"), None, 10, 1).tables) == {"lr", "wd"}
