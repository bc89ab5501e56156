"""``jepalab linear experiment NAME``: drop one assumption of the theory at a time and see what survives.

Each experiment writes ``NAME.png``/``.svg`` (plot), ``NAME.csv`` (table) and ``NAME.json`` (summary with a
plain ``statement`` of where the theory's prediction holds and where it breaks) and returns the summary.
Defaults are small: each runs in about a minute or less on 2 CPU cores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jepalab.linear.models import DynamicLinearModel, GaussianViews, StaticLinearModel
from jepalab.linear.simulate import TrainResult, crossing_times, initial_parameters, single_thread, train
from jepalab.linear.validate import fastest_rate
from jepalab.rundir import environment, save_figure, write_csv, write_json
from jepalab.theory import critical_time, learning_order

__all__ = ["EXPERIMENTS", "run_experiment"]

OPP_LAM = (1.0, 0.9667, 0.9333, 0.9)  # the spec's order-flip preset (§10, §13 claim 3)
OPP_RHO = (0.4, 0.55, 0.7, 0.85)
Rows = list[dict[str, Any]]
Outcome = tuple[Rows, dict[str, Any], tuple[Any, ...]]  # table rows, summary, (ncols, plot(axes)[, nrows])


def _diagonal(lam: object, rho: object) -> GaussianViews:
    lam, rho = np.asarray(lam, dtype=float), np.asarray(rho, dtype=float)
    return GaussianViews(np.diag(lam / rho), np.diag(lam), np.diag(lam / rho))


def _order(times: np.ndarray) -> str:
    """1-based feature indices by critical time; never-learned features in brackets."""
    learned = [str(i + 1) for i in np.argsort(times, kind="stable") if np.isfinite(times[i])]
    missing = [str(i + 1) for i in range(times.size) if not np.isfinite(times[i])]
    return "".join(learned) + (f" ({''.join(missing)} not learned)" if missing else "")


def _theory_order(objective: str, lam: np.ndarray, rho: np.ndarray, depth: int, eps: float) -> str:
    return "".join(str(i + 1) for i in learning_order(objective, lam, rho, depth, eps))


def _run(data: GaussianViews, objective: str, depth: int, eps: object, horizon: float, step: float = 0.2,
         **kwargs: Any) -> TrainResult:
    """Train to ``horizon`` gradient-flow time with a GD step of ``step``/(fastest theory rate) (or flow)."""
    lam, rho, _ = data.features()
    lr = step / fastest_rate(objective, lam, rho, depth)
    steps = max(200, int(np.ceil(horizon / lr)))
    return train(data, objective, depth, eps, steps, horizon / steps, record_every=max(1, steps // 300), **kwargs)


def _figure(ncols: int, nrows: int = 1) -> tuple[Any, np.ndarray]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False)
    return fig, axes


def _curves(ax: Any, result: TrainResult, title: str, run: int = 0) -> None:
    for i in range(result.lam.size):
        ax.plot(result.times[run], result.amplitude[run, :, i] / result.fixed_point[i], label=f"f{i + 1}")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("t")
    ax.set_ylabel("‖W̄ e_i‖ / w̄*")


# ----------------------------------------------------------------------------------------------------------


def ema(seed: int) -> Outcome:
    """JEPA with an EMA target (λ equal, ρ spread; the theory's stop-gradient order is decreasing ρ)."""
    lam, rho, depth, eps = np.ones(4), np.asarray(OPP_RHO), 2, 1e-2
    data = _diagonal(lam, rho)
    theory = critical_time("jepa", lam, rho, depth, eps)
    expected = _theory_order("jepa", lam, rho, depth, eps)
    momenta = (0.0, 0.9, 0.99, 0.998)
    rows, fig_data = [], []
    for m in momenta:
        result = _run(data, "jepa", depth, eps, 4 * theory.max(), target="ema", ema_momentum=m, seed=seed)
        lag = float(result.settings["lr"][0] * m / (1 - m))
        sim = result.critical_times[0]
        rows.append({"momentum": m, "ema_lag_time": lag, "order_sim": _order(sim), "order_theory": expected,
                     "order_kept": _order(sim) == expected,
                     **{f"t_sim_{i + 1}": sim[i] for i in range(4)},
                     **{f"delay_{i + 1}": sim[i] / theory[i] - 1 for i in range(4)}})
        fig_data.append((m, result))
    kept = [r["momentum"] for r in rows if r["order_kept"]]
    broken = [r["momentum"] for r in rows if not r["order_kept"]]
    delays = {r["momentum"]: max(abs(r[f"delay_{i + 1}"]) for i in range(4)) for r in rows}
    statement = (
        f"EMA target, JEPA L={depth}, ε={eps:g}, λ equal, ρ={rho.tolist()}: the stop-gradient theory predicts order "
        f"{expected}. It {'holds' if kept else 'holds for no momentum'}"
        f"{' for momentum ' + ', '.join(f'{m:g}' for m in kept) if kept else ''}"
        f"{'; it breaks for ' + ', '.join(f'{m:g}' for m in broken) if broken else ''}. "
        "Critical times move by at most " + ", ".join(f"{100 * delays[m]:.1f}% (m={m:g})" for m in momenta)
        + " relative to the stop-gradient theory: the EMA target lags the online encoder by about lr·m/(1−m) "
        "time units, which delays learning but leaves the ρ-ordering intact while that lag is short compared "
        "with the gaps between critical times."
    )

    def plot(axes: np.ndarray) -> None:
        for ax, (m, result) in zip(axes[0], fig_data):
            _curves(ax, result, f"EMA momentum {m:g}")
            for i in range(4):
                ax.axvline(theory[i], color=f"C{i}", ls=":", lw=0.8)
        axes[0, 0].legend(fontsize=7)

    return rows, {"statement": statement, "expected_order": expected, "momenta_kept": kept,
                  "momenta_broken": broken}, (len(momenta), plot)


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
    statement = (
        f"Non-simultaneously-diagonalisable covariances (static model, mixing I + s·G, L={depth}, ε={eps:g}, flow, "
        "aligned init in the polar factor of the generalised eigenbasis; the theory gets each feature's initial "
        "amplitude as its ε). The generalised-eigenbasis theory "
        f"predicts critical times within {100 * worst['jepa']:.2g}% (JEPA) and {100 * worst['mae']:.2g}% (MAE) "
        f"over s ∈ {list(strengths)}; orders "
        + ("match in every case" if not fails else "differ for " + ", ".join(f"s={s:g} {o}" for s, o in fails))
        + ". Final amplitudes ‖W̄ B^{-T} e_i‖ over the theory's w̄* range over "
        f"[{min(r['final_amp_ratio_min'] for r in rows):.3g}, {max(r['final_amp_ratio_max'] for r in rows):.3g}]: "
        "the reduction is exact only at s = 0; with mixing the layers are no longer balanced along the feature "
        "directions, so the theory is an approximation whose error grows with s."
    )

    def plot(axes: np.ndarray) -> None:
        for k, (s, objective, result) in enumerate(fig_data):
            _curves(axes[k % 2, k // 2], result, f"{objective.upper()} mixing s={s:g}")
        axes[0, 0].legend(fontsize=7)

    return rows, {"statement": statement, "max_rel_error": worst, "order_failures": fails}, (len(strengths), plot, 2)


def init(seed: int) -> Outcome:
    """Unbalanced / unaligned / per-feature-heterogeneous init (spec §14 E2, J, K), 4 seeds each, by flow."""
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
    kept = {(o, n): np.mean([r["order_kept"] for r in rows if r["objective"] == o and r["init"] == n])
            for o in ("jepa", "mae") for n in schemes}
    learned = {(o, n): (np.mean([r["learned"] for r in rows if r["objective"] == o and r["init"] == n]),
                        np.mean([r["held_at_end"] for r in rows if r["objective"] == o and r["init"] == n]))
               for o in ("jepa", "mae") for n in schemes}
    statement = (
        f"Init robustness (order-flip preset, L={depth}, ε={eps:g}, {runs} seeds, flow to 2× the theory's last "
        "critical time). Fraction of runs keeping the aligned-theory order / mean features ever learned / mean "
        "features still at ≥ ½ w̄* at the end: "
        + "; ".join(f"{o.upper()} {n}: {kept[(o, n)]:.2f} / {learned[(o, n)][0]:.2f} / {learned[(o, n)][1]:.2f}"
                    for (o, n) in kept)
        + ". The theory's order is a prediction for the aligned, equal-scale init only: near the λ/ρ crossover "
        "a few per cent of per-feature scale heterogeneity reorders JEPA, and unaligned inits reorder both "
        "objectives; JEPA also partially collapses (some features are never learned), and with unaligned init "
        "MAE can learn a feature and then lose it again while its latent directions rotate (a saddle transient "
        "within this horizon)."
    )

    def plot(axes: np.ndarray) -> None:
        for k, (objective, name, result) in enumerate(fig_data):
            _curves(axes[k // 4, k % 4], result, f"{objective.upper()} {name} (seed 0)")
        axes[0, 0].legend(fontsize=7)

    return rows, {"statement": statement, "order_kept_fraction": {f"{o} {n}": v for (o, n), v in kept.items()},
                  "mean_learned": {f"{o} {n}": v[0] for (o, n), v in learned.items()},
                  "mean_held_at_end": {f"{o} {n}": v[1] for (o, n), v in learned.items()}}, (4, plot, 2)


def finite_sample(seed: int) -> Outcome:
    """Fresh minibatches and finite datasets (full batch) vs population gradients, 4 seeds each."""
    lam, rho, depth, eps, runs = np.asarray(OPP_LAM), np.asarray(OPP_RHO), 2, 1e-2, 3
    data = _diagonal(lam, rho)
    settings = [("population", {}), ("minibatch", {"batch_size": 32}), ("minibatch", {"batch_size": 256}),
                ("dataset", {"n_samples": 64, "batch_size": 64}), ("dataset", {"n_samples": 512, "batch_size": 512})]
    rows, fig_data = [], []
    for objective in ("jepa", "mae"):
        theory = critical_time(objective, lam, rho, depth, eps)
        expected = _theory_order(objective, lam, rho, depth, eps)
        for mode, extra in settings:
            label = mode + "".join(f" {k}={v}" for k, v in extra.items() if k != "batch_size" or mode != "dataset")
            result = _run(data, objective, depth, eps, 1.5 * theory.max(), step=0.2 if objective == "jepa" else 0.05,
                          gradients=mode, runs=runs, seed=seed, **extra)
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
    statement = (
        f"Sampled gradients (order-flip preset, L={depth}, ε={eps:g}, {runs} seeds). Fraction of runs keeping "
        "the theory's order and median max critical-time error: "
        + "; ".join(f"{k}: {v['order_kept']:.2f}, {100 * v['median_rel_error']:.1f}%" for k, v in table.items())
        + ". The theory's order survives in every run only for: "
        + ", ".join(k for k, v in table.items() if v["order_kept"] == 1.0)
        + ". Minibatch noise blurs close critical times (JEPA's differ by a few per cent here); a finite dataset "
        "replaces the population covariances by empirical ones, whose own λ, ρ and off-diagonal terms move "
        "the critical times and can reorder features even when every run is deterministic."
    )

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

    def ratios(objective: str) -> str:
        return ", ".join(f"{r['ratio_sim']:.2f}" for r in rows if r["objective"] == objective)

    def verdict(objective: str) -> str:
        if not first[objective]:
            return "learns the noisy feature first at every noise level"
        if first[objective][0] == levels[0]:
            return "learns the noisy feature last already without noise"
        return f"learns the noisy feature last from noise variance {first[objective][0]:g} on"

    levels = [level for level, _ in models]
    statement = (
        f"{what} (L={depth}, ε={eps:g}, flow; feature {noisy + 1} has the larger λ and carries the noise). "
        f"JEPA {verdict('jepa')} (t*(noisy)/t*(clean) = {ratios('jepa')} over noise variance {levels}); "
        f"MAE {verdict('mae')} ({ratios('mae')}). Simulator and theory ratios agree to "
        f"{max(abs(r['ratio_sim'] / r['ratio_theory'] - 1) for r in rows):.1e} relative: the diagonal theory "
        "holds exactly for these models; JEPA's noise avoidance goes through ρ, to which MAE is nearly blind."
    )

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

    return rows, {"statement": statement, "jepa_flips_at": first["jepa"], "mae_flips_at": first["mae"]}, (1, plot)


def static(seed: int) -> Outcome:
    """Static model: feature 2 has more signal (λ) but gets context noise; feature 1 is clean."""
    del seed  # deterministic
    levels = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)
    models = [(s, StaticLinearModel([1.0, 1.25], [0.0, s], 0.1)) for s in levels]
    return _noise_sweep(models, 3, 1e-2, noisy=1, clean=0, what="static model x = z + n_x, y = z + n_y")


def dynamic(seed: int) -> Outcome:
    """Dynamic model: equal autocorrelation, feature 1 has the larger innovation variance and gets observation
    noise (which lowers its ρ below the autocorrelation)."""
    del seed  # deterministic
    levels = (0.0, 0.25, 0.5, 0.75, 1.0)
    models = [(s, DynamicLinearModel([0.8, 0.8], [0.45, 0.36], [s, 0.0])) for s in levels]
    return _noise_sweep(models, 3, 1e-2, noisy=0, clean=1, what="dynamic AR(1) model, x = z_t + n, y = z_t+1 + n")


def nonlinear(seed: int) -> Outcome:
    """Same data with a ReLU or tanh between the encoder layers (autograd, large minibatches); equal λ and
    spread ρ, where the linear theory makes JEPA ρ-greedy."""
    lam, rho, depth, eps = np.ones(4), np.asarray(OPP_RHO), 2, 1e-2
    data = _diagonal(lam, rho)
    acts = {"linear": lambda h: h, "tanh": torch.tanh, "relu": torch.relu}
    rows, fig_data = [], []
    for objective in ("jepa", "mae"):
        expected = _theory_order(objective, lam, rho, depth, eps)
        horizon = 1.6 * float(critical_time(objective, lam, rho, depth, eps).max())
        for name, act in acts.items():
            with single_thread():
                times, amps = _train_nonlinear(data, objective, depth, eps, horizon, act, seed)
            # learned: grew at least 4×; critical time: first reaching the log-midpoint of initial and final
            crossing = _first_crossing(times, amps, np.sqrt(amps[0] * amps[-1]))
            crossing[amps[-1] < 4 * amps[0]] = np.inf
            rows.append({"objective": objective, "activation": name, "order_sim": _order(crossing),
                         "order_theory": expected, "order_kept": _order(crossing) == expected,
                         "final_amplitude": amps[-1].round(4).tolist(),
                         **{f"t_half_{i + 1}": crossing[i] for i in range(lam.size)}})
            fig_data.append((objective, name, times, amps))
    kept = {f"{r['objective']} {r['activation']}": r["order_kept"] for r in rows}
    statement = (
        f"Nonlinear encoders (λ equal, ρ={rho.tolist()}, L={depth}, ε={eps:g}, activation between the layers, "
        "minibatch-256 autograd GD; amplitude = row norms of the least-squares linear map x → f(x); learned = "
        "grew ≥ 4×, critical time = first reaching the log-midpoint of initial and final amplitude). "
        "Order (first learned first) vs the linear theory: "
        + "; ".join(f"{r['objective'].upper()} {r['activation']}: {r['order_sim']} (theory {r['order_theory']})"
                    for r in rows)
        + ". Where a nonlinear run keeps the theory's order, the linear prediction carries over; where it does "
        "not, the activation has changed which features are learned and at what amplitude (saturating tanh and "
        "rectifying ReLU both shrink and reshape the small-init signal), which the linear theory does not model."
    )

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


def _first_crossing(times: np.ndarray, amps: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return crossing_times(times[None], amps[None], thresholds)[0]


def _train_nonlinear(data: GaussianViews, objective: str, depth: int, eps: float, horizon: float,
                     act: Callable[[torch.Tensor], torch.Tensor], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """GD with autograd on f(x) = W_L φ(⋯ φ(W_1 x)); returns record times and per-feature amplitudes."""
    lam, rho, basis = data.features()
    weights = [w.clone().requires_grad_(True) for w in
               initial_parameters("aligned", depth, np.full((1, data.dim), eps), basis, [seed], objective)[:, 0]]
    lr = (0.2 if objective == "jepa" else 0.05) / fastest_rate(objective, lam, rho, depth)
    steps = int(np.ceil(horizon / lr))
    gen = torch.Generator().manual_seed(seed)
    probe_x, _ = data.sample(4096, gen)
    solve = torch.linalg.pinv(probe_x)

    def encode(x: torch.Tensor) -> torch.Tensor:
        h = x @ weights[0].T
        for w in weights[1:depth]:
            h = act(h) @ w.T
        return h

    times, amps = [], []
    for step in range(steps + 1):
        if step % max(1, steps // 150) == 0 or step == steps:
            with torch.no_grad():
                linear_map = solve @ encode(probe_x)  # (d, d): least-squares x → f(x), rows = input coordinates
            times.append(step * lr)
            amps.append(torch.linalg.vector_norm(linear_map, dim=1).numpy())
        if step == steps:
            break
        x, y = data.sample(256, gen)
        fx = encode(x)
        target = encode(y).detach() if objective == "jepa" else y
        loss = 0.5 * ((fx @ weights[depth].T - target) ** 2).sum(1).mean()
        grads = torch.autograd.grad(loss, weights)
        with torch.no_grad():
            for w, g in zip(weights, grads):
                w -= lr * g
    return np.asarray(times), np.stack(amps)


EXPERIMENTS: dict[str, Callable[[int], Outcome]] = {
    "ema": ema, "nondiagonal": nondiagonal, "init": init, "finite-sample": finite_sample, "static": static,
    "dynamic": dynamic, "nonlinear": nonlinear,
}


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
    import matplotlib.pyplot as plt

    plt.close(fig)
    return summary
