"""Norms of the MetaFormer baselines (eps 1e-6): bias-free LayerNorms, and GroupNorm with one
group for PoolFormer."""

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


class GroupNorm1(nn.GroupNorm):
    """GroupNorm with one group on a channels-last map: normalises each image over its channels
    and positions together (PoolFormer/V2), with a per-channel affine; eps 1e-6 as timm's."""

    def __init__(self, dim: int, eps: float = 1e-6, bias: bool = True):
        super().__init__(1, dim, eps=eps)
        if not bias:
            self.bias = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.group_norm(x.permute(0, 3, 1, 2), 1, self.weight, self.bias, self.eps)
        return y.permute(0, 2, 3, 1)
