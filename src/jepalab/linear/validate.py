"""``jepalab linear validate``: full-matrix GD and gradient flow against the exact theory on the paper's setting."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jepalab.config import param
from jepalab.linear.models import GaussianViews
from jepalab.linear.simulate import TrainResult, train
from jepalab.plotting import pyplot
from jepalab.rundir import environment, save_figure, write_csv, write_json
from jepalab.theory import amplitude_rate, critical_time, fixed_point, format_order, learning_order, trajectory

__all__ = ["ValidationParams", "fastest_rate", "validate"]


@dataclass
class ValidationParams:
    """The paper's diagonal setting (the order-flip preset of Figure 2 (c)/(f)) and the GD step rule."""

    lam: tuple[float, ...] = param((1.0, 0.9667, 0.9333, 0.9), help="λ per feature")
    rho: tuple[float, ...] = param((0.4, 0.55, 0.7, 0.85), help="ρ per feature")
    depths: tuple[int, ...] = param((1, 2, 3, 5), help="encoder depths L")
    objectives: tuple[str, ...] = param(("jepa", "mae"), help="objectives")
    methods: tuple[str, ...] = param(("gd", "flow"), help="integrators")
    eps: float = param(1e-3, gt=0, lt=1, help="init scale ε (w̄(0) = ε)")
    frac: float = param(0.5, gt=0, lt=1, help="critical-time threshold as a fraction of w̄*")
    horizon: float = param(1.2, gt=1, help="run to horizon × the last theory critical time")
    jepa_step: float = param(0.2, gt=0, le=1, help="JEPA GD step as a fraction of 1/(fastest rate at w̄*)")
    mae_step: float = param(0.01, gt=0, le=1, help="MAE GD step as a fraction of 1/(fastest rate at w̄*)")
    records: int = param(600, ge=10, help="recorded points per run (curves and trajectory deviation)")
    tolerance: float = param(0.01, gt=0, help="allowed relative critical-time error")


def fastest_rate(objective: str, lam: np.ndarray, rho: np.ndarray, depth: int) -> float:
    """max_i |∂(dw̄/dt)/∂w̄| at the fixed point: the stiffest per-feature rate, which caps a stable GD step."""
    w_star = fixed_point(objective, rho, depth)
    h = 1e-6 * w_star
    slope = (amplitude_rate(objective, w_star + h, lam, rho, depth) - amplitude_rate(objective, w_star - h, lam,
                                                                                     rho, depth)) / (2 * h)
    return float(np.max(np.abs(slope)))


