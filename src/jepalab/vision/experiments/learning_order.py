"""``learning-order`` (claim R4, beyond the paper): does a ViT learn pixel directions in the order the deep linear
theory predicts from their λ and ρ under the method's masks?

Per method, on the clean runs of noisy-features (strength 0; or ``folder=DIR``): the leading pixel-PCA directions and
those whose ρ rank differs most from their λ rank (:mod:`jepalab.vision.readout.directions`); the theory's predicted
learning time of each at the encoder's depth (:mod:`.order_theory`); the observed learning step of each, read from the
run's checkpoints (cross-validated decoding R² of vᵀx, trained minus the run's own initialisation, first reaching a
share of its final gain); and per run the Spearman correlation between observed and predicted order and the partial
rank correlation of the observed step with ρ given λ. A deep linear control trained on the same (λ, ρ) checks that the
measurement recovers the theory's order where the theory holds exactly.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from jepalab.config import config_to_dict
from jepalab.data.folder import FOLDER_DATASET
from jepalab.eval import learning_steps, partial_rank_correlation, rank_correlation
from jepalab.rundir import to_jsonable, write_json
from jepalab.vision.experiments.noisy_features import noisy_runs
from jepalab.vision.experiments.order_theory import linear_control, predicted_times
from jepalab.vision.experiments.registry import Experiment, register_experiment
from jepalab.vision.experiments.rules import mean, passes
from jepalab.vision.experiments.settings import ExperimentSettings, pretrain_config
from jepalab.vision.methods import method_spec

__all__ = ["LearningOrder"]

PROTOCOL = {"pool": 64, "top": 16, "extra": 8, "stat_images": 5000, "mask_draws": 4, "decode_images": 5000,
            "folds": 5, "share": 0.5, "min_r2_gain": 0.01, "eps": 1e-3, "min_learned": 5, "control_min": 0.9,
            "control_records": 200, "control_horizon": 1.5}
"""The measurement's constants, fixed in plan.json before any direction is decoded."""
MIN_FINITE = 8
"""Interval statistics: the fewest directions with a finite predicted learning time, per method, to test an order."""
OBJECTIVES = ("jepa", "mae")  # the theory's objective of the joint-embedding and of the reconstruction method
STAT_KEYS = ("lam", "rho", "var_context", "var_target")


def _runs(settings: ExperimentSettings) -> list[tuple[dict[str, Any], Any]]:
    if settings.folder:
        return [({"method": m, "seed": s}, pretrain_config(m, FOLDER_DATASET, {}, settings, s))
                for m in settings.methods for s in settings.seeds]
    return [({"method": labels["method"], "seed": labels["seed"]}, cfg) for labels, cfg in noisy_runs(settings, (0.0,))]


@functools.lru_cache(maxsize=4)
def _directions(settings_json: str) -> dict[str, Any]:
    """The chosen directions (k, D), the PCA mean, their pool indices and each method's λ, ρ and view variances."""
    from jepalab.config import from_dict
    from jepalab.vision.readout.directions import choose_directions, direction_pool

    settings = from_dict(ExperimentSettings, json.loads(settings_json))
    configs: dict[str, Any] = {}
    for labels, cfg in _runs(settings):
        configs.setdefault(labels["method"], cfg)
    pool = direction_pool(configs, PROTOCOL["pool"], PROTOCOL["stat_images"], PROTOCOL["mask_draws"],
                          settings.order_basis)
    stats = {m: pool[m] for m in settings.methods}
    index = choose_directions(stats, PROTOCOL["top"], PROTOCOL["extra"])
    directions = pool["directions"][index]
    hashed = directions if settings.order_basis == "pca" else np.round(directions, 6)  # eigh's last bits vary by CPU
    return {"directions": directions, "mean": pool["mean"], "index": index,
            "sha256": hashlib.sha256(hashed.tobytes()).hexdigest()[:16],
            "stats": {m: {k: s[k][index] for k in STAT_KEYS} for m, s in stats.items()}}


def directions_of(settings: ExperimentSettings) -> dict[str, Any]:
    """:func:`_directions` of ``settings`` (computed once per process)."""
    return _directions(json.dumps(to_jsonable(config_to_dict(settings)), sort_keys=True))


def _eps(settings: ExperimentSettings) -> float:
    """The theory's initialisation scale ε: the registered setting, else the protocol's."""
    return settings.order_eps if settings.order_eps is not None else PROTOCOL["eps"]


