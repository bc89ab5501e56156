"""Deep linear JEPA / MAE training: full matrices, exact population gradients, batched runs, GD or gradient flow.

Parameters of R independent runs are one tensor ``P`` of shape (L+1, R, d, d): ``P[:L]`` the encoder layers
W_1 … W_L (W̄ = W_L ⋯ W_1), ``P[L]`` the predictor (JEPA) or decoder (MAE) V. With a target matrix T
(JEPA stop-gradient: T = W̄ held constant; EMA: T = product of the momentum copies; MAE: T = I) the loss is

    ½ E‖V W̄ x − T y‖² = ½ tr(V W̄ Σxx W̄ᵀ Vᵀ) − tr(T Σyx W̄ᵀ Vᵀ) + ½ tr(T Σyy Tᵀ)

and, with the residual E = V W̄ Σxx − T Σyx, its gradients are ∇_V = E W̄ᵀ, ∇_W̄ = Vᵀ E and, per layer,
∇_{W_a} = (W_L ⋯ W_{a+1})ᵀ ∇_W̄ (W_{a−1} ⋯ W_1)ᵀ. Minibatch gradients are the same formulas with the batch's
second-moment matrices, which makes them the exact gradients of the minibatch loss.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.integrate import BDF, DOP853, LSODA, RK45, Radau
from tqdm.auto import tqdm

from jepalab.linear.models import GaussianViews
from jepalab.rundir import write_csv, write_json
from jepalab.theory import fixed_point

__all__ = [
    "GRADIENTS",
    "INITS",
    "METHODS",
    "OBJECTIVES",
    "OPTIMIZERS",
    "TARGETS",
    "TrainResult",
    "crossing_times",
    "initial_parameters",
    "loss_and_gradients",
    "single_thread",
    "train",
]

OBJECTIVES = ("jepa", "mae")
TARGETS = ("stopgrad", "ema")
GRADIENTS = ("population", "minibatch", "dataset")
INITS = ("aligned", "balanced", "gaussian")
OPTIMIZERS = ("gd", "momentum", "adamw")
METHODS = ("gd", "flow")
FLOW_SOLVERS = {"LSODA": LSODA, "RK45": RK45, "DOP853": DOP853, "BDF": BDF, "Radau": Radau}


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block (restored after): on these tiny matrices extra threads only
    add synchronisation, which on a busy machine made small torch ops 40× slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------------------------
# Loss and gradients.


Array = Any  # a numpy array (CPU) or a torch tensor (CUDA); the maths below uses only operators common to both


def _swap(x: Array) -> Array:
    """xᵀ over the last two axes, made contiguous: stacked matmuls with a strided operand were 2–3× slower."""
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x.swapaxes(-1, -2))
    return x.transpose(-1, -2).contiguous()


def _times(a: Array, sigma: Array) -> Array:
    """a @ Σ; a shared (d, d) Σ multiplies all runs at once as one (R·d, d) product."""
    if sigma.ndim == 2 and a.ndim == 3:
        return (a.reshape(-1, a.shape[-1]) @ sigma).reshape(a.shape)
    return a @ sigma


def _encoder(layers: Array) -> Array:
    """W̄ = W_L ⋯ W_1 for stacked layers (L, R, d, d) → (R, d, d)."""
    product = layers[0]
    for layer in layers[1:]:
        product = layer @ product
    return product


def _gradients(
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
    target_syx = sigma_yx if target is None else _times(target, sigma_yx)
    encoded = pred @ wbar
    residual = _times(encoded, sigma_xx) - target_syx
    grads = np.empty_like(params) if isinstance(params, np.ndarray) else params.new_empty(params.shape)
    grads[depth] = residual @ _swap(wbar)
    upstream = _swap(pred) @ residual  # ∇_W̄, pulled back through the layers from the top
    for a in range(depth - 1, -1, -1):
        grads[a] = upstream if prefix[a] is None else upstream @ _swap(prefix[a])
        if a > 0:
            upstream = _swap(layers[a]) @ upstream
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
    grads, _, encoded, target_syx, target = _gradients(params, sigma_xx, sigma_yx, objective, target)
    if sigma_yy is None:
        return grads, None
    loss = 0.5 * ((encoded @ sigma_xx) * encoded).sum((-1, -2)) - (target_syx * encoded).sum((-1, -2))
    if target is None:
        return grads, loss + 0.5 * sigma_yy.diagonal(0, -2, -1).sum(-1)
    return grads, loss + 0.5 * ((target @ sigma_yy) * target).sum((-1, -2))


# ----------------------------------------------------------------------------------------------------------
# Initialisation.


def _haar(d: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-random orthogonal d×d matrix (QR of a Gaussian with the sign fix)."""
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(d, dtype=torch.float64))


