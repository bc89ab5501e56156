"""Speed and accuracy of jepalab.theory against a per-feature scipy.integrate.solve_ivp loop (one core).

Goals (issue 3): critical times of 10^6 features ≤ 1 s; trajectories of 10^4 features at 1,000 times ≤ 1 s;
≥ 1,000× faster than solve_ivp per feature at equal or better accuracy (reference: mpmath quadrature, 40 digits).

    python benchmarks/theory.py [--depths 1 3 5 8] [--subsample 12] [--smoke]

``--smoke``: tiny sizes (10^4 critical times, 10^3 trajectories x 100 times, L = 1 and 3, 3 features compared),
a crash test that finishes in seconds; its timings say nothing about the goals.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import time

import mpmath as mp
import numpy as np
from scipy.integrate import solve_ivp

from jepalab.theory import critical_time, trajectory

EPS, FRAC = 1e-3, 0.5


def _rhs(objective: str, lam: float, rho: float, depth: int):
    if objective == "jepa":
        return lambda u: lam * u ** (2 * depth) * (1 - u / rho)
    return lambda u: lam * u**depth * (1 - u ** (depth + 1) / rho)


def _v_threshold(objective: str, rho: float, depth: int) -> float:
    v_star = rho if objective == "jepa" else rho ** (1 / (depth + 1))
    return FRAC ** (1 / depth) * v_star


def _reference_time(objective: str, lam: float, rho: float, depth: int, v_end: float) -> float:
    with mp.workdps(40):
        f = _rhs(objective, mp.mpf(lam), mp.mpf(rho), depth)
        v0 = mp.mpf(EPS) ** (mp.mpf(1) / depth)
        return float(mp.quad(lambda s: mp.e**s / f(mp.e**s), [mp.log(v0), mp.log(mp.mpf(v_end))]))


def _solve_ivp_critical_time(objective: str, lam: float, rho: float, depth: int, t_max: float) -> float:
    """First time v reaches its threshold, integrating to ``t_max``; 0 if it starts there, nan if never reached."""
    f = _rhs(objective, lam, rho, depth)
    v_p = _v_threshold(objective, rho, depth)
    v0 = EPS ** (1 / depth)
    if v0 >= v_p:
        return 0.0

    def crossed(_t: float, v: np.ndarray) -> float:
        return v[0] - v_p

    crossed.terminal = True
    sol = solve_ivp(lambda _t, v: f(v), (0.0, t_max), [v0], method="LSODA", rtol=1e-10, atol=1e-14 * v0,
                    events=crossed)
    return float(sol.t_events[0][0]) if sol.t_events[0].size else float("nan")


def _timed(fn, *args, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", nargs="+", type=int, default=[1, 3, 5, 8])
    parser.add_argument("--subsample", type=int, default=12, help="features in the solve_ivp and mpmath comparison")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a crash test in seconds, not a benchmark")
    args = parser.parse_args()
    n, m, n_times = (10**4, 10**3, 100) if args.smoke else (10**6, 10**4, 1000)
    if args.smoke:
        args.depths, args.subsample = [1, 3], 3
    rng = np.random.default_rng(0)
    print(f"jepalab.theory benchmark (eps = {EPS:g}, frac = {FRAC}, one thread; time = best of 3)")
    header = (f"{'task':<34} {'obj':<4} {'L':>2} {'ours s':>8} {'goal':>6} {'ivp s/feat':>10} {'speedup':>9} "
              f"{'ours err':>9} {'ivp err':>9}")
    print(header)
    print("-" * len(header))
    for objective in ("jepa", "mae"):
        for depth in args.depths:
            lam, rho = 10 ** rng.uniform(-1, 1, n), 10 ** rng.uniform(-0.5, 0.5, n)
            t_ct, times = _timed(critical_time, objective, lam, rho, depth, EPS, FRAC)

            # features that start below their threshold (the others have critical time 0: nothing to integrate)
            sub = rng.choice(np.flatnonzero(times > 0), args.subsample, replace=False)
            reference = np.array([_reference_time(objective, lam[i], rho[i], depth,
                                                  _v_threshold(objective, rho[i], depth)) for i in sub])
            start = time.perf_counter()
            ivp = np.array([_solve_ivp_critical_time(objective, lam[i], rho[i], depth, 10 * reference[k])
                            for k, i in enumerate(sub)])
            ivp_per_feature = (time.perf_counter() - start) / len(sub)
            ours_err = np.max(np.abs(times[sub] - reference) / reference)
            ivp_err = np.max(np.abs(ivp - reference) / reference)
            speedup = ivp_per_feature / (t_ct / n)
            print(f"{f'critical_time, {n:.0e} features':<34} {objective:<4} {depth:>2} {t_ct:>8.3f} {'1':>6} "
                  f"{ivp_per_feature:>10.2e} {speedup:>9.2e} {ours_err:>9.1e} {ivp_err:>9.1e}")

            lam_t, rho_t = lam[:m], rho[:m]
            positive = times[:m][times[:m] > 0]
            t_grid = np.geomspace(np.min(positive) / 10, np.max(times[:m]) * 3, n_times)
            trajectory(objective, lam_t[:2], rho_t[:2], depth, EPS, t_grid[:2])  # build the inverse table once
            t_tr, _ = _timed(trajectory, objective, lam_t, rho_t, depth, EPS, t_grid, repeat=2)

            # Accuracy on the subsample at well-conditioned points: w̄ at reference times of known v.
            errors_ours, errors_ivp, start = [], [], time.perf_counter()
            for i in sub[:4]:
                v0, v_p = EPS ** (1 / depth), _v_threshold(objective, rho[i], depth)
                v_targets = v0 + (v_p - v0) * np.array([0.25, 0.5, 0.75])
                t_ref = np.array([_reference_time(objective, lam[i], rho[i], depth, v) for v in v_targets])
                ours = trajectory(objective, lam[i], rho[i], depth, EPS, t_ref)
                f = _rhs(objective, lam[i], rho[i], depth)
                sol = solve_ivp(lambda _t, v, f=f: f(v), (0.0, t_ref[-1]), [v0], method="LSODA", rtol=1e-10,
                                atol=1e-14 * v0, t_eval=t_ref)
                errors_ours.append(np.max(np.abs(ours - v_targets**depth) / v_targets**depth))
                errors_ivp.append(np.max(np.abs(sol.y[0] ** depth - v_targets**depth) / v_targets**depth))
            start = time.perf_counter()
            for i in sub[:4]:
                f = _rhs(objective, lam[i], rho[i], depth)
                solve_ivp(lambda _t, v, f=f: f(v), (0.0, t_grid[-1]), [EPS ** (1 / depth)], method="LSODA",
                          rtol=1e-10, atol=1e-14 * EPS ** (1 / depth), t_eval=t_grid)
            ivp_traj = (time.perf_counter() - start) / 4
            speedup = ivp_traj / (t_tr / m)
            task = f"trajectory, {m:.0e} features x {n_times} t"
            print(f"{task:<34} {objective:<4} {depth:>2} {t_tr:>8.3f} {'1':>6} "
                  f"{ivp_traj:>10.2e} {speedup:>9.2e} {max(errors_ours):>9.1e} {max(errors_ivp):>9.1e}")


if __name__ == "__main__":
    main()
