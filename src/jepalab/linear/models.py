"""Gaussian two-view data models: any joint covariance, and the static / dynamic linear generative models.

Every model is a zero-mean Gaussian pair (x, y) of context and target views in R^d, fully described by
``Σxx = E[xxᵀ]``, ``Σyx = E[yxᵀ]``, ``Σyy = E[yyᵀ]``. The static and dynamic models are *our*
parametrisation (docs/linear.md, "Data models"): the paper's own parametrisation was not available to us.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

__all__ = ["DynamicLinearModel", "GaussianViews", "StaticLinearModel"]

_TOL = 1e-10


def _matrix(name: str, value: object) -> np.ndarray:
    try:
        array = np.array(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a real square matrix; got {value!r}") from error
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square (d, d) matrix; got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return array


def _is_diagonal(matrix: np.ndarray) -> bool:
    off = matrix - np.diag(np.diag(matrix))
    return bool(np.max(np.abs(off), initial=0.0) <= _TOL * max(1.0, float(np.max(np.abs(matrix)))))


class GaussianViews:
    """Zero-mean Gaussian views with a given joint covariance ``[[Σxx, Σyxᵀ], [Σyx, Σyy]]`` (PSD, Σxx ≻ 0)."""

    def __init__(self, sigma_xx: object, sigma_yx: object, sigma_yy: object) -> None:
        sxx, syx, syy = _matrix("sigma_xx", sigma_xx), _matrix("sigma_yx", sigma_yx), _matrix("sigma_yy", sigma_yy)
        if not sxx.shape == syx.shape == syy.shape:
            raise ValueError(
                f"sigma_xx {sxx.shape}, sigma_yx {syx.shape} and sigma_yy {syy.shape} must all be (d, d)"
            )
        for name, matrix in (("sigma_xx", sxx), ("sigma_yy", syy)):
            if np.max(np.abs(matrix - matrix.T)) > _TOL * max(1.0, float(np.max(np.abs(matrix)))):
                raise ValueError(f"{name} must be symmetric (it is a covariance matrix)")
        sxx, syy = (sxx + sxx.T) / 2, (syy + syy.T) / 2
        joint = np.block([[sxx, syx.T], [syx, syy]])
        eig, vec = np.linalg.eigh(joint)
        scale = max(1.0, float(np.max(np.abs(eig))))
        if eig[0] < -1e-9 * scale:
            raise ValueError(
                "the joint covariance [[sigma_xx, sigma_yx^T], [sigma_yx, sigma_yy]] must be positive "
                f"semi-definite; its smallest eigenvalue is {eig[0]:.3g}"
            )
        if np.linalg.eigvalsh(sxx)[0] <= _TOL * scale:
            raise ValueError("sigma_xx must be positive definite (the regression coefficient rho divides by it)")
        self.sigma_xx, self.sigma_yx, self.sigma_yy = sxx, syx, syy
        self._factor_t = np.ascontiguousarray((vec * np.sqrt(np.clip(eig, 0.0, None))).T)

    @property
    def dim(self) -> int:
        """Dimension d of each view."""
        return self.sigma_xx.shape[0]

    def covariances(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Σxx, Σyx, Σyy) as float64 numpy arrays (copies)."""
        return self.sigma_xx.copy(), self.sigma_yx.copy(), self.sigma_yy.copy()

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """n i.i.d. pairs: [x, y] = F z with F Fᵀ the joint covariance and z ~ N(0, I_2d); x, y of shape (n, d)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an integer >= 1; got {n!r}")
        gen_device = generator.device if generator is not None else device
        z = torch.randn(int(n), 2 * self.dim, generator=generator, dtype=dtype, device=gen_device)
        if z.device.type == "cpu":  # numpy: no thread start-up cost for these small products
            xy = torch.from_numpy(z.numpy() @ self._factor_t.astype(z.numpy().dtype))
        else:
            xy = z @ torch.as_tensor(self._factor_t, dtype=dtype, device=gen_device)
        xy = xy.to(device) if device is not None else xy
        return xy[:, : self.dim], xy[:, self.dim :]

    def features(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(λ, ρ, basis): the per-feature quantities of the theory and the feature directions (unit columns).

        Diagonal Σxx and Σyx: λ_i = (Σyx)_ii, ρ_i = λ_i / (Σxx)_ii, basis = I. Otherwise the generalised
        eigenproblem S b = ρ Σxx b with S = (Σyx + Σyxᵀ)/2 (a warning says when Σyx had to be symmetrised);
        columns b_i have unit norm and are sorted by decreasing ρ; λ_i = b_iᵀ S b_i, so that ρ_i = λ_i / b_iᵀΣxx b_i.
        Feature coordinates are x'_i = b_iᵀ x, and in them both covariances are diagonal.
        """
        if _is_diagonal(self.sigma_xx) and _is_diagonal(self.sigma_yx):
            lam = np.diag(self.sigma_yx).copy()
            return lam, lam / np.diag(self.sigma_xx), np.eye(self.dim)
        sym = (self.sigma_yx + self.sigma_yx.T) / 2
        if np.max(np.abs(self.sigma_yx - sym)) > _TOL * max(1.0, float(np.max(np.abs(sym)))):
            warnings.warn(
                "sigma_yx is not symmetric; features() uses its symmetric part (Σyx + Σyxᵀ)/2 for the "
                "generalised eigenproblem, so the theory's reduction is only approximate here",
                stacklevel=2,
            )
        rho, vec = scipy.linalg.eigh(sym, self.sigma_xx)
        order = np.argsort(-rho, kind="stable")
        basis = vec[:, order] / np.linalg.norm(vec[:, order], axis=0)
        signs = np.sign(basis[np.argmax(np.abs(basis), axis=0), np.arange(self.dim)])
        basis = basis * signs
        lam = np.einsum("ji,jk,ki->i", basis, sym, basis)
        return lam, rho[order], basis