def _polar(basis: np.ndarray) -> np.ndarray:
    """The orthogonal matrix closest to ``basis`` (its polar factor); ``basis`` itself when orthogonal."""
    u, _, vt = np.linalg.svd(basis)
    return u @ vt


def initial_parameters(
    init: str | tuple[Sequence[Any], Any],
    depth: int,
    eps: np.ndarray,
    basis: np.ndarray,
    seeds: Sequence[int],
    objective: str = "jepa",
) -> torch.Tensor:
    """Stacked float64 parameters (L+1, R, d, d) for ``eps`` of shape (R, d); run r uses ``seeds[r]``.

    aligned: W_1 = Q_1 E Uᵀ, W_a = Q_a E Q_{a−1}ᵀ, W_L = E Q_{L−1}ᵀ with E = diag(ε^(1/L)), Haar Q_a and U
    the orthogonal polar factor of the feature basis (U = I for diagonal data), so W̄ = diag(ε) Uᵀ; the JEPA
    predictor (latent → latent) is V = E, the MAE decoder (latent → data) V = U E; the network is balanced.
    balanced: every layer and V ε^(1/L) × an independent Haar matrix. gaussian: i.i.d. N(0, ε^(2/L)/d) entries.
    A tuple (layers, predictor) gives the matrices, each (d, d) or (R, d, d).
    """
    runs, d = eps.shape
    if not isinstance(init, str):
        try:
            layers, pred = init
            mats = [torch.as_tensor(np.asarray(m, dtype=float)) for m in (*layers, pred)]
        except (TypeError, ValueError) as error:
            raise ValueError("init must be a name or a tuple (list of L layer matrices, predictor matrix)") from error
        if len(mats) != depth + 1:
            raise ValueError(f"init gives {len(mats) - 1} layer matrices; depth is {depth}")
        for m in mats:
            if m.shape not in ((d, d), (runs, d, d)) or not torch.isfinite(m).all():
                raise ValueError(f"init matrices must be finite, ({d}, {d}) or ({runs}, {d}, {d}); "
                                 f"got {tuple(m.shape)}")
        return torch.stack([m.expand(runs, d, d) for m in mats]).clone()
    _choice("init", init, INITS)
    if init != "aligned" and not np.allclose(eps, eps[:, :1]):
        raise ValueError(f"per-feature eps needs init='aligned' (init={init!r} has one scale per run)")
    out = torch.empty(depth + 1, runs, d, d, dtype=torch.float64)
    u = torch.as_tensor(_polar(basis))
    for r, seed in enumerate(seeds):
        gen = torch.Generator().manual_seed(int(seed))
        scale = torch.as_tensor(eps[r] ** (1.0 / depth))
        if init == "aligned":
            frames = [u.T.contiguous()] + [_haar(d, gen) for _ in range(depth - 1)]
            frames.append(torch.eye(d, dtype=torch.float64))
            for a in range(depth):  # W_{a+1} = Q_{a+1} E Q_a^T with Q_0 = U, Q_L = I (frames[a] holds Q_a^T)
                out[a, r] = frames[a + 1].T @ (scale[:, None] * frames[a])
            out[depth, r] = torch.diag(scale) if objective == "jepa" else u * scale
        elif init == "balanced":
            for a in range(depth + 1):
                out[a, r] = scale[0] * _haar(d, gen)
        else:
            out[:, r] = scale[0] / math.sqrt(d) * torch.randn(depth + 1, d, d, generator=gen, dtype=torch.float64)
    return out


# ----------------------------------------------------------------------------------------------------------
# What a run records.


