"""Batched augmentations: RandomResizedCrop boxes, crop-resize equal to crop + F.interpolate, flips, normalisation."""

import pytest
import torch
import torch.nn.functional as F

from jepalab.data import augment, centre_boxes, crop_resize, eval_view, normalise, sample_crops, sample_flips


def generator(seed: int) -> torch.Generator:
    """A seeded CPU generator."""
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("height, width", [(28, 28), (20, 37)])
def test_crop_boxes_in_range(height: int, width: int) -> None:
    """Boxes lie inside the image with positive sides, and fitted boxes respect the area and aspect ranges."""
    scale, ratio = (0.3, 1.0), (3 / 4, 4 / 3)
    boxes = sample_crops(2000, height, width, scale, ratio, generator(0))
    top, left, h, w = boxes.unbind(1)
    assert boxes.shape == (2000, 4) and boxes.dtype == torch.float64
    assert bool((top >= 0).all() and (left >= 0).all() and (h >= 1).all() and (w >= 1).all())
    assert bool((top + h <= height).all() and (left + w <= width).all())
    assert torch.equal(boxes, boxes.round())
    area = h * w / (height * width)
    # rounding each side moves the area by at most about one row and one column
    slack = (h + w + 1) / (height * width)
    assert bool((area >= scale[0] - slack).all() and (area <= scale[1] + slack).all())
    assert float(area.std()) > 0.1  # spread over the range, not a constant box


def test_crop_boxes_deterministic_per_generator() -> None:
    """Same seed, same boxes and flips; another seed, other boxes."""
    a = sample_crops(64, 28, 28, (0.2, 1.0), (0.75, 1.33), generator(5))
    b = sample_crops(64, 28, 28, (0.2, 1.0), (0.75, 1.33), generator(5))
    c = sample_crops(64, 28, 28, (0.2, 1.0), (0.75, 1.33), generator(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(sample_flips(64, generator(1)), sample_flips(64, generator(1)))
    flips = sample_flips(4000, generator(2))
    assert flips.dtype == torch.bool and 0.45 < float(flips.double().mean()) < 0.55


def test_crop_fallback_is_clamped_centre_crop() -> None:
    """When no draw fits (full area at aspect ≥ 2), the centre crop clamped to the ratio range is used."""
    boxes = sample_crops(5, 20, 20, (1.0, 1.0), (2.0, 3.0), generator(0))
    assert boxes.tolist() == [[5.0, 0.0, 10.0, 20.0]] * 5


def reference_crop_resize(images: torch.Tensor, boxes: torch.Tensor, size: int, flips: torch.Tensor) -> torch.Tensor:
    """Crop each image, ``F.interpolate(bilinear, align_corners=False)``, then flip: one image at a time."""
    out = []
    for image, (top, left, h, w), flip in zip(images, boxes.long().tolist(), flips.tolist()):
        crop = image[:, top:top + h, left:left + w].unsqueeze(0)
        resized = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False)[0]
        out.append(resized.flip(-1) if flip else resized)
    return torch.stack(out)


@pytest.mark.parametrize("size", [8, 28, 40])
def test_crop_resize_equals_crop_then_interpolate(size: int) -> None:
    """Down- and up-sampling, flipped or not, equal the per-image reference to float32 precision (pixels 0–255)."""
    images = torch.rand(48, 3, 28, 32, generator=generator(1)) * 255
    boxes = sample_crops(48, 28, 32, (0.1, 1.0), (0.5, 2.0), generator(2))
    flips = sample_flips(48, generator(3))
    ours = crop_resize(images, boxes, size, flips)
    assert ours.shape == (48, 3, size, size)
    torch.testing.assert_close(ours, reference_crop_resize(images, boxes, size, flips), atol=1e-3, rtol=1e-5)
    unflipped = crop_resize(images, boxes, size)
    torch.testing.assert_close(unflipped, reference_crop_resize(images, boxes, size, torch.zeros(48, dtype=torch.bool)),
                               atol=1e-3, rtol=1e-5)
    assert not torch.allclose(ours[flips], unflipped[flips])


def test_full_box_at_same_size_is_identity() -> None:
    """The whole image resized to its own size is unchanged."""
    images = torch.rand(3, 1, 12, 12, generator=generator(4))
    boxes = torch.tensor([[0.0, 0.0, 12.0, 12.0]]).expand(3, 4)
    torch.testing.assert_close(crop_resize(images, boxes, 12), images, atol=1e-6, rtol=0)


def test_augment_and_eval_view_normalise() -> None:
    """augment = crop_resize then (x/255 − mean)/std; eval_view at the stored size only normalises."""
    images = torch.randint(0, 256, (6, 1, 16, 16), dtype=torch.uint8, generator=generator(7))
    boxes = sample_crops(6, 16, 16, (0.3, 1.0), (0.75, 1.33), generator(8))
    out = augment(images, boxes, None, 8, (0.25,), (0.5,))
    expected = (crop_resize(images.float(), boxes, 8) / 255 - 0.25) / 0.5
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(eval_view(images, 16, (0.25,), (0.5,)), (images.float() / 255 - 0.25) / 0.5)
    centre = eval_view(images, 8, (0.0,), (1.0,))
    torch.testing.assert_close(centre, images[:, :, 4:12, 4:12].float() / 255)
    assert centre_boxes(2, 16, 20, 12).tolist() == [[2.0, 4.0, 12.0, 12.0]] * 2


def test_normalise_per_channel() -> None:
    """Each channel uses its own mean and std."""
    images = torch.full((1, 2, 2, 2), 127.5)
    out = normalise(images, (0.5, 0.25), (0.5, 0.25))
    assert out[0, 0].unique().tolist() == [0.0] and out[0, 1].unique().tolist() == [1.0]