def _predicted(table: dict[str, dict[str, Any]], settings: ExperimentSettings) -> dict[str, np.ndarray]:
    """method → each direction's predicted learning time under its own objective (inf: never learned)."""
    return {m: predicted_times(o, table[m]["lam"], table[m]["rho"], settings.depth, _eps(settings), PROTOCOL["share"])
            for m, o in zip(settings.methods, OBJECTIVES)}


def _tested(predicted: dict[str, np.ndarray], settings: ExperimentSettings) -> np.ndarray:
    """The directions the rank statistics run over: all (spread statistics), or those with a finite predicted
    time under every method (interval statistics: no ranking of ties among the never-learned)."""
    every = np.ones(len(next(iter(predicted.values()))), dtype=bool)
    if settings.statistics == "spread":
        return every
    return np.logical_and.reduce([np.isfinite(t) for t in predicted.values()])


def _measure_key(chosen: dict[str, Any], settings: ExperimentSettings) -> dict[str, Any]:
    return {"protocol": PROTOCOL, "directions_sha256": chosen["sha256"], "encoder": settings.eval.encoder,
            "readout": settings.eval.readout, "seed": settings.eval.seed}


def order_stats(steps: list[int], r2: np.ndarray, lam: np.ndarray, rho: np.ndarray,
                predicted: dict[str, np.ndarray], own: str) -> dict[str, float]:
    """One run's numbers: learned directions, Spearman of its observed learning steps with each objective's
    predicted times, and the partial rank correlation of its steps with ρ given λ (NaN over fewer than 3
    directions: no order to correlate)."""
    observed = learning_steps(steps, r2, PROTOCOL["share"], PROTOCOL["min_r2_gain"])
    other = next(o for o in predicted if o != own)
    if observed.size < 3:
        nan = float("nan")
        return {"learned": int(np.isfinite(observed).sum()), "spearman_own": nan, "spearman_other": nan,
                "partial_rho": nan}
    return {"learned": int(np.isfinite(observed).sum()),
            "spearman_own": rank_correlation(observed, predicted[own]),
            "spearman_other": rank_correlation(observed, predicted[other]),
            "partial_rho": partial_rank_correlation(observed, rho, lam)}


