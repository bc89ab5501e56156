"""Token masks: I-JEPA multi-block masks (Assran et al., CVPR 2023, §3 and facebookresearch/ijepa
``src/masks/multiblock.py``) and MAE random masks (He et al., CVPR 2022, ``models_mae.random_masking``).

The multi-block sampler is vectorised over the batch and reproduces the official collator's distribution:

* one uniform ``r`` per batch sets a block's scale *and* aspect ratio (the official code reuses it for both):
  ``k = int(H·W·scale)``, ``h = round(√(k·aspect))``, ``w = round(√(k/aspect))``, clipped to the grid;
  target blocks (scale 0.15–0.2, aspect 0.75–1.5) and the context block (scale 0.85–1.0, aspect 1) each get
  one size per batch;
* every image draws ``num_targets`` target positions, then context positions until one keeps more than
  ``min_keep`` tokens outside all targets; after each 20 failures the last remaining target stops
  constraining the context (the official "decreasing acceptable-regions" fallback);
* context index lists are cut to the shortest in the batch, keeping the first tokens in raster order, as
  the official collator does.

The official collator never places a block on the last row or column (``torch.randint``'s bound is exclusive
and block sides are clipped below the grid side). ``full_grid=True`` lets blocks reach every position;
``None`` (auto) keeps the official placement on grids of 100+ tokens and uses the full grid on smaller ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar, Protocol

import torch

from jepalab.config import param

__all__ = ["MaskConfig", "MaskDraws", "Masks", "MultiBlockMasker", "MultiBlockMasks", "RandomMasks", "random_masks"]

SMALL_GRID = 100  # grids with fewer tokens get the small-grid defaults


def _membership(batch: int, num_tokens: int, context: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor,
                                                                                                      torch.Tensor]:
    """(context, target) bool (batch, num_tokens) from token-id tensors (batch, ...)."""
    rows = torch.arange(batch)[:, None]
    inside = torch.zeros(2, batch, num_tokens, dtype=torch.bool)
    inside[0][rows, context.flatten(1)] = True
    inside[1][rows, target.flatten(1)] = True
    return inside[0], inside[1]


class Masks(Protocol):
    """What training and the view statistics need of a method's masks for one batch."""

    def to(self, device: torch.device) -> Masks:
        """The same masks on ``device``."""

    def rows(self, start: int, stop: int) -> Masks:
        """Masks of images ``start:stop`` (a rank's share of a global batch)."""

    def membership(self, num_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(context, target) bool (B, num_tokens): the tokens the model sees and the tokens it predicts."""

    varying_dims: ClassVar[dict[str, tuple[int, ...]]]
    """Field name → dimensions whose size changes from batch to batch (compiled steps treat them as symbolic)."""


@dataclass(frozen=True)
class MultiBlockMasks:
    """I-JEPA masks for a batch: ``context`` (B, Kc) and ``targets`` (B, P, Kt) sorted token indices.

    ``available`` (B,) counts each image's context tokens before the cut to Kc; ``relaxed`` (B,) is how many
    target blocks were dropped from the context constraint (0 = context disjoint from every target).
    """

    context: torch.Tensor
    targets: torch.Tensor
    available: torch.Tensor
    relaxed: torch.Tensor
    varying_dims: ClassVar[dict[str, tuple[int, ...]]] = {"context": (1,), "targets": (2,)}  # Kc, Kt per batch

    def to(self, device: torch.device) -> MultiBlockMasks:
        from jepalab.data.dataset import to_device

        return MultiBlockMasks(*(to_device(getattr(self, f.name), device) for f in fields(self)))

    def rows(self, start: int, stop: int) -> MultiBlockMasks:
        """Masks of images ``start:stop`` (a rank's share of a global batch)."""
        return MultiBlockMasks(*(getattr(self, f.name)[start:stop] for f in fields(self)))

    def membership(self, num_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(context, target) bool (B, num_tokens); target = the union of the target blocks."""
        return _membership(len(self.context), num_tokens, self.context, self.targets)


@dataclass(frozen=True)
class RandomMasks:
    """MAE masks: ``keep`` (B, K) visible token ids, ``masked`` (B, N − K) removed ids, ``restore`` (B, N) the
    inverse shuffle (``argsort`` of keep‖masked), as ``random_masking`` returns."""

    keep: torch.Tensor
    masked: torch.Tensor
    restore: torch.Tensor
    varying_dims: ClassVar[dict[str, tuple[int, ...]]] = {}  # a fixed ratio: every batch has the same shapes

    def to(self, device: torch.device) -> RandomMasks:
        from jepalab.data.dataset import to_device

        return RandomMasks(*(to_device(getattr(self, f.name), device) for f in fields(self)))

    def rows(self, start: int, stop: int) -> RandomMasks:
        return RandomMasks(*(getattr(self, f.name)[start:stop] for f in fields(self)))

    def membership(self, num_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(context, target) bool (B, num_tokens): the visible and the removed patches."""
        return _membership(len(self.keep), num_tokens, self.keep, self.masked)


def random_masks(batch: int, num_tokens: int, ratio: float, generator: torch.Generator) -> RandomMasks:
    """Per-image random masking: argsort of uniform noise, keep the first ``int(N·(1 − ratio))`` (MAE)."""
    keep_count = int(num_tokens * (1 - ratio))
    if keep_count < 1:
        raise ValueError(f"mask ratio {ratio} keeps no token of {num_tokens}")
    noise = torch.rand(batch, num_tokens, generator=generator)
    shuffle = torch.argsort(noise, dim=1)  # ascending: small noise is kept
    return RandomMasks(shuffle[:, :keep_count], shuffle[:, keep_count:], torch.argsort(shuffle, dim=1))


@dataclass(frozen=True)
class MaskDraws:
    """All random numbers of one multi-block batch: block-size uniforms and integer block positions.

    ``target_top``/``target_left`` (B, P); ``context_top``/``context_left`` (B, R, T): T candidate positions in
    each of R rounds, round r ignoring the last r target blocks.
    """

    target_r: float
    context_r: float
    target_top: torch.Tensor
    target_left: torch.Tensor
    context_top: torch.Tensor
    context_left: torch.Tensor


@dataclass
class MaskConfig:
    """The ``mask`` section: :class:`MultiBlockMasker`'s settings; empty values = official on grids of 100+ tokens,
    small-grid defaults below."""

    num_targets: int | None = param(None, ge=1, help="target blocks per image (auto: 4, or 2 on small grids)")
    target_scale: tuple[float, float] = param((0.15, 0.2), gt=0, le=1, help="target block area range")
    target_aspect: tuple[float, float] = param((0.75, 1.5), gt=0, help="target block aspect range")
    context_scale: tuple[float, float] = param((0.85, 1.0), gt=0, le=1, help="context block area range")
    min_keep: int | None = param(None, ge=0, help="a block must keep more than this many tokens (auto: 10 / 4)")
    allow_overlap: bool = param(False, help="let the context overlap the targets")
    full_grid: bool | None = param(None, help="blocks may touch the last row/column (auto: small grids only)")


class MultiBlockMasker:
    """Vectorised I-JEPA multi-block mask sampler on a (H, W) token grid (see the module docstring)."""

    def __init__(self, grid: tuple[int, int], num_targets: int | None = None,
                 target_scale: tuple[float, float] = (0.15, 0.2), target_aspect: tuple[float, float] = (0.75, 1.5),
                 context_scale: tuple[float, float] = (0.85, 1.0), min_keep: int | None = None,
                 allow_overlap: bool = False, full_grid: bool | None = None, tries: int = 20):
        small = grid[0] * grid[1] < SMALL_GRID
        self.grid = grid
        self.num_targets = num_targets if num_targets is not None else (2 if small else 4)
        self.min_keep = min_keep if min_keep is not None else (4 if small else 10)
        self.full_grid = full_grid if full_grid is not None else small
        self.target_scale, self.target_aspect = target_scale, target_aspect
        self.context_scale, self.allow_overlap, self.tries = context_scale, allow_overlap, tries
        self.rounds = 1 if allow_overlap else self.num_targets + 1
        for name, scale, aspect in (("target", target_scale, target_aspect), ("context", context_scale, (1.0, 1.0))):
            smallest = min(h * w for h, w in (self.block_size(r, scale, aspect) for r in torch.linspace(0, 1, 2001)))
            if smallest <= self.min_keep:
                raise ValueError(f"mask: a {name} block can be as small as {smallest} tokens on the "
                                 f"{grid[0]}×{grid[1]} grid, not more than min_keep = {self.min_keep}; raise "
                                 f"mask.{name}_scale or lower mask.min_keep")

    def settings(self) -> dict[str, object]:
        """The resolved settings (auto values filled in)."""
        return {"grid": list(self.grid), "num_targets": self.num_targets, "target_scale": list(self.target_scale),
                "target_aspect": list(self.target_aspect), "context_scale": list(self.context_scale),
                "min_keep": self.min_keep, "allow_overlap": self.allow_overlap, "full_grid": self.full_grid}

    def block_size(self, r: float, scale: tuple[float, float], aspect: tuple[float, float]) -> tuple[int, int]:
        """(h, w) of a block from one uniform ``r`` (official ``_sample_block_size``)."""
        r = float(r)
        keep = int(self.grid[0] * self.grid[1] * (scale[0] + r * (scale[1] - scale[0])))
        ratio = aspect[0] + r * (aspect[1] - aspect[0])
        h, w = round(math.sqrt(keep * ratio)), round(math.sqrt(keep / ratio))
        limit_h, limit_w = (self.grid[0], self.grid[1]) if self.full_grid else (self.grid[0] - 1, self.grid[1] - 1)
        return min(h, limit_h), min(w, limit_w)

    def _positions(self, side: int, extent: int) -> int:
        """Number of top (or left) positions of a block of length ``side`` on an axis of ``extent`` tokens."""
        return extent - side + 1 if self.full_grid else extent - side

    def draw(self, batch: int, generator: torch.Generator) -> MaskDraws:
        """Every random number one batch needs (sizes first, then positions), from ``generator``."""
        target_r, context_r = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
        (th, tw), (ch, cw) = self.sizes(target_r, context_r)
        p, shape = self.num_targets, (batch, self.rounds, self.tries)
        return MaskDraws(
            target_r, context_r,
            torch.randint(0, self._positions(th, self.grid[0]), (batch, p), generator=generator),
            torch.randint(0, self._positions(tw, self.grid[1]), (batch, p), generator=generator),
            torch.randint(0, self._positions(ch, self.grid[0]), shape, generator=generator),
            torch.randint(0, self._positions(cw, self.grid[1]), shape, generator=generator))

    def sizes(self, target_r: float, context_r: float) -> tuple[tuple[int, int], tuple[int, int]]:
        """(target block size, context block size) for the two batch uniforms."""
        return (self.block_size(target_r, self.target_scale, self.target_aspect),
                self.block_size(context_r, self.context_scale, (1.0, 1.0)))

    def build(self, draws: MaskDraws) -> MultiBlockMasks:
        """Deterministic part: block masks, the first valid context candidate, the cut to the batch minimum."""
        (th, tw), (ch, cw) = self.sizes(draws.target_r, draws.context_r)
        height, width = self.grid
        b, p = draws.target_top.shape
        rows, cols = torch.arange(height), torch.arange(width)

        def boxes(top: torch.Tensor, left: torch.Tensor, h: int, w: int) -> torch.Tensor:
            in_rows = (rows >= top[..., None]) & (rows < top[..., None] + h)  # (..., H)
            in_cols = (cols >= left[..., None]) & (cols < left[..., None] + w)  # (..., W)
            return in_rows[..., :, None] & in_cols[..., None, :]  # (..., H, W)

        targets = boxes(draws.target_top, draws.target_left, th, tw)  # (B, P, H, W)
        # Allowed context region of round r: outside the first P − r target blocks (everything when overlapping).
        covered = torch.zeros(b, p + 1, height, width, dtype=torch.bool)
        if not self.allow_overlap:
            covered[:, 1:] = targets.cumsum(dim=1) > 0  # covered[:, j] = union of the first j targets
        allowed = ~covered.flip(1)[:, :self.rounds]  # (B, R, H, W); round r avoids the first P − r targets
        # Tokens of each candidate box inside its round's allowed region, by an integral image.
        integral = torch.zeros(b, self.rounds, height + 1, width + 1, dtype=torch.int32)
        integral[:, :, 1:, 1:] = allowed.int().cumsum(2).cumsum(3)
        t, l = draws.context_top, draws.context_left  # (B, R, T)

        def at(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            return integral.flatten(2).gather(2, r * (width + 1) + c)

        counts = at(t + ch, l + cw) - at(t, l + cw) - at(t + ch, l) + at(t, l)  # (B, R, T)
        valid = (counts > self.min_keep).flatten(1)  # (B, R·T), in draw order
        if not bool(valid.any(dim=1).all()):
            raise ValueError(f"mask: no context block of {ch}×{cw} keeps more than min_keep = {self.min_keep} tokens")
        first = valid.to(torch.int8).argmax(dim=1)  # first valid candidate of each image
        round_ = first // self.tries
        pick = first[:, None]
        top = t.flatten(1).gather(1, pick).squeeze(1)
        left = l.flatten(1).gather(1, pick).squeeze(1)
        context = boxes(top, left, ch, cw) & allowed[torch.arange(b), round_]  # (B, H, W)
        context = context.flatten(1)  # (B, N)
        available = context.sum(dim=1)
        keep = int(available.min())
        context &= context.cumsum(dim=1) <= keep  # first `keep` tokens in raster order
        return MultiBlockMasks(
            context=context.nonzero()[:, 1].view(b, keep),
            targets=targets.flatten(2).nonzero()[:, 2].view(b, p, th * tw),
            available=available,
            relaxed=round_)

    def __call__(self, batch: int, generator: torch.Generator) -> MultiBlockMasks:
        """Masks for ``batch`` images from ``generator``."""
        return self.build(self.draw(batch, generator))
