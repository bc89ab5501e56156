"""Vision Transformer encoder shared by I-JEPA and MAE (Dosovitskiy et al. 2021): patch embedding, fixed 2-D
sin-cos positions, pre-norm blocks (attention kernel: :mod:`jepalab.vision.models.attention`), final LayerNorm.

Initialisation follows each method's official code: ``"trunc_normal"`` (I-JEPA's) = truncated normal (std 0.02)
for linear and patch weights (facebookresearch/ijepa ``helper.init_model``); ``"xavier"`` (MAE's) = Xavier-uniform,
the patch projection treated as a linear map, class token N(0, 0.02²) (facebookresearch/mae
``models_mae.initialize_weights``).
``content_share`` overrides the patch projection only: small patches (4×4×1 = 16 inputs) under I-JEPA's std 0.02
give each token a content part of variance 0.0064 next to the positions' mean square 0.5, so tokens start as
almost pure position vectors (share 0.013; the official ViT-B/16 at 224 px has 0.38). See :func:`patch_std`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from jepalab.vision.models.attention import attend

__all__ = ["POSITION_MEAN_SQUARE", "VIT_SIZES", "Block", "ViT", "ViTSize", "attend", "measure_content_share",
           "patch_std", "sincos_2d"]


@dataclass(frozen=True)
class ViTSize:
    """Width, depth, heads and MLP ratio of a named ViT."""

    dim: int
    depth: int
    heads: int
    mlp_ratio: float = 4.0


VIT_SIZES = {
    "pico": ViTSize(32, 2, 2),  # CI
    "nano": ViTSize(64, 4, 4),
    "micro": ViTSize(96, 6, 3),  # CPU pretraining in minutes
    "tiny": ViTSize(192, 12, 3),
    "small": ViTSize(384, 12, 6),
    "base": ViTSize(768, 12, 12),
    "large": ViTSize(1024, 24, 16),
    "huge": ViTSize(1280, 32, 16),
    "giant": ViTSize(1408, 40, 16, 48 / 11),
}


POSITION_MEAN_SQUARE = 0.5
"""Mean over tokens and dims of a sin-cos position embedding's square (each (sin, cos) pair sums to 1)."""


def patch_std(share: float, fan_in: int) -> float:
    """Init std σ of the patch projection that gives tokens the content share s = σ²·fan_in / (σ²·fan_in + 1/2) at
    init on standardised inputs (unit-variance pixels): σ = √(s / (1 − s) · 0.5 / fan_in)."""
    if not 0 < share < 1:
        raise ValueError(f"content share must lie in (0, 1); got {share}")
    return (share / (1 - share) * POSITION_MEAN_SQUARE / fan_in) ** 0.5


def measure_content_share(encoder: ViT, images: torch.Tensor) -> float:
    """Measured content share of the tokens of normalised ``images`` (B, C, H, W): mean per-dim variance of the
    patch projection over images and patches, over that plus the positions' mean square."""
    with torch.no_grad():
        content = encoder.patch_embed(images.to(encoder.pos_embed.device)).flatten(2).float()  # (B, dim, N)
        variance = float(content.transpose(1, 2).reshape(-1, encoder.dim).var(dim=0).mean())
    return variance / (variance + float(encoder.pos_embed.square().mean()))


