"""Top- versus bottom-variance pixel subspaces, after Balestriero & LeCun (ICML 2024,
arXiv 2402.11337) and Littwin et al. (NeurIPS 2024, arXiv 2407.03475). The cut-offs, the copies and the encoder
comparison follow jepalab's protocol, not a published one: results are labelled ``PROTOCOL``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jepalab.eval._arrays import as_images, as_labels, as_matrix, fraction, positive, same_rows
from jepalab.eval._results import Result
from jepalab.eval.probe import PROBE_METHODS, ProbeResult, linear_probe, stratified_split
from jepalab.eval.similarity import CcaResult, linear_cka, mean_cca, shuffled_baseline

__all__ = [
    "PROTOCOL",
    "PixelPCA",
    "SubspaceCopies",
    "SubspaceDependence",
    "fit_pixel_pca",
    "standardise_per_image",
    "subspace_copies",
    "subspace_dependence",
    "task_alignment",
]

PROTOCOL = (
    "our protocol (jepalab): pixel PCA fitted on training images, top = leading components up to "
    "a cumulative explained-variance share, bottom = the rest; not a number from Littwin et al. or Balestriero & LeCun"
)


@dataclass(frozen=True, eq=False)
class PixelPCA:
    """PCA of flattened images: ``components[:, k]`` is the k-th principal direction, eigenvalues sorted
    DESCENDING (covariance with denominator n, float64, clipped at 0). With more pixels than images (D > n) only
    the r ≤ n directions with variance are kept; the bottom subspace is then everything orthogonal to the top."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (D, r), columns, r = D unless D > n
    eigenvalues: np.ndarray  # (D,)
    image_shape: tuple[int, ...]
    n_samples: int

    @property
    def explained_share(self) -> np.ndarray:
        """Cumulative explained-variance share c_k = Σ_{j≤k} e_j / Σ_j e_j, k = 1..D."""
        return np.cumsum(self.eigenvalues) / np.sum(self.eigenvalues)

    def cutoff(self, share: float) -> int:
        """t = the smallest k with c_k ≥ share; top = components 1..t, bottom = t+1..D (ValueError if empty)."""
        share = fraction("share", share)
        t = int(np.searchsorted(self.explained_share, share - 1e-12)) + 1
        if t >= self.eigenvalues.size:
            raise ValueError(f"a cutoff at share {share} leaves the bottom subspace empty")
        return t

    def project(self, images: object, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(x_top, x_bot) = (μ + U_T·U_Tᵀ(x − μ), μ + U_B·U_Bᵀ(x − μ)), unclipped, in the input's shape;
        x_top + x_bot − μ = x."""
        x, shape = _pixels(self, images)
        if not 1 <= t < self.eigenvalues.size:
            raise ValueError(f"t must lie in 1..{self.eigenvalues.size - 1}; got {t}")
        top_part = (x - self.mean) @ self.components[:, :t] @ self.components[:, :t].T
        return (self.mean + top_part).reshape(shape), (x - top_part).reshape(shape)  # U_B·U_Bᵀ = I − U_T·U_Tᵀ


def _pixels(pca: PixelPCA, images: object) -> tuple[np.ndarray, tuple[int, ...]]:
    """Images flattened to (n, D) and their shape; ValueError unless D matches the PCA."""
    x, shape = as_images("images", images)
    if x.shape[1] != pca.mean.size:
        raise ValueError(f"images have {x.shape[1]} pixels but the PCA was fitted on {pca.mean.size}")
    return x, shape


def fit_pixel_pca(images: object) -> PixelPCA:
    """Pixel PCA of training images (n, ...): float64 covariance, ``eigh``, then reordered to descending eigenvalues;
    for D > n the same directions from the n × n Gram matrix (u = Xᵀv / √(n·e)), keeping those with variance."""
    x, shape = as_images("images", images, min_rows=2)
    mean = x.mean(axis=0)
    centred = x - mean
    n, pixels = x.shape
    gram = pixels > n
    eigenvalues, vectors = np.linalg.eigh((centred @ centred.T if gram else centred.T @ centred) / n)
    order = np.argsort(eigenvalues, kind="stable")[::-1]
    if eigenvalues[order[0]] <= 0:
        raise ValueError("images have no pixel variance; PCA is undefined")
    eigenvalues, vectors = np.clip(eigenvalues[order], 0.0, None), vectors[:, order]
    if gram:
        alive = eigenvalues > 1e-12 * eigenvalues[0]
        eigenvalues = eigenvalues[alive]
        vectors = centred.T @ vectors[:, alive] / np.sqrt(n * eigenvalues)
    return PixelPCA(mean, vectors, eigenvalues, shape[1:], n)


def standardise_per_image(images: object, floor: float = 1e-6) -> np.ndarray:
    """Each image minus its own pixel mean, divided by max(its own pixel std, floor); same shape out."""
    x, shape = as_images("images", images)
    floor = positive("floor", floor)
    std = np.maximum(x.std(axis=1, keepdims=True), floor)
    return ((x - x.mean(axis=1, keepdims=True)) / std).reshape(shape)


@dataclass(frozen=True, eq=False)
class SubspaceCopies:
    """Full, top-subspace and bottom-subspace copies of the same images, with the cut that made them."""

    full: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    share: float  # the requested cumulative share f
    rank: int  # t: number of top components
    top_share: float  # exact share of pixel variance in the top subspace, c_t
    bottom_share: float  # 1 − c_t
    standardised: bool
    protocol: str = PROTOCOL


def subspace_copies(pca: PixelPCA, images: object, share: float, standardise: bool = False) -> SubspaceCopies:
    """Copies of ``images`` restricted to the top and bottom variance subspaces at cumulative share ``share``;
    ``standardise=True`` standardises every image of all three copies per image (the second input variant)."""
    t = pca.cutoff(share)
    x, shape = _pixels(pca, images)
    top, bottom = pca.project(x, t)
    copies = [x, top, bottom]
    if standardise:
        copies = [standardise_per_image(copy) for copy in copies]
    top_share = float(pca.explained_share[t - 1])
    return SubspaceCopies(
        *(copy.reshape(shape) for copy in copies), share=float(share), rank=t, top_share=top_share,
        bottom_share=1.0 - top_share, standardised=standardise,
    )


def task_alignment(images: object, labels: object, num_classes: int | None = None) -> np.ndarray:
    """A(K) = ‖Yᵀ Q_K‖_F / ‖Yᵀ Q_D‖_F for K = 1..D (entry K−1), Q_K an orthonormal basis of the centred images
    projected on their top-K principal directions, Y one-hot (Balestriero & LeCun, ``alignment.py``): the share
    of linearly readable label signal inside the top-K subspace, as a fraction. PCA is fitted on ``images``."""
    x, _ = as_images("images", images, min_rows=2)
    y, classes = as_labels("labels", labels, x.shape[0], num_classes)
    pca = fit_pixel_pca(x)
    one_hot = np.eye(classes)[y]
    label_pixel = (one_hot - one_hot.mean(axis=0)).T @ (x - pca.mean)  # (C, D) = Yᵀ X_c, Y centred for accuracy
    projected = label_pixel @ pca.components
    alive = pca.eigenvalues > 1e-10 * pca.eigenvalues[0]
    energy = np.zeros_like(pca.eigenvalues)
    energy[alive] = np.sum(projected[:, alive] ** 2, axis=0) / (x.shape[0] * pca.eigenvalues[alive])
    total = energy.sum()
    if total <= 0:
        raise ValueError("labels carry no linear signal about the images (a single class?); A(K) is undefined")
    return np.sqrt(np.cumsum(energy) / total)


@dataclass(frozen=True)
class SubspaceDependence(Result):
    """Probe accuracy on full/top/bottom features, and the similarity of full-image features to top- and
    bottom-copy features: ``similarity[measure]`` holds "top", "bottom", "delta" = bottom − top, and the
    shuffled-row baselines "top_shuffled", "bottom_shuffled"; measures are "cka", "cka_debiased" and "mean_cca"."""

    probes: dict[str, ProbeResult]
    similarity: dict[str, dict[str, float]]
    cca_dims: dict[str, tuple[int, int]]
    n: int
    probe_method: str
    probe_test_fraction: float
    svcca_threshold: float | None
    seed: int
    protocol: str = PROTOCOL

    def delta(self, measure: str = "mean_cca") -> float:
        """Δ = sim(f(x), f(x_bot)) − sim(f(x), f(x_top)) for one measure: > 0 means the features follow the
        bottom (low pixel variance) subspace more than the top one."""
        return self.similarity[measure]["delta"]


def subspace_dependence(
    full: object,
    top: object,
    bottom: object,
    labels: object,
    *,
    probe: str = "ridge",
    num_classes: int | None = None,
    probe_test_fraction: float = 0.2,
    svcca_threshold: float | None = 0.99,
    baseline_repeats: int = 1,
    seed: int = 0,
) -> SubspaceDependence:
    """Encoder features f(x), f(x_top), f(x_bot) of the same n images (rows paired) and their labels →
    (a) a linear probe per version, trained and tested on one stratified seeded split of these n images
    (``probe_test_fraction`` held out, the same rows for all versions); (b) biased and debiased linear CKA and mean
    (SV)CCA between f(x) and each copy, with shuffled-row baselines; (c) Δ = sim(bottom) − sim(top)."""
    features = {"full": as_matrix("full", full, min_rows=4), "top": as_matrix("top", top, min_rows=4),
                "bottom": as_matrix("bottom", bottom, min_rows=4)}
    same_rows("full", features["full"], "top", features["top"])
    same_rows("full", features["full"], "bottom", features["bottom"])
    y, classes = as_labels("labels", labels, features["full"].shape[0], num_classes)
    if probe not in PROBE_METHODS:
        raise ValueError(f"probe must be one of {PROBE_METHODS}; got {probe!r}")
    fit_rows, test_rows = stratified_split(y, probe_test_fraction, seed)
    probes = {
        name: linear_probe(f[fit_rows], y[fit_rows], f[test_rows], y[test_rows], probe, num_classes=classes, seed=seed)
        for name, f in features.items()
    }
    measures = {
        "cka": linear_cka,
        "cka_debiased": lambda a, b: linear_cka(a, b, debiased=True),
        "mean_cca": lambda a, b: mean_cca(a, b, svcca_threshold),
    }
    similarity: dict[str, dict[str, float]] = {}
    cca_dims: dict[str, tuple[int, int]] = {}
    for measure, function in measures.items():
        raw = {part: function(features["full"], features[part]) for part in ("top", "bottom")}
        cca_dims.update({part: result.dims for part, result in raw.items() if isinstance(result, CcaResult)})
        values = {part: float(result) for part, result in raw.items()}
        values["delta"] = values["bottom"] - values["top"]
        for part in ("top", "bottom"):
            values[f"{part}_shuffled"] = float(np.mean(
                shuffled_baseline(function, features["full"], features[part], baseline_repeats, seed)
            ))
        similarity[measure] = values
    return SubspaceDependence(
        probes=probes, similarity=similarity, cca_dims=cca_dims, n=features["full"].shape[0], probe_method=probe,
        probe_test_fraction=float(probe_test_fraction), svcca_threshold=svcca_threshold, seed=int(seed),
    )
