"""EC-IJEPA (our reading of arXiv 2410.10773): conditioning tokens stay out of outputs and pooled features, the
unconditioned limit is I-JEPA exactly, variable mask lengths, the CLI, evaluation conditioning and DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pretrain_helpers import RELATIVE_TOLERANCE, free_port, step_losses

from jepalab.cli import main
from jepalab.config import load_config
from jepalab.data import step_generator
from jepalab.vision import PretrainConfig, load_encoder
from jepalab.vision.methods import method_spec
from jepalab.vision.methods.ecijepa import ConditionedViT
from jepalab.vision.methods.ijepa import masker
from jepalab.vision.models.features import encode
from jepalab.vision.readout.evaluation import EvalSettings, evaluate_run
from jepalab.vision.training.build import build_model

PICO = ["model.size=pico", "model.patch_size=4", "data.image_size=28", "ijepa.predictor_dim=32",
        "ijepa.predictor_depth=1", "train.device=cpu", "train.threads=1", "train.precision=fp32"]


def config(method: str = "ecijepa", *extra: str) -> PretrainConfig:
    return load_config(PretrainConfig, None, [f"method={method}", *PICO, *extra])


def encoder(conditioning: str = "tokens") -> ConditionedViT:
    torch.manual_seed(0)
    return ConditionedViT(28, 4, 1, 32, 2, 2, conditioning=conditioning).eval()


@pytest.mark.parametrize("conditioning", ["tokens", "pooled"])
def test_conditioning_tokens_never_reach_outputs_or_pooled_features(conditioning: str) -> None:
    """Outputs sit at patch positions only (K kept, M' selected, N all) whatever the conditioning tokens; the
    conditioning changes the values, never the number of tokens or the pooled width."""
    vit, images = encoder(conditioning), torch.randn(3, 1, 28, 28)
    keep = torch.tensor([[0, 1, 2, 9, 10]] * 3)  # (B, K = 5)
    positions = torch.arange(20, 49).expand(3, -1)  # (B, M = 29)
    with torch.no_grad():
        plain = vit(images, keep=keep, positions=positions[:, :0])
        conditioned = vit(images, keep=keep, positions=positions)
        assert plain.shape == conditioned.shape == (3, 5, 32)
        assert not torch.allclose(plain, conditioned)  # the patches attend to (or add) the conditioning
        vit.condition_embed.add_(torch.randn_like(vit.condition_embed))
        assert vit(images, keep=keep, positions=positions).shape == (3, 5, 32)
        out = torch.tensor([[3, 7, 48]] * 3)
        full = vit(images, positions=positions)  # (B, N, dim)
        assert full.shape == (3, 49, 32)
        torch.testing.assert_close(vit(images, out=out, positions=positions), full[:, [3, 7, 48]])
    for condition in ("none", "full-grid"):
        vit.condition = condition
        assert encode(vit, images, "mean").shape == (3, 32)
        assert encode(vit, images, "tokens").shape == (3, 49, 32)
        assert encode(vit, images, "last4").shape == (3, 2 * 32)
        assert [s.shape for s in vit.hidden_states(images, 2)] == [(3, 49, 32)] * 2
    with torch.no_grad():
        vit.condition = "full-grid"
        grid = vit(images)
        vit.condition = "none"
        torch.testing.assert_close(grid, vit(images, positions=torch.arange(49).expand(3, -1)))


def test_zeroed_embedding_without_position_tokens_is_ijepa_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same seed, conditioning embedding zeroed, no conditioning tokens: the loss and every gradient equal
    ``method: ijepa``'s bit for bit (the ViT and predictor initialise as I-JEPA's)."""
    ijepa = build_model(config("ijepa"), method_spec("ijepa"), 1)
    ecijepa = build_model(config(), method_spec("ecijepa"), 1)
    with torch.no_grad():
        for vit in (ecijepa.encoder, ecijepa.target_encoder):
            vit.condition_embed.zero_()
    monkeypatch.setattr(ConditionedViT, "condition_tokens",
                        lambda self, positions: self.pos_embed[positions[:, :0]] + self.condition_embed)
    images = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    masks = masker(config())(4, step_generator(0, "masks", 0))
    losses = []
    for model in (ijepa, ecijepa):
        loss = model.loss(*model(images, masks))
        loss.backward()
        losses.append(loss.detach())
    assert torch.equal(*losses)
    theirs = dict(ijepa.named_parameters())
    ours = {name: p for name, p in ecijepa.named_parameters() if "condition_embed" not in name}
    assert set(ours) == set(theirs)
    for name, p in ours.items():
        assert torch.equal(p, theirs[name]), name
        assert (p.grad is None and theirs[name].grad is None) or torch.equal(p.grad, theirs[name].grad), name


@pytest.mark.parametrize("conditioning", ["tokens", "pooled"])
def test_variable_mask_lengths(conditioning: str) -> None:
    """Batches with different context and target lengths: finite losses, encoder outputs of the masks' lengths."""
    cfg = config("ecijepa", f"ecijepa.conditioning={conditioning}", "mask.context_scale=[0.4,1.0]")
    model, sampler = build_model(cfg, method_spec(cfg.method), 1), masker(cfg)
    images = torch.randn(4, 1, 28, 28)
    lengths = set()
    for step in range(8):
        masks = sampler(4, step_generator(step, "masks", 0))
        b, p, kt = masks.targets.shape
        lengths.add((masks.context.shape[1], kt))
        z = model.encoder(images, keep=masks.context, positions=masks.targets.reshape(b, p * kt))
        h = model.target_encoder(images, out=masks.targets.reshape(b, p * kt), positions=masks.context)
        assert z.shape == (4, masks.context.shape[1], 32) and h.shape == (4, p * kt, 32)
        assert torch.isfinite(model.loss(*model(images, masks)))
    assert len({c for c, _ in lengths}) > 1 and len({t for _, t in lengths}) > 1


@pytest.fixture(scope="module")
def ec_run(tiny_fmnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``jepalab pretrain configs/fmnist-ijepa-cpu.yaml method=ecijepa`` at pico size: 20 steps of 16 images."""
    out = tmp_path_factory.mktemp("ecijepa") / "run"
    code = main(["pretrain", "configs/fmnist-ijepa-cpu.yaml", "method=ecijepa", f"data.root={tiny_fmnist}", *PICO,
                 "data.limit=80", "optim.global_batch=16", "optim.epochs=4", "optim.warmup_fraction=0.25",
                 "train.log_every=1", "train.diag_every=0", "train.diag_images=16", "train.progress=false",
                 "train.checkpoint_every=10", "--out", str(out)])
    assert code == 0
    return out


def test_the_cpu_preset_trains_ecijepa_with_a_falling_loss(ec_run: Path) -> None:
    losses = step_losses(ec_run)
    assert sorted(losses) == list(range(20)) and all(torch.isfinite(torch.tensor(list(losses.values()))))
    first, last = [losses[s] for s in range(5)], [losses[s] for s in range(15, 20)]
    assert sum(last) < sum(first)
    record = json.loads((ec_run / "run.json").read_text())
    assert record["masks"]["conditioning"] == "tokens" and record["flops_per_step_first"] > 0
    assert record["masks"]["context_encoder_condition_tokens"] > 0


def test_eval_and_embed_print_and_honour_the_condition(ec_run: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert load_encoder(ec_run).condition == "none"
    assert load_encoder(ec_run, condition="full-grid").run_info["condition"] == \
        "conditioning at evaluation: full-grid (EC-IJEPA, our reading)"
    settings = EvalSettings(train_images=64, test_images=32, probe="ridge", lidar_images=8, lidar_views=2,
                            readouts=("mean",))
    assert "evaluation: none" in evaluate_run(ec_run, "last", settings, progress=False)["protocol"]["features"]
    assert main(["eval", str(ec_run), "--device", "cpu", "--condition", "full-grid", "train_images=64",
                 "test_images=32", "probe=ridge", "lidar_images=8", "lidar_views=2", "readouts=[mean]"]) == 0
    printed = capsys.readouterr().out
    assert "encoder 'target'; conditioning at evaluation: full-grid (EC-IJEPA, our reading)" in printed
    assert json.loads((ec_run / "eval.json").read_text())["condition"].endswith("full-grid (EC-IJEPA, our reading)")
    assert main(["embed", str(ec_run), "--data", "fashion-mnist:test", "--limit", "8", "--device", "cpu",
                 "--out", str(tmp_path / "emb")]) == 0
    assert "conditioning at evaluation: none" in capsys.readouterr().out
    assert json.loads((tmp_path / "emb" / "embed.json").read_text())["condition"].endswith("(EC-IJEPA, our reading)")
    ijepa_encoder = build_model(config("ijepa"), method_spec("ijepa"), 1).encoder
    with pytest.raises(ValueError, match="takes no conditioning"):
        method_spec("ijepa").eval_encoder(config("ijepa"), ijepa_encoder, "full-grid")


@pytest.mark.slow  # two process launches
def test_two_ranks_match_one_process(tiny_fmnist: Path, tmp_path: Path) -> None:
    """torchrun --nproc_per_node 2 (gloo, 8 images per rank) logs the losses of one process with 16 images."""
    overrides = [f"data.root={tiny_fmnist}", *PICO, "data.limit=32", "optim.global_batch=16", "optim.epochs=2",
                 "train.log_every=1", "train.diag_every=0", "train.diag_images=16", "train.progress=false"]
    (tmp_path / "tiny.yaml").write_text("method: ecijepa\n")
    assert main(["pretrain", str(tmp_path / "tiny.yaml"), *overrides, "--out", str(tmp_path / "one")]) == 0
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "-m", "jepalab", "pretrain", str(tmp_path / "tiny.yaml"),
               *overrides, "--out", str(tmp_path / "ddp")]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    ddp, single = step_losses(tmp_path / "ddp"), step_losses(tmp_path / "one")
    assert sorted(ddp) == sorted(single) == list(range(4))
    assert max(abs(ddp[s] - single[s]) / abs(single[s]) for s in single) <= RELATIVE_TOLERANCE
