"""The built-in mixers' knob declarations, one module per mixer or mixer family; importing them
registers them (without torch: each names the module that builds it)."""

from nas.mixers.knobs import (
    attention,
    dynamic_filter,
    global_context,
    global_filter,
    gnconv,
    hybrid_attention,
    hyena,
    identity,
    local_attention,
    parc,
    pooling,
    sepconv,
)

__all__ = [
    "attention",
    "dynamic_filter",
    "global_context",
    "global_filter",
    "gnconv",
    "hybrid_attention",
    "hyena",
    "identity",
    "local_attention",
    "parc",
    "pooling",
    "sepconv",
]