def _one(data: GaussianViews, p: ValidationParams, objective: str, depth: int, integrator: str) -> tuple[
        TrainResult, float]:
    lam, rho = np.asarray(p.lam), np.asarray(p.rho)
    t_end = p.horizon * float(np.max(critical_time(objective, lam, rho, depth, p.eps, p.frac)))
    step = (p.jepa_step if objective == "jepa" else p.mae_step) / fastest_rate(objective, lam, rho, depth)
    steps = max(p.records, int(np.ceil(t_end / step)))
    result = train(data, objective, depth, p.eps, steps, t_end / steps, method=integrator, frac=p.frac,
                   record_every=max(1, steps // p.records), progress=integrator == "gd" and steps > 50_000)
    return result, t_end / steps


def validate(out: str | Path, params: ValidationParams | None = None) -> dict[str, Any]:
    """Run every (objective, depth, method); write ``validation.csv/json`` and ``validation.png``; the
    summary's ``passed`` is True when every critical time is within ``tolerance`` and every order matches."""
    p = params or ValidationParams()
    out = Path(out)
    lam, rho = np.asarray(p.lam, dtype=float), np.asarray(p.rho, dtype=float)
    if lam.shape != rho.shape or lam.ndim != 1:
        raise ValueError(f"lam and rho need one value per feature each; got {lam.size} and {rho.size}")
    data = GaussianViews(np.diag(lam / rho), np.diag(lam), np.diag(lam / rho))
    rows, cases, curves = [], [], {}
    for objective in p.objectives:
        for depth in p.depths:
            theory_t = critical_time(objective, lam, rho, depth, p.eps, p.frac)
            theory_order = learning_order(objective, lam, rho, depth, p.eps, p.frac)
            for method in p.methods:
                result, lr = _one(data, p, objective, depth, method)
                sim_t = result.critical_times[0]
                w_star = result.fixed_point
                theory_curve = trajectory(objective, lam, rho, depth, p.eps, result.times[0])
                deviation = np.max(np.abs(result.amplitude[0] - theory_curve) / w_star, axis=0)
                rel = np.abs(sim_t / theory_t - 1)
                sim_order = np.argsort(sim_t, kind="stable")
                same = bool(np.array_equal(sim_order, theory_order))
                ok = bool(np.all(rel <= p.tolerance) and same)
                curves[(objective, depth, method)] = (result.times[0], result.amplitude[0] / w_star,
                                                      theory_curve / w_star)
                case = {
                    "objective": objective, "depth": depth, "method": method, "lr": lr, "steps": int(result.steps[-1]),
                    "max_rel_error": float(rel.max()), "max_trajectory_deviation": float(deviation.max()),
                    "order_sim": format_order(sim_order), "order_theory": format_order(theory_order),
                    "order_match": same, "passed": ok,
                    "max_offdiag": float(result.offdiag.max()), "max_balance_drift": float(result.balance_drift.max()),
                }
                cases.append(case)
                for i in range(lam.size):
                    rows.append({
                        "objective": objective, "depth": depth, "method": method, "feature": i + 1, "lam": lam[i],
                        "rho": rho[i], "t_theory": theory_t[i], "t_sim": sim_t[i], "rel_error": rel[i],
                        "max_trajectory_deviation": deviation[i], "order_sim": case["order_sim"],
                        "order_theory": case["order_theory"], "passed": ok,
                    })
    passed = all(c["passed"] for c in cases)
    summary = {"passed": passed, "params": asdict(p), "cases": cases, "environment": environment(),
               "max_rel_error": {m: max(c["max_rel_error"] for c in cases if c["method"] == m) for m in p.methods},
               "max_trajectory_deviation": {m: max(c["max_trajectory_deviation"] for c in cases if c["method"] == m)
                                            for m in p.methods}}
    write_csv(out / "validation.csv", rows)
    write_csv(out / "validation_cases.csv", cases)
    write_json(out / "validation.json", summary)
    _plot(out / "validation", curves, p)
    return summary


def _plot(stem: Path, curves: dict[tuple[str, int, str], tuple[np.ndarray, ...]], p: ValidationParams) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(len(p.objectives), len(p.depths), figsize=(3.2 * len(p.depths), 2.8 * len(p.objectives)),
                             squeeze=False)
    colours = plt.cm.viridis(np.linspace(0.1, 0.9, len(p.lam)))
    styles = {"gd": "-", "flow": ":"}
    for row, objective in enumerate(p.objectives):
        for col, depth in enumerate(p.depths):
            ax = axes[row, col]
            for method in p.methods:
                times, sim, theory = curves[(objective, depth, method)]
                for i in range(sim.shape[1]):
                    ax.plot(times, sim[:, i], styles.get(method, "-"), color=colours[i], lw=1.2,
                            label=f"{method} f{i + 1}" if col == 0 and row == 0 else None)
                    if method == p.methods[0]:
                        ax.plot(times, theory[:, i], "--", color="grey", lw=0.8)
            ax.set_title(f"{objective.upper()} L={depth}")
            ax.set_xlabel("gradient-flow time t")
            ax.set_ylabel("‖W̄ e_i‖ / w̄*")
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(f"full-matrix simulator (solid GD, dotted flow) vs theory (dashed grey), ε = {p.eps:g}")
    fig.tight_layout()
    save_figure(fig, stem)
    plt.close(fig)
