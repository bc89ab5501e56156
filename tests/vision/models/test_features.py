"""Pooled read-outs of an encoder and the collapse report on a constructed collapsed encoder."""

import torch

from jepalab.eval import is_collapsed
from jepalab.vision.models.features import READOUTS, collapse_report, encode, pool
from jepalab.vision.models.vit import ViT


def vit(cls_token: bool = False) -> ViT:
    torch.manual_seed(0)
    return ViT(28, 4, 1, dim=32, depth=3, heads=2, cls_token=cls_token, content_share=0.38)


def test_every_readout_shape_and_definition() -> None:
    model, images = vit(cls_token=True), torch.randn(5, 1, 28, 28)
    dims = {name: encode(model, images, name).shape for name in READOUTS}
    assert dims == {"mean": (5, 32), "last4": (5, 3 * 32), "grid2": (5, 4 * 32)}  # depth 3: "last4" = all 3
    model.eval()
    with torch.no_grad():
        tokens = model(images)
        states = model.hidden_states(images, 3)
    torch.testing.assert_close(encode(model, images, "mean"), tokens[:, 1:].mean(1))  # class token left out
    torch.testing.assert_close(encode(model, images, "last4")[:, -32:], tokens[:, 1:].mean(1))
    torch.testing.assert_close(encode(model, images, "last4")[:, :32], states[0][:, 1:].mean(1))
    grid = tokens[:, 1:].reshape(5, 7, 7, 32)
    top_left = grid[:, :4, :4].mean(dim=(1, 2))  # adaptive pooling of 7 → 2 uses rows/cols 0–3 and 3–6
    torch.testing.assert_close(pool(model, tokens, "grid2").view(5, 32, 4)[:, :, 0], top_left)
    torch.testing.assert_close(encode(model, images, "mean", batch_size=2), encode(model, images, "mean"))


def test_collapse_report_flags_an_encoder_that_ignores_its_input() -> None:
    images = torch.randn(64, 1, 28, 28)
    healthy, collapsed = vit(), vit()
    with torch.no_grad():
        collapsed.patch_embed.weight.zero_()  # every image → the same tokens (positions only)
    report = collapse_report({"ok": healthy, "dead": collapsed}, images)
    assert report["dead.content_share"] == 0.0 and report["ok.content_share"] > 0.3
    assert is_collapsed(report["dead.rankme_centred"], int(report["dead.dim"]))
    assert not is_collapsed(report["ok.rankme_centred"], int(report["ok.dim"]))
