"""The theory figures: the paper's Figure 2 and the depth/ε sweep of the JEPA ρ-bias (docs/theory.md)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jepalab.plotting import pyplot
from jepalab.rundir import save_figure, write_csv, write_json
from jepalab.theory import critical_time, fixed_point, format_order, learning_order, trajectory

OBJECTIVE_LABEL = {"jepa": "JEPA", "mae": "MAE"}
TIME_LABEL = {"gf": "gradient-flow time t (unit lr on every parameter)", "paper": "paper time τ = L·t"}


@dataclass(frozen=True)
class Figure2Params:
    """Parameters of Figure 2; jepalab's defaults (the paper does not state its depth, ε or grids)."""

    depth: int = 3
    eps: float = 1e-3
    frac: float = 0.5
    time: str = "gf"
    lam_grid: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    rho_grid: tuple[float, ...] = (0.4, 0.55, 0.7, 0.85)
    opposite_lam: tuple[float, ...] = (1.0, 0.9667, 0.9333, 0.9)
    opposite_rho: tuple[float, ...] = (0.4, 0.55, 0.7, 0.85)
    n_times: int = 400

    def __post_init__(self) -> None:
        if self.n_times < 2:
            raise ValueError(f"n_times must be >= 2; got {self.n_times}")

    def panels(self) -> list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]]:
        """(column key, title, λ, ρ, colour value) for the three columns."""
        lam_grid, rho_grid = np.asarray(self.lam_grid), np.asarray(self.rho_grid)
        opp_lam, opp_rho = np.asarray(self.opposite_lam), np.asarray(self.opposite_rho)
        if opp_lam.shape != opp_rho.shape:
            raise ValueError("opposite_lam and opposite_rho must have the same length")
        return [
            ("lambda", "λ varied, ρ = 1 (darker = larger λ)", lam_grid, np.ones_like(lam_grid), lam_grid),
            ("rho", "ρ varied, λ = 1 (darker = larger ρ)", np.ones_like(rho_grid), rho_grid, rho_grid),
            ("opposite", "λ up, ρ down (darker = larger λ, smaller ρ)", opp_lam, opp_rho, opp_lam),
        ]


def _shades(values: np.ndarray, cmap_name: str) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps[cmap_name]
    ranks = np.argsort(np.argsort(values))
    span = max(len(values) - 1, 1)
    return [cmap(0.35 + 0.6 * r / span) for r in ranks]


def figure2(out_dir: str | Path, params: Figure2Params | None = None) -> dict[str, Any]:
    """Draw Figure 2 (JEPA row, MAE row; λ, ρ, opposite-trend columns) and write PNG, SVG, CSV and JSON."""
    plt = pyplot()
    from matplotlib.ticker import NullFormatter

    params = params or Figure2Params()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    letters = iter("abcdef")
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.2), constrained_layout=True)
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"params": asdict(params), "panels": []}
    for r, objective in enumerate(("jepa", "mae")):
        cmap = "Blues" if objective == "jepa" else "Oranges"
        for c, (key, title, lam, rho, shade_by) in enumerate(params.panels()):
            ax = axes[r, c]
            t_star = critical_time(objective, lam, rho, params.depth, params.eps, params.frac, params.time)
            order = learning_order(objective, lam, rho, params.depth, params.eps, params.frac)
            t = np.geomspace(np.min(t_star) / 4.0, np.max(t_star) * 4.0, params.n_times)
            w = trajectory(objective, lam, rho, params.depth, params.eps, t, params.time)
            w_star = fixed_point(objective, rho, params.depth)
            for i, colour in enumerate(_shades(shade_by, cmap)):
                ax.plot(t, w[:, i] / w_star[i], color=colour, lw=2.0, label=f"{i + 1}: λ={lam[i]:g}, ρ={rho[i]:g}")
                ax.plot([t_star[i]], [params.frac], "o", color=colour, mec="black", mew=0.6, ms=6, zorder=5)
                rows.extend(
                    {"panel": key, "objective": objective, "feature": i + 1, "lam": lam[i], "rho": rho[i],
                     "time": tk, "wbar": wk, "wbar_over_fixed_point": wk / w_star[i]}
                    for tk, wk in zip(t, w[:, i])
                )
            ax.axhline(params.frac, color="grey", ls=":", lw=1)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_ylim(-0.02, 1.05)
            ax.set_title(f"({next(letters)}) {OBJECTIVE_LABEL[objective]}: {title}", fontsize=10)
            ax.set_xlabel(TIME_LABEL[params.time], fontsize=9)
            ax.set_ylabel("w̄(t) / w̄*  (encoder amplitude / fixed point)", fontsize=9)
            ax.text(0.02, 0.95, "learned first → last: " + format_order(order, sep=" "), transform=ax.transAxes,
                    fontsize=9,
                    va="top", zorder=10, bbox={"facecolor": "white", "alpha": 0.9, "edgecolor": "none"})
            ax.legend(fontsize=8, loc="lower right", title="feature", title_fontsize=8)
            summary["panels"].append(
                {"panel": key, "objective": objective, "lam": lam, "rho": rho, "critical_time": t_star,
                 "order": (order + 1).tolist()}
            )
    fig.suptitle(
        f"Figure 2 (Littwin et al. 2024) from the exact solution: depth L = {params.depth}, ε = {params.eps:g}, "
        f"dots = critical time (w̄ = {params.frac:g}·w̄*), {params.time} time units",
        fontsize=11,
    )
    paths = save_figure(fig, out_dir / "figure2")
    plt.close(fig)
    write_csv(out_dir / "figure2_curves.csv", rows)
    write_json(out_dir / "figure2.json", summary)
    summary["files"] = [str(p) for p in paths] + [str(out_dir / "figure2_curves.csv"), str(out_dir / "figure2.json")]
    return summary


