"""Which kernel computes attention softmax(q kᵀ / √d) v: one process-wide choice (``train.attention``), set by
``pretrain`` and restored after it. All choices compute the same maths; they differ in speed and rounding.

* ``matmul``: two batched matmuls around a softmax (the official I-JEPA ``Attention``).
* ``sdpa``: ``F.scaled_dot_product_attention`` with torch's own backend order.
* ``flash`` / ``efficient`` / ``cudnn`` / ``math``: SDPA restricted to that backend (an error where it cannot run).
* ``auto``: on a CPU, ``matmul`` for bf16/fp16 tensors (torch's fused CPU kernel was 25 ms against 4.5 ms there,
  docs/speed.md) and ``sdpa`` for fp32; on a GPU, SDPA restricted to flash → memory-efficient → math, i.e. never
  cuDNN attention, which builds an execution plan per new (batch, length) shape — and I-JEPA's context and target
  lengths change every batch (up to 67 shapes per 400 batches on a 14×14 grid).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["ATTENTION_CHOICES", "attend", "attention_choice", "resolve_attention", "use_attention"]

ATTENTION_CHOICES = ("auto", "matmul", "sdpa", "flash", "efficient", "cudnn", "math")
_BACKENDS = {"flash": [SDPBackend.FLASH_ATTENTION], "efficient": [SDPBackend.EFFICIENT_ATTENTION],
             "cudnn": [SDPBackend.CUDNN_ATTENTION], "math": [SDPBackend.MATH],
             "gpu": [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]}
_choice = "auto"


def attention_choice() -> str:
    """The process-wide attention choice (one of :data:`ATTENTION_CHOICES`)."""
    return _choice


@contextmanager
def use_attention(choice: str) -> Iterator[None]:
    """Make ``choice`` the process-wide attention kernel inside the ``with`` block."""
    global _choice
    if choice not in ATTENTION_CHOICES:
        raise ValueError(f"attention must be one of {list(ATTENTION_CHOICES)}; got {choice!r}")
    before, _choice = _choice, choice
    try:
        yield
    finally:
        _choice = before


def resolve_attention(choice: str, device: torch.device, dtype: torch.dtype) -> str:
    """What ``choice`` runs for tensors of ``dtype`` on ``device``: ``auto`` resolved (module docstring)."""
    if choice != "auto":
        return choice
    if device.type == "cpu":
        return "matmul" if dtype in (torch.bfloat16, torch.float16) else "sdpa"
    return "gpu"


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ / √d) v for (b, h, m, d) queries and (b, h, n, d) keys and values → (b, h, m, d), by the
    process-wide choice."""
    kernel = resolve_attention(_choice, q.device, q.dtype)
    if kernel == "matmul":
        return ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1) @ v
    if kernel == "sdpa":
        return F.scaled_dot_product_attention(q, k, v)
    with sdpa_kernel(_BACKENDS[kernel]):
        return F.scaled_dot_product_attention(q, k, v)
