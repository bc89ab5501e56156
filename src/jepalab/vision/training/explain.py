"""``jepalab pretrain ... --dry-run --explain``: every effective setting, its value and where it came from: a
``key=value`` override, a named rule or the method's recipe, the preset file or the default; then the values the run
resolves when it is built (steps, warm-up, the EMA momenta, the masks' automatic settings, the encoder's size)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from jepalab.config import config_to_dict, parse_overrides
from jepalab.vision.methods.config import PretrainConfig

__all__ = ["explain_settings", "format_explanation"]


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping → {dotted key: value} (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and key != "options":
            flat.update(_leaves(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def explain_settings(cfg: PretrainConfig, preset: str | Path | None, overrides: list[str],
                     record: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows {setting, value, source} for every field of ``cfg`` (the config built from ``preset`` and
    ``overrides``), then the values ``record`` (the run's run.json) resolved at build."""
    given = _leaves(parse_overrides(overrides))
    from_preset = _leaves(yaml.safe_load(Path(preset).read_text()) or {}) if preset else {}
    rows = []
    for key, value in _leaves(config_to_dict(cfg)).items():
        if given.get(key) is not None:
            source = "key=value"
        elif key in cfg.resolved_by:
            source = cfg.resolved_by[key]
        elif from_preset.get(key) is not None:
            source = f"preset {preset}"
        elif key in given or key in from_preset:
            source = "key=value" if key in given else f"preset {preset}"
        else:
            source = "default"
        rows.append({"setting": key, "value": value, "source": source})
    return rows + _built(cfg, record)


def _built(cfg: PretrainConfig, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The values resolved when the run is built, from its run.json."""
    steps, schedules, size = record["steps"], record["schedules"], cfg.model.resolved()
    o = cfg.optim
    warmup = ("optim.warmup_epochs × steps per epoch" if o.warmup_epochs is not None else
              "optim.warmup_fraction × total steps" if o.warmup_fraction is not None else
              "rule: 10 % of the run (neither warmup_epochs nor warmup_fraction set)")
    rows = [{"setting": "steps.total", "value": steps["total"], "source": "built: optim.epochs × steps per epoch "
             f"({steps['per_epoch']} = images / optim.global_batch)"},
            {"setting": "steps.warmup", "value": steps["warmup"], "source": f"built: {warmup}"},
            {"setting": "model (resolved)", "value": [size.dim, size.depth, size.heads],
             "source": f"built: model.size {cfg.model.size} unless model.dim/depth/heads are set (dim, depth, heads)"}]
    if "ema" in schedules:
        how = ("rule: ema auto, the official 0.996 → 1 unless the target would lag by more than 20 % of the run"
               if schedules["ema_setting"] == "auto" else "ijepa.ema")
        rows.append({"setting": "target EMA momenta", "value": schedules["ema"], "source": f"built: {how}"})
    automatic = {"num_targets", "min_keep", "full_grid"} & set(record["masks"])
    for key in sorted(automatic):
        rows.append({"setting": f"masks.{key}", "value": record["masks"][key],
                     "source": "built: mask." + key + " (empty: the small-grid or official default)"})
    return rows


def format_explanation(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned three-column table."""
    width = max(len(r["setting"]) for r in rows)
    values = [repr(r["value"]) if isinstance(r["value"], str) else str(r["value"]) for r in rows]
    vwidth = min(28, max(len(v) for v in values))
    return "\n".join(f"{r['setting']:<{width}}  {v:<{vwidth}}  {r['source']}" for r, v in zip(rows, values))
