"""A learnable per-channel global filter in the 2-D Fourier domain (GFNet)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nas.functional.resize import resize_grid
from nas.functional.spectral import spectral_filter2d


class SpectralFilter2d(nn.Module):
    """``irfft2(rfft2(x) * W)`` on a channels-last map ``(B, H, W, C)``: a circular convolution
    whose kernel covers the whole map, at O(HW log HW).

    ``W`` is complex, one value per channel and half-spectrum frequency, stored as a real view
    ``(grid_size, grid_size // 2 + 1, C, 2)`` (GFNet's layout and ``randn * 0.02`` init) and
    resized with ``mode`` to the spectrum of each input, so the layer runs at any map size.
    """

    def __init__(self, channels: int, grid_size: int, mode: str = "bicubic"):
        super().__init__()
        self.mode = mode
        self.weight = nn.Parameter(torch.randn(grid_size, grid_size // 2 + 1, channels, 2) * 0.02)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[1], x.shape[2]
        weight = resize_grid(self.weight, (h, w // 2 + 1), self.mode)
        return spectral_filter2d(x, torch.view_as_complex(weight.contiguous()))
