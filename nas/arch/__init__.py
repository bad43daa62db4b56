"""Architecture specs (the typed description of a MetaFormer backbone) and the preset zoo.

Torch-free, so the CLI validates a spec, a search space or a preset name without importing
torch; :mod:`nas.models` builds the networks they describe."""

from nas.arch.presets import PRESETS, list_presets, resolve_spec
from nas.arch.spec import ArchSpec, BlockOverride, MixerSpec, SpecError, StageSpec

__all__ = [
    "PRESETS",
    "ArchSpec",
    "BlockOverride",
    "MixerSpec",
    "SpecError",
    "StageSpec",
    "list_presets",
    "resolve_spec",
]
