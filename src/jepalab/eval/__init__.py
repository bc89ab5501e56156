"""Metrics on embedding arrays: numpy or torch (n, d) arrays in, floats, arrays or frozen result records out.

Never imports training code. Definitions, defaults, pitfalls and literature: ``docs/evaluation.md``.
"""

from jepalab.eval.collapse import COLLAPSE_RANK_SHARE, collapse_diagnostics, is_collapsed, token_spread
from jepalab.eval.decode import DecodingResult, distractor_r2
from jepalab.eval.knn import KnnResult, knn_accuracy, knn_scores, knn_sweep
from jepalab.eval.order import learning_steps, partial_rank_correlation, rank_correlation
from jepalab.eval.probe import (
    LOGISTIC_GRID,
    PROBE_METHODS,
    SGD_LR_GRID,
    ProbeResult,
    linear_probe,
    logistic_probe,
    ridge_probe,
    sgd_probe,
    standardise,
    stratified_split,
)
from jepalab.eval.ridge import RIDGE_GRID, RidgePath
from jepalab.eval.similarity import CcaResult, linear_cka, mean_cca, shuffled_baseline
from jepalab.eval.spectral import LidarResult, lidar, rankme
from jepalab.eval.subspace import (
    PROTOCOL,
    PixelPCA,
    SubspaceCopies,
    SubspaceDependence,
    fit_pixel_pca,
    standardise_per_image,
    subspace_copies,
    subspace_dependence,
    task_alignment,
)

__all__ = [
    "COLLAPSE_RANK_SHARE",
    "LOGISTIC_GRID",
    "PROBE_METHODS",
    "PROTOCOL",
    "RIDGE_GRID",
    "SGD_LR_GRID",
    "CcaResult",
    "DecodingResult",
    "KnnResult",
    "LidarResult",
    "PixelPCA",
    "ProbeResult",
    "RidgePath",
    "SubspaceCopies",
    "SubspaceDependence",
    "collapse_diagnostics",
    "distractor_r2",
    "fit_pixel_pca",
    "is_collapsed",
    "knn_accuracy",
    "knn_scores",
    "knn_sweep",
    "learning_steps",
    "lidar",
    "linear_cka",
    "linear_probe",
    "logistic_probe",
    "mean_cca",
    "partial_rank_correlation",
    "rank_correlation",
    "rankme",
    "ridge_probe",
    "sgd_probe",
    "shuffled_baseline",
    "standardise",
    "standardise_per_image",
    "stratified_split",
    "subspace_copies",
    "subspace_dependence",
    "task_alignment",
    "token_spread",
]
