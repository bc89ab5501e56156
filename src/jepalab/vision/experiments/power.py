"""How many seeds a confirmatory plan needs: the power of each test, planned on a conservative effect from an earlier
(exploratory) measurement of the same claim.

The planning effect of a test is Hedges' small-sample correction of its exploratory standardised effect,
g = J·d, d = mean / sd over seeds, J = 1 − 3 / (4(n − 1) − 1) (Hedges 1981): with 3 seeds J = 0.57, which also
discounts an estimate picked for having held. The plan takes the fewest seeds in [5, 8] that give the claim's weakest
test ≥ 80 % power (:func:`~.statistics.seeds_for_power`), else 8, and writes the power it then has. For a test whose
exploratory effect is ≤ 0 there is nothing to power; the plan writes instead the chance that its interval would lie
wholly below the smallest effect of interest were the true effect 0 (:func:`power_below`), i.e. of a "does not hold".
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scipy import stats

from jepalab.vision.experiments.statistics import ALPHA, interval_test, power, seeds_for_power

__all__ = ["POWER_TARGET", "hedges_g", "plan_power", "power_below"]

POWER_TARGET = 0.8
SEED_RANGE = (5, 8)


def hedges_g(mean: float, sd: float, n: int) -> float:
    """Hedges' bias-corrected standardised effect J·mean/sd, J = 1 − 3/(4(n − 1) − 1)."""
    return (1 - 3 / (4 * (n - 1) - 1)) * mean / sd


def power_below(smallest: float, sd: float, n: int, confidence: float = 0.95) -> float:
    """P(the two-sided ``confidence`` t-interval of n seeds lies wholly below ``smallest``) when the true effect is
    0 and the sd over seeds ``sd``: P(T < −t_c) with T non-central t, df n − 1, non-centrality −(smallest/sd)√n."""
    df = n - 1
    critical = stats.t.ppf(0.5 + confidence / 2, df)
    return float(stats.nct.cdf(-critical, df, -smallest / sd * math.sqrt(n)))


def _exploratory(name: str, folders: Sequence[str]) -> tuple[str, dict[str, list[float]]] | None:
    """(folder, its per-seed effects) of the first of ``folders`` holding ``<folder>/<name>/summary.json``."""
    for folder in folders:
        path = Path(folder) / name / "summary.json"
        if path.is_file():
            return str(path.parent), json.loads(path.read_text())["effects"]
    return None


def plan_power(name: str, smallest: Mapping[str, float], folders: Sequence[str]) -> dict[str, Any]:
    """The power section of experiment ``name``'s plan: per test its exploratory effect, planning effect, the seeds
    it asks for and the power with the seeds chosen; ``seeds`` the number the plan needs."""
    found = _exploratory(name, folders)
    if found is None:
        return {"exploratory": None, "seeds": SEED_RANGE[1],
                "note": f"no exploratory measurement of this design in {list(folders)}: the most seeds allowed"}
    folder, effects = found
    tests: dict[str, dict[str, Any]] = {}
    for test, values in effects.items():
        t = interval_test(values)
        entry = {"exploratory_mean": t["mean"], "exploratory_sd": t["sd"], "exploratory_seeds": t["n"]}
        if t["n"] >= 3 and t["sd"] > 0 and t["mean"] > 0:
            entry["planning_effect"] = hedges_g(t["mean"], t["sd"], t["n"])
            entry["seeds_for_power"] = seeds_for_power(entry["planning_effect"], POWER_TARGET, ALPHA, *SEED_RANGE)[0]
        tests[test] = entry
    powered = [e["planning_effect"] for e in tests.values() if "planning_effect" in e]
    seeds = seeds_for_power(min(powered), POWER_TARGET, ALPHA, *SEED_RANGE)[0] if powered else SEED_RANGE[1]
    for test, entry in tests.items():
        if "planning_effect" in entry:
            entry["power"] = power(entry["planning_effect"], seeds, ALPHA)
        elif entry["exploratory_sd"] > 0 and test in smallest:
            entry["power_of_does_not_hold_if_zero"] = power_below(smallest[test], entry["exploratory_sd"], seeds)
    return {"exploratory": folder, "target": POWER_TARGET, "alpha": ALPHA, "seed_range": list(SEED_RANGE),
            "seeds": seeds, "tests": tests}
