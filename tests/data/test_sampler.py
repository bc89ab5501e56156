"""Deterministic data order: epoch permutations, rank slices, seeded generator streams."""

import pytest
import torch

from jepalab.data import EpochPlan, derive_seed, step_generator


def test_each_index_once_per_epoch() -> None:
    """An epoch's batches hold distinct indices; the dropped remainder is smaller than a batch; epochs reshuffle."""
    plan = EpochPlan(103, 10, seed=3)
    assert plan.steps_per_epoch == 10
    for epoch in range(3):
        seen = torch.cat([plan.global_indices(epoch * 10 + s) for s in range(10)])
        assert len(seen) == 100 and len(seen.unique()) == 100 and int(seen.max()) < 103
    first, second = plan.global_indices(0), plan.global_indices(10)
    assert not torch.equal(first, second)


def test_order_is_a_function_of_seed_and_step() -> None:
    """Two plans with the same seed agree at any step, visited in any order; another seed differs."""
    a, b = EpochPlan(50, 5, seed=1), EpochPlan(50, 5, seed=1)
    steps = [17, 3, 40, 17, 0]
    assert all(torch.equal(a.global_indices(s), b.global_indices(s)) for s in reversed(steps))
    assert not torch.equal(a.global_indices(0), EpochPlan(50, 5, seed=2).global_indices(0))


def test_rank_slices_partition_the_global_batch() -> None:
    """The ranks' local batches, concatenated in rank order, are the global batch."""
    world = 4
    plans = [EpochPlan(64, 16, seed=0, rank=r, world=world) for r in range(world)]
    for step in (0, 5, 9):
        parts = [p.local_indices(step) for p in plans]
        assert all(len(part) == 4 for part in parts)
        assert torch.equal(torch.cat(parts), plans[0].global_indices(step))
    batches = list(plans[1].batches(2, 5))
    assert len(batches) == 3 and torch.equal(batches[0], plans[1].local_indices(2))


def test_plan_errors() -> None:
    """A global batch not divisible by the ranks, or larger than the dataset, is refused."""
    with pytest.raises(ValueError, match="divisible"):
        EpochPlan(100, 10, 0, rank=0, world=3)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        EpochPlan(8, 16, 0)


def test_seed_streams_are_independent_and_reproducible() -> None:
    """derive_seed depends on seed, stream and index; step_generator reproduces its draws."""
    seeds = {derive_seed(s, stream, i) for s in (0, 1) for stream in ("crops", "masks") for i in (0, 1)}
    assert len(seeds) == 8 and all(0 <= s < 2**63 for s in seeds)
    a = torch.rand(5, generator=step_generator(0, "masks", 3))
    assert torch.equal(a, torch.rand(5, generator=step_generator(0, "masks", 3)))
