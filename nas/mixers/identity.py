"""Identity mixer: a block with no token mixing, the MetaFormer lower bound."""

from __future__ import annotations

import torch
from torch import nn

from nas.mixers.registry import register_mixer


@register_mixer("identity")
class IdentityMixer(nn.Module):
    """Returns its input; the block then only has its MLP (IdentityFormer)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
