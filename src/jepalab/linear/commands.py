"""CLI of the linear layer: ``jepalab linear validate`` and ``jepalab linear experiment NAME``."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from jepalab.rundir import output_dir


def _validate(args: argparse.Namespace) -> int:
    from jepalab.config import from_dict
    from jepalab.linear.validate import ValidationParams, validate

    overrides = {f.name: getattr(args, f.name) for f in fields(ValidationParams) if getattr(args, f.name, None)
                 is not None}
    params = from_dict(ValidationParams, overrides)
    out = output_dir(args.out, "linear-validate")
    summary = validate(out, params)
    print(f"{'objective':<9} {'L':>2} {'method':<6} {'max rel err t*':>15} {'max |Δw̄|/w̄*':>14} "
          f"{'order sim':>9} {'theory':>7}  result")
    for c in summary["cases"]:
        print(f"{c['objective']:<9} {c['depth']:>2} {c['method']:<6} {c['max_rel_error']:>15.2e} "
              f"{c['max_trajectory_deviation']:>14.2e} {c['order_sim']:>9} {c['order_theory']:>7}  "
              f"{'ok' if c['passed'] else 'FAIL'}")
    verdict = "PASSED" if summary["passed"] else "FAILED"
    print(f"{verdict}: critical times within {params.tolerance:.0%} and identical orders "
          f"({'all' if summary['passed'] else 'not all'} cases)")
    print(f"wrote {out}/validation.csv (+ validation_cases.csv, validation.json, validation.png/.svg)")
    return 0 if summary["passed"] else 1


def _experiment(args: argparse.Namespace) -> int:
    from jepalab.linear.experiments import run_experiment

    out = output_dir(args.out, f"linear-{args.name}")
    summary = run_experiment(args.name, out, seed=args.seed)
    print(summary["statement"])
    print(f"wrote {out}/{args.name}.png (+ .svg, {args.name}.csv, {args.name}.json)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``linear`` command group (``validate``, ``experiment NAME``) to the root parser."""
    from jepalab.linear.experiments import EXPERIMENTS

    linear = subparsers.add_parser("linear", help="deep linear JEPA/MAE simulator: validation and experiments")
    sub = linear.add_subparsers(dest="linear_command", metavar="COMMAND", required=True)

    val = sub.add_parser("validate", help="full-matrix GD and flow vs the exact theory (exit 1 if out of tolerance)")
    val.add_argument("--out", type=Path, default=None, help="output folder (default: a new runs/linear-validate-*)")
    val.add_argument("--lam", nargs="+", type=float, default=None, help="λ per feature (the order-flip preset)")
    val.add_argument("--rho", nargs="+", type=float, default=None, help="ρ per feature")
    val.add_argument("--depths", nargs="+", type=int, default=None, help="encoder depths (1 2 3 5)")
    val.add_argument("--objectives", nargs="+", choices=("jepa", "mae"), default=None, help="objectives (both)")
    val.add_argument("--methods", nargs="+", choices=("gd", "flow"), default=None, help="integrators (both)")
    val.add_argument("--eps", type=float, default=None, help="initialisation scale ε (1e-3)")
    val.add_argument("--frac", type=float, default=None, help="critical-time threshold as a fraction of w̄* (0.5)")
    val.add_argument("--jepa-step", dest="jepa_step", type=float, default=None,
                     help="JEPA GD step as a fraction of 1/(fastest rate) (0.2)")
    val.add_argument("--mae-step", dest="mae_step", type=float, default=None,
                     help="MAE GD step as a fraction of 1/(fastest rate) (0.01)")
    val.add_argument("--tolerance", type=float, default=None, help="allowed relative critical-time error (0.01)")
    val.set_defaults(handler=_validate)

    exp = sub.add_parser("experiment", help="beyond the paper: where the theory holds and where it breaks",
                         description="Experiments: " + "; ".join(
                             f"{name}: {fn.__doc__.split(chr(10))[0].rstrip('.')}" for name, fn in EXPERIMENTS.items()))
    exp.add_argument("name", choices=tuple(EXPERIMENTS), help="which experiment")
    exp.add_argument("--out", type=Path, default=None, help="output folder (default: a new runs/linear-NAME-*)")
    exp.add_argument("--seed", type=int, default=0, help="seed of every random choice (0)")
    exp.set_defaults(handler=_experiment)
