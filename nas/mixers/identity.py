"""Identity mixer: a block with no token mixing, the MetaFormer lower bound."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.mixers.knobs.identity import IdentityKnobs


class IdentityMixer(nn.Module):
    """Returns its input; the block then only has its MLP (IdentityFormer)."""

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        IdentityKnobs.parse(dim, knobs)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
