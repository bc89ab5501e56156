"""The paper's per-feature quantities measured on real images under a run's actual masks [ours].

For a unit pixel direction v, context view x = the centred image restricted to the context tokens and target view
y = the centred image restricted to the target tokens (MAE: the removed patches; I-JEPA: the union of the target
blocks): λ(v) = E[(vᵀy)(vᵀx)] (covariance between the views along v) and ρ(v) = λ(v)/E[(vᵀx)²] (the regression
coefficient of vᵀy on vᵀx), the deep-linear theory's λ and ρ (Littwin et al. 2024, §3) for that feature. The views
come from the method's masks (:meth:`~jepalab.vision.models.masks.Masks.membership`).
"""

from __future__ import annotations

import torch

from jepalab.data.sampler import step_generator
from jepalab.vision.methods import method_spec
from jepalab.vision.methods.config import PretrainConfig

__all__ = ["masked_cross_covariance", "masked_view_moments", "token_masks"]


def token_masks(cfg: PretrainConfig, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(context, target) bool token masks (batch, H/p, W/p) drawn as training draws them for ``cfg.method``."""
    masks = method_spec(cfg.method).mask_sampler(cfg)(batch, generator)
    context, target = masks.membership(cfg.grid[0] * cfg.grid[1])  # (batch, N) each
    return context.view(batch, *cfg.grid), target.view(batch, *cfg.grid)


def _pixel_masks(cfg: PretrainConfig, n: int, channels: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """(context, target) float pixel masks (n, C·H·W) of one draw of ``cfg``'s token masks."""
    context, target = token_masks(cfg, n, generator)
    p = cfg.model.patch_size
    to_pixels = lambda m: m.repeat_interleave(p, 1).repeat_interleave(p, 2)[:, None].expand(-1, channels, -1, -1)  # noqa: E731
    return to_pixels(context).flatten(1).double(), to_pixels(target).flatten(1).double()


def masked_cross_covariance(images: torch.Tensor, cfg: PretrainConfig, draws: int = 4, seed: int = 0) -> torch.Tensor:
    """Symmetrised cross-covariance (D, D) of the context and target views of float ``images`` (n, C, H, W), centred
    by their mean, over ``draws`` mask draws: ½(E[x yᵀ] + E[y xᵀ]); vᵀ C v = λ(v) for every unit v."""
    n, channels = images.shape[:2]
    centred = (images.double() - images.double().mean(dim=0)).flatten(1)  # (n, D)
    cross = torch.zeros(centred.shape[1], centred.shape[1], dtype=torch.float64)
    for draw in range(draws):
        context, target = _pixel_masks(cfg, n, channels, step_generator(seed, "view-stats", draw))
        cross += (centred * context).T @ (centred * target) / n  # (D, D)
    cross /= draws
    return (cross + cross.T) / 2


def masked_view_moments(images: torch.Tensor, directions: torch.Tensor, cfg: PretrainConfig, draws: int = 4,
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """λ (k,), ρ (k,) and the view variances E[(vᵀx)²], E[(vᵀy)²] (k,) of the unit rows of ``directions``
    (k, C·H·W) over float ``images`` (n, C, H, W), centred by their mean, averaged over ``draws`` mask draws."""
    n, channels, height, width = images.shape
    if directions.ndim != 2 or directions.shape[1] != channels * height * width:
        raise ValueError(f"directions must be (k, {channels * height * width}); got {tuple(directions.shape)}")
    if (height, width) != (cfg.data.image_size, cfg.data.image_size):
        raise ValueError(f"images are {height}×{width}; the config trains on {cfg.data.image_size}² crops")
    v = directions.double() / directions.double().norm(dim=1, keepdim=True)
    centred = (images.double() - images.double().mean(dim=0)).flatten(1)  # (n, D)
    sums = {key: torch.zeros(len(v), dtype=torch.float64) for key in ("cross", "context", "target")}
    for draw in range(draws):
        context, target = _pixel_masks(cfg, n, channels, step_generator(seed, "view-stats", draw))
        x, y = centred * context, centred * target  # (n, D) each
        px, py = x @ v.T, y @ v.T  # (n, k)
        sums["cross"] += (px * py).mean(dim=0)
        sums["context"] += px.square().mean(dim=0)
        sums["target"] += py.square().mean(dim=0)
    lam, var_x, var_y = (sums[key] / draws for key in ("cross", "context", "target"))
    return {"lam": lam, "rho": lam / var_x, "var_context": var_x, "var_target": var_y}


def dataset_feature_stats(cfg: PretrainConfig, images: int = 5000, components: int = 3,
                          draws: int = 4) -> list[dict[str, float | str]]:
    """λ and ρ under ``cfg``'s masks of the top ``components`` content directions (pixel PCA of the clean images)
    and, for a dataset with an injected distractor (its ``info`` holds ``distractor_texture`` and ``clean_images``),
    of the distractor texture: one record per direction."""
    from jepalab.data import build_dataset
    from jepalab.eval import fit_pixel_pca

    dataset = build_dataset(cfg.data)
    if dataset.images is None or dataset.size != cfg.data.image_size:
        raise ValueError(f"data stats needs an in-memory dataset stored at the model's image size "
                         f"({cfg.data.image_size}); {dataset.name} is stored at {dataset.size}")
    pixels = dataset.images[:images].double() / 255
    noisy = "distractor_texture" in dataset.info
    clean = dataset.info["clean_images"][:images].double() / 255 if noisy else pixels
    pca = fit_pixel_pca(clean.flatten(1).numpy())
    directions = [torch.from_numpy(pca.components[:, k].copy()) for k in range(components)]
    names = [f"content PC{k + 1}" for k in range(components)]
    if noisy:
        directions.insert(0, torch.from_numpy(dataset.info["distractor_texture"]).flatten().double())
        names.insert(0, "distractor")
    moments = masked_view_moments(pixels, torch.stack(directions), cfg, draws, cfg.seed)
    return [{"direction": name, **{key: float(value[i]) for key, value in moments.items()}}
            for i, name in enumerate(names)]
