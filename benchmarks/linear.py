"""Speed of jepalab.linear (issue 4): population-gradient steps/s, batched run-steps/s, closed form vs autograd,
and one long-plateau JEPA gradient-flow run.

Goals on 2 CPU cores: ≥ 10^6 run-steps/s for 256 batched runs (d = 8, L = 3); population update ≥ 10× faster
than an autograd step on a sampled minibatch of the same network; JEPA flow to 2× its critical time at
ε = 1e-4, L = 3, d = 8 in ≤ 10 s. With CUDA, the population table is repeated for d = 1024 on the GPU.

    python benchmarks/linear.py [--quick | --smoke]

``--smoke``: tiny sizes and one repetition, a crash test that finishes in seconds; its numbers say nothing
about the goals.
"""

from __future__ import annotations

import os

# small matrices: BLAS threads only add start-up cost (and thrash when the machine is loaded)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import time

import numpy as np
import torch

from jepalab.linear import GaussianViews, train
from jepalab.theory import critical_time


def _problem(d: int) -> GaussianViews:
    """Diagonal data, λ and ρ both decreasing: every order agrees, so JEPA's learned latent channels stay stable."""
    lam, rho = np.linspace(1.0, 0.5, d), np.linspace(0.9, 0.5, d)
    return GaussianViews(np.diag(lam / rho), np.diag(lam), np.diag(lam / rho))


def _steps_per_second(d: int, depth: int, steps: int, runs: int = 1, dtype: torch.dtype = torch.float64,
                      device: str = "cpu", repeats: int = 3) -> float:
    """Best of ``repeats`` (the machine may be shared): whole train() calls, init and two records included."""
    data = _problem(d)
    train(data, "jepa", depth, 1e-2, 5, 0.01, runs=runs, dtype=dtype, device=device)  # warm-up
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        train(data, "jepa", depth, 1e-2, steps, 0.01, runs=runs, record_every=steps, dtype=dtype, device=device)
        best = min(best, time.perf_counter() - start)
    return steps / best


def _autograd_steps_per_second(d: int, depth: int, batch: int, steps: int) -> float:
    """Plain torch: sample a minibatch, JEPA loss with a detached target, backward, SGD update."""
    data = _problem(d)
    gen = torch.Generator().manual_seed(0)
    weights = [(0.3 * torch.eye(d, dtype=torch.float64)).requires_grad_(True) for _ in range(depth + 1)]
    start = time.perf_counter()
    for _ in range(3 * steps):
        x, y = data.sample(batch, gen)
        wbar = weights[0]
        for w in weights[1:depth]:
            wbar = w @ wbar
        loss = 0.5 * ((x @ (weights[depth] @ wbar).T - y @ wbar.detach().T) ** 2).sum(1).mean()
        grads = torch.autograd.grad(loss, weights)
        with torch.no_grad():
            for w, g in zip(weights, grads):
                w -= 0.01 * g
    return 3 * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="fewer steps (noisier numbers)")
    speed.add_argument("--smoke", action="store_true", help="tiny sizes: a crash test in seconds, not a benchmark")
    args = parser.parse_args()
    scale = 0.001 if args.smoke else 0.2 if args.quick else 1.0
    repeats = 1 if args.smoke else 3
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs, "
          f"load average {load:.1f}; float64 unless stated\n")

    print("1. population-gradient GD steps/s, one run (train(), incl. critical-time tracking every step)")
    budget = {8: 10_000, 64: 2_000, 256: 100}
    print(f"{'d':>5} " + "".join(f"{f'L={L}':>12}" for L in (1, 3, 5)))
    for d, steps in budget.items():
        rates = [_steps_per_second(d, L, max(20, int(steps * scale)), repeats=repeats) for L in (1, 3, 5)]
        print(f"{d:>5} " + "".join(f"{r:>12.4g}" for r in rates))

    print("\n2. 256 batched runs, d = 8, L = 3: aggregate run-steps/s (goal >= 1e6)")
    for dtype in (torch.float64, torch.float32):
        rate = 256 * _steps_per_second(8, 3, max(50, int(2000 * scale)), runs=256, dtype=dtype, repeats=repeats)
        print(f"   {dtype!s:<14} {rate:.3g} run-steps/s")

    print("\n3. closed-form population update vs autograd on a sampled minibatch (d = 8, L = 3; goal >= 10x)")
    pop = _steps_per_second(8, 3, max(200, int(20_000 * scale)), repeats=repeats)
    for batch in (256, 1024):
        auto = _autograd_steps_per_second(8, 3, batch, max(100, int(3000 * scale)))
        print(f"   batch {batch:>5}: population {pop:.4g} steps/s, autograd {auto:.4g} steps/s, "
              f"ratio {pop / auto:.1f}x")

    d, eps = (4, 1e-2) if args.smoke else (8, 1e-4)
    print(f"\n4. JEPA gradient flow to 2x its critical time, eps = {eps:g}, L = 3, d = {d} "
          "(goal at eps = 1e-4, d = 8: <= 10 s)")
    data = _problem(d)
    lam, rho, _ = data.features()
    t_star = critical_time("jepa", lam, rho, 3, eps)
    start = time.perf_counter()
    result = train(data, "jepa", 3, eps, 1000, 2 * t_star.max() / 1000, method="flow")
    elapsed = time.perf_counter() - start
    error = np.max(np.abs(result.critical_times[0] / t_star - 1))
    print(f"   t* = {t_star.min():.4g} … {t_star.max():.4g}; wall {elapsed:.2f} s; "
          f"max critical-time error vs theory {error:.2e}; max off-diagonal mass {result.offdiag.max():.2e}")

    if torch.cuda.is_available():
        print("\n5. CUDA population-gradient steps/s, d = 1024")
        rates = [_steps_per_second(1024, L, max(20, int(500 * scale)), device="cuda", repeats=repeats)
                 for L in (1, 3, 5)]
        print("   " + "  ".join(f"L={L}: {r:.4g}" for L, r in zip((1, 3, 5), rates)))


if __name__ == "__main__":
    main()