def _per_feature(values: dict[str, object], dim: int | None) -> tuple[dict[str, np.ndarray], int]:
    """Broadcast scalar-or-vector per-feature parameters to one length d."""
    arrays = {}
    for name, value in values.items():
        try:
            arrays[name] = np.asarray(value, dtype=float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be a number or a 1-D array of numbers; got {value!r}") from error
        if arrays[name].ndim > 1:
            raise ValueError(f"{name} must be a number or a 1-D array (one value per feature)")
        if not np.all(np.isfinite(arrays[name])):
            raise ValueError(f"{name} must be finite (no NaN or inf)")
    lengths = {a.size for a in arrays.values() if a.ndim == 1}
    if dim is not None:
        lengths.add(int(dim))
    if len(lengths) != 1:
        raise ValueError(
            "per-feature parameters must have one common length d (or give dim with scalars); got lengths "
            + ", ".join(f"{k}={v.size}" for k, v in arrays.items() if v.ndim == 1)
            + (f", dim={dim}" if dim is not None else "")
        )
    d = lengths.pop()
    if d < 1:
        raise ValueError(f"the dimension must be >= 1; got {d}")
    return {k: np.broadcast_to(v, (d,)).copy() for k, v in arrays.items()}, d


def _mixing(mixing: object, d: int) -> np.ndarray:
    if mixing is None:
        return np.eye(d)
    matrix = _matrix("mixing", mixing)
    if matrix.shape != (d, d):
        raise ValueError(f"mixing must be ({d}, {d}) to match the per-feature parameters; got {matrix.shape}")
    return matrix


class StaticLinearModel(GaussianViews):
    """Two noisy views of one latent: x = M z + n_x, y = M z + n_y (our parametrisation, docs/linear.md).

    z ~ N(0, diag(signal_var)), n_x ~ N(0, diag(context_noise_var)), n_y ~ N(0, diag(target_noise_var)),
    independent; M = ``mixing`` (default I). With M = I: λ_i = signal_var_i,
    ρ_i = signal_var_i / (signal_var_i + context_noise_var_i) — context noise lowers ρ and leaves λ alone.
    """

    def __init__(
        self,
        signal_var: object,
        context_noise_var: object = 0.0,
        target_noise_var: object = 0.0,
        mixing: object = None,
        dim: int | None = None,
    ) -> None:
        params, d = _per_feature(
            {"signal_var": signal_var, "context_noise_var": context_noise_var, "target_noise_var": target_noise_var},
            dim,
        )
        if np.any(params["signal_var"] <= 0):
            raise ValueError("signal_var must be > 0 for every feature")
        for name in ("context_noise_var", "target_noise_var"):
            if np.any(params[name] < 0):
                raise ValueError(f"{name} must be >= 0 for every feature (it is a variance)")
        m = _mixing(mixing, d)
        shared = m @ np.diag(params["signal_var"]) @ m.T
        self.params = params
        self.mixing = m
        super().__init__(
            shared + np.diag(params["context_noise_var"]), shared, shared + np.diag(params["target_noise_var"])
        )


class DynamicLinearModel(GaussianViews):
    """AR(1) latent seen at consecutive times: x = M z_t + n_t, y = M z_{t+1} + n_{t+1} (ours, docs/linear.md).

    z_{t+1} = diag(a) z_t + ξ_t with ``autocorr`` a ∈ (−1, 1), Var ξ_i = ``innovation_var`` q_i², stationary
    Var z_i = q_i²/(1 − a_i²); observation noise n of variance ``obs_noise_var`` s_i², independent per frame.
    With M = I: λ_i = a_i q_i²/(1 − a_i²), ρ_i = a_i·P_i/(P_i + s_i²) with P_i = q_i²/(1 − a_i²) (ρ = a without noise).
    """

    def __init__(
        self,
        autocorr: object,
        innovation_var: object = 1.0,
        obs_noise_var: object = 0.0,
        mixing: object = None,
        dim: int | None = None,
    ) -> None:
        params, d = _per_feature(
            {"autocorr": autocorr, "innovation_var": innovation_var, "obs_noise_var": obs_noise_var}, dim
        )
        if np.any(np.abs(params["autocorr"]) >= 1):
            raise ValueError("autocorr must lie in (-1, 1) for every feature (a stationary AR(1) latent)")
        if np.any(params["innovation_var"] <= 0):
            raise ValueError("innovation_var must be > 0 for every feature")
        if np.any(params["obs_noise_var"] < 0):
            raise ValueError("obs_noise_var must be >= 0 for every feature (it is a variance)")
        m = _mixing(mixing, d)
        stationary = params["innovation_var"] / (1 - params["autocorr"] ** 2)
        latent = m @ np.diag(stationary) @ m.T
        noise = np.diag(params["obs_noise_var"])
        self.params = params
        self.mixing = m
        super().__init__(latent + noise, m @ np.diag(params["autocorr"] * stationary) @ m.T, latent + noise)
