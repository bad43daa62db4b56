"""PoolFormer's pooling mixer."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from nas.mixers.registry import register_mixer


@register_mixer("pooling")
class Pooling(nn.Module):
    """``avgpool(x) - x``: the pool excludes padding, so a constant map gives exactly 0.

    Subtracting ``x`` removes the identity that the block's residual already carries.
    """

    def __init__(self, dim: int, *, pool_size: int = 3):
        super().__init__()
        self.pool_size = pool_size

    @staticmethod
    def validate_knobs(dim: int, *, pool_size: int) -> None:
        if not isinstance(pool_size, int) or pool_size < 1 or pool_size % 2 == 0:
            raise ValueError(f"pool_size must be an odd positive int, found {pool_size!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.permute(0, 3, 1, 2)
        pooled = F.avg_pool2d(
            y, self.pool_size, stride=1, padding=self.pool_size // 2, count_include_pad=False
        )
        return (pooled - y).permute(0, 2, 3, 1)
