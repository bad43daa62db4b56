"""ConvFormer's separable-convolution mixer (inverted MobileNetV2 block)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.layers import StarReLU
from nas.mixers.knobs.sepconv import SepConvKnobs


class SepConv(nn.Module):
    """Linear C->rC, StarReLU, depthwise KxK, Linear rC->C; no biases, as in ConvFormer."""

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = SepConvKnobs.parse(dim, knobs)
        kernel_size = k.kernel_size
        hidden = int(k.expansion_ratio * dim)
        self.pwconv1 = nn.Linear(dim, hidden, bias=False)
        self.act = StarReLU()
        self.dwconv = nn.Conv2d(
            hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden, bias=False
        )
        self.pwconv2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.pwconv1(x))
        x = self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.pwconv2(x)
