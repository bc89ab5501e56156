"""I-JEPA multi-block masks and MAE random masks."""

import pytest
import torch

from jepalab.vision.models.masks import MultiBlockMasker, random_masks


def generator(seed: int) -> torch.Generator:
    """A seeded CPU generator."""
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("grid", [(7, 7), (14, 14)])
def test_multiblock_shapes_disjoint_and_counts(grid: tuple[int, int]) -> None:
    """Sorted, unique, in-range ids; targets disjoint from the context (no relaxation); counts in range."""
    masker = MultiBlockMasker(grid)
    n = grid[0] * grid[1]
    for seed in range(5):
        draws = masker.draw(32, generator(seed))
        (th, tw), (ch, cw) = masker.sizes(draws.target_r, draws.context_r)
        masks = masker.build(draws)
        b, kc = masks.context.shape
        _, p, kt = masks.targets.shape
        assert b == 32 and p == masker.num_targets
        assert kc > masker.min_keep and kc == int(masks.available.min()) and int(masks.available.max()) <= ch * cw
        assert kt == th * tw and masker.min_keep < kt < 0.3 * n and ch * cw >= 0.7 * n
        for i in range(b):
            context, targets = masks.context[i], masks.targets[i]
            assert bool((context.diff() > 0).all()) and bool((targets.diff(dim=1) > 0).all())
            assert 0 <= int(context.min()) and int(context.max()) < n and int(targets.max()) < n
            if int(masks.relaxed[i]) == 0:
                assert not set(context.tolist()) & set(targets.flatten().tolist())


def test_target_blocks_are_rectangles() -> None:
    """Each target block is a filled h×w rectangle of the grid."""
    masks = MultiBlockMasker((10, 10))(8, generator(0))
    for block in masks.targets.flatten(0, 1):
        rows, cols = block // 10, block % 10
        h, w = int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1
        assert h * w == len(block)


def test_deterministic_per_generator() -> None:
    """Same seed, same masks; another seed, other masks."""
    masker = MultiBlockMasker((7, 7))
    a, b, c = masker(16, generator(1)), masker(16, generator(1)), masker(16, generator(2))
    assert torch.equal(a.context, b.context) and torch.equal(a.targets, b.targets)
    assert not (torch.equal(a.context, c.context) and torch.equal(a.targets, c.targets))


def test_small_grid_defaults_leave_a_reasonable_context() -> None:
    """7×7: 2 targets, min_keep 4, full grid; the context keeps more than 8 tokens on average, rarely relaxed."""
    masker = MultiBlockMasker((7, 7))
    assert (masker.num_targets, masker.min_keep, masker.full_grid) == (2, 4, True)
    sizes = [masker(64, generator(s)).context.shape[1] for s in range(20)]
    assert min(sizes) > 4 and sum(sizes) / len(sizes) > 8
    large = MultiBlockMasker((14, 14))
    assert (large.num_targets, large.min_keep, large.full_grid) == (4, 10, False)


def test_overlap_allowed_gives_a_full_context_block() -> None:
    """allow_overlap=True: the context is a whole block that may contain target tokens."""
    masks = MultiBlockMasker((7, 7), allow_overlap=True)(32, generator(0))
    assert int(masks.relaxed.max()) == 0
    overlaps = [bool(set(c.tolist()) & set(t.flatten().tolist())) for c, t in zip(masks.context, masks.targets)]
    assert any(overlaps)


def test_unattainable_min_keep_is_an_error() -> None:
    """A target block that can be smaller than min_keep tokens is refused up front."""
    with pytest.raises(ValueError, match="min_keep"):
        MultiBlockMasker((7, 7), min_keep=10)
    with pytest.raises(ValueError, match="target"):
        MultiBlockMasker((4, 4))


def test_rows_slices_every_field() -> None:
    """rows(a, b) is the masks of images a..b−1."""
    masks = MultiBlockMasker((7, 7))(8, generator(3))
    part = masks.rows(2, 5)
    assert torch.equal(part.context, masks.context[2:5]) and torch.equal(part.targets, masks.targets[2:5])
    assert torch.equal(part.available, masks.available[2:5])


def test_random_masks_partition_and_restore() -> None:
    """keep ∪ masked is every token once; restore undoes the shuffle; the kept count is int(N·(1 − ratio))."""
    masks = random_masks(6, 49, 0.75, generator(0))
    assert masks.keep.shape == (6, 12) and masks.masked.shape == (6, 37)
    shuffle = torch.cat([masks.keep, masks.masked], dim=1)
    assert torch.equal(shuffle.sort(dim=1).values, torch.arange(49).expand(6, 49))
    assert torch.equal(shuffle.gather(1, masks.restore), torch.arange(49).expand(6, 49))
    again = random_masks(6, 49, 0.75, generator(0))
    assert torch.equal(again.keep, masks.keep)
    assert not torch.equal(masks.keep[0].sort().values, masks.keep[1].sort().values)
    with pytest.raises(ValueError, match="keeps no token"):
        random_masks(1, 4, 0.9, generator(0))