@dataclass(frozen=True)
class DepthSweepParams:
    """Parameters of the depth sweep; the default order map contains the learning-order table of docs/theory.md."""

    depths: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    eps_grid: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
    ratio_eps: tuple[float, ...] = tuple(float(e) for e in np.logspace(-8, -0.5, 31))
    rho_low: float = 0.4
    rho_high: float = 0.85
    opposite_lam: tuple[float, ...] = (1.0, 0.9667, 0.9333, 0.9)
    opposite_rho: tuple[float, ...] = (0.4, 0.55, 0.7, 0.85)
    frac: float = 0.5


def _kendall_tau(order: np.ndarray, reference: np.ndarray) -> float:
    """Kendall's τ between two orders of the same items (+1 identical, −1 reversed)."""
    position = np.empty_like(reference)
    position[reference] = np.arange(len(reference))
    ranks = position[order]
    n = len(ranks)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    return float(np.mean([np.sign(ranks[j] - ranks[i]) for i, j in pairs]))


def order_map(
    objective: str, lam: np.ndarray, rho: np.ndarray, depths: tuple[int, ...], eps_grid: tuple[float, ...], frac: float
) -> list[dict[str, Any]]:
    """Learning order (1-based string, or None where undefined) and its Kendall τ to the λ-greedy order."""
    lam_order = np.argsort(-lam, kind="stable")
    cells = []
    for depth in depths:
        for eps in eps_grid:
            try:
                order = learning_order(objective, lam, rho, depth, eps, frac)
            except ValueError:
                cells.append({"objective": objective, "depth": depth, "eps": eps, "order": None, "kendall_tau": None})
                continue
            cells.append({"objective": objective, "depth": depth, "eps": eps,
                          "order": format_order(order), "kendall_tau": _kendall_tau(order, lam_order)})
    return cells


