"""The shared ViT: shapes, token selection, the pruned last block, sin-cos positions."""

import pytest
import torch

from jepalab.vision.models.vit import ViT, sincos_2d


def vit(cls_token: bool = False, channels: int = 1) -> ViT:
    """A pico ViT on 28-px images with 4-px patches (7×7 grid), seeded."""
    torch.manual_seed(0)
    return ViT(28, 4, channels, dim=32, depth=2, heads=2, cls_token=cls_token).eval()


def gather(tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """tokens (B, N, d) at ids (B, M) → (B, M, d)."""
    return torch.stack([t[i] for t, i in zip(tokens, ids)])


def test_shapes_with_and_without_keep() -> None:
    """All 49 tokens, or the K kept ones, plus the class token when present."""
    images = torch.randn(3, 1, 28, 28)
    keep = torch.stack([torch.randperm(49)[:10] for _ in range(3)])
    model = vit()
    assert model.grid == (7, 7) and model.num_patches == 49
    assert model(images).shape == (3, 49, 32)
    assert model(images, keep=keep).shape == (3, 10, 32)
    with_cls = vit(cls_token=True)
    assert with_cls(images).shape == (3, 50, 32)
    assert with_cls.patch_tokens(with_cls(images, keep=keep)).shape == (3, 10, 32)


def test_keep_equals_running_on_the_selected_tokens() -> None:
    """keep selects tokens after the positions are added: same as embedding, gathering, then the blocks."""
    model = vit()
    images = torch.randn(2, 1, 28, 28)
    keep = torch.tensor([[0, 5, 48, 20], [7, 8, 9, 1]])
    x = gather(model.embed(images), keep)
    for block in model.blocks:
        x = block(x)
    torch.testing.assert_close(model(images, keep=keep), model.norm(x))


def test_pruned_last_block_equals_full_forward_rows() -> None:
    """out= computes only the requested rows of the last block, equal to the full forward there."""
    model = vit()
    images = torch.randn(4, 1, 28, 28)
    out = torch.stack([torch.randperm(49)[:12] for _ in range(4)])
    full = model(images)
    pruned = model(images, out=out)
    assert pruned.shape == (4, 12, 32)
    torch.testing.assert_close(pruned, gather(full, out), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(pruned, gather(full, out.roll(1, dims=1)), atol=1e-3)


def test_out_with_keep_or_class_token_is_refused() -> None:
    """out= addresses patch positions of an unmasked encoder only."""
    images = torch.randn(1, 1, 28, 28)
    with pytest.raises(ValueError, match="out="):
        vit(cls_token=True)(images, out=torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match="out="):
        vit()(images, keep=torch.tensor([[1, 2, 3]]), out=torch.tensor([[0, 1]]))


def test_patch_size_must_divide_image() -> None:
    """A 28-px image cannot be cut into 5-px patches; a width must split over the heads."""
    with pytest.raises(ValueError, match="not divisible by the patch size 5"):
        ViT(28, 5, 1, 32, 2, 2)
    with pytest.raises(ValueError, match="heads"):
        ViT(28, 4, 1, 36, 2, 8)


def test_sincos_2d_properties() -> None:
    """Shape, range, the column half depends only on the column and the row half only on the row, all distinct."""
    pos = sincos_2d(16, (3, 5)).view(3, 5, 16)
    assert pos.dtype == torch.float32 and bool((pos.abs() <= 1).all())
    assert torch.equal(pos[0, :, :8], pos[2, :, :8]) and torch.equal(pos[:, 0, 8:], pos[:, 4, 8:])
    assert not torch.equal(pos[0, 0, :8], pos[0, 1, :8]) and not torch.equal(pos[0, 0, 8:], pos[1, 0, 8:])
    torch.testing.assert_close(pos[..., :4].square() + pos[..., 4:8].square(), torch.ones(3, 5, 4))
    assert pos[0, 0].tolist() == [0.0] * 4 + [1.0] * 4 + [0.0] * 4 + [1.0] * 4
    assert torch.allclose(pos[0, 1, 0], torch.tensor(1.0).sin())  # frequency 1 for the first pair
    flat = pos.view(15, 16)
    assert torch.cdist(flat, flat).add(torch.eye(15)).min() > 0.1
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d(18, (2, 2))


@pytest.mark.parametrize(("size", "patch", "channels"), [("pico", 4, 1), ("micro", 4, 1), ("tiny", 4, 1),
                                                         ("small", 16, 3), ("tiny", 4, 3)])
def test_content_share_at_init_matches_the_setting(size: str, patch: int, channels: int) -> None:
    from jepalab.vision.models.vit import VIT_SIZES, measure_content_share, patch_std

    s = VIT_SIZES[size]
    torch.manual_seed(1)
    image = 8 * patch if size == "small" else 28 if patch == 4 else 32
    images = torch.randn(64, channels, image, image)  # standardised pixels
    fixed = ViT(image, patch, channels, s.dim, 1, s.heads, content_share=0.38)
    assert 0.32 <= measure_content_share(fixed, images) <= 0.44  # documented range: 0.38 ± 0.06
    official = ViT(image, patch, channels, s.dim, 1, s.heads, init="trunc_normal")  # trunc-normal(0.02)
    expected = 0.02 ** 2 * channels * patch ** 2
    assert measure_content_share(official, images) == pytest.approx(expected / (expected + 0.5), rel=0.25)
    assert patch_std(0.38, 768) == pytest.approx(0.02, rel=0.05)  # the official ViT-B/16 at 224 px, RGB
    with pytest.raises(ValueError, match="content share"):
        patch_std(1.0, 16)


def test_hidden_states_end_with_the_forward_output() -> None:
    model = vit(cls_token=True)
    images = torch.randn(3, 1, 28, 28)
    states = model.hidden_states(images, 2)
    assert [s.shape for s in states] == [(3, 50, 32)] * 2
    torch.testing.assert_close(states[-1], model(images))
    with pytest.raises(ValueError, match="last"):
        model.hidden_states(images, 3)
