"""The MetaFormer builder, the ``nas_*`` timm models (registered on import) and profiling; the
specs and presets of :mod:`nas.arch` are re-exported beside the builder that consumes them."""

from nas.arch.presets import PRESETS, list_presets, resolve_spec
from nas.arch.spec import ArchSpec, BlockOverride, MixerSpec, SpecError, StageSpec
from nas.models import timm_models
from nas.models.metaformer import MetaFormer, build_model

__all__ = [
    "PRESETS",
    "ArchSpec",
    "BlockOverride",
    "MetaFormer",
    "MixerSpec",
    "SpecError",
    "StageSpec",
    "build_model",
    "list_presets",
    "resolve_spec",
    "timm_models",
]
