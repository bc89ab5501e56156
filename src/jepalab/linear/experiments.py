"""``jepalab linear experiment NAME``: drop one assumption of the theory at a time and see what survives.

Each experiment writes ``NAME.png``/``.svg`` (plot), ``NAME.csv`` (table) and ``NAME.json`` (summary with a
plain ``statement`` of where the theory's prediction holds and where it breaks; the generative-model sweeps also
their verdict ``held`` and its ``rule``) and returns the summary.
Defaults are small: each runs in about a minute or less on 2 CPU cores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jepalab.linear import statements
from jepalab.linear.models import DynamicLinearModel, GaussianViews, StaticLinearModel
from jepalab.linear.nonlinear import ACTIVATIONS, train_nonlinear
from jepalab.linear.simulate import EMA, Sampling, TrainResult, crossing_times, train
from jepalab.linear.validate import fastest_rate
from jepalab.plotting import pyplot
from jepalab.rundir import environment, save_figure, write_csv, write_json
from jepalab.theory import critical_time, format_order, learning_order

__all__ = ["EXPERIMENTS", "register_linear_experiment", "run_experiment"]

OPP_LAM = (1.0, 0.9667, 0.9333, 0.9)  # the order-flip preset of Figure 2 (c)/(f) (docs/theory.md)
OPP_RHO = (0.4, 0.55, 0.7, 0.85)
Rows = list[dict[str, Any]]
Outcome = tuple[Rows, dict[str, Any], tuple[Any, ...]]  # table rows, summary, (ncols, plot(axes)[, nrows])


def _diagonal(lam: object, rho: object) -> GaussianViews:
    lam, rho = np.asarray(lam, dtype=float), np.asarray(rho, dtype=float)
    return GaussianViews(np.diag(lam / rho), np.diag(lam), np.diag(lam / rho))


def _order(times: np.ndarray) -> str:
    """1-based feature indices by critical time; never-learned features in brackets."""
    learned = [i for i in np.argsort(times, kind="stable") if np.isfinite(times[i])]
    return format_order(learned, never=[i for i in range(times.size) if not np.isfinite(times[i])])


def _theory_order(objective: str, lam: np.ndarray, rho: np.ndarray, depth: int, eps: float) -> str:
    return format_order(learning_order(objective, lam, rho, depth, eps))


def _run(data: GaussianViews, objective: str, depth: int, eps: object, horizon: float, step: float = 0.2,
         **kwargs: Any) -> TrainResult:
    """Train to ``horizon`` gradient-flow time with a GD step of ``step``/(fastest theory rate) (or flow)."""
    lam, rho, _ = data.features()
    lr = step / fastest_rate(objective, lam, rho, depth)
    steps = max(200, int(np.ceil(horizon / lr)))
    return train(data, objective, depth, eps, steps, horizon / steps, record_every=max(1, steps // 300), **kwargs)


def _figure(ncols: int, nrows: int = 1) -> tuple[Any, np.ndarray]:
    fig, axes = pyplot().subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False)
    return fig, axes


def _curves(ax: Any, result: TrainResult, title: str, run: int = 0) -> None:
    for i in range(result.lam.size):
        ax.plot(result.times[run], result.amplitude[run, :, i] / result.fixed_point[i], label=f"f{i + 1}")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("t")
    ax.set_ylabel("‖W̄ e_i‖ / w̄*")


# ----------------------------------------------------------------------------------------------------------


EXPERIMENTS: dict[str, Callable[[int], Outcome]] = {}
"""``jepalab linear experiment NAME``: name → ``run(seed) -> (rows, summary, (ncols, plot, [nrows]))``, in
registration order (filled by :func:`register_linear_experiment`)."""


def register_linear_experiment(name: str) -> Callable[[Callable[[int], Outcome]], Callable[[int], Outcome]]:
    """Decorator registering a linear experiment under ``name`` (names are unique)."""

    def decorate(run: Callable[[int], Outcome]) -> Callable[[int], Outcome]:
        if name in EXPERIMENTS and EXPERIMENTS[name].__qualname__ != run.__qualname__:
            raise ValueError(f"linear experiment {name!r} is already registered")
        EXPERIMENTS[name] = run
        return run

    return decorate


@register_linear_experiment("ema")
def ema(seed: int) -> Outcome:
    """JEPA with an EMA target (λ equal, ρ spread; the theory's stop-gradient order is decreasing ρ)."""
    lam, rho, depth, eps = np.ones(4), np.asarray(OPP_RHO), 2, 1e-2
    data = _diagonal(lam, rho)
    theory = critical_time("jepa", lam, rho, depth, eps)
    expected = _theory_order("jepa", lam, rho, depth, eps)
    momenta = (0.0, 0.9, 0.99, 0.998)
    rows, fig_data = [], []
    for m in momenta:
        result = _run(data, "jepa", depth, eps, 4 * theory.max(), target=EMA(m), seed=seed)
        lag = float(result.settings["lr"][0] * m / (1 - m))
        sim = result.critical_times[0]
        rows.append({"momentum": m, "ema_lag_time": lag, "order_sim": _order(sim), "order_theory": expected,
                     "order_kept": _order(sim) == expected,
                     **{f"t_sim_{i + 1}": sim[i] for i in range(4)},
                     **{f"delay_{i + 1}": sim[i] / theory[i] - 1 for i in range(4)}})
        fig_data.append((m, result))
    kept = [r["momentum"] for r in rows if r["order_kept"]]
    broken = [r["momentum"] for r in rows if not r["order_kept"]]
    statement = statements.ema_statement(rows, expected, theory, depth, eps, rho.tolist())

    def plot(axes: np.ndarray) -> None:
        for ax, (m, result) in zip(axes[0], fig_data):
            _curves(ax, result, f"EMA momentum {m:g}")
            for i in range(4):
                ax.axvline(theory[i], color=f"C{i}", ls=":", lw=0.8)
        axes[0, 0].legend(fontsize=7)

    return rows, {"statement": statement, "expected_order": expected, "momenta_kept": kept,
                  "momenta_broken": broken}, (len(momenta), plot)


@register_linear_experiment("nondiagonal")
def nondiagonal(seed: int) -> Outcome:
    """Σxx and Σyx not simultaneously diagonal (static model with a mixing I + s·G); prediction from the
    generalised eigenbasis."""
    lam0, rho0 = np.asarray(OPP_LAM), np.asarray(OPP_RHO)
    g = np.random.default_rng(seed).normal(size=(4, 4)) / 2
    depth, eps = 3, 1e-3
    strengths = (0.0, 0.1, 0.3, 0.6)
    rows, fig_data = [], []
    for s in strengths:
        data = StaticLinearModel(lam0, lam0 / rho0 - lam0, 0.0, mixing=np.eye(4) + s * g)
        lam, rho, _ = data.features()
        commutator = data.sigma_yx @ np.linalg.solve(data.sigma_xx, np.eye(4))
        for objective in ("jepa", "mae"):
            horizon = 1.5 * critical_time(objective, lam, rho, depth, eps).max()
            result = train(data, objective, depth, eps, 2000, horizon / 2000, method="flow", seed=seed)
            # the polar-factor init gives feature i the amplitude ‖ε Uᵀ B^{-T} e_i‖, not exactly ε: use it
            eps_eff = result.amplitude[0, 0]
            theory = critical_time(objective, lam, rho, depth, eps_eff)
            sim = result.critical_times[0]
            final = result.amplitude[0, -1] / result.fixed_point
            rows.append({
                "mixing": s, "objective": objective, "asymmetry": float(np.linalg.norm(commutator - commutator.T)),
                "lam": lam.round(4).tolist(), "rho": rho.round(4).tolist(),
                "eps_eff": eps_eff.round(6).tolist(), "order_sim": _order(sim),
                "order_theory": _theory_order(objective, lam, rho, depth, eps_eff),
                "max_rel_error": float(np.max(np.abs(sim / theory - 1))), "final_amp_ratio_min": float(final.min()),
                "final_amp_ratio_max": float(final.max()), "max_offdiag": float(result.offdiag.max()),
            })
            fig_data.append((s, objective, result))
    for r in rows:
        r["order_match"] = r["order_sim"] == r["order_theory"]
    worst = {o: max(r["max_rel_error"] for r in rows if r["objective"] == o) for o in ("jepa", "mae")}
    fails = [(r["mixing"], r["objective"]) for r in rows if not r["order_match"]]
    statement = statements.nondiagonal_statement(rows, depth, eps)

    def plot(axes: np.ndarray) -> None:
        for k, (s, objective, result) in enumerate(fig_data):
            _curves(axes[k % 2, k // 2], result, f"{objective.upper()} mixing s={s:g}")
        axes[0, 0].legend(fontsize=7)

    return rows, {"statement": statement, "max_rel_error": worst, "order_failures": fails}, (len(strengths), plot, 2)


@register_linear_experiment("init")
def init(seed: int) -> Outcome:
    """Unbalanced / unaligned / per-feature-heterogeneous init (docs/linear.md, "Init"), 3 seeds each, by flow."""
    lam, rho, depth, eps, runs = np.asarray(OPP_LAM), np.asarray(OPP_RHO), 3, 1e-3, 3
    data = _diagonal(lam, rho)
    rng = np.random.default_rng(seed)
    hetero = eps * (1 + rng.uniform(-0.05, 0.05, size=(runs, 4)))
    schemes = {"aligned": ("aligned", eps), "aligned ±5% per feature": ("aligned", hetero),
               "balanced (unaligned)": ("balanced", eps), "gaussian": ("gaussian", eps)}
    rows, fig_data = [], []
    for objective in ("jepa", "mae"):
        theory = critical_time(objective, lam, rho, depth, eps)
        expected = _theory_order(objective, lam, rho, depth, eps)
        for name, (kind, scale) in schemes.items():
            result = train(data, objective, depth, scale, 400, 2 * theory.max() / 400, method="flow", init=kind,
                           runs=runs, seed=seed)
            for r in range(runs):
                sim = result.critical_times[r]
                final = result.amplitude[r, -1] / result.fixed_point
                rows.append({"objective": objective, "init": name, "run": r, "order_sim": _order(sim),
                             "order_theory": expected, "order_kept": _order(sim) == expected,
                             "learned": int(np.isfinite(sim).sum()), "held_at_end": int((final >= 0.5).sum()),
                             "final_amp_ratio": final.round(3).tolist()})
            fig_data.append((objective, name, result))
    table = statements.init_table(rows)
    statement = statements.init_statement(rows, lam.size, depth, eps, runs)

    def plot(axes: np.ndarray) -> None:
        for k, (objective, name, result) in enumerate(fig_data):
            _curves(axes[k // 4, k % 4], result, f"{objective.upper()} {name} (seed 0)")
        axes[0, 0].legend(fontsize=7)

    return rows, {"statement": statement, "order_kept_fraction": {f"{o} {n}": v[0] for (o, n), v in table.items()},
                  "mean_learned": {f"{o} {n}": v[1] for (o, n), v in table.items()},
                  "mean_held_at_end": {f"{o} {n}": v[2] for (o, n), v in table.items()}}, (4, plot, 2)


@register_linear_experiment("finite-sample")
def finite_sample(seed: int) -> Outcome:
    """Fresh minibatches and finite datasets (full batch) vs population gradients, 4 seeds each."""
    lam, rho, depth, eps, runs = np.asarray(OPP_LAM), np.asarray(OPP_RHO), 2, 1e-2, 3
    data = _diagonal(lam, rho)
    settings = [("population", {}), ("minibatch", {"batch_size": 32}), ("minibatch", {"batch_size": 256}),
                ("dataset", {"n_samples": 64, "batch_size": 64}), ("dataset", {"n_samples": 512, "batch_size": 512})]
    rows, fig_data, gaps = [], [], {}
    for objective in ("jepa", "mae"):
        theory = critical_time(objective, lam, rho, depth, eps)
        gaps[objective] = float(np.min(np.diff(np.sort(theory)) / np.sort(theory)[:-1]))
        expected = _theory_order(objective, lam, rho, depth, eps)
        for mode, extra in settings:
            label = mode + "".join(f" {k}={v}" for k, v in extra.items() if k != "batch_size" or mode != "dataset")
            result = _run(data, objective, depth, eps, 1.5 * theory.max(), step=0.2 if objective == "jepa" else 0.05,
                          gradients=Sampling(mode, **extra), runs=runs, seed=seed)
            for r in range(runs):
                sim = result.critical_times[r]
                rows.append({"objective": objective, "gradients": label, "run": r, "order_sim": _order(sim),
                             "order_theory": expected, "order_kept": _order(sim) == expected,
                             "max_rel_error": float(np.max(np.abs(sim / theory - 1))),
                             "final_amp_ratio": (result.amplitude[r, -1] / result.fixed_point).round(3).tolist()})
            fig_data.append((objective, label, result))
    summary_rows = {}
    for r in rows:
        summary_rows.setdefault((r["objective"], r["gradients"]), []).append(r)
    table = {f"{o} {g}": {"order_kept": float(np.mean([r["order_kept"] for r in rs])),
                          "median_rel_error": float(np.median([r["max_rel_error"] for r in rs]))}
             for (o, g), rs in summary_rows.items()}
    statement = statements.finite_sample_statement(table, gaps, depth, eps, runs)

    def plot(axes: np.ndarray) -> None:
        for k, (objective, label, result) in enumerate(fig_data):
            _curves(axes[k // len(settings), k % len(settings)], result, f"{objective.upper()} {label}")
        axes[0, 0].legend(fontsize=7)

    return rows, {"statement": statement, "table": table}, (len(settings), plot, 2)


def _noise_sweep(models: list[tuple[float, GaussianViews]], depth: int, eps: float, noisy: int, clean: int,
                 what: str) -> Outcome:
    """Theory and flow critical-time ratio t*(noisy)/t*(clean) for both objectives along a noise sweep."""
    rows = []
    for level, data in models:
        lam, rho, _ = data.features()
        for objective in ("jepa", "mae"):
            theory = critical_time(objective, lam, rho, depth, eps)
            result = train(data, objective, depth, eps, 300, 1.3 * theory.max() / 300, method="flow")
            sim = result.critical_times[0]
            rows.append({"noise_var": level, "objective": objective, "lam_noisy": lam[noisy],
                         "rho_noisy": rho[noisy], "lam_clean": lam[clean], "rho_clean": rho[clean],
                         "ratio_theory": theory[noisy] / theory[clean], "ratio_sim": sim[noisy] / sim[clean],
                         "order_sim": _order(sim), "order_theory": _order(theory)})
    first = {o: [r["noise_var"] for r in rows if r["objective"] == o and r["ratio_sim"] > 1] for o in ("jepa", "mae")}
    statement = statements.noise_statement(rows, depth, eps, noisy, clean, what)

    def plot(axes: np.ndarray) -> None:
        ax = axes[0, 0]
        for objective, colour in (("jepa", "C0"), ("mae", "C1")):
            sel = [r for r in rows if r["objective"] == objective]
            ax.plot([r["noise_var"] for r in sel], [r["ratio_theory"] for r in sel], "-", color=colour,
                    label=f"{objective.upper()} theory")
            ax.plot([r["noise_var"] for r in sel], [r["ratio_sim"] for r in sel], "o", color=colour,
                    label=f"{objective.upper()} simulator")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("noise variance on the high-λ feature")
        ax.set_ylabel("t*(noisy) / t*(clean)")
        ax.set_title(what, fontsize=9)
        ax.legend(fontsize=7)

    held = bool(first["jepa"]) and (not first["mae"] or min(first["mae"]) > min(first["jepa"]))
    rule = ("JEPA learns the noisy feature last from some noise level on, and MAE never does or only from a larger "
            "level")
    return rows, {"statement": statement, "held": held, "rule": rule, "jepa_flips_at": first["jepa"],
                  "mae_flips_at": first["mae"]}, (1, plot)


@register_linear_experiment("static")
def static(seed: int) -> Outcome:
    """Static model: feature 2 has more signal (λ) but gets context noise; feature 1 is clean."""
    del seed  # deterministic
    levels = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)
    models = [(s, StaticLinearModel([1.0, 1.25], [0.0, s], 0.1)) for s in levels]
    return _noise_sweep(models, 3, 1e-2, noisy=1, clean=0, what="static model x = z + n_x, y = z + n_y")


@register_linear_experiment("dynamic")
def dynamic(seed: int) -> Outcome:
    """Dynamic model: equal autocorrelation, feature 1 has the larger innovation variance and gets observation
    noise (which lowers its ρ below the autocorrelation)."""
    del seed  # deterministic
    levels = (0.0, 0.25, 0.5, 0.75, 1.0)
    models = [(s, DynamicLinearModel([0.8, 0.8], [0.45, 0.36], [s, 0.0])) for s in levels]
    return _noise_sweep(models, 3, 1e-2, noisy=0, clean=1, what="dynamic AR(1) model, x = z_t + n, y = z_t+1 + n")


@register_linear_experiment("nonlinear")
def nonlinear(seed: int) -> Outcome:
    """Same data with a ReLU or tanh between the encoder layers (autograd, large minibatches); equal λ and
    spread ρ, where the linear theory makes JEPA ρ-greedy."""
    lam, rho, depth, eps = np.ones(4), np.asarray(OPP_RHO), 2, 1e-2
    data = _diagonal(lam, rho)
    rows, fig_data = [], []
    for objective in ("jepa", "mae"):
        expected = _theory_order(objective, lam, rho, depth, eps)
        horizon = 1.6 * float(critical_time(objective, lam, rho, depth, eps).max())
        lr = (0.2 if objective == "jepa" else 0.05) / fastest_rate(objective, lam, rho, depth)
        for name in ACTIVATIONS:
            times, amps = train_nonlinear(data, objective, depth, eps, horizon, lr, name, seed)
            # learned: grew at least 4×; critical time: first reaching the log-midpoint of initial and final
            crossing = crossing_times(times[None], amps[None], np.sqrt(amps[0] * amps[-1]))[0]
            crossing[amps[-1] < 4 * amps[0]] = np.inf
            rows.append({"objective": objective, "activation": name, "order_sim": _order(crossing),
                         "order_theory": expected, "order_kept": _order(crossing) == expected,
                         "final_amplitude": amps[-1].round(4).tolist(),
                         **{f"t_half_{i + 1}": crossing[i] for i in range(lam.size)}})
            fig_data.append((objective, name, times, amps))
    kept = {f"{r['objective']} {r['activation']}": r["order_kept"] for r in rows}
    statement = statements.nonlinear_statement(rows, rho.tolist(), depth, eps)

    def plot(axes: np.ndarray) -> None:
        for k, (objective, name, times, amps) in enumerate(fig_data):
            ax = axes[k // 3, k % 3]
            for i in range(amps.shape[1]):
                ax.plot(times, amps[:, i] / amps[-1, i], label=f"f{i + 1}")
            ax.set_title(f"{objective.upper()} {name}", fontsize=9)
            ax.set_xlabel("t")
            ax.set_ylabel("amplitude / final")
        axes[0, 0].legend(fontsize=7)

    return rows, {"statement": statement, "order_kept": kept}, (3, plot, 2)


def run_experiment(name: str, out: str | Path, seed: int = 0) -> dict[str, Any]:
    """Run experiment ``name`` into ``out``: ``name.csv``, ``name.json`` (with ``statement``), ``name.png``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {tuple(EXPERIMENTS)}; got {name!r}")
    out = Path(out)
    rows, summary, (ncols, plot, *nrows) = EXPERIMENTS[name](seed)
    summary = {"experiment": name, "seed": seed, **summary, "environment": environment()}
    write_csv(out / f"{name}.csv", rows)
    write_json(out / f"{name}.json", {**summary, "rows": rows})
    fig, axes = _figure(ncols, *nrows)
    plot(axes)
    fig.tight_layout()
    save_figure(fig, out / name)
    pyplot().close(fig)
    return summary
