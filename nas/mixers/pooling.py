"""PoolFormer's pooling mixer."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from nas.mixers.knobs.pooling import PoolingKnobs


class Pooling(nn.Module):
    """``avgpool(x) - x``: the pool excludes padding, so a constant map gives exactly 0.

    Subtracting ``x`` removes the identity that the block's residual already carries.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        self.pool_size = PoolingKnobs.parse(dim, knobs).pool_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.permute(0, 3, 1, 2)
        pooled = F.avg_pool2d(
            y, self.pool_size, stride=1, padding=self.pool_size // 2, count_include_pad=False
        )
        return (pooled - y).permute(0, 2, 3, 1)
