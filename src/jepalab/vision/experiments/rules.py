"""What every experiment's rule shares: the seed-spread test, the learning gate and the control for learning.

* **Shared test** (:func:`passes`): an effect holds when it is positive and, with ≥ 3 seeds, larger than the standard
  deviation over seeds of its per-seed values. Fewer seeds: "indicative only".
* **Learning gate** (:func:`gate`): a claim is decided only when every encoder it compares gained at least
  :data:`MIN_GAIN_POINTS` points over the random-init encoder of the same architecture (the smallest gain over seeds
  and runs) on the plan's read-out (label probe by default, or centred kNN-20); otherwise it is "not tested here"
  with that reason. The ``noise`` gate asks instead that every final label-probe gain be at least
  :data:`NOISE_MULTIPLE` × its own sampling noise (:func:`gain_noise`): where a gain is within a few noise widths of
  zero, reading the control at it compares encoders at "nothing measurably learned".
* **Control for learning** (:func:`at_gain`): an encoder that learns nothing takes up no distractor and moves no
  subspace read-out, so raw numbers favour whichever method learned less. Each rule therefore compares the methods
  at **matched clean-probe gain**: along each run's evaluated checkpoints (the random-init encoder as the origin,
  gain 0 and effect 0), the read-out is interpolated at the gain both methods reached, g* = the smaller final gain.
  A read between the random init and the first checkpoint (:func:`first_segment`) reads the curve where it was never
  measured; it is counted and reported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["LEARNING_GATES", "MIN_GAIN_POINTS", "NOISE_MULTIPLE", "at_gain", "curve", "first_segment", "gain_noise",
           "gate", "gate_rule", "last_rows", "matched", "mean", "min_gains", "noise_ratios", "passes", "segment_reads",
           "spread"]

MIN_GAIN_POINTS = 5.0
"""Points over the random-init encoder every compared encoder must gain, on the gate's read-out, before a claim is
decided."""
LEARNING_GATES = {"probe": "probe", "knn20": "centred kNN-20", "noise": "label-probe noise"}
"""Read-outs the learning gate may be registered on (results.csv columns, with ``random_<column>`` beside them, or
``noise``: the label probe's gain in units of its sampling noise) → how a sentence names them. The label probe is the
default; kNN-20 has headroom where a linear probe of a random encoder already reads close to raw pixels."""
NOISE_MULTIPLE = 4.0
"""The ``noise`` gate: every final probe gain ≥ this × its sampling noise. At 4 the gain, and so the matched gain g*
the control reads at, is known to ±25 % (one sd): the control compares encoders at a measured amount of learning,
not at noise."""


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (NaN when any value is NaN)."""
    return math.fsum(values) / len(values)


def spread(values: Sequence[float]) -> float:
    """Sample standard deviation (NaN for fewer than two values or when any value is NaN)."""
    if len(values) < 2:
        return float("nan")
    centre = mean(values)
    return math.sqrt(math.fsum((v - centre) ** 2 for v in values) / (len(values) - 1))


def passes(values: Sequence[float], name: str) -> tuple[bool, str]:
    """The shared test on per-seed effects: mean > 0, and with ≥ 3 seeds mean > their standard deviation."""
    effect, sd, n = mean(values), spread(values), len(values)
    if math.isnan(effect):
        return False, f"{name}: undefined (a method gained no probe accuracy to match at)"
    if n >= 3:
        held = effect > sd
        return held, f"{name}: effect {effect:+.4f} {'>' if held else '<='} its spread over {n} seeds ({sd:.4f})"
    held = effect > 0
    return held, f"{name}: effect {effect:+.4f} {'>' if held else '<='} 0 ({n} seed(s): no spread, indicative only)"


def last_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last evaluated checkpoint of every run (rows of results.csv, one per run and checkpoint)."""
    last: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["run"] not in last or row["step"] > last[row["run"]]["step"]:
            last[row["run"]] = row
    return list(last.values())


def curve(rows: Iterable[dict[str, Any]], **labels: Any) -> list[dict[str, Any]]:
    """The checkpoints (by step) of the one run whose labels match; ``ValueError`` when none or several do."""
    picked = [r for r in rows if all(r[k] == v for k, v in labels.items())]
    runs = {r["run"] for r in picked}
    if len(runs) != 1:
        raise ValueError(f"expected one run labelled {labels}; found {len(runs)}")
    return sorted(picked, key=lambda r: r["step"])


def at_gain(points: Sequence[dict[str, Any]], key: str, gain: float) -> float:
    """``key`` interpolated linearly in probe gain at ``gain`` points along a run's checkpoints, from the origin
    (gain 0, value 0: the random-init encoder) to the first checkpoint whose gain reaches it; NaN when ``gain`` ≤ 0 or
    the run never reaches it."""
    if not gain > 0:
        return float("nan")
    previous_gain, previous_value = 0.0, 0.0
    for point in points:
        g, v = float(point["probe_gain"]), float(point[key])
        if g >= gain:
            share = (gain - previous_gain) / (g - previous_gain) if g > previous_gain else 1.0
            return previous_value + share * (v - previous_value)
        previous_gain, previous_value = max(previous_gain, g), v
    return float("nan")


def first_segment(points: Sequence[dict[str, Any]], gain: float) -> bool:
    """Whether :func:`at_gain` reads ``gain`` between the random init and the run's first checkpoint (never
    measured there: a straight line is assumed)."""
    return bool(gain > 0) and gain <= float(points[0]["probe_gain"])


def segment_reads(settings: Any, reads: Sequence[bool]) -> dict[str, Any]:
    """``{"first_segment_reads": [...]}``: per matched read (seed) whether either curve was read inside its first
    segment, for plans decided by interval statistics (older plans' summaries stay as they were); else {}."""
    return {"first_segment_reads": list(reads)} if settings.statistics == "interval" else {}


def matched(first: Sequence[dict[str, Any]], second: Sequence[dict[str, Any]], key: str) -> tuple[float, float, float]:
    """(g*, ``key`` of ``first`` at g*, of ``second`` at g*), g* = the smaller of the two runs' final gains."""
    target = min(float(first[-1]["probe_gain"]), float(second[-1]["probe_gain"]))
    return target, at_gain(first, key, target), at_gain(second, key, target)


def gate_rule(read_out: str = "probe") -> str:
    """The sentence every rule ends with: the learning gate on ``read_out`` (a key of :data:`LEARNING_GATES`)."""
    if read_out == "noise":
        return (f"Decided only when every encoder's final label-probe gain over its random init is ≥ "
                f"{NOISE_MULTIPLE:g} × its sampling noise σ = 100·√(p(1 − p)/n + p₀(1 − p₀)/n) points (p, p₀: the "
                "trained and random-init accuracies, n test images).")
    return (f"Decided only when every encoder gained ≥ {MIN_GAIN_POINTS:g} {LEARNING_GATES[read_out]} points over its "
            "random init.")


def gain_noise(row: dict[str, Any], test_images: int) -> float:
    """Sampling sd of a row's probe gain in points, 100·√(p(1−p)/n + p₀(1−p₀)/n): the spread of each accuracy over
    test-set bootstrap resamples (its expectation), the two errors taken as independent (an upper bound: they are
    positively correlated on one test set)."""
    p, p0 = float(row["probe"]), float(row["random_probe"])
    return 100 * math.sqrt((p * (1 - p) + p0 * (1 - p0)) / test_images)


def noise_ratios(rows: Iterable[dict[str, Any]], methods: Sequence[str], test_images: int) -> dict[str, float]:
    """method → the smallest final probe gain over its runs in units of that gain's :func:`gain_noise`."""
    last = last_rows(rows)
    return {m: min(float(r["probe_gain"]) / gain_noise(r, test_images) for r in last if r["method"] == m)
            for m in methods}


def _gain(row: dict[str, Any], read_out: str) -> float:
    """What training added to ``read_out`` at this checkpoint, in points over the random-init encoder."""
    if read_out in ("probe", "noise"):
        return float(row["probe_gain"])
    return 100 * (float(row[read_out]) - float(row[f"random_{read_out}"]))


def min_gains(rows: Iterable[dict[str, Any]], methods: Sequence[str], read_out: str = "probe") -> dict[str, float]:
    """method → the smallest final gain on ``read_out`` over its runs, in points over the random-init encoder."""
    last = last_rows(rows)
    return {m: min(_gain(r, read_out) for r in last if r["method"] == m) for m in methods}


def gate(rows: Iterable[dict[str, Any]], methods: Sequence[str], read_out: str = "probe",
         test_images: int | None = None) -> tuple[dict[str, float], str]:
    """(:func:`min_gains` on ``read_out``; "" when every one reaches :data:`MIN_GAIN_POINTS`, else the reason the
    claim is not tested); ``noise``: (:func:`noise_ratios` over ``test_images``, "" when every one reaches
    :data:`NOISE_MULTIPLE`, else the reason)."""
    if read_out not in LEARNING_GATES:
        raise ValueError(f"the learning gate's read-out must be one of {list(LEARNING_GATES)}; got {read_out!r}")
    if read_out == "noise":
        if not test_images:
            raise ValueError("the noise gate needs the number of test images the probe was measured on")
        ratios = noise_ratios(rows, methods, test_images)
        short = {m: r for m, r in ratios.items() if not r >= NOISE_MULTIPLE}
        return ratios, "" if not short else ("learning gate not met: " + ", ".join(
            f"{m}'s smallest probe gain is {r:.1f} × its sampling noise" for m, r in short.items())
            + f" (< {NOISE_MULTIPLE:g} needed)")
    gains = min_gains(rows, methods, read_out)
    short = {m: g for m, g in gains.items() if not g >= MIN_GAIN_POINTS}
    reason = "" if not short else ("learning gate not met: " + ", ".join(
        f"{m} gained {g:+.1f} {LEARNING_GATES[read_out]} points over its random init" for m, g in short.items())
        + f" (< {MIN_GAIN_POINTS:g} needed)")
    return gains, reason
