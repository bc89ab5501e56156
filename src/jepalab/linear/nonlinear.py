"""A nonlinear deep network on the same Gaussian views: f(x) = W_L φ(⋯ φ(W_1 x)), trained by autograd GD.

The linear theory does not cover it; ``jepalab linear experiment nonlinear`` compares its learning order with the
linear prediction. Amplitudes are the row norms of the least-squares linear map x → f(x) on a fixed probe sample.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from jepalab.linear.models import GaussianViews
from jepalab.linear.simulate import initial_parameters, single_thread

__all__ = ["ACTIVATIONS", "train_nonlinear"]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda h: h, "tanh": torch.tanh, "relu": torch.relu,
}


def train_nonlinear(data: GaussianViews, objective: str, depth: int, eps: float, horizon: float, lr: float,
                    activation: str, seed: int, batch_size: int = 256,
                    records: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """GD with step ``lr`` to gradient-flow time ``horizon``; returns record times (T,) and amplitudes (T, d)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}; got {activation!r}")
    act = ACTIVATIONS[activation]
    _, _, basis = data.features()
    weights = [w.clone().requires_grad_(True) for w in
               initial_parameters("aligned", depth, np.full((1, data.dim), eps), basis, [seed], objective)[:, 0]]
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
    with single_thread():
        for step in range(steps + 1):
            if step % max(1, steps // records) == 0 or step == steps:
                with torch.no_grad():
                    linear_map = solve @ encode(probe_x)  # (d, d): least-squares x → f(x), rows = input coordinates
                times.append(step * lr)
                amps.append(torch.linalg.vector_norm(linear_map, dim=1).numpy())
            if step == steps:
                break
            x, y = data.sample(batch_size, gen)
            fx = encode(x)
            target = encode(y).detach() if objective == "jepa" else y
            loss = 0.5 * ((fx @ weights[depth].T - target) ** 2).sum(1).mean()
            grads = torch.autograd.grad(loss, weights)
            with torch.no_grad():
                for w, g in zip(weights, grads):
                    w -= lr * g
    return np.asarray(times), np.stack(amps)