def _ratio_panel(ax: Any, params: DepthSweepParams, cmap: Any) -> list[dict[str, Any]]:
    """Left panel: t*(ρ_low)/t*(ρ_high) over ε for each depth, JEPA and MAE; returns its rows."""
    from matplotlib.ticker import NullFormatter

    eps = np.asarray(params.ratio_eps)
    rows = []
    for k, depth in enumerate(params.depths):
        colour = cmap(k / max(len(params.depths) - 1, 1))
        for objective, style in (("jepa", "-"), ("mae", "--")):
            t_low = critical_time(objective, 1.0, params.rho_low, depth, eps, params.frac)
            t_high = critical_time(objective, 1.0, params.rho_high, depth, eps, params.frac)
            valid = (t_low > 0) & (t_high > 0)
            ratio = np.where(valid, t_low / np.where(valid, t_high, 1.0), np.nan)
            ax.plot(eps, ratio, style, color=colour, lw=1.8, label=f"L = {depth}" if objective == "jepa" else None)
            rows.extend({"objective": objective, "depth": depth, "eps": e, "t_rho_low": a, "t_rho_high": b,
                         "ratio": (r if v else None)} for e, a, b, r, v in zip(eps, t_low, t_high, ratio, valid))
    ax.axhline(1.0, color="grey", lw=1, ls=":")
    ax.plot([], [], "-", color="black", label="JEPA")
    ax.plot([], [], "--", color="black", label="MAE")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks([0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0], ["0.8", "0.9", "1", "1.25", "1.5", "2", "3", "4"])
    ax.set_xlabel("initialisation scale ε (w̄(0) = ε)")
    ax.set_ylabel(f"t*(ρ = {params.rho_low:g}) / t*(ρ = {params.rho_high:g}),  λ = 1")
    ax.set_title("JEPA ρ-bias (solid) grows with depth, vanishes as ε → 0; MAE (dashed) ≤ 1.\n"
                 "The fall at large ε: the ρ = low feature starts near its threshold (docs/theory.md)", fontsize=10)
    ax.legend(fontsize=8, ncol=2, title="encoder depth", title_fontsize=8)
    return rows


def _order_panel(ax: Any, objective: str, params: DepthSweepParams) -> tuple[list[dict[str, Any]], Any]:
    """A learning-order map (Kendall τ to the λ-order over depth × ε); returns its cells and image."""
    cells = order_map(objective, np.asarray(params.opposite_lam), np.asarray(params.opposite_rho), params.depths,
                      params.eps_grid, params.frac)
    grid = np.full((len(params.depths), len(params.eps_grid)), np.nan)
    for cell in cells:
        i, j = params.depths.index(cell["depth"]), params.eps_grid.index(cell["eps"])
        if cell["kendall_tau"] is not None:
            grid[i, j] = cell["kendall_tau"]
        ax.text(j, i, cell["order"] or "—", ha="center", va="center", fontsize=8,
                color="white" if cell["kendall_tau"] is not None and abs(cell["kendall_tau"]) > 0.6 else "black")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="coolwarm_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_facecolor("#dddddd")
    ax.set_xticks(range(len(params.eps_grid)), [f"{e:.0e}" for e in params.eps_grid], rotation=45, fontsize=8)
    ax.set_yticks(range(len(params.depths)), [str(d) for d in params.depths])
    ax.set_xlabel("initialisation scale ε")
    ax.set_ylabel("encoder depth L")
    ax.set_title(f"{OBJECTIVE_LABEL[objective]} learning order, λ = {list(params.opposite_lam)},\n"
                 f"ρ = {list(params.opposite_rho)}  (— = undefined: init above threshold)", fontsize=9)
    return cells, image


def depth_sweep(out_dir: str | Path, params: DepthSweepParams | None = None) -> dict[str, Any]:
    """Critical-time ratio t*(ρ_low)/t*(ρ_high) over (L, ε) and the learning-order maps of the opposite preset."""
    plt = pyplot()
    params = params or DepthSweepParams()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.4), constrained_layout=True,
                             gridspec_kw={"width_ratios": [1.25, 1, 1]})
    ratio_rows = _ratio_panel(axes[0], params, plt.get_cmap("viridis"))
    order_rows = []
    for ax, objective in zip(axes[1:], ("jepa", "mae")):
        cells, image = _order_panel(ax, objective, params)
        order_rows.extend(cells)
    fig.colorbar(image, ax=axes[1:], shrink=0.85,
                 label="Kendall τ to the λ-order 1234  (+1 greedy in λ, −1 greedy in ρ)")
    fig.suptitle(f"Depth sweep from the exact critical times (threshold w̄ = {params.frac:g}·w̄*, gradient-flow time)",
                 fontsize=11)
    paths = save_figure(fig, out_dir / "depth_sweep")
    plt.close(fig)
    write_csv(out_dir / "depth_sweep_ratio.csv", ratio_rows)
    write_csv(out_dir / "depth_sweep_orders.csv", order_rows)
    summary = {"params": asdict(params), "orders": order_rows}
    write_json(out_dir / "depth_sweep.json", summary)
    summary["files"] = [str(p) for p in paths] + [
        str(out_dir / n) for n in ("depth_sweep_ratio.csv", "depth_sweep_orders.csv", "depth_sweep.json")
    ]
    return summary
