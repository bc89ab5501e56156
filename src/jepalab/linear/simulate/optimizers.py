"""Optimisers on the stacked parameters (learning rate a scalar or per run, broadcast as (1, R, 1, 1))."""

from __future__ import annotations

from jepalab.linear.simulate._common import Array

OPTIMIZERS = ("gd", "momentum", "adamw")


class Optimizer:
    """gd: P ← P − η g; momentum: b ← μ b + g, P ← P − η b; adamw: Adam moments, decoupled weight decay."""

    def __init__(self, kind: str, lr: Array, momentum: float, betas: tuple[float, float],
                 weight_decay: float) -> None:
        self.kind, self.lr, self.momentum, self.betas, self.weight_decay = kind, lr, momentum, betas, weight_decay
        self.state: list[Array] = []
        self.count = 0

    def step(self, params: Array, grads: Array) -> None:
        """Update ``params`` in place from ``grads`` (which may be overwritten)."""
        if self.kind == "gd":
            grads *= self.lr
            params -= grads
            return
        if not self.state:
            self.state = [grads * 0 for _ in range(1 if self.kind == "momentum" else 2)]
        if self.kind == "momentum":
            self.state[0] *= self.momentum
            self.state[0] += grads
            params -= self.lr * self.state[0]
            return
        self.count += 1
        (b1, b2), (m, v) = self.betas, self.state
        m *= b1
        m += (1 - b1) * grads
        v *= b2
        v += (1 - b2) * grads * grads
        params *= 1 - self.lr * self.weight_decay
        params -= self.lr * (m / (1 - b1**self.count)) / ((v / (1 - b2**self.count)) ** 0.5 + 1e-8)
