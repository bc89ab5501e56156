"""MAE and I-JEPA objectives: patchify, the MAE loss against a plain reference, I-JEPA targets, loss and EMA."""

import copy

import pytest
import torch
import torch.nn.functional as F

from jepalab.vision.methods.ijepa import IJEPA, Predictor
from jepalab.vision.methods.mae import MAE, patchify
from jepalab.vision.models.masks import MultiBlockMasker, random_masks
from jepalab.vision.models.vit import ViT


def generator(seed: int) -> torch.Generator:
    """A seeded CPU generator."""
    return torch.Generator().manual_seed(seed)


def encoder(cls_token: bool = False, channels: int = 1) -> ViT:
    """Pico ViT, 28 px, 4-px patches."""
    torch.manual_seed(0)
    return ViT(28, 4, channels, 32, 2, 2, cls_token=cls_token)


def test_patchify_ordering_and_inverse() -> None:
    """Token t = patch (t // W, t % W); values ordered (row, column, channel); a reshape undoes it."""
    images = torch.randn(2, 3, 8, 12)
    tokens = patchify(images, 4)
    assert tokens.shape == (2, 6, 48)
    patch = images[1, :, 4:8, 8:12]  # grid row 1, column 2 → token 1·3 + 2
    torch.testing.assert_close(tokens[1, 5], patch.permute(1, 2, 0).reshape(-1))
    back = tokens.view(2, 2, 3, 4, 4, 3).permute(0, 5, 1, 3, 2, 4).reshape(2, 3, 8, 12)
    torch.testing.assert_close(back, images)


def reference_mae_loss(pred: torch.Tensor, images: torch.Tensor, masked: torch.Tensor, norm_pix: bool) -> torch.Tensor:
    """The official recipe over all N patches: per-patch mean squared error, then the mean over removed patches."""
    target = patchify(images, 4)
    if norm_pix:
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    mask = torch.zeros(target.shape[:2])
    mask.scatter_(1, masked, 1.0)
    full = torch.zeros_like(target)
    full.scatter_(1, masked.unsqueeze(-1).expand(-1, -1, target.shape[-1]), pred)
    per_patch = (full - target).square().mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()


@pytest.mark.parametrize("norm_pix", [False, True])
@pytest.mark.parametrize("cls_token", [False, True])
def test_mae_loss_equals_reference(norm_pix: bool, cls_token: bool) -> None:
    """MAE.forward = the masked mean of per-patch errors, with and without norm_pix_loss and class token."""
    torch.manual_seed(1)
    model = MAE(encoder(cls_token, channels=2), decoder_dim=32, decoder_depth=2, decoder_heads=2,
                norm_pix_loss=norm_pix)
    images = torch.randn(3, 2, 28, 28)
    masks = random_masks(3, 49, 0.75, generator(0))
    pred = model.decode(model.encoder(images, keep=masks.keep), masks)
    assert pred.shape == (3, 37, 32)
    expected = reference_mae_loss(pred, images, masks.masked, norm_pix)
    torch.testing.assert_close(model.loss(*model(images, masks)), expected, rtol=1e-5, atol=1e-6)


def test_mae_decoder_prediction_matches_full_decoder() -> None:
    """The pruned last decoder block gives the full decoder's outputs at the removed positions."""
    model = MAE(encoder(True), decoder_dim=32, decoder_depth=2, decoder_heads=2).eval()
    images = torch.randn(2, 1, 28, 28)
    masks = random_masks(2, 49, 0.75, generator(1))
    latent = model.encoder(images, keep=masks.keep)
    x = model.decoder_embed(latent)
    tokens = torch.cat([x[:, 1:], model.mask_token.expand(2, 49 - 12, -1)], dim=1)
    tokens = tokens.gather(1, masks.restore.unsqueeze(-1).expand(-1, -1, 32)) + model.decoder_pos_embed
    tokens = torch.cat([x[:, :1], tokens], dim=1)
    for block in model.decoder_blocks:
        tokens = block(tokens)
    full = model.decoder_pred(model.decoder_norm(tokens))[:, 1:]
    expected = full.gather(1, masks.masked.unsqueeze(-1).expand(-1, -1, 16))
    torch.testing.assert_close(model.decode(latent, masks), expected, atol=1e-5, rtol=1e-5)


def ijepa(loss: str = "smooth_l1") -> IJEPA:
    """Pico I-JEPA on the 7×7 grid."""
    enc = encoder()
    torch.manual_seed(2)
    return IJEPA(enc, Predictor(enc.grid, 32, 16, 2, 2), loss)


def test_ijepa_targets_and_loss() -> None:
    """Targets = LayerNorm of the full target-encoder output at the target ids (block-major); loss finite, > 0."""
    model = ijepa()
    images = torch.randn(4, 1, 28, 28)
    masks = MultiBlockMasker((7, 7))(4, generator(0))
    p, kt = masks.targets.shape[1:]
    full = F.layer_norm(model.target_encoder(images), (32,))
    expected = torch.stack([torch.stack([full[i, masks.targets[i, j]] for i in range(4)]) for j in range(p)])
    torch.testing.assert_close(model.targets(images, masks.targets), expected.view(p * 4, kt, 32),
                               atol=1e-5, rtol=1e-5)
    z = model.predictor(model.encoder(images, keep=masks.context), masks.context, masks.targets)
    assert z.shape == (p * 4, kt, 32)
    loss = model.loss(*model(images, masks))
    assert torch.isfinite(loss) and float(loss.detach()) > 0
    torch.testing.assert_close(loss, F.smooth_l1_loss(z, expected.view(p * 4, kt, 32)), atol=1e-6, rtol=1e-5)
    loss.backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert model.encoder.blocks[0].attn.qkv.weight.grad is not None


def test_ijepa_l2_loss_is_mse() -> None:
    """loss=l2 is the mean squared error; an unknown loss is refused."""
    model = ijepa("l2")
    images = torch.randn(2, 1, 28, 28)
    masks = MultiBlockMasker((7, 7))(2, generator(4))
    z = model.predictor(model.encoder(images, keep=masks.context), masks.context, masks.targets)
    torch.testing.assert_close(model.loss(*model(images, masks)), F.mse_loss(z, model.targets(images, masks.targets)))
    with pytest.raises(ValueError, match=r"ijepa\.loss"):
        IJEPA(encoder(), Predictor((7, 7), 32, 16, 1, 2), "cosine")


@pytest.mark.parametrize("momentum", [1.0, 0.0, 0.9])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_ema_update(momentum: float, as_tensor: bool) -> None:
    """θ̄ ← m·θ̄ + (1 − m)·θ: m = 1 keeps the target, m = 0 copies the encoder; m a float or a 0-d tensor."""
    model = ijepa()
    with torch.no_grad():
        for param in model.encoder.parameters():
            param.add_(torch.randn_like(param))
    before = copy.deepcopy(model.target_encoder.state_dict())
    model.update_target(torch.tensor(momentum) if as_tensor else momentum)
    online = model.encoder.state_dict()
    for name, value in model.target_encoder.state_dict().items():
        torch.testing.assert_close(value, momentum * before[name] + (1 - momentum) * online[name],
                                   atol=1e-6, rtol=1e-6)
