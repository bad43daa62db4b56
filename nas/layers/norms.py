"""Bias-free LayerNorms used by the MetaFormer baselines (eps 1e-6)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class LayerNormNoBias(nn.LayerNorm):
    """LayerNorm over the last (channel) dimension of a channels-last map, without bias."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__(dim, eps=eps, bias=False)


class LayerNorm2dNoBias(nn.LayerNorm):
    """LayerNorm over the channel dimension of an NCHW map, without bias."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__(dim, eps=eps, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, None, self.eps)
        return x.permute(0, 3, 1, 2)
