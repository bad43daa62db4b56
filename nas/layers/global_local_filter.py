"""HorNet's Global-Local Filter, the large-receptive-field alternative to gnConv's 7x7 conv."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nas.layers.spectral_filter import SpectralFilter2d


class GlobalLocalFilter(nn.Module):
    """Half the channels through a 3x3 depthwise conv (local), half through a global filter.

    Channels-last ``(B, H, W, C)`` in and out. As in HorNet's code the two halves are interleaved
    channel by channel, so every gnConv split gets both local and global channels; the global
    filter weights are bilinearly resized to the map, and ``norm`` adds HorNet's LayerNorms
    (with bias) before and after. Without ``norm`` the layer is linear, which keeps gnConv
    homogeneous of degree ``order + 1``.
    """

    def __init__(self, channels: int, grid_size: int, norm: bool = True):
        super().__init__()
        half = channels // 2
        self.pre_norm = nn.LayerNorm(channels, eps=1e-6) if norm else nn.Identity()
        self.local = nn.Conv2d(half, half, kernel_size=3, padding=1, groups=half, bias=False)
        self.spectral = SpectralFilter2d(half, grid_size, mode="bilinear")
        self.post_norm = nn.LayerNorm(channels, eps=1e-6) if norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.pre_norm(x)
        local, spectral = x.chunk(2, dim=-1)
        local = self.local(local.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        spectral = self.spectral(spectral).to(local.dtype)
        x = torch.stack([local, spectral], dim=-1).flatten(-2)
        return self.post_norm(x)
