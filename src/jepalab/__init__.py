"""jepalab: a laboratory for the implicit bias of JEPA versus MAE (Littwin et al., NeurIPS 2024).

Layers, lowest first (a layer never imports a higher one): ``theory`` (exact per-feature dynamics),
``linear`` (deep linear simulator), ``data`` (datasets), ``vision`` (ViT I-JEPA/MAE pretraining),
``eval`` (metrics on embedding arrays), ``report`` (figures, experiments, reports) and ``cli``.
"""

__version__ = "0.1.0"
