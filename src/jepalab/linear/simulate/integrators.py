"""The two integrators: gradient descent (any optimiser, sampled gradients, EMA target) and the gradient flow."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.integrate import BDF, DOP853, LSODA, RK45, Radau

from jepalab.linear.simulate._common import Array, encoder
from jepalab.linear.simulate.gradients import Batches, loss_and_gradients, step_gradients
from jepalab.linear.simulate.optimizers import Optimizer
from jepalab.linear.simulate.recording import Crossings, Probe
from jepalab.progress import progress_bar

FLOW_SOLVERS = {"LSODA": LSODA, "RK45": RK45, "DOP853": DOP853, "BDF": BDF, "Radau": Radau}


def run_gd(params: Array, record: np.ndarray, lr: np.ndarray, batches: Batches, objective: str,
           optimizer: Optimizer, ema: tuple[float, float] | None, probe: Probe, crossings: Crossings,
           progress: bool) -> list[dict[str, np.ndarray]]:
    """Step ``params`` in place to ``record[-1]`` steps, probing at the ``record`` steps; ``ema`` = (m_start,
    m_end) of a linearly scheduled EMA target, None for the stop-gradient (or MAE) target."""
    depth, steps = params.shape[0] - 1, int(record[-1])
    target_layers = params[:depth] * 1 if ema is not None else None
    records, next_k = [], 0
    for step in progress_bar(range(steps + 1), disable=not progress, desc=f"{objective} GD", mininterval=1.0):
        target = encoder(target_layers) if target_layers is not None else None
        if step == record[next_k]:
            records.append(probe(params, target))
            next_k += 1
            if step == steps:
                crossings.update(step * lr, encoder(params[:depth]))
                break
        sxx, syx = batches()
        grads, wbar, *_ = step_gradients(params, sxx, syx, objective, target)
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


def run_flow(params: np.ndarray, times: np.ndarray, objective: str, probe: Probe, crossings: Crossings,
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
    bar = progress_bar(total=float(times[-1]), disable=not progress, desc=f"{objective} flow", mininterval=1.0)
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
    crossings.update(0.0 * runs, encoder(params[:-1]))
    integrator = FLOW_SOLVERS[solver](rhs, 0.0, y0, float(times[-1]), rtol=rtol, atol=atol, **options)
    while state["k"] < times.size:
        message = integrator.step()
        if integrator.status == "failed":
            raise RuntimeError(f"gradient-flow integration failed at t = {integrator.t:.6g}: {message}")
        dense = integrator.dense_output()
        crossings.update(integrator.t * runs, encoder(integrator.y.reshape(shape)[:-1]), dense, shape)
        take(integrator.t, dense)
        bar.update(integrator.t - bar.n)
    bar.close()
    return records
