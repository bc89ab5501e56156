"""Pretraining methods as plugins: one module per method (``ijepa.py``, ``mae.py``, ``ecijepa.py``), each holding
its model and registering a :class:`MethodSpec` with its config sections, recipes, masks, EMA target and
encoders. The trainer, views, evaluation and experiments ask the registry and name no method (docs/architecture.md,
"Adding a method")."""

from jepalab.vision.methods.registry import (
    MethodSpec,
    available_methods,
    condition_names,
    encoder_names,
    method_sections,
    method_spec,
    register_method,
)

__all__ = ["MethodSpec", "available_methods", "condition_names", "encoder_names", "method_sections", "method_spec",
           "register_method"]

available_methods()  # registers every method now, in one order, whichever method module is imported first
