"""Token mixers, one module each, registered by name (see :mod:`nas.mixers.registry`).

Importing the package is light: the registry and the knob declarations (``nas.mixers.knobs``)
need no torch, and a mixer's module is imported when it is first built or named here."""

from nas.lazy import lazy_exports
from nas.mixers.registry import MixerKnobs, create_mixer, get_mixer, list_mixers, register_mixer

_MODULES = [
    "acmix",
    "attention",
    "attention_augmented",
    "dynamic_filter",
    "global_context",
    "global_filter",
    "gnconv",
    "halo_attention",
    "hyena",
    "hyena_pixel",
    "identity",
    "knobs",
    "multi_axis_attention",
    "neighborhood_attention",
    "parc",
    "parc_v2",
    "pooling",
    "sepconv",
]

__getattr__ = lazy_exports(__name__, {__name__: _MODULES})

__all__ = ["MixerKnobs", "create_mixer", "get_mixer", "list_mixers", "register_mixer", *_MODULES]