@register_experiment
class LearningOrder(Experiment):
    """Observed versus predicted learning order of pixel directions, per method, with a deep linear control."""

    name, claim_key = "learning-order", "R4"
    labels = ("method", "seed")
    report_claim: ClassVar[dict[str, str] | None] = {
        "statement": "A ViT learns pixel directions in the order the deep linear theory predicts from their λ and ρ "
                     "under the method's masks: I-JEPA's order is more ρ-driven than MAE's, and each method's order "
                     "agrees with its own prediction better than with the other method's.",
        "source": "beyond the paper",
        "provenance": "the paper's learning-order result (Littwin et al. 2024, Thm 4.5 and Fig. 2) tested on ViTs; "
                      "our protocol (docs/experiments.md, Learning order)",
        "paper_says": "The paper derives the order for deep linear networks only; it does not measure it on ViTs."}

    smallest_effects: ClassVar[dict[str, tuple[float, str]]] = {
        "rho_driven": (0.2, "a fifth of the way from no to perfect rank agreement; over 8–24 directions a rank "
                            "correlation moves by about 0.1 when two neighbouring directions swap"),
        "own_order_ijepa": (0.2, "as rho_driven"), "own_order_mae": (0.2, "as rho_driven")}

    def runs(self, settings: ExperimentSettings) -> list[tuple[dict[str, Any], Any]]:
        if settings.gate == "knn20":
            raise ValueError(f"gate={settings.gate}: learning-order has its own gate (directions learned, the deep "
                             "linear control); leave gate at probe")
        return _runs(settings)

    def tested_claim(self, settings: ExperimentSettings) -> str:
        jl, rl = (method_spec(m).label for m in settings.methods)
        return (f"On the pixel directions the deep linear theory predicts both methods learn, {jl}'s observed order "
                f"of learning them is more ρ-driven than {rl}'s, and each method's observed order agrees better with "
                "its own predicted order than with the other method's.")

    def test_definitions(self, settings: ExperimentSettings) -> dict[str, str]:
        jl, rl = (method_spec(m).label for m in settings.methods)
        every = "; every rank statistic over the directions whose predicted learning time is finite for both methods"
        return {"rho_driven": f"partial(ρ | λ)({rl}) − partial(ρ | λ)({jl}), the partial Spearman correlation of the "
                              "observed learning step with ρ given λ (negative: high-ρ directions first)" + every,
                **{f"own_order_{m}": f"Spearman(observed, own prediction) − Spearman(observed, other prediction) of "
                                     f"{method_spec(m).label}" for m in settings.methods}}

    def gate_sentence(self, settings: ExperimentSettings) -> str:
        p = PROTOCOL
        return (f"Decided only when the theory predicts a finite learning time for ≥ {MIN_FINITE} of the directions "
                f"under each method's masks (ε = {_eps(settings):g}), every run learned ≥ {p['min_learned']} "
                f"directions, and a deep linear network trained on the same (λ, ρ) shows the theory's order through "
                f"the same measurement (Spearman ≥ {p['control_min']}).")

    def learning_gate(self, settings: ExperimentSettings) -> dict[str, Any]:
        return {"read_out": "directions", "threshold": {"finite_predicted": MIN_FINITE,
                                                        "learned": PROTOCOL["min_learned"],
                                                        "control_spearman": PROTOCOL["control_min"]},
                "sentence": self.gate_sentence(settings),
                "reason": "an order over directions that the theory says are never learned compares ties: with "
                          f"fewer than {MIN_FINITE} finite predicted times per method the prediction ranks too few "
                          "directions to be tested"}

    def protocol(self) -> dict[str, Any]:
        return dict(PROTOCOL)

    def statement(self, settings: ExperimentSettings) -> dict[str, str]:
        jl, rl = (method_spec(m).label for m in settings.methods)
        p = PROTOCOL
        return {
            "claim": f"{jl}'s observed order of learning pixel directions is more ρ-driven than {rl}'s, and each "
                     "method's observed order agrees better with its own predicted order (deep linear theory, "
                     "JEPA resp. MAE, at the encoder's depth) than with the other method's.",
            "rule": f"held = (a) partial(ρ | λ)({rl}) − partial(ρ | λ)({jl}) passes the shared test AND (b) for each "
                    "method, Spearman(observed, own prediction) − Spearman(observed, other prediction) passes it. "
                    "partial(ρ | λ) = partial Spearman correlation of the observed learning step with ρ given λ "
                    "(negative: high-ρ directions are learned first). Observed learning step = first step where the "
                    f"direction's decoding R² gain over the run's initialisation reaches {p['share']} of its final "
                    f"gain (linear between checkpoints); not learned (ranked last) when the final gain < "
                    f"{p['min_r2_gain']}. Predicted = the theory's critical time at ε = {p['eps']:g}, L = encoder "
                    "depth, threshold half the fixed point (never: λ ≤ 0, ρ ≤ 0 or a fixed point ≤ 2ε). Shared "
                    "test: mean over seeds > 0 and, with ≥ 3 seeds, > the std over seeds.",
            "control": f"Learning is read relative to each run's own initialisation and only directions with a "
                       f"final R² gain ≥ {p['min_r2_gain']} are timed; the claim is not tested when a run learned "
                       f"fewer than {p['min_learned']} directions, or when a deep linear network trained on the same "
                       f"(λ, ρ) does not show the theory's order through the same measurement (Spearman < "
                       f"{p['control_min']} at {p['control_records']} records).",
        }

    def verdicts(self) -> dict[str, str]:
        return {"holds": "every run learned enough directions, the deep linear control recovers the theory's order, "
                         "and conditions (a) and (b) pass",
                "does not hold": "the same preconditions, and a condition of the rule fails",
                "not tested here": "a run learned too few directions, the deep linear control failed, or the runs "
                                   "are missing"}

    def measure_run(self, run: Path, settings: ExperimentSettings) -> None:
        from jepalab.vision.readout.directions import decode_curves, pixel_views
        from jepalab.vision.readout.run import Run
        from jepalab.vision.training.distributed import resolve_device

        chosen = directions_of(settings)
        path = run / f"{self.name}.measure.json"
        key = _measure_key(chosen, settings)
        if path.is_file() and json.loads(path.read_text()).get("key") == to_jsonable(key):
            return
        handle = Run(run, resolve_device(settings.device))
        images = pixel_views(handle.config, "test", PROTOCOL["decode_images"])
        curves = decode_curves(handle, chosen["directions"], chosen["mean"], images, settings.eval.encoder,
                               settings.eval.readout, folds=PROTOCOL["folds"], seed=settings.eval.seed)
        write_json(path, {"key": key, "pca_index": chosen["index"], "steps": curves["steps"], "r2": curves["r2"]})

    def run_rows(self, labels: dict[str, Any], run: Path, result: dict[str, Any],
                 settings: ExperimentSettings) -> list[dict[str, Any]]:
        measured = json.loads((run / f"{self.name}.measure.json").read_text())
        stats = directions_of(settings)["stats"][labels["method"]]
        random, last = result["baselines"]["random"], result["checkpoints"][-1]
        r2 = np.asarray(measured["r2"])
        prefix = "PC" if settings.order_basis == "pca" else "X"  # X: eigenvector of the masked cross-covariance
        control = _control_columns(labels["method"], stats, len(measured["steps"]) - 1, settings)
        return [{**labels, "run": run.name, "step": step, "direction": f"{prefix}{pc + 1}", "r2": float(r2[t, j]),
                 "r2_gain": float(r2[t, j] - r2[0, j]), **{k: float(stats[k][j]) for k in STAT_KEYS},
                 "probe_gain": 100 * (last["probe"] - random["probe"]), **{k: v[j] for k, v in control.items()}}
                for t, step in enumerate(measured["steps"]) for j, pc in enumerate(measured["pca_index"])]

    def decide(self, rows: list[dict[str, Any]], settings: ExperimentSettings) -> dict[str, Any]:
        jepa, recon = settings.methods
        table = _tables(rows, settings)
        by_method = _predicted(table, settings)
        keep = _tested(by_method, settings)
        predicted = {o: by_method[m][keep] for m, o in zip(settings.methods, OBJECTIVES)}
        per = {m: [order_stats(table[m]["steps"][s], table[m]["r2"][s][:, keep], table[m]["lam"][keep],
                               table[m]["rho"][keep], predicted, o) for s in settings.seeds]
               for m, o in zip(settings.methods, OBJECTIVES)}
        collect = {m: {k: [r[k] for r in per[m]] for k in per[m][0]} for m in per}
        own_minus_other = {f"own_order_{m}": [a - b for a, b in zip(c["spearman_own"], c["spearman_other"])]
                           for m, c in collect.items()}
        effects = {"rho_driven": [b - a for a, b in zip(collect[jepa]["partial_rho"], collect[recon]["partial_rho"])],
                   **own_minus_other}
        checks = {k: passes(v, k)[1] for k, v in effects.items()}
        control = self.control(rows, settings)
        return {"measured": {"per_method": {m: {k: mean(v) for k, v in c.items()} for m, c in collect.items()},
                             "predicted_orders_spearman": rank_correlation(*predicted.values())
                             if keep.sum() >= 3 else float("nan"),
                             "control": {o: {k: c[k] for k in ("spearman_fine", "spearman_snapshots")}
                                         for o, c in control.items()},
                             "directions": [r["direction"] for r in _first_run_rows(rows, jepa)]},
                "effects": effects, "checks": checks, "held": all(passes(v, k)[0] for k, v in effects.items())}

    def control(self, rows: list[dict[str, Any]], settings: ExperimentSettings) -> dict[str, dict[str, Any]]:
        """The deep linear control of each objective on its method's (λ, ρ), at the runs' snapshot count: read from
        the rows' control columns where the measurement recorded them, else simulated."""
        table = _tables(rows, settings)
        if "control_fine" in rows[0]:
            return {o: _control_from_rows(_first_run_rows(rows, m), settings) for m, o in
                    zip(settings.methods, OBJECTIVES)}
        snapshots = len(table[settings.methods[0]]["steps"][settings.seeds[0]]) - 1
        return {o: _cached_control(o, json.dumps({k: table[m][k].tolist() for k in STAT_KEYS}), settings.depth,
                                   snapshots, _eps(settings)) for m, o in zip(settings.methods, OBJECTIVES)}

    def gate(self, rows: list[dict[str, Any]], settings: ExperimentSettings) -> tuple[dict[str, float], str]:
        gains = {m: min(float(r["probe_gain"]) for r in rows if r["method"] == m) for m in settings.methods}
        table, reasons = _tables(rows, settings), []
        if settings.statistics == "interval":
            for m, times in _predicted(table, settings).items():
                if np.isfinite(times).sum() < MIN_FINITE:
                    reasons.append(f"the theory predicts a finite learning time for {int(np.isfinite(times).sum())} "
                                   f"of {len(times)} directions under {m}'s masks (< {MIN_FINITE})")
        for m in settings.methods:
            for s in settings.seeds:
                steps = learning_steps(table[m]["steps"][s], table[m]["r2"][s], PROTOCOL["share"],
                                       PROTOCOL["min_r2_gain"])
                if np.isfinite(steps).sum() < PROTOCOL["min_learned"]:
                    reasons.append(f"{m} seed {s} learned {int(np.isfinite(steps).sum())} of {len(steps)} directions "
                                   f"(< {PROTOCOL['min_learned']})")
        for objective, c in self.control(rows, settings).items():
            if not c["spearman_fine"] >= PROTOCOL["control_min"]:
                reasons.append(f"the deep linear {objective} control does not recover the theory's order "
                               f"(Spearman {c['spearman_fine']:.2f} < {PROTOCOL['control_min']})")
        return gains, "; ".join(reasons)

    def plot(self, rows: list[dict[str, Any]], settings: ExperimentSettings, out: Path) -> None:
        from jepalab.vision.experiments.learning_order_figure import order_figure

        table = _tables(rows, settings)
        predicted = _predicted(table, settings)
        observed = {m: [learning_steps(table[m]["steps"][s], table[m]["r2"][s], PROTOCOL["share"],
                                       PROTOCOL["min_r2_gain"]) for s in settings.seeds] for m in settings.methods}
        order_figure(predicted, observed, table[settings.methods[0]]["names"], self.control(rows, settings),
                     out / "learning_order")


