"""``train``: R independent deep linear JEPA/MAE runs, by gradient descent or gradient flow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from jepalab.linear.models import GaussianViews
from jepalab.linear.simulate._common import choice, positive_int, single_thread
from jepalab.linear.simulate.gradients import Batches
from jepalab.linear.simulate.init import initial_parameters
from jepalab.linear.simulate.integrators import run_flow, run_gd
from jepalab.linear.simulate.optimizers import Optimizer
from jepalab.linear.simulate.options import EMA, Flow, Optim, Sampling, as_flow, as_optim, as_sampling, as_target
from jepalab.linear.simulate.recording import SERIES, Crossings, Probe, TrainResult
from jepalab.theory import fixed_point

OBJECTIVES = ("jepa", "mae")


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
        every = max(1, steps // 500) if record_every is None else positive_int("record_every", record_every)
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
    target: str | EMA = "stopgrad",
    gradients: str | Sampling = "population",
    init: str | tuple[Sequence[Any], Any] = "aligned",
    optimizer: str | Optim = "gd",
    method: str | Flow = "gd",
    record_every: int | None = None,
    record_times: object = None,
    runs: int = 1,
    seed: int = 0,
    frac: float = 0.5,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    progress: bool = False,
) -> TrainResult:
    """Train R = ``runs`` independent depth-L linear JEPA/MAE networks for ``steps`` steps of size ``lr``.

    Gradient-flow time is t = lr × steps; ``method="flow"`` (or a :class:`Flow`) integrates the population
    gradient flow to the same t and records at the same times. ``target``: "stopgrad", "ema" or an
    :class:`EMA`; ``gradients``: "population", "minibatch", "dataset" or a :class:`Sampling`; ``optimizer``:
    "gd", "momentum", "adamw" or an :class:`Optim`. Run r draws its init from seed ``seed + r`` (so a batch
    equals its runs done one by one); minibatches come from one stream for the batch. ``eps``: scalar, per
    feature (d,), or per run (R, 1)/(R, d); ``lr``: scalar or per run (R,) (GD only).
    """
    ema, sampling, optim, flow, lr_arr = _checked_options(data, objective, target, gradients, optimizer, method,
                                                          runs, frac, lr, dtype)
    depth, steps, runs = positive_int("depth", depth), positive_int("steps", steps), positive_int("runs", runs)
    lam, rho, basis = data.features()
    eps_grid = _eps_grid(eps, runs, data.dim)
    record = _record_steps(steps, lr_arr, record_every, record_times)
    device = torch.device("cpu") if flow is not None else torch.device(device)
    as_numpy = _numpy_backend(device)
    params = initial_parameters(init, depth, eps_grid, basis, [seed + r for r in range(runs)], objective)
    params = params.to(device, dtype)
    params = params.numpy() if as_numpy else params
    with single_thread():
        probe = Probe(data, basis, params, objective)
        w_star = fixed_point(objective, rho, depth)
        readout = None if np.array_equal(basis, np.eye(data.dim)) else probe.readout
        crossings = Crossings(readout.numpy() if as_numpy and readout is not None else readout, frac * w_star, runs)
        if flow is not None:
            records = run_flow(params, record * lr_arr[0], objective, probe, crossings, flow.solver, flow.rtol,
                               flow.atol, progress)
        else:
            records = _run_descent(data, params, record, lr_arr, objective, optim, sampling, ema, probe, crossings,
                                   seed, dtype, device, as_numpy, progress)
    series = {k: np.stack([r[k] for r in records], axis=1) for k in SERIES}
    settings = _settings_record(eps_grid, lr_arr, steps, ema, sampling, init, optim, flow, runs, seed, dtype, device)
    return TrainResult(
        objective=objective, depth=depth, steps=record, times=record[None, :] * lr_arr[:, None], **series,
        lam=lam, rho=rho, fixed_point=w_star, frac=float(frac), critical_times=crossings.found,
        final_params=params.astype(float) if as_numpy else params.double().cpu().numpy(), settings=settings,
    )


def _checked_options(data: GaussianViews, objective: str, target: str | EMA, gradients: str | Sampling,
                     optimizer: str | Optim, method: str | Flow, runs: int, frac: float, lr: object,
                     dtype: torch.dtype) -> tuple[EMA | None, Sampling, Optim, Flow | None, np.ndarray]:
    """(EMA or None, sampling, optimiser, flow or None, lr per run) of :func:`train`'s arguments, every
    combination checked; ``ValueError`` naming the argument otherwise."""
    if not isinstance(data, GaussianViews):
        raise ValueError(f"data must be a GaussianViews model (or a subclass); got {type(data).__name__}")
    choice("objective", objective, OBJECTIVES)
    ema, sampling, optim, flow = as_target(target), as_sampling(gradients), as_optim(optimizer), as_flow(method)
    runs = positive_int("runs", runs)
    if not 0 < frac < 1:
        raise ValueError(f"frac must lie in (0, 1); got {frac!r}")
    lr_arr = np.broadcast_to(np.asarray(lr, dtype=float), (runs,)).copy() if np.ndim(lr) <= 1 else None
    if lr_arr is None or not np.all(np.isfinite(lr_arr)) or np.any(lr_arr <= 0):
        raise ValueError(f"lr must be > 0: a number or one value per run ({runs},); got {lr!r}")
    if ema is not None and objective != "jepa":
        raise ValueError("target='ema' applies to objective='jepa' only (the MAE target is the raw view y)")
    if flow is not None:
        if (optim.name, ema, sampling.gradients) != ("gd", None, "population") or np.unique(lr_arr).size != 1:
            raise ValueError("method='flow' is the gradient flow of the population loss: it needs optimizer='gd', "
                             "target='stopgrad', gradients='population' and one common lr")
        if dtype != torch.float64:
            raise ValueError("method='flow' runs in float64 on the CPU (scipy)")
    return ema, sampling, optim, flow, lr_arr


def _run_descent(data: GaussianViews, params: Any, record: np.ndarray, lr_arr: np.ndarray, objective: str,
                 optim: Optim, sampling: Sampling, ema: EMA | None, probe: Probe, crossings: Crossings, seed: int,
                 dtype: torch.dtype, device: torch.device, as_numpy: bool, progress: bool) -> list[dict[str, Any]]:
    """The discrete steps of :func:`train` (GD, momentum or AdamW on population, minibatch or dataset gradients)."""
    runs = len(lr_arr)
    lr_t = torch.as_tensor(lr_arr, dtype=dtype, device=device).view(1, runs, 1, 1)
    lr_t = lr_t[0, 0, 0, 0] if np.unique(lr_arr).size == 1 else lr_t  # a scalar multiplies faster
    opt = Optimizer(optim.name, lr_t.numpy() if as_numpy else lr_t, optim.momentum, tuple(optim.betas),
                    optim.weight_decay)
    batches = Batches(data, sampling.gradients, runs, sampling.batch_size, sampling.n_samples, seed, dtype,
                      device, as_numpy)
    return run_gd(params, record, lr_arr, batches, objective, opt, None if ema is None else ema.schedule,
                  probe, crossings, progress)


def _settings_record(eps_grid: np.ndarray, lr_arr: np.ndarray, steps: int, ema: EMA | None, sampling: Sampling,
                     init: object, optim: Optim, flow: Flow | None, runs: int, seed: int, dtype: torch.dtype,
                     device: torch.device) -> dict[str, Any]:
    """The ``settings`` of a :class:`TrainResult`: every choice :func:`train` made, resolved."""
    return {
        "eps": eps_grid, "lr": lr_arr, "steps": steps, "target": "stopgrad" if ema is None else "ema",
        "ema_momentum": None if ema is None else ema.schedule, "gradients": sampling.gradients,
        "batch_size": sampling.batch_size, "n_samples": sampling.n_samples,
        "init": init if isinstance(init, str) else "matrices", "optimizer": optim.name,
        "method": "gd" if flow is None else "flow", "runs": runs, "seed": seed,
        "solver": (flow or Flow()).solver, "rtol": (flow or Flow()).rtol, "atol": (flow or Flow()).atol,
        "dtype": str(dtype), "device": str(device),
    }
