"""Writing a :class:`TrainResult` to a run directory: arrays, tables and settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jepalab.linear.simulate.recording import SERIES, TrainResult
from jepalab.rundir import write_csv, write_json

__all__ = ["save_result"]


def save_result(result: TrainResult, run_dir: str | Path, name: str = "result") -> list[Path]:
    """Write ``name.npz`` (every array), ``name.csv`` (one row per run and record),
    ``name_critical_times.csv`` and ``name.json`` (settings) into ``run_dir``; returns the paths."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    arrays = {k: getattr(result, k) for k in ("steps", "times", *SERIES, "lam", "rho", "fixed_point",
                                           "critical_times", "final_params")}
    npz = run_dir / f"{name}.npz"
    tmp = run_dir / f".{name}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(npz)
    rows = []
    for r in range(result.times.shape[0]):
        for k in range(result.times.shape[1]):
            row = {"run": r, "step": int(result.steps[k]), "time": result.times[r, k], "loss": result.loss[r, k],
                   "balance_drift": result.balance_drift[r, k], "offdiag": result.offdiag[r, k]}
            row.update({f"amplitude_{i}": result.amplitude[r, k, i] for i in range(result.lam.size)})
            row.update({f"predictor_{i}": result.predictor_diag[r, k, i] for i in range(result.lam.size)})
            rows.append(row)
    crit = [
        {"run": r, "feature": i, "lam": result.lam[i], "rho": result.rho[i], "fixed_point": result.fixed_point[i],
         "critical_time": t}
        for r, row in enumerate(result.critical_times) for i, t in enumerate(row)
    ]
    meta = {"objective": result.objective, "depth": result.depth, "frac": result.frac, **result.settings}
    return [npz, write_csv(run_dir / f"{name}.csv", rows),
            write_csv(run_dir / f"{name}_critical_times.csv", crit), write_json(run_dir / f"{name}.json", meta)]
