"""Method registry: name → :class:`MethodSpec`. Every module of ``jepalab.vision.methods`` is imported on first use,
so a new file that subclasses :class:`MethodSpec` and decorates it with :func:`register_method` is picked up
without editing anything else. docs/architecture.md, "Adding a method", holds a complete one that the tests run
(tests/vision/methods/test_methods.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from jepalab.discovery import import_plugins

if TYPE_CHECKING:
    import torch
    from torch import nn

    from jepalab.vision.methods.config import PretrainConfig
    from jepalab.vision.models.masks import Masks
    from jepalab.vision.models.vit import ViT

__all__ = ["MethodSpec", "available_methods", "condition_names", "encoder_names", "method_sections", "method_spec",
           "register_method"]

OPTIMISER_FIELDS = ("lr", "start_lr", "final_lr", "weight_decay", "final_weight_decay", "betas")


class MethodSpec(ABC):
    """What the trainer, evaluation and experiments need of one pretraining method. Subclass it, set the class
    attributes, implement the abstract :meth:`build` and :meth:`mask_sampler` (a spec lacking them cannot be
    registered), override the other hooks where the defaults
    (no EMA target, one encoder, no extra set-up facts) do not fit."""

    name: ClassVar[str] = ""  # the config's ``method:`` value
    label: ClassVar[str] = ""  # how tables, plots and reports name it ("I-JEPA")
    sections: ClassVar[dict[str, type]] = {}  # config sections it reads: name → dataclass (may reuse another's)
    optimiser_recipe: ClassVar[dict[str, Any]] = {}  # values of empty optim fields; "base_lr" scales by batch/256;
    # "lr_batch": lr and start_lr are given at that batch and scale by √(batch / lr_batch)
    small_image_recipe: ClassVar[dict[str, Any]] = {}  # nested config values for 28-px Fashion-MNIST
    encoders: ClassVar[dict[str, str]] = {"encoder": "encoder"}  # read-out name → model attribute, in table order
    default_encoder: ClassVar[str] = ""  # the encoder evaluation reads by default ("": the first of ``encoders``)
    aliases: ClassVar[dict[str, str]] = {}  # other names accepted for an encoder
    head: ClassVar[str] = "head"  # name of the parameters outside the encoders (predictor, decoder)
    conditions: ClassVar[tuple[str, ...]] = ()  # evaluation conditionings a conditioned method accepts (EC-IJEPA)
    init: ClassVar[str] = "xavier"  # ViT init style (jepalab.vision.models.vit.init_weights)

    def validate(self, cfg: PretrainConfig) -> None:
        """Cross-field checks of the method's sections; raise ``ValueError`` naming the field (default: none)."""
        return None

    def cls_token(self, cfg: PretrainConfig) -> bool:
        """Whether the encoder carries a class token."""
        return False

    def encoder_factory(self, cfg: PretrainConfig) -> Callable[..., ViT]:
        """Builds the encoder from :class:`~jepalab.vision.models.vit.ViT`'s arguments (default: the shared ViT)."""
        from jepalab.vision.models.vit import ViT

        return ViT

    def eval_encoder(self, cfg: PretrainConfig, encoder: ViT, condition: str | None = None) -> tuple[ViT, str]:
        """(encoder as evaluation and ``embed`` read it, a protocol note printed with its numbers; "" = none).
        ``condition`` (one of :attr:`conditions`, None = the run's setting) is for methods with conditioned encoders."""
        if condition not in (None, "none"):
            raise ValueError(f"a {self.label} encoder takes no conditioning; --condition {condition!r} is for "
                             "conditioned methods (ecijepa)")
        return encoder, ""

    @abstractmethod
    def build(self, cfg: PretrainConfig, encoder: ViT) -> nn.Module:
        """The model around ``encoder``: ``model(images, masks)`` → outputs, ``model.loss(*outputs)`` → scalar
        loss; ``model.encoder`` is trained."""

    @abstractmethod
    def mask_sampler(self, cfg: PretrainConfig) -> Callable[[int, torch.Generator], Masks]:
        """``sample(batch, generator)`` → the masks of one batch (:class:`~jepalab.vision.models.masks.Masks`)."""

    def mask_summary(self, cfg: PretrainConfig, masks: list[Masks]) -> dict[str, Any]:
        """Mask statistics for run.json and ``--dry-run`` from the first batches' masks (default: visible share)."""
        tokens = cfg.grid[0] * cfg.grid[1]
        shares = [float(m.membership(tokens)[0].float().mean()) for m in masks]
        return {"tokens": tokens, "context_share": sum(shares) / len(shares)}

    def describe(self, cfg: PretrainConfig, record: dict[str, Any]) -> list[str]:
        """Set-up lines printed before training, from the run record (masks, schedules)."""
        return []

    def target_ema(self, cfg: PretrainConfig) -> Literal["auto"] | tuple[float, float] | None:
        """The EMA momenta (start, end) of a target encoder the trainer moves after each optimiser step by the model's
        ``update_target(m)``, or "auto" (the trainer picks them for the run's length); None: no EMA target."""
        return None

    def encoder_modules(self, model: nn.Module) -> dict[str, ViT]:
        """The model's encoders by read-out name, the evaluation default first, then in :attr:`encoders` order."""
        default = self.default_encoder or next(iter(self.encoders))
        names = [default, *(name for name in self.encoders if name != default)]
        return {name: getattr(model, self.encoders[name]) for name in names}

    def select_encoder(self, model: nn.Module, which: str = "auto") -> tuple[str, ViT]:
        """(name, encoder) for ``which``: "auto" = the default, else a name of :attr:`encoders` or an alias."""
        found = self.encoder_modules(model)
        name = next(iter(found)) if which == "auto" else self.aliases.get(which, which)
        if name not in found:
            raise ValueError(f"a {self.label} run has the encoder(s) {['auto', *found]}; got {which!r}")
        return name, found[name]

    def parameter_counts(self, model: nn.Module) -> dict[str, int]:
        """Parameters of the trained encoder, of :attr:`head`, of each other encoder, and the trainable total."""
        def count(module: nn.Module, trainable_only: bool = False) -> int:
            return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

        encoders = self.encoder_modules(model)
        others = {f"{name}_encoder": count(e) for name, e in encoders.items() if e is not model.encoder}
        head = count(model) - count(model.encoder) - sum(others.values())
        return {"encoder": count(model.encoder), self.head: head, **others,
                "trainable": count(model, trainable_only=True)}


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(cls: type[MethodSpec]) -> type[MethodSpec]:
    """Class decorator registering an instance of ``cls`` under ``cls.name`` (names are unique; a section name
    shared with another method must name the same dataclass)."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} sets no name")
    existing = _REGISTRY.get(cls.name)
    if existing is not None and type(existing).__qualname__ != cls.__qualname__:
        raise ValueError(f"method {cls.name!r} is already registered by {type(existing).__module__}")
    for section, kind in cls.sections.items():
        other = _section_types().get(section)
        if other is not None and other is not kind and other.__qualname__ != kind.__qualname__:
            raise ValueError(f"section {section!r} of {cls.name!r} is {kind.__qualname__}; another method's is "
                             f"{other.__qualname__}")
    _REGISTRY[cls.name] = cls()
    return cls


def _is_method_module(name: str) -> bool:
    return not name.startswith("_") and name not in ("registry", "config")


def available_methods() -> dict[str, MethodSpec]:
    """All registered methods, by name in registration order (imports every module of the package once)."""
    import_plugins("jepalab.vision.methods", _is_method_module)
    return dict(_REGISTRY)


def method_spec(name: str) -> MethodSpec:
    """The spec registered under ``name``; ``ValueError`` listing the registered names otherwise."""
    known = available_methods()
    if name not in known:
        raise ValueError(f"method must be one of {list(known)}; got {name!r}")
    return known[name]


def _section_types() -> dict[str, type]:
    return {name: kind for spec in _REGISTRY.values() for name, kind in spec.sections.items()}


def method_sections() -> dict[str, type]:
    """Every registered method's config sections (name → dataclass): a config may name any of them (it keeps its
    own method's)."""
    import_plugins("jepalab.vision.methods", _is_method_module)
    return _section_types()


def condition_names() -> tuple[str, ...]:
    """Every evaluation conditioning a registered method accepts (``--condition``)."""
    return tuple(dict.fromkeys(c for spec in available_methods().values() for c in spec.conditions))


def encoder_names() -> tuple[str, ...]:
    """"auto" and every encoder name or alias a registered method accepts."""
    names = {"auto": None}
    for spec in available_methods().values():
        names.update(dict.fromkeys([*spec.encoders, *spec.aliases]))
    return tuple(names)