def crossing_times(times: np.ndarray, values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """First time each trajectory reaches its threshold, linearly interpolated between records.

    ``times`` (R, T), ``values`` (R, T, d), ``thresholds`` (d,) → (R, d); 0 if already there at the first
    record, ``inf`` if never reached.
    """
    above = values >= thresholds
    first = np.argmax(above, axis=1)  # (R, d)
    hit = above.any(axis=1)
    out = np.full(first.shape, np.inf)
    rows = np.arange(values.shape[0])[:, None]
    k = np.maximum(first, 1)
    t0, t1 = times[rows, k - 1], times[rows, k]
    v0 = np.take_along_axis(values, (k - 1)[:, None, :], axis=1)[:, 0]
    v1 = np.take_along_axis(values, k[:, None, :], axis=1)[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        interp = t0 + (thresholds - v0) / (v1 - v0) * (t1 - t0)
    out[hit] = np.where(first == 0, times[:, :1], interp)[hit]
    return out


class _Probe:
    """Per-run measurements of stacked parameters: amplitudes in the feature basis, invariants, loss."""

    def __init__(self, data: GaussianViews, basis: np.ndarray, params0: Array, objective: str) -> None:
        params0 = torch.as_tensor(params0)
        kw = {"dtype": params0.dtype, "device": params0.device}
        self.covs = [torch.as_tensor(c, **kw) for c in data.covariances()]
        self.readout = torch.as_tensor(np.linalg.inv(basis).T, **kw)  # W̄ B^{-T}: columns = feature responses
        self.objective = objective
        self.invariants0 = self.invariants(params0)

    @staticmethod
    def invariants(params: torch.Tensor) -> torch.Tensor:
        """W_{a+1}ᵀW_{a+1} − W_a W_aᵀ for a = 1..L−1 and VᵀV − W_L W_Lᵀ, shape (L, R, d, d)."""
        upper, lower = params[1:], params[:-1]
        return _swap(upper) @ upper - lower @ _swap(lower)

    def __call__(self, params: Array, target: Array | None) -> dict[str, np.ndarray]:
        params = torch.as_tensor(params)
        target = None if target is None else torch.as_tensor(target)
        depth = params.shape[0] - 1
        response = _encoder(params[:depth]) @ self.readout
        amplitude = torch.linalg.vector_norm(response, dim=-2)
        off = response - torch.diag_embed(torch.diagonal(response, dim1=-2, dim2=-1))
        offdiag = torch.linalg.vector_norm(off, dim=(-2, -1)) / torch.linalg.vector_norm(response, dim=(-2, -1))
        drift = torch.linalg.vector_norm(self.invariants(params) - self.invariants0, dim=(-2, -1)).amax(0)
        sxx, syx, syy = self.covs
        _, loss = loss_and_gradients(params, sxx, syx, self.objective, target, sigma_yy=syy)
        values = {
            "amplitude": amplitude,
            "predictor_diag": torch.diagonal(params[depth], dim1=-2, dim2=-1),
            "loss": loss,
            "balance_drift": drift,
            "offdiag": offdiag,
        }
        return {k: v.detach().cpu().numpy().copy() for k, v in values.items()}


class _Crossings:
    """First time each run's feature amplitude reaches its threshold, checked after every step."""

    def __init__(self, readout: Array | None, thresholds: np.ndarray, runs: int) -> None:
        self.readout, self.thresholds = readout, thresholds  # readout None: the feature basis is the identity
        self.found = np.full((runs, thresholds.size), np.inf)
        self.last: tuple[np.ndarray, np.ndarray] | None = None

    def amplitude(self, wbar: Array) -> np.ndarray:
        response = wbar if self.readout is None else wbar @ self.readout
        values = response if isinstance(response, np.ndarray) else response.cpu().numpy()
        return np.sqrt(np.einsum("...ij,...ij->...j", values, values))

    def update(self, t: np.ndarray, wbar: Array, dense: Any = None, shape: tuple[int, ...] = ()) -> None:
        """Register W̄ at per-run times t (R,); ``dense(t)`` (flat parameters of ``shape``) refines crossings
        by root finding, otherwise they are interpolated linearly since the previous update."""
        amp = self.amplitude(wbar)
        if self.last is None:
            self.found = np.where(amp >= self.thresholds, t[:, None], self.found)
        else:
            t0, amp0 = self.last
            new = (amp >= self.thresholds) & np.isinf(self.found)
            if new.any():
                linear = crossing_times(np.stack([t0, t], axis=1), np.stack([amp0, amp], axis=1), self.thresholds)
                for r, i in zip(*np.nonzero(new)):
                    self.found[r, i] = (linear[r, i] if dense is None else
                                        self._root(dense, shape, r, i, t0[r], t[r]))
        self.last = (t, amp)

    def _root(self, dense: Any, shape: tuple[int, ...], r: int, i: int, t0: float, t1: float) -> float:
        from scipy.optimize import brentq

        def gap(t: float) -> float:
            params = np.asarray(dense(t)).reshape(shape)
            return self.amplitude(_encoder(params[:-1]))[r, i] - self.thresholds[i]

        return t0 if gap(t0) >= 0 else float(brentq(gap, t0, t1, xtol=1e-12 * max(1.0, t1), rtol=1e-14))


_SERIES = ("amplitude", "predictor_diag", "loss", "balance_drift", "offdiag")


@dataclass
class TrainResult:
    """Recorded trajectories of R runs: ``times`` (R, T) in gradient-flow time (lr × steps), per-run series
    ``amplitude``/``predictor_diag`` (R, T, d) and ``loss``/``balance_drift``/``offdiag`` (R, T), and the
    theory's per-feature ``lam``, ``rho``, ``fixed_point``, and ``critical_times`` (R, d): the first time each
    amplitude reaches ``frac``·fixed point, tracked at every GD step (interpolated within the step) or every
    solver step of the flow (root of the dense output); inf if never."""

    objective: str
    depth: int
    steps: np.ndarray
    times: np.ndarray
    amplitude: np.ndarray
    predictor_diag: np.ndarray
    loss: np.ndarray
    balance_drift: np.ndarray
    offdiag: np.ndarray
    lam: np.ndarray
    rho: np.ndarray
    fixed_point: np.ndarray
    frac: float
    critical_times: np.ndarray
    final_params: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    def orders(self) -> list[list[int]]:
        """Per run, the feature indices by critical time (first learned first; never-learned last)."""
        return [list(np.argsort(row, kind="stable")) for row in self.critical_times]

    def save(self, run_dir: str | Path, name: str = "result") -> list[Path]:
        """Write ``name.npz`` (every array), ``name.csv`` (one row per run and record),
        ``name_critical_times.csv`` and ``name.json`` (settings) into ``run_dir``."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        arrays = {k: getattr(self, k) for k in ("steps", "times", *_SERIES, "lam", "rho", "fixed_point",
                                               "critical_times", "final_params")}
        npz = run_dir / f"{name}.npz"
        tmp = run_dir / f".{name}.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        tmp.replace(npz)
        rows = []
        for r in range(self.times.shape[0]):
            for k in range(self.times.shape[1]):
                row = {"run": r, "step": int(self.steps[k]), "time": self.times[r, k], "loss": self.loss[r, k],
                       "balance_drift": self.balance_drift[r, k], "offdiag": self.offdiag[r, k]}
                row.update({f"amplitude_{i}": self.amplitude[r, k, i] for i in range(self.lam.size)})
                row.update({f"predictor_{i}": self.predictor_diag[r, k, i] for i in range(self.lam.size)})
                rows.append(row)
        crit = [
            {"run": r, "feature": i, "lam": self.lam[i], "rho": self.rho[i], "fixed_point": self.fixed_point[i],
             "critical_time": t}
            for r, row in enumerate(self.critical_times) for i, t in enumerate(row)
        ]
        meta = {"objective": self.objective, "depth": self.depth, "frac": self.frac, **self.settings}
        return [npz, write_csv(run_dir / f"{name}.csv", rows),
                write_csv(run_dir / f"{name}_critical_times.csv", crit), write_json(run_dir / f"{name}.json", meta)]


# ----------------------------------------------------------------------------------------------------------
# Optimisers on the stacked parameters (learning rate per run, broadcast as (1, R, 1, 1)).


class _Optimizer:
    """gd: P ← P − η g; momentum: b ← μ b + g, P ← P − η b; adamw: Adam moments, decoupled weight decay."""

    def __init__(self, kind: str, lr: Array, momentum: float, betas: tuple[float, float],
                 weight_decay: float) -> None:
        self.kind, self.lr, self.momentum, self.betas, self.weight_decay = kind, lr, momentum, betas, weight_decay
        self.state: list[Array] = []
        self.count = 0

    def step(self, params: Array, grads: Array) -> None:
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


class _Batches:
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
        return _swap(x) @ x / n, _swap(y) @ x / n

    def __call__(self) -> tuple[Array, Array]:
        if self.fixed is not None:
            return self.fixed
        if self.mode == "minibatch":
            x, y = self.data.sample(self.runs * self.batch, self.gen, self.dtype, self.device)
            return self._moments(x.view(self.runs, self.batch, -1), y.view(self.runs, self.batch, -1))
        idx = torch.randint(self.x.shape[1], (self.runs, self.batch), generator=self.gen, device=self.device)
        rows = torch.arange(self.runs, device=self.device)[:, None]
        return self._moments(self.x[rows, idx], self.y[rows, idx])


# ----------------------------------------------------------------------------------------------------------
# The two integrators.


def _run_gd(params: Array, record: np.ndarray, lr: np.ndarray, batches: _Batches, objective: str,
            optimizer: _Optimizer, ema: tuple[float, float] | None, probe: _Probe, crossings: _Crossings,
            progress: bool) -> list[dict[str, np.ndarray]]:
    depth, steps = params.shape[0] - 1, int(record[-1])
    target_layers = params[:depth] * 1 if ema is not None else None
    records, next_k = [], 0
    for step in tqdm(range(steps + 1), disable=not progress, desc=f"{objective} GD", mininterval=1.0):
        target = _encoder(target_layers) if target_layers is not None else None
        if step == record[next_k]:
            records.append(probe(params, target))
            next_k += 1
            if step == steps:
                crossings.update(step * lr, _encoder(params[:depth]))
                break
        sxx, syx = batches()
        grads, wbar, *_ = _gradients(params, sxx, syx, objective, target)
        crossings.update(step * lr, wbar)
        optimizer.step(params, grads)
        if target_layers is not None:
            m = ema[0] + (ema[1] - ema[0]) * step / max(1, steps - 1)
            target_layers *= m
            target_layers += (1 - m) * params[:depth]
    return records


def _flow_jacobian(y: np.ndarray, shape: tuple[int, ...], rhs: Any, dense: bool) -> Any:
    """Block-diagonal Jacobian of the flow by forward differences, all (L+1)d² directions of all runs in one
    batched gradient call; dense for LSODA, sparse CSC for BDF/Radau."""
    from scipy.sparse import csc_matrix

    layers, runs, d, _ = shape
    n = layers * d * d
    params = y.reshape(shape)
    step = 1e-7 * np.maximum(np.abs(params), 1e-7)
    a, i, j = np.unravel_index(np.arange(n), (layers, d, d))
    moved = np.repeat(params[:, None], n, axis=1)  # (L+1, n, R, d, d): copy k moves coordinate k in every run
    moved[a, np.arange(n), :, i, j] += step[a, :, i, j]
    shifted = rhs(0.0, moved.reshape(layers, n * runs, d, d)).reshape(layers, n, runs, d, d)
    diff = (shifted - rhs(0.0, y).reshape(layers, 1, runs, d, d)) / step[a, :, i, j][None, :, :, None, None]
    flat = np.arange(y.size).reshape(shape)
    rows = np.broadcast_to(flat[:, None], diff.shape)  # the row of each derivative: its output coordinate
    cols = np.broadcast_to(flat[a, :, i, j][None, :, :, None, None], diff.shape)  # the moved input coordinate
    jac = csc_matrix((diff.ravel(), (rows.ravel(), cols.ravel())), shape=(y.size, y.size))
    return jac.toarray() if dense else jac


def _run_flow(params: np.ndarray, times: np.ndarray, objective: str, probe: _Probe, crossings: _Crossings,
              solver: str, rtol: float, atol: float, progress: bool) -> list[dict[str, np.ndarray]]:
    """Gradient flow dP/dt = −∇P of the population loss by an adaptive scipy solver, recorded at ``times``;
    ``params`` ends at the final state. Implicit solvers get a batched finite-difference Jacobian."""
    shape = params.shape
    sxx, syx = (c.cpu().numpy() for c in probe.covs[:2])

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        grads, _ = loss_and_gradients(y.reshape((shape[0], -1, *shape[2:])), sxx, syx, objective)
        return -grads.reshape(-1)

    if solver == "auto":
        solver = "LSODA" if params.size <= 4096 else "BDF"
    options = {}
    if solver in ("LSODA", "BDF", "Radau"):
        options["jac"] = lambda _t, y: _flow_jacobian(y, shape, rhs, dense=solver == "LSODA")
    records = []
    bar = tqdm(total=float(times[-1]), disable=not progress, desc=f"{objective} flow", mininterval=1.0)
    state = {"k": 0}

    def take(t_done: float, evaluate: Any) -> None:
        while state["k"] < times.size and times[state["k"]] <= t_done:
            current = np.asarray(evaluate(times[state["k"]])).reshape(shape)
            records.append(probe(current, None))
            state["k"] += 1
        if state["k"] == times.size:
            params[...] = current

    y0 = params.reshape(-1).copy()
    take(0.0, lambda _t: y0)
    runs = np.ones(shape[1])
    crossings.update(0.0 * runs, _encoder(params[:-1]))
    integrator = FLOW_SOLVERS[solver](rhs, 0.0, y0, float(times[-1]), rtol=rtol, atol=atol, **options)
    while state["k"] < times.size:
        message = integrator.step()
        if integrator.status == "failed":
            raise RuntimeError(f"gradient-flow integration failed at t = {integrator.t:.6g}: {message}")
        dense = integrator.dense_output()
        crossings.update(integrator.t * runs, _encoder(integrator.y.reshape(shape)[:-1]), dense, shape)
        take(integrator.t, dense)
        bar.update(integrator.t - bar.n)
    bar.close()
    return records


# ----------------------------------------------------------------------------------------------------------
# The public entry point.


def _numpy_backend(device: torch.device) -> bool:
    """CPU runs compute in numpy: its small-matrix matmul is several times faster than torch's."""
    return device.type == "cpu"


def _eps_grid(eps: object, runs: int, d: int) -> np.ndarray:
    """ε as (R, d): a scalar, one value per feature (d,), or per run and feature (R, 1) / (R, d)."""
    try:
        array = np.asarray(eps, dtype=float)
        grid = np.broadcast_to(array if array.ndim == 2 else array.reshape(1, -1) if array.ndim else array,
                               (runs, d)).copy()
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"eps must be a number, a per-feature array ({d},) or a per-run array ({runs}, 1) / ({runs}, {d})"
        ) from error
    if not np.all(np.isfinite(grid)) or np.any((grid <= 0) | (grid >= 1)):
        raise ValueError(f"eps must lie in the open interval (0, 1); got {eps!r}")
    return grid


def _record_steps(steps: int, lr: np.ndarray, record_every: int | None, record_times: object) -> np.ndarray:
    if record_times is not None:
        if record_every is not None:
            raise ValueError("give record_every or record_times, not both")
        if np.unique(lr).size != 1:
            raise ValueError("record_times needs one common lr (they are converted to steps = t / lr)")
        t = np.asarray(record_times, dtype=float)
        if t.ndim != 1 or not np.all(np.isfinite(t)) or np.any(t < 0):
            raise ValueError("record_times must be a 1-D array of finite times >= 0")
        chosen = np.rint(t / lr[0]).astype(np.int64)
    else:
        every = max(1, steps // 500) if record_every is None else _positive_int("record_every", record_every)
        chosen = np.arange(0, steps + 1, every)
    return np.unique(np.concatenate([[0], chosen[chosen <= steps], [steps]]))


def train(
    data: GaussianViews,
    objective: str,
    depth: int,
    eps: object,
    steps: int,
    lr: object,
    *,
    target: str = "stopgrad",
    ema_momentum: float | tuple[float, float] = 0.99,
    gradients: str = "population",
    batch_size: int = 256,
    n_samples: int = 1024,
    init: str | tuple[Sequence[Any], Any] = "aligned",
    optimizer: str = "gd",
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    method: str = "gd",
    record_every: int | None = None,
    record_times: object = None,
    runs: int = 1,
    seed: int = 0,
    frac: float = 0.5,
    solver: str = "auto",
    rtol: float = 1e-8,
    atol: float = 1e-12,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    progress: bool = False,
) -> TrainResult:
    """Train R = ``runs`` independent depth-L linear JEPA/MAE networks for ``steps`` steps of size ``lr``.

    Gradient-flow time is t = lr × steps; ``method="flow"`` integrates the population gradient flow to the
    same t with ``solver`` (``rtol``/``atol``; "auto": LSODA up to 4096 parameters, else BDF with a sparse
    block Jacobian) and records at the same times. Run r draws its init from seed
    ``seed + r`` (so a batch equals its runs done one by one); minibatches come from one stream for the batch.
    ``eps``: scalar, per feature (d,), or per run (R, 1)/(R, d); ``lr``: scalar or per run (R,) (GD only).
    EMA target: momentum m (or a linear schedule (m_start, m_end)), target ← m·target + (1 − m)·online.
    """
    if not isinstance(data, GaussianViews):
        raise ValueError(f"data must be a GaussianViews model (or a subclass); got {type(data).__name__}")
    _choice("objective", objective, OBJECTIVES)
    _choice("target", target, TARGETS)
    _choice("gradients", gradients, GRADIENTS)
    _choice("optimizer", optimizer, OPTIMIZERS)
    _choice("method", method, METHODS)
    _choice("solver", solver, ("auto", *FLOW_SOLVERS))
    depth, steps, runs = _positive_int("depth", depth), _positive_int("steps", steps), _positive_int("runs", runs)
    batch_size, n_samples = _positive_int("batch_size", batch_size), _positive_int("n_samples", n_samples)
    if not 0 < frac < 1:
        raise ValueError(f"frac must lie in (0, 1); got {frac!r}")
    lr_arr = np.broadcast_to(np.asarray(lr, dtype=float), (runs,)).copy() if np.ndim(lr) <= 1 else None
    if lr_arr is None or not np.all(np.isfinite(lr_arr)) or np.any(lr_arr <= 0):
        raise ValueError(f"lr must be > 0: a number or one value per run ({runs},); got {lr!r}")
    if target == "ema" and objective != "jepa":
        raise ValueError("target='ema' applies to objective='jepa' only (the MAE target is the raw view y)")
    ema = None
    if target == "ema":
        ema = (float(ema_momentum), float(ema_momentum)) if np.ndim(ema_momentum) == 0 else tuple(ema_momentum)
        if len(ema) != 2 or not all(0.0 <= m < 1.0 for m in ema):
            raise ValueError(f"ema_momentum must lie in [0, 1) (or be a pair (start, end)); got {ema_momentum!r}")
    if method == "flow":
        if (optimizer, target, gradients) != ("gd", "stopgrad", "population") or np.unique(lr_arr).size != 1:
            raise ValueError("method='flow' is the gradient flow of the population loss: it needs optimizer='gd', "
                             "target='stopgrad', gradients='population' and one common lr")
        if dtype != torch.float64:
            raise ValueError("method='flow' runs in float64 on the CPU (scipy)")
    d = data.dim
    lam, rho, basis = data.features()
    eps_grid = _eps_grid(eps, runs, d)
    record = _record_steps(steps, lr_arr, record_every, record_times)
    device = torch.device("cpu") if method == "flow" else torch.device(device)
    as_numpy = _numpy_backend(device)
    seeds = [seed + r for r in range(runs)]
    params = initial_parameters(init, depth, eps_grid, basis, seeds, objective).to(device, dtype)
    params = params.numpy() if as_numpy else params
    with single_thread():
        probe = _Probe(data, basis, params, objective)
        w_star = fixed_point(objective, rho, depth)
        readout = None if np.array_equal(basis, np.eye(d)) else probe.readout
        crossings = _Crossings(readout.numpy() if as_numpy and readout is not None else readout, frac * w_star,
                               runs)
        if method == "flow":
            records = _run_flow(params, record * lr_arr[0], objective, probe, crossings, solver, rtol, atol,
                                progress)
        else:
            lr_t = torch.as_tensor(lr_arr, dtype=dtype, device=device).view(1, runs, 1, 1)
            lr_t = lr_t[0, 0, 0, 0] if np.unique(lr_arr).size == 1 else lr_t  # a scalar multiplies faster
            opt = _Optimizer(optimizer, lr_t.numpy() if as_numpy else lr_t, momentum, tuple(betas), weight_decay)
            batches = _Batches(data, gradients, runs, batch_size, n_samples, seed, dtype, device, as_numpy)
            records = _run_gd(params, record, lr_arr, batches, objective, opt, ema, probe, crossings, progress)
    series = {k: np.stack([r[k] for r in records], axis=1) for k in _SERIES}
    settings = {
        "eps": eps_grid, "lr": lr_arr, "steps": steps, "target": target, "ema_momentum": ema, "gradients": gradients,
        "batch_size": batch_size, "n_samples": n_samples, "init": init if isinstance(init, str) else "matrices",
        "optimizer": optimizer, "method": method, "runs": runs, "seed": seed, "solver": solver, "rtol": rtol,
        "atol": atol, "dtype": str(dtype), "device": str(device),
    }
    return TrainResult(
        objective=objective, depth=depth, steps=record, times=record[None, :] * lr_arr[:, None], **series,
        lam=lam, rho=rho, fixed_point=w_star, frac=float(frac), critical_times=crossings.found,
        final_params=params.astype(float) if as_numpy else params.double().cpu().numpy(), settings=settings,
    )
