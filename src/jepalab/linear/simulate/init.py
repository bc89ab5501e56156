"""Initial parameters of R stacked runs: aligned (the theory's), balanced, Gaussian, or given matrices."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from jepalab.linear.simulate._common import choice

INITS = ("aligned", "balanced", "gaussian")


def _haar(d: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-random orthogonal d×d matrix (QR of a Gaussian with the sign fix)."""
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(d, dtype=torch.float64))


def _polar(basis: np.ndarray) -> np.ndarray:
    """The orthogonal matrix closest to ``basis`` (its polar factor); ``basis`` itself when orthogonal."""
    u, _, vt = np.linalg.svd(basis)
    return u @ vt


def initial_parameters(
    init: str | tuple[Sequence[Any], Any],
    depth: int,
    eps: np.ndarray,
    basis: np.ndarray,
    seeds: Sequence[int],
    objective: str = "jepa",
) -> torch.Tensor:
    """Stacked float64 parameters (L+1, R, d, d) for ``eps`` of shape (R, d); run r uses ``seeds[r]``.

    aligned: W_1 = Q_1 E Uᵀ, W_a = Q_a E Q_{a−1}ᵀ, W_L = E Q_{L−1}ᵀ with E = diag(ε^(1/L)), Haar Q_a and U
    the orthogonal polar factor of the feature basis (U = I for diagonal data), so W̄ = diag(ε) Uᵀ; the JEPA
    predictor (latent → latent) is V = E, the MAE decoder (latent → data) V = U E; the network is balanced.
    balanced: every layer and V ε^(1/L) × an independent Haar matrix. gaussian: i.i.d. N(0, ε^(2/L)/d) entries.
    A tuple (layers, predictor) gives the matrices, each (d, d) or (R, d, d).
    """
    runs, d = eps.shape
    if not isinstance(init, str):
        try:
            layers, pred = init
            mats = [torch.as_tensor(np.asarray(m, dtype=float)) for m in (*layers, pred)]
        except (TypeError, ValueError) as error:
            raise ValueError("init must be a name or a tuple (list of L layer matrices, predictor matrix)") from error
        if len(mats) != depth + 1:
            raise ValueError(f"init gives {len(mats) - 1} layer matrices; depth is {depth}")
        for m in mats:
            if m.shape not in ((d, d), (runs, d, d)) or not torch.isfinite(m).all():
                raise ValueError(f"init matrices must be finite, ({d}, {d}) or ({runs}, {d}, {d}); "
                                 f"got {tuple(m.shape)}")
        return torch.stack([m.expand(runs, d, d) for m in mats]).clone()
    choice("init", init, INITS)
    if init != "aligned" and not np.allclose(eps, eps[:, :1]):
        raise ValueError(f"per-feature eps needs init='aligned' (init={init!r} has one scale per run)")
    out = torch.empty(depth + 1, runs, d, d, dtype=torch.float64)
    u = torch.as_tensor(_polar(basis))
    for r, seed in enumerate(seeds):
        gen = torch.Generator().manual_seed(int(seed))
        scale = torch.as_tensor(eps[r] ** (1.0 / depth))
        if init == "aligned":
            frames = [u.T.contiguous()] + [_haar(d, gen) for _ in range(depth - 1)]
            frames.append(torch.eye(d, dtype=torch.float64))
            for a in range(depth):  # W_{a+1} = Q_{a+1} E Q_a^T with Q_0 = U, Q_L = I (frames[a] holds Q_a^T)
                out[a, r] = frames[a + 1].T @ (scale[:, None] * frames[a])
            out[depth, r] = torch.diag(scale) if objective == "jepa" else u * scale
        elif init == "balanced":
            for a in range(depth + 1):
                out[a, r] = scale[0] * _haar(d, gen)
        else:
            out[:, r] = scale[0] / math.sqrt(d) * torch.randn(depth + 1, d, d, generator=gen, dtype=torch.float64)
    return out
