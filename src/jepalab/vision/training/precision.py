"""The training precision ``train.precision`` resolves to: bf16 autocast or fp32.

``auto`` picks bf16 autocast on a GPU, and on a CPU whose cores have native bf16 matrix instructions (x86
AVX512-BF16 or AMX-BF16, which oneDNN uses for bf16 matmuls under autocast: about 4× the fp32 matmul rate on the
project's 2-core AVX512-BF16 machine, docs/speed.md). Elsewhere (older x86, ARM, Apple) ``auto`` is fp32: there
bf16 is emulated or untested and rarely faster. The choice reads CPU feature flags, never a timing, so the same
machine always resolves the same way (runs and resumes stay reproducible).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

__all__ = ["autocast_for", "cpu_bf16_units", "describe_precision", "resolve_precision"]


@functools.cache
def cpu_bf16_units() -> str | None:
    """This CPU's native bf16 matrix instructions, ``"AMX-BF16"`` or ``"AVX512-BF16"``, or None."""
    cpu = getattr(torch, "cpu", None)
    amx = getattr(cpu, "_is_amx_tile_supported", None)
    avx = getattr(cpu, "_is_avx512_bf16_supported", None)
    if amx is not None and avx is not None:  # torch's own cpuinfo probe (x86 only; False elsewhere)
        try:
            amx_bf16, avx_bf16 = bool(amx()), bool(avx())
        except RuntimeError:
            amx_bf16 = avx_bf16 = False
    else:  # an older torch: the kernel's flags
        try:
            flags = set(Path("/proc/cpuinfo").read_text().split())
        except OSError:
            flags = set()
        amx_bf16, avx_bf16 = "amx_bf16" in flags, "avx512_bf16" in flags
    return "AMX-BF16" if amx_bf16 else "AVX512-BF16" if avx_bf16 else None


def resolve_precision(setting: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype of ``train.precision`` = ``setting`` on ``device``: ``torch.bfloat16`` or None (fp32).

    ``bf16`` and ``fp32`` are taken as given; ``auto`` is bf16 on CUDA and on CPUs with native bf16 matrix
    instructions (:func:`cpu_bf16_units`), fp32 elsewhere."""
    device = torch.device(device)
    if setting == "bf16":
        return torch.bfloat16
    if setting == "fp32":
        return None
    if setting != "auto":
        raise ValueError(f"train.precision must be auto, fp32 or bf16; got {setting!r}")
    if device.type == "cuda" or (device.type == "cpu" and cpu_bf16_units() is not None):
        return torch.bfloat16
    return None


def autocast_for(setting: str, device: torch.device | str) -> torch.autocast:
    """The autocast context of ``train.precision`` = ``setting`` on ``device`` (disabled where it resolves to fp32)."""
    device = torch.device(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=resolve_precision(setting, device) is not None)


def describe_precision(setting: str, device: torch.device | str) -> str:
    """One line for run.json and the log: what ``setting`` resolves to on ``device`` and why."""
    device = torch.device(device)
    bf16 = resolve_precision(setting, device) is torch.bfloat16
    text = "bf16 autocast" if bf16 else "fp32"
    if device.type == "cpu":
        units = cpu_bf16_units()
        text += f" (CPU bf16 units: {units})" if units else " (CPU without native bf16 units)"
    return text if setting != "auto" else f"{text}, from auto"
