"""Activations of the MetaFormer baselines."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class StarReLU(nn.Module):
    """``s * relu(x)^2 + b`` with learnable scalars ``s`` (init 1) and ``b`` (init 0)."""

    def __init__(self, scale: float = 1.0, bias: float = 0.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([scale]))
        self.bias = nn.Parameter(torch.tensor([bias]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.relu(x).square() + self.bias


class SquaredReLU(nn.Module):
    """``relu(x)^2``, the activation of the MetaFormer MLP head."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()
