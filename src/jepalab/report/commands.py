"""CLI commands of the report layer: ``jepalab theory ...``, ``jepalab reproduce`` and ``jepalab demo``."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from jepalab.rundir import new_run_dir, output_dir
from jepalab.theory import TIME_UNITS, critical_time, format_order, learning_order


def _overrides(args: argparse.Namespace, params_type: type) -> dict[str, Any]:
    """Collect the CLI values that were given for fields of ``params_type``."""
    out = {}
    for field in fields(params_type):
        value = getattr(args, field.name, None)
        if value is not None:
            out[field.name] = tuple(value) if isinstance(value, list) else value
    return out


def _figure2(args: argparse.Namespace) -> int:
    from jepalab.report.theory_figures import Figure2Params, figure2

    out = output_dir(args.out, "theory-figure2")
    summary = figure2(out, Figure2Params(**_overrides(args, Figure2Params)))
    for panel in summary["panels"]:
        print(f"{panel['objective']:>4} {panel['panel']:>8}: learned first -> last {panel['order']}")
    print(f"wrote {out}/figure2.png (+ .svg, figure2_curves.csv, figure2.json)")
    return 0


def _depth_sweep(args: argparse.Namespace) -> int:
    from jepalab.report.theory_figures import DepthSweepParams, depth_sweep

    out = output_dir(args.out, "theory-depth-sweep")
    params = DepthSweepParams(**_overrides(args, DepthSweepParams))
    summary = depth_sweep(out, params)
    print(_order_table(summary["orders"], params.depths, params.eps_grid))
    print(f"wrote {out}/depth_sweep.png (+ .svg, depth_sweep_ratio.csv, depth_sweep_orders.csv, depth_sweep.json)")
    return 0


def _order_table(cells: list[dict[str, Any]], depths: tuple[int, ...], eps_grid: tuple[float, ...]) -> str:
    """Text table of learning orders: one row per (objective, ε), one column per depth."""
    lookup = {(c["objective"], c["depth"], c["eps"]): c["order"] or "-" for c in cells}
    lines = ["objective  eps      " + "".join(f"L={d:<6}" for d in depths)]
    for objective in ("jepa", "mae"):
        for eps in eps_grid:
            lines.append(f"{objective:<10} {eps:<8.0e} " + "".join(f"{lookup[(objective, d, eps)]:<8}" for d in depths))
    return "\n".join(lines)


def _order(args: argparse.Namespace) -> int:
    lam, rho = np.asarray(args.lam, dtype=float), np.asarray(args.rho, dtype=float)
    if lam.shape != rho.shape:
        raise ValueError(f"--lam has {lam.size} values and --rho has {rho.size}; give one of each per feature")
    header = f"{'feature':>7} {'lambda':>10} {'rho':>10}"
    times, orders = {}, {}
    for objective in ("jepa", "mae"):
        times[objective] = critical_time(objective, lam, rho, args.depth, args.eps, args.frac, args.time)
        try:
            orders[objective] = format_order(learning_order(objective, lam, rho, args.depth, args.eps, args.frac),
                                             sep=" ")
        except ValueError as error:
            orders[objective] = f"undefined ({error})"
        header += f" {objective.upper() + ' t*':>16}"
    print(f"critical times ({args.time} time units) to w̄ = {args.frac:g}·w̄*, "
          f"depth L = {args.depth}, eps = {args.eps:g}")
    print(header)
    for i in range(lam.size):
        print(f"{i + 1:>7} {lam[i]:>10.4g} {rho[i]:>10.4g}" + "".join(f" {times[o][i]:>16.6g}" for o in times))
    for objective, order in orders.items():
        print(f"{objective.upper()} order (first learned first): {order}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from jepalab.report.reproduce import reproduce

    out = output_dir(args.out, "reproduce")
    report = reproduce(out, mode=args.mode, reuse=args.reuse, resume=args.resume, seed=args.seed, only=args.parts,
                       results=args.results)
    width = max(len(c["key"]) for c in report["claims"])
    for claim in report["claims"]:
        print(f"{claim['key']:<{width}}  {claim['verdict']:<15}  {claim['statement']}")
    failed = [p["name"] for p in report["parts"] if p["status"] == "failed"]
    for name in failed:
        print(f"part {name} FAILED: see {out}/parts/{name}/traceback.txt")
    print(f"\nwrote {out}/report.html (+ report.md, claims.json, environment.json)")
    return 1 if (args.strict and failed) else 0


def _demo(args: argparse.Namespace) -> int:
    args.mode, args.reuse, args.resume, args.seed, args.parts, args.strict = "quick", [], False, 0, None, False
    args.results = "results"
    if args.out is None:
        args.out = new_run_dir("runs", "demo")
    return _reproduce(args)


def _floats(parser: argparse.ArgumentParser, flag: str, help: str) -> None:
    parser.add_argument(flag, nargs="+", type=float, default=None, help=help)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``theory`` and ``demo`` to the root parser."""
    theory = subparsers.add_parser("theory", help="exact per-feature JEPA/MAE dynamics: figures and tables")
    theory_sub = theory.add_subparsers(dest="theory_command", metavar="FIGURE", required=True)

    fig2 = theory_sub.add_parser("figure2", help="the paper's Figure 2 (JEPA and MAE rows, λ / ρ / opposite columns)")
    fig2.add_argument("--out", type=Path, default=None, help="output folder (default: a new runs/theory-figure2-*)")
    fig2.add_argument("--depth", type=int, default=None, help="encoder depth L (default 3)")
    fig2.add_argument("--eps", type=float, default=None, help="initialisation scale ε, w̄(0) = ε (default 1e-3)")
    fig2.add_argument("--frac", type=float, default=None, help="critical-time threshold as a fraction of w̄* (0.5)")
    fig2.add_argument("--time", choices=TIME_UNITS, default=None, help="time units: gf (t) or paper (τ = L·t)")
    fig2.add_argument("--n-times", dest="n_times", type=int, default=None, help="points per curve (400)")
    _floats(fig2, "--lam-grid", "λ values of column (a)/(d), ρ = 1")
    _floats(fig2, "--rho-grid", "ρ values of column (b)/(e), λ = 1")
    _floats(fig2, "--opposite-lam", "λ values of column (c)/(f)")
    _floats(fig2, "--opposite-rho", "ρ values of column (c)/(f)")
    fig2.set_defaults(handler=_figure2)

    sweep = theory_sub.add_parser("depth-sweep", help="JEPA ρ-bias over depth and ε; order maps for both objectives")
    sweep.add_argument("--out", type=Path, default=None, help="output folder (default: new runs/theory-depth-sweep-*)")
    sweep.add_argument("--depths", nargs="+", type=int, default=None, help="depths of the map (1..8)")
    _floats(sweep, "--eps-grid", "ε values of the order map (1e-1 … 1e-8)")
    _floats(sweep, "--ratio-eps", "ε values of the ratio plot")
    sweep.add_argument("--rho-low", dest="rho_low", type=float, default=None, help="low ρ of the ratio (0.4)")
    sweep.add_argument("--rho-high", dest="rho_high", type=float, default=None, help="high ρ of the ratio (0.85)")
    _floats(sweep, "--opposite-lam", "λ values of the order map")
    _floats(sweep, "--opposite-rho", "ρ values of the order map")
    sweep.add_argument("--frac", type=float, default=None, help="critical-time threshold as a fraction of w̄* (0.5)")
    sweep.set_defaults(handler=_depth_sweep)

    order = theory_sub.add_parser("order", help="critical times and learning order for both objectives")
    order.add_argument("--lam", nargs="+", type=float, required=True, help="λ per feature")
    order.add_argument("--rho", nargs="+", type=float, required=True, help="ρ per feature")
    order.add_argument("--depth", type=int, required=True, help="encoder depth L")
    order.add_argument("--eps", type=float, required=True, help="initialisation scale ε")
    order.add_argument("--frac", type=float, default=0.5, help="threshold as a fraction of w̄* (0.5)")
    order.add_argument("--time", choices=TIME_UNITS, default="gf", help="time units: gf (t) or paper (τ = L·t)")
    order.set_defaults(handler=_order)

    reproduce = subparsers.add_parser("reproduce", help="check every claim of the paper and write a report")
    reproduce.add_argument("--out", type=Path, default=None, help="output folder (default: a new runs/reproduce-*)")
    speed = reproduce.add_mutually_exclusive_group()
    speed.add_argument("--quick", dest="mode", action="store_const", const="quick", help="≤ 10 min on 2 CPU cores")
    speed.add_argument("--full", dest="mode", action="store_const", const="full", help="everything (for a GPU)")
    reproduce.set_defaults(mode="quick")
    reproduce.add_argument("--reuse", nargs="+", default=[], metavar="RUN",
                           help="pretraining run folders to evaluate instead of training new ones")
    reproduce.add_argument("--results", default="results", metavar="DIR",
                           help="committed experiment results (results/<experiment>/, verified against their "
                                "results.csv) shown as R1–R3 and E1 (default: results)")
    reproduce.add_argument("--resume", action="store_true", help="skip the parts that already finished in --out")
    reproduce.add_argument("--strict", action="store_true", help="exit non-zero if any part failed")
    reproduce.add_argument("--seed", type=int, default=0, help="seed of every random choice (0)")
    reproduce.add_argument("--parts", nargs="+", default=None, metavar="PART", help="run only these parts")
    reproduce.set_defaults(handler=_reproduce)

    demo = subparsers.add_parser("demo", help="the main job: `reproduce --quick` into a new runs/demo-* folder")
    demo.add_argument("--out", type=Path, default=None, help="output folder (default: a new runs/demo-*)")
    demo.set_defaults(handler=_demo)
