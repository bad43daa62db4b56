"""Token mixers, one module each, registered by name (see :mod:`nas.mixers.registry`)."""

from nas.mixers import (
    attention,
    dynamic_filter,
    global_filter,
    gnconv,
    hyena,
    hyena_pixel,
    identity,
    parc,
    pooling,
    sepconv,
)
from nas.mixers.registry import create_mixer, get_mixer, list_mixers, register_mixer

__all__ = [
    "attention",
    "create_mixer",
    "dynamic_filter",
    "global_filter",
    "gnconv",
    "hyena",
    "hyena_pixel",
    "get_mixer",
    "identity",
    "list_mixers",
    "parc",
    "pooling",
    "register_mixer",
    "sepconv",
]
