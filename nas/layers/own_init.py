"""The hook through which a layer keeps its documented initialisation inside a backbone.

A backbone first gives every ``Linear``/``Conv2d`` timm's MetaFormer init (truncated normal,
std 0.02, zero bias); that would overwrite what a mixer's paper prescribes (an implicit filter's
MLP, a global filter's complex weights). Every module that is an :class:`OwnInit` then has its
``init_weights`` called, outermost first, so its own init is what the model starts from.
"""

from __future__ import annotations

from torch import nn


class OwnInit:
    """Mixin of a module whose parameters have their own initialisation (``init_weights``)."""

    def init_weights(self) -> None:
        """Re-initialise this module's parameters as its paper or official code does."""
        raise NotImplementedError


def apply_own_init(model: nn.Module) -> None:
    """Call ``init_weights`` of every :class:`OwnInit` submodule, parents before children."""
    for module in model.modules():
        if isinstance(module, OwnInit):
            module.init_weights()
