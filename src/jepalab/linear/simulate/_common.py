"""Shared pieces of the simulator: the array type, stacked-matrix helpers, argument checks, single-thread torch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

Array = Any  # a numpy array (CPU) or a torch tensor (CUDA); the maths uses only operators common to both


def choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else a ValueError naming ``name``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1, else a ValueError naming ``name``."""
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


def swap(x: Array) -> Array:
    """xᵀ over the last two axes, made contiguous: stacked matmuls with a strided operand were 2–3× slower."""
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x.swapaxes(-1, -2))
    return x.transpose(-1, -2).contiguous()


def times(a: Array, sigma: Array) -> Array:
    """a @ Σ; a shared (d, d) Σ multiplies all runs at once as one (R·d, d) product."""
    if sigma.ndim == 2 and a.ndim == 3:
        return (a.reshape(-1, a.shape[-1]) @ sigma).reshape(a.shape)
    return a @ sigma


def encoder(layers: Array) -> Array:
    """W̄ = W_L ⋯ W_1 for stacked layers (L, R, d, d) → (R, d, d)."""
    product = layers[0]
    for layer in layers[1:]:
        product = layer @ product
    return product
