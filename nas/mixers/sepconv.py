"""ConvFormer's separable-convolution mixer (inverted MobileNetV2 block)."""

from __future__ import annotations

import torch
from torch import nn

from nas.layers import StarReLU
from nas.mixers.registry import register_mixer


@register_mixer("sepconv")
class SepConv(nn.Module):
    """Linear C->rC, StarReLU, depthwise KxK, Linear rC->C; no biases, as in ConvFormer."""

    def __init__(self, dim: int, *, kernel_size: int = 7, expansion_ratio: float = 2.0):
        super().__init__()
        hidden = int(expansion_ratio * dim)
        self.pwconv1 = nn.Linear(dim, hidden, bias=False)
        self.act = StarReLU()
        self.dwconv = nn.Conv2d(
            hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden, bias=False
        )
        self.pwconv2 = nn.Linear(hidden, dim, bias=False)

    @staticmethod
    def validate_knobs(dim: int, *, kernel_size: int, expansion_ratio: float) -> None:
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd positive int, found {kernel_size!r}")
        if expansion_ratio <= 0 or int(expansion_ratio * dim) < 1:
            raise ValueError(f"expansion_ratio must be > 0, found {expansion_ratio!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.pwconv1(x))
        x = self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.pwconv2(x)
