"""Architecture specs, the MetaFormer builder, presets, timm registration and profiling."""

from nas.models import timm_models
from nas.models.metaformer import MetaFormer, build_model
from nas.models.presets import PRESETS, list_presets, resolve_spec
from nas.models.spec import ArchSpec, BlockOverride, MixerSpec, SpecError, StageSpec

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