def sincos_2d(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """(H·W, dim) fixed positions, row-major tokens: first half sin/cos of the column index, second half of the
    row index, frequencies 10000^(−k/(dim/4)) (MAE/I-JEPA ``get_2d_sincos_pos_embed``)."""
    if dim % 4:
        raise ValueError(f"sin-cos positions need a width divisible by 4; got {dim}")
    rows, cols = torch.meshgrid(torch.arange(grid[0], dtype=torch.float64),
                                torch.arange(grid[1], dtype=torch.float64), indexing="ij")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))

    def encode(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega  # (H·W, dim/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([encode(cols), encode(rows)], dim=1).float()


class Attention(nn.Module):
    """Multi-head self-attention; the kernel is the process-wide choice of :mod:`jepalab.vision.models.attention`."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, queries: torch.Tensor | None = None) -> torch.Tensor:
        """x (b, n, d) → (b, n, d); with ``queries`` (b, m, d), only those rows attend (to all of x): (b, m, d)."""
        b, n, d = x.shape
        h = self.heads
        if queries is None:
            q, k, v = self.qkv(x).view(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)  # 3 × (b, h, n, d/h)
        else:
            w, bias = self.qkv.weight, self.qkv.bias
            q = F.linear(queries, w[:d], bias[:d]).view(b, -1, h, d // h).transpose(1, 2)  # (b, h, m, d/h)
            k, v = F.linear(x, w[d:], bias[d:]).view(b, n, 2, h, d // h).permute(2, 0, 3, 1, 4)  # 2 × (b, h, n, d/h)
        x = attend(q, k, v)  # (b, h, m, d/h)
        return self.proj(x.transpose(1, 2).reshape(b, -1, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)), MLP = Linear → GELU → Linear."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, eps: float = 1e-6):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, rows: torch.Tensor | slice | None = None) -> torch.Tensor:
        """(b, n, d) → (b, n, d); with ``rows`` (a slice, or (b, m) indices) only those tokens' outputs (b, m, d)
        are computed — exactly what the full block gives there, for a last block whose other outputs are unused."""
        h = self.norm1(x)
        if isinstance(rows, (slice, torch.Tensor)):  # not `rows is None`: torch.compile would pin a slice's bounds
            x = _select(x, rows) + self.attn(h, _select(h, rows))
        else:
            x = x + self.attn(h)
        return x + self.mlp(self.norm2(x))


def _select(x: torch.Tensor, rows: torch.Tensor | slice) -> torch.Tensor:
    if isinstance(rows, slice):
        return x[:, rows]
    return x.gather(1, rows.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def init_weights(module: nn.Module, style: str) -> None:
    """Re-initialise linear/conv/LayerNorm weights of ``module``: "trunc_normal" (I-JEPA's) or "xavier" (MAE's)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if style == "trunc_normal":
                nn.init.trunc_normal_(m.weight, std=0.02, a=-2.0, b=2.0)
            elif style == "xavier":
                nn.init.xavier_uniform_(m.weight.view(m.weight.shape[0], -1))
            else:
                raise ValueError(f"init style must be 'trunc_normal' or 'xavier'; got {style!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ViT(nn.Module):
    """ViT encoder: images (B, C, H, W) → LayerNorm-ed tokens (B, [1 +] K, dim), K = all patches or ``keep``.

    ``keep`` (B, K) selects patch tokens (after adding positions) before the blocks, as the I-JEPA context
    encoder and the MAE encoder do; ``cls_token`` prepends a learned class token (MAE), position zero.
    """

    def __init__(self, image_size: int | tuple[int, int], patch_size: int, in_channels: int, dim: int, depth: int,
                 heads: int, mlp_ratio: float = 4.0, cls_token: bool = False, init: str = "trunc_normal",
                 content_share: float | None = None):
        super().__init__()
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        if height % patch_size or width % patch_size:
            raise ValueError(f"image size {height}×{width} is not divisible by the patch size {patch_size}")
        self.image_size, self.patch_size, self.in_channels = (height, width), patch_size, in_channels
        self.grid = (height // patch_size, width // patch_size)
        self.num_patches = self.grid[0] * self.grid[1]
        self.dim, self.depth, self.heads, self.mlp_ratio = dim, depth, heads, mlp_ratio
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.register_buffer("pos_embed", sincos_2d(dim, self.grid), persistent=False)  # (N, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if cls_token else None
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        init_weights(self, init)
        if content_share is not None:
            nn.init.normal_(self.patch_embed.weight, std=patch_std(content_share, in_channels * patch_size ** 2))
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=0.02)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Patch tokens with positions: (B, C, H, W) → (B, N, dim)."""
        return self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos_embed

    def forward(self, images: torch.Tensor, keep: torch.Tensor | None = None,
                out: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens (B, [1 +] K, dim); with ``out`` (B, M) patch indices (no class token), only those M outputs
        (B, M, dim), the last block computing just them."""
        x = self.embed(images)  # (B, N, dim)
        if keep is not None:
            x = _select(x, keep)  # (B, K, dim)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + K, dim)
        if out is not None and (keep is not None or self.cls_token is not None):
            raise ValueError("ViT: out= selects patch positions of an unmasked encoder without a class token")
        for block in self.blocks[:-1]:
            x = block(x)
        return self.norm(self.blocks[-1](x, out))

    def hidden_states(self, images: torch.Tensor, last: int) -> list[torch.Tensor]:
        """Outputs of the ``last`` blocks, each through the final LayerNorm (DINOv2 ``get_intermediate_layers``
        with ``norm=True``): ``last`` × (B, [1 +] N, dim), the deepest last; no masking."""
        if not 1 <= last <= self.depth:
            raise ValueError(f"last must lie in 1..{self.depth}; got {last}")
        x = self.embed(images)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        states = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i >= self.depth - last:
                states.append(self.norm(x))
        return states

    def patch_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Drop the class token, if any: (B, [1 +] K, dim) → (B, K, dim)."""
        return tokens[:, 1:] if self.cls_token is not None else tokens
