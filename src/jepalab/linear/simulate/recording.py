"""What a run records: per-run measurements, critical-time tracking and the result object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from jepalab.linear.models import GaussianViews
from jepalab.linear.simulate._common import Array, encoder, swap
from jepalab.linear.simulate.gradients import loss_and_gradients

SERIES = ("amplitude", "predictor_diag", "loss", "balance_drift", "offdiag")


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


class Probe:
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
        return swap(upper) @ upper - lower @ swap(lower)

    def __call__(self, params: Array, target: Array | None) -> dict[str, np.ndarray]:
        params = torch.as_tensor(params)
        target = None if target is None else torch.as_tensor(target)
        depth = params.shape[0] - 1
        response = encoder(params[:depth]) @ self.readout
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


class Crossings:
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
            return self.amplitude(encoder(params[:-1]))[r, i] - self.thresholds[i]

        return t0 if gap(t0) >= 0 else float(brentq(gap, t0, t1, xtol=1e-12 * max(1.0, t1), rtol=1e-14))


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
