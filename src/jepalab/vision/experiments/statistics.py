"""Interval statistics of a claim's per-seed effects, and the three-way verdict they give.

Every test of a claim is a list of per-seed effects oriented so that > 0 supports the claim. Per test
(:func:`interval_test`): the mean, the 95 % Student-t interval over seeds (ddof 1) and the one-sided one-sample
t-test p-value (``scipy.stats.ttest_1samp(..., alternative="greater")``); across the claim's tests, Holm's
step-down adjustment (Holm 1979, :func:`holm`; scipy has none). The verdict (:func:`interval_verdict`):

* **holds**: every Holm-adjusted p < α (0.05);
* **does not hold**: some test's interval lies wholly below that test's smallest effect of interest (a value
  registered in the plan with its reason; Lakens 2017: absence of evidence is not evidence of absence);
* **inconclusive**: anything else.

:func:`power` and :func:`seeds_for_power` size a plan: the power of the one-sided t-test at standardised effect
d = mean / sd over seeds with n seeds, 1 − F_nct(t_(1−α, n−1); n − 1, d√n).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["ALPHA", "INTERVAL_RULE", "holm", "interval_test", "interval_tests", "interval_verdict", "power",
           "seeds_for_power"]

ALPHA = 0.05
"""Family-wise error rate of a claim's tests."""
INTERVAL_RULE = ("Each test: the mean over seeds, its 95 % Student-t interval (ddof 1) and the one-sided one-sample "
                 "t-test p (H1: mean > 0), Holm-adjusted across the claim's tests. Holds: every adjusted p < 0.05; "
                 "does not hold: some test's interval lies wholly below its smallest effect of interest; "
                 "inconclusive otherwise.")
"""The decision every plan under interval statistics states."""


def interval_test(effects: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """{effects, n, mean, sd, ci95: [lo, hi], p_one_sided} of per-seed ``effects`` (H1: mean > 0); NaN where
    fewer than two seeds or any effect is undefined (NaN)."""
    values = np.asarray(effects, dtype=float)
    out: dict[str, Any] = {"effects": values.tolist(), "n": int(values.size), "mean": float("nan"),
                           "sd": float("nan"), "ci95": [float("nan"), float("nan")], "p_one_sided": float("nan")}
    if values.size == 0 or not np.all(np.isfinite(values)):
        return out
    out["mean"] = float(values.mean())
    if values.size < 2:
        return out
    out["sd"] = float(values.std(ddof=1))
    if out["sd"] == 0:  # scipy's t is undefined; an exact, constant effect
        out["ci95"] = [out["mean"], out["mean"]]
        out["p_one_sided"] = 0.0 if out["mean"] > 0 else 1.0
        return out
    two_sided = stats.ttest_1samp(values, 0.0)
    out["ci95"] = [float(v) for v in two_sided.confidence_interval(confidence)]
    out["p_one_sided"] = float(stats.ttest_1samp(values, 0.0, alternative="greater").pvalue)
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's adjusted p-values, in the input order: sorted ascending, the i-th (1-based) of k is
    max over j ≤ i of (k − j + 1)·p_(j), capped at 1; NaN stays NaN (ranked last, still counted in k)."""
    p = np.asarray(p_values, dtype=float)
    k = p.size
    order = np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")
    adjusted = np.empty(k)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, (k - rank) * p[index])
        adjusted[index] = min(1.0, running)
    adjusted[np.isnan(p)] = np.nan
    return adjusted.tolist()


def interval_tests(effects: Mapping[str, Sequence[float]]) -> dict[str, dict[str, Any]]:
    """:func:`interval_test` of every named test, with ``p_holm`` (Holm across these tests) added to each."""
    tests = {name: interval_test(values) for name, values in effects.items()}
    for name, adjusted in zip(tests, holm([t["p_one_sided"] for t in tests.values()])):
        tests[name]["p_holm"] = adjusted
    return tests


def interval_verdict(tests: Mapping[str, Mapping[str, Any]], smallest: Mapping[str, float],
                     alpha: float = ALPHA) -> tuple[str, dict[str, str]]:
    """(holds | does not hold | inconclusive, test → one line with its interval) from :func:`interval_tests` and each
    test's smallest effect of interest ``smallest[name]``."""
    missing = sorted(set(tests) - set(smallest))
    if missing:
        raise ValueError(f"no smallest effect of interest registered for {missing}")
    lines = {}
    for name, t in tests.items():
        lo, hi = t["ci95"]
        lines[name] = (f"{name}: mean {t['mean']:+.4g}, 95 % CI [{lo:+.4g}, {hi:+.4g}] over {t['n']} seeds, "
                       f"one-sided p {t['p_one_sided']:.3g} (Holm {t['p_holm']:.3g}); smallest effect of interest "
                       f"{smallest[name]:+.4g}")
    if all(t["p_holm"] < alpha for t in tests.values()):
        return "holds", lines
    if any(t["ci95"][1] < smallest[name] for name, t in tests.items()):
        return "does not hold", lines
    return "inconclusive", lines


def power(d: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the one-sided one-sample t-test at level ``alpha`` with ``n`` seeds and standardised effect ``d``."""
    if n < 2:
        raise ValueError(f"the t-test needs at least 2 seeds; got {n}")
    df = n - 1
    return float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, d * math.sqrt(n)))


def seeds_for_power(d: float, target: float = 0.8, alpha: float = ALPHA, low: int = 5,
                    high: int = 8) -> tuple[int, float]:
    """(the fewest seeds in [``low``, ``high``] whose :func:`power` at ``d`` reaches ``target``, or ``high`` when
    none does; the power there)."""
    for n in range(low, high + 1):
        if power(d, n, alpha) >= target:
            return n, power(d, n, alpha)
    return high, power(d, high, alpha)
