"""Token mixers, one module each, registered by name (see :mod:`nas.mixers.registry`)."""

from nas.mixers import attention, identity, pooling, sepconv
from nas.mixers.registry import create_mixer, get_mixer, list_mixers, register_mixer

__all__ = [
    "attention",
    "create_mixer",
    "get_mixer",
    "identity",
    "list_mixers",
    "pooling",
    "register_mixer",
    "sepconv",
]
