"""The attention kernels: every choice computes the same softmax(q kᵀ/√d) v; auto picks by device and dtype."""

import pytest
import torch
import torch.nn.functional as F

from jepalab.vision.models.attention import attend, attention_choice, resolve_attention, use_attention


def _qkv(m: int = 9, n: int = 9) -> tuple[torch.Tensor, ...]:
    shapes = [(4, 2, m, 16), (4, 2, n, 16), (4, 2, n, 16)]
    return tuple(torch.randn(*s, generator=torch.Generator().manual_seed(i)) for i, s in enumerate(shapes))


@pytest.mark.parametrize("choice", ["auto", "matmul", "sdpa", "math", "flash"])
def test_every_cpu_choice_computes_attention(choice: str) -> None:
    """fp32 on a CPU: each kernel matches the explicit formula, queries fewer than keys included."""
    q, k, v = _qkv(m=5, n=9)
    reference = torch.softmax(q @ k.transpose(-2, -1) / 4.0, dim=-1) @ v
    with use_attention(choice):
        torch.testing.assert_close(attend(q, k, v), reference, atol=1e-5, rtol=1e-5)
    assert attention_choice() == "auto"  # restored


def test_auto_fp32_cpu_is_exactly_sdpa_and_bf16_matches_to_bf16_precision() -> None:
    """auto: fp32 on a CPU is F.sdpa bit for bit; bf16 (explicit matmuls) matches fp32 to bf16 precision, grads too."""
    q, k, v = _qkv()
    reference = F.scaled_dot_product_attention(q, k, v)
    assert torch.equal(attend(q, k, v), reference)
    low = [t.bfloat16().requires_grad_() for t in (q, k, v)]
    out = attend(*low)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, atol=3e-2, rtol=3e-2)
    out.float().square().sum().backward()
    exact = [t.clone().requires_grad_() for t in (q, k, v)]
    F.scaled_dot_product_attention(*exact).square().sum().backward()
    for a, b in zip(low, exact):
        torch.testing.assert_close(a.grad.float(), b.grad, atol=0.1, rtol=0.05)


def test_auto_resolves_by_device_and_dtype() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_attention("auto", cpu, torch.bfloat16) == "matmul"
    assert resolve_attention("auto", cpu, torch.float32) == "sdpa"
    assert resolve_attention("auto", cuda, torch.bfloat16) == "gpu"  # SDPA without cuDNN: no per-shape plans
    assert resolve_attention("cudnn", cpu, torch.float32) == "cudnn"


def test_unknown_choice_and_unavailable_backend_fail_clearly() -> None:
    with pytest.raises(ValueError, match="attention must be one of"), use_attention("fast"):
        pass
    q, k, v = _qkv()
    with use_attention("cudnn"), pytest.raises(RuntimeError):
        attend(q, k, v)
    assert attention_choice() == "auto"
