"""Loss and exact gradients of deep linear JEPA/MAE, and the second-moment matrices each step uses.

With a target matrix T (JEPA stop-gradient: T = W̄ held constant; EMA: T = product of the momentum copies;
MAE: T = I) the loss is

    ½ E‖V W̄ x − T y‖² = ½ tr(V W̄ Σxx W̄ᵀ Vᵀ) − tr(T Σyx W̄ᵀ Vᵀ) + ½ tr(T Σyy Tᵀ)

and, with the residual E = V W̄ Σxx − T Σyx, its gradients are ∇_V = E W̄ᵀ, ∇_W̄ = Vᵀ E and, per layer,
∇_{W_a} = (W_L ⋯ W_{a+1})ᵀ ∇_W̄ (W_{a−1} ⋯ W_1)ᵀ. Minibatch gradients are the same formulas with the batch's
second-moment matrices, which makes them the exact gradients of the minibatch loss.
"""

from __future__ import annotations

import numpy as np
import torch

from jepalab.linear.models import GaussianViews
from jepalab.linear.simulate._common import Array, swap, times


def step_gradients(
    params: Array, sigma_xx: Array, sigma_yx: Array, objective: str, target: Array | None
) -> tuple[Array, Array, Array, Array, Array | None]:
    """(∇P, W̄, V W̄, T Σyx, T) with T resolved (None for MAE's identity target)."""
    depth = params.shape[0] - 1
    layers, pred = params[:depth], params[depth]
    prefix: list[Array] = [None] * depth  # prefix[a] = product of the first a layers (None for a = 0)
    running = None
    for a in range(depth):
        prefix[a] = running
        running = layers[a] if running is None else layers[a] @ running
    wbar = running
    if target is None and objective == "jepa":
        target = wbar
    target_syx = sigma_yx if target is None else times(target, sigma_yx)
    encoded = pred @ wbar
    residual = times(encoded, sigma_xx) - target_syx
    grads = np.empty_like(params) if isinstance(params, np.ndarray) else params.new_empty(params.shape)
    grads[depth] = residual @ swap(wbar)
    upstream = swap(pred) @ residual  # ∇_W̄, pulled back through the layers from the top
    for a in range(depth - 1, -1, -1):
        grads[a] = upstream if prefix[a] is None else upstream @ swap(prefix[a])
        if a > 0:
            upstream = swap(layers[a]) @ upstream
    return grads, wbar, encoded, target_syx, target


def loss_and_gradients(
    params: Array,
    sigma_xx: Array,
    sigma_yx: Array,
    objective: str,
    target: Array | None = None,
    sigma_yy: Array | None = None,
) -> tuple[Array, Array | None]:
    """(∇P, loss) of ½E‖V W̄ x − T y‖² for stacked P (L+1, R, d, d); T = sg(W̄) (JEPA, default), I (MAE).

    numpy arrays or torch tensors (same type throughout). Covariances are (d, d) or per run (R, d, d). The
    loss (per run, shape (R,)) is computed only when ``sigma_yy`` is given, otherwise it is None.
    """
    grads, _, encoded, target_syx, target = step_gradients(params, sigma_xx, sigma_yx, objective, target)
    if sigma_yy is None:
        return grads, None
    loss = 0.5 * ((encoded @ sigma_xx) * encoded).sum((-1, -2)) - (target_syx * encoded).sum((-1, -2))
    if target is None:
        return grads, loss + 0.5 * sigma_yy.diagonal(0, -2, -1).sum(-1)
    return grads, loss + 0.5 * ((target @ sigma_yy) * target).sum((-1, -2))


class Batches:
    """Second-moment matrices (Σxx, Σyx) per step: population, fresh minibatches, or a fixed dataset.

    Samples are drawn with torch (one generator for the whole batch of runs) and handed on as numpy arrays
    when ``as_numpy`` (the CPU path), else as tensors on ``device``.
    """

    def __init__(self, data: GaussianViews, mode: str, runs: int, batch_size: int, n_samples: int, seed: int,
                 dtype: torch.dtype, device: torch.device, as_numpy: bool) -> None:
        self.mode, self.runs, self.batch, self.data = mode, runs, batch_size, data
        self.gen = torch.Generator(device=device).manual_seed(int(seed) + 7919)
        self.dtype, self.device, self.as_numpy = dtype, device, as_numpy
        sxx, syx, _ = data.covariances()
        self.fixed = None
        if mode == "population":
            self.fixed = tuple(self._out(torch.as_tensor(c, dtype=dtype)) for c in (sxx, syx))
        elif mode == "dataset":
            x, y = data.sample(runs * n_samples, self.gen, dtype, device)
            self.x, self.y = x.view(runs, n_samples, -1), y.view(runs, n_samples, -1)
            if batch_size >= n_samples:
                self.fixed = self._moments(self.x, self.y)

    def _out(self, x: torch.Tensor) -> Array:
        return x.cpu().numpy() if self.as_numpy else x.to(self.device)

    def _moments(self, x: torch.Tensor, y: torch.Tensor) -> tuple[Array, Array]:
        x, y, n = self._out(x), self._out(y), x.shape[-2]
        return swap(x) @ x / n, swap(y) @ x / n

    def __call__(self) -> tuple[Array, Array]:
        if self.fixed is not None:
            return self.fixed
        if self.mode == "minibatch":
            x, y = self.data.sample(self.runs * self.batch, self.gen, self.dtype, self.device)
            return self._moments(x.view(self.runs, self.batch, -1), y.view(self.runs, self.batch, -1))
        idx = torch.randint(self.x.shape[1], (self.runs, self.batch), generator=self.gen, device=self.device)
        rows = torch.arange(self.runs, device=self.device)[:, None]
        return self._moments(self.x[rows, idx], self.y[rows, idx])
