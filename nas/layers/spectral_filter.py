"""A learnable per-channel global filter in the 2-D Fourier domain (GFNet)."""

from __future__ import annotations

import torch
from timm.layers import register_notrace_module
from torch import Tensor, nn

from nas.functional.resize import resize_grid
from nas.functional.spectral import spectral_filter2d
from nas.layers.own_init import OwnInit


@register_notrace_module  # resizes its filter to the map: FX cannot trace size arithmetic
class SpectralFilter2d(OwnInit, nn.Module):
    """``irfft2(rfft2(x) * W)`` on a channels-last map ``(B, H, W, C)``: a circular convolution
    whose kernel covers the whole map, at O(HW log HW).

    ``W`` is complex, one value per channel and half-spectrum frequency, stored as a real view
    ``(grid_size, grid_size // 2 + 1, C, 2)`` (GFNet's layout) and resized with ``mode`` to the
    spectrum of each input, so the layer runs at any map size. Initialised as HorNet's
    trunc_normal(std 0.02), which is GFNet's and DFFormer's ``randn * 0.02`` in distribution (the
    truncation at +-2 lies 100 standard deviations out).
    """

    def __init__(self, channels: int, grid_size: int, mode: str = "bicubic"):
        super().__init__()
        self.mode = mode
        self.weight = nn.Parameter(torch.empty(grid_size, grid_size // 2 + 1, channels, 2))
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[1], x.shape[2]
        weight = resize_grid(self.weight, (h, w // 2 + 1), self.mode)
        return spectral_filter2d(x, torch.view_as_complex(weight.contiguous()))