@functools.lru_cache(maxsize=8)
def _cached_control(objective: str, stats_json: str, depth: int, snapshots: int, eps: float,
                    decoupled: bool = False) -> dict[str, Any]:
    stats = {k: np.asarray(v) for k, v in json.loads(stats_json).items()}
    return linear_control(objective, stats, depth, eps, PROTOCOL["share"], snapshots, PROTOCOL["control_records"],
                          PROTOCOL["control_horizon"], decoupled=decoupled)


def _control_columns(method: str, stats: dict[str, np.ndarray], snapshots: int,
                     settings: ExperimentSettings) -> dict[str, list[float]]:
    """Interval statistics: the deep linear control's learning step of each direction (finely and at ``snapshots``
    records; NaN where λ ≤ 0), recorded in results.csv like any measurement (its simulation takes minutes at a small
    ε, so the verdict is recomputed from the rows without it); else {}."""
    if settings.statistics == "spread":
        return {}
    objective = OBJECTIVES[settings.methods.index(method)]
    control = _cached_control(objective, json.dumps({k: np.asarray(stats[k]).tolist() for k in STAT_KEYS}),
                              settings.depth, snapshots, _eps(settings), decoupled=True)
    columns = {key: [float("nan")] * len(stats["lam"]) for key in ("control_fine", "control_snapshots")}
    for position, index in enumerate(control["directions"]):
        for key, source in (("control_fine", "fine"), ("control_snapshots", "snapshots")):
            if control[source]:
                columns[key][index] = float(control[source][position])
    return columns


