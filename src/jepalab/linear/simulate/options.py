"""Grouped options of :func:`train`: the target, the gradient source, the optimiser and the integrator.

Each option of ``train`` takes either a name (its defaults) or one of these small frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jepalab.linear.simulate._common import choice, positive_int
from jepalab.linear.simulate.integrators import FLOW_SOLVERS
from jepalab.linear.simulate.optimizers import OPTIMIZERS

__all__ = ["EMA", "GRADIENTS", "METHODS", "OPTIMIZERS", "TARGETS", "Flow", "Optim", "Sampling"]

TARGETS = ("stopgrad", "ema")
GRADIENTS = ("population", "minibatch", "dataset")
METHODS = ("gd", "flow")


@dataclass(frozen=True)
class EMA:
    """EMA target (JEPA only): target ← m·target + (1 − m)·online; ``momentum`` m or a linear (start, end)."""

    momentum: float | tuple[float, float] = 0.99

    def __post_init__(self) -> None:
        pair = (self.momentum,) * 2 if np.ndim(self.momentum) == 0 else tuple(self.momentum)
        if len(pair) != 2 or not all(isinstance(m, (int, float)) and 0.0 <= m < 1.0 for m in pair):
            raise ValueError(f"EMA momentum must lie in [0, 1) (or be a pair (start, end)); got {self.momentum!r}")

    @property
    def schedule(self) -> tuple[float, float]:
        """(m_start, m_end) of the linear momentum schedule."""
        pair = (self.momentum,) * 2 if np.ndim(self.momentum) == 0 else tuple(self.momentum)
        return float(pair[0]), float(pair[1])


@dataclass(frozen=True)
class Sampling:
    """Where each step's (Σxx, Σyx) come from: the population, fresh minibatches, or a fixed dataset."""

    gradients: str = "population"
    batch_size: int = 256
    n_samples: int = 1024

    def __post_init__(self) -> None:
        choice("gradients", self.gradients, GRADIENTS)
        positive_int("batch_size", self.batch_size)
        positive_int("n_samples", self.n_samples)


@dataclass(frozen=True)
class Optim:
    """gd: P ← P − η g; momentum: b ← μ b + g, P ← P − η b; adamw: Adam moments ``betas``, decoupled decay."""

    name: str = "gd"
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        choice("optimizer", self.name, OPTIMIZERS)


@dataclass(frozen=True)
class Flow:
    """Integrate the population gradient flow with a scipy ``solver`` ("auto": LSODA up to 4096 parameters,
    else BDF with a sparse block Jacobian) to ``rtol``/``atol`` instead of taking GD steps."""

    solver: str = "auto"
    rtol: float = 1e-8
    atol: float = 1e-12

    def __post_init__(self) -> None:
        choice("solver", self.solver, ("auto", *FLOW_SOLVERS))


def as_target(target: str | EMA) -> EMA | None:
    """The EMA settings of ``target``, None for the stop-gradient target."""
    if isinstance(target, EMA):
        return target
    return EMA() if choice("target", target, TARGETS) == "ema" else None


def as_sampling(gradients: str | Sampling) -> Sampling:
    """``gradients`` as a :class:`Sampling` (a name takes the default sizes)."""
    return gradients if isinstance(gradients, Sampling) else Sampling(choice("gradients", gradients, GRADIENTS))


def as_optim(optimizer: str | Optim) -> Optim:
    """``optimizer`` as an :class:`Optim` (a name takes the default hyper-parameters)."""
    return optimizer if isinstance(optimizer, Optim) else Optim(choice("optimizer", optimizer, OPTIMIZERS))


def as_flow(integrator: str | Flow) -> Flow | None:
    """The flow settings of ``integrator`` (the ``method`` option of ``train``), None for gradient descent."""
    if isinstance(integrator, Flow):
        return integrator
    return Flow() if choice("method", integrator, METHODS) == "flow" else None