def _control_from_rows(first: list[dict[str, Any]], settings: ExperimentSettings) -> dict[str, Any]:
    """The control dict of :func:`~.order_theory.linear_control` rebuilt from one run's rows (one per direction)."""
    objective = OBJECTIVES[settings.methods.index(first[0]["method"])]
    lam, rho = np.array([float(r["lam"]) for r in first]), np.array([float(r["rho"]) for r in first])
    keep = np.flatnonzero(lam > 0)
    predicted = predicted_times(objective, lam[keep], rho[keep], settings.depth, _eps(settings), PROTOCOL["share"])
    fine, coarse = (np.array([float(first[i][key]) for i in keep]) for key in ("control_fine", "control_snapshots"))
    learnable = keep.size >= 3 and np.isfinite(predicted).sum() >= 2
    return {"directions": keep.tolist(), "predicted": predicted.tolist(), "fine": fine.tolist(),
            "snapshots": coarse.tolist(),
            "spearman_fine": rank_correlation(fine, predicted) if learnable else float("nan"),
            "spearman_snapshots": rank_correlation(coarse, predicted) if learnable else float("nan")}


def _first_run_rows(rows: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    first = next(r for r in rows if r["method"] == method)
    return [r for r in rows if r["run"] == first["run"] and r["step"] == first["step"]]


def _tables(rows: list[dict[str, Any]], settings: ExperimentSettings) -> dict[str, dict[str, Any]]:
    """Per method: the directions' names and λ, ρ, view variances (k,), and per seed the steps (T,) and R² (T, k)."""
    out: dict[str, dict[str, Any]] = {}
    for method in settings.methods:
        first = _first_run_rows(rows, method)
        names = [r["direction"] for r in first]
        entry: dict[str, Any] = {"names": names, **{k: np.array([float(r[k]) for r in first]) for k in STAT_KEYS},
                                 "steps": {}, "r2": {}}
        for seed in settings.seeds:
            mine = [r for r in rows if r["method"] == method and r["seed"] == seed]
            steps = sorted({r["step"] for r in mine})
            value = {(r["step"], r["direction"]): float(r["r2"]) for r in mine}
            entry["steps"][seed] = steps
            entry["r2"][seed] = np.array([[value[(t, n)] for n in names] for t in steps])
        out[method] = entry
    return out
