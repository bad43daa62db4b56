"""Position-aware circular convolution (ParC / Fast-ParC): a global receptive field from two
depthwise 1-D convolutions whose kernels span the whole map, one along H and one along W.

Follows ParC-ConvNeXt (hkzhang91/ParC-Net ``ParC_convnext.py``), where ParC replaces the
block's depthwise conv directly: channels split in half, each half a depthwise global conv with
bias after adding a learnable position embedding, and no pointwise projections inside the mixer
(channel mixing is left to the MLP). ``pointwise=True`` instead wraps the operator like
ConvFormer's SepConv (bias-free Linear, StarReLU, ParC, bias-free Linear) for a like-for-like
swap of the 7x7 conv in a MetaFormer. Kernels and embeddings are stored at ``grid_size`` and
linearly resized to the map (``align_corners=True``, as Fast-ParC's meta kernels).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from nas.functional.resize import grid_or_default, resize_line
from nas.functional.spectral import circular_correlate, padded_correlate
from nas.layers.activations import StarReLU
from nas.mixers.knobs.parc import ParCKnobs


class _AxialGlobalConv(nn.Module):
    """Depthwise global conv along one axis (``-3`` = H, ``-2`` = W) of a channels-last map.

    ``"circular"``: kernel length n with wrap-around (ParC), computed by FFT (Fast-ParC).
    ``"oversize"``: kernel length 2n - 1 with zero padding (ParCNetV2), also by FFT.
    Kernel and embedding start as trunc_normal(std 0.02), the bias at 0 (ParC-ConvNeXt's init).
    """

    def __init__(
        self, channels: int, axis: int, grid_size: int, variant: str, pe: bool, bias: bool
    ):
        super().__init__()
        self.axis = axis
        self.variant = variant
        length = grid_size if variant == "circular" else 2 * grid_size - 1
        self.kernel = nn.Parameter(nn.init.trunc_normal_(torch.empty(channels, length), std=0.02))
        self.pe = (
            nn.Parameter(nn.init.trunc_normal_(torch.empty(channels, grid_size), std=0.02))
            if pe
            else None
        )
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def _along_axis(self, weight: Tensor, length: int) -> Tensor:
        """Resize ``(C, L)`` to ``length`` and lay it out to broadcast along ``self.axis``."""
        weight = resize_line(weight, length).t()
        return weight.unsqueeze(1) if self.axis == -3 else weight

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[self.axis]
        if self.pe is not None:
            x = x + self._along_axis(self.pe, n)
        if self.variant == "circular":
            y = circular_correlate(x, self._along_axis(self.kernel, n), self.axis)
        else:
            y = padded_correlate(x, self._along_axis(self.kernel, 2 * n - 1), self.axis)
        return y if self.bias is None else y + self.bias


class ParC(nn.Module):
    """ParC on channels-last maps ``(B, H, W, C)``: first half of the channels convolved along H,
    second half along W, each with a global depthwise kernel.

    Knobs: :class:`ParCKnobs`.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = ParCKnobs.parse(dim, knobs)
        width = int(k.expansion_ratio * dim) if k.pointwise else dim
        grid = grid_or_default(k.grid_size)
        self.pwconv1 = nn.Linear(dim, width, bias=False) if k.pointwise else nn.Identity()
        self.act = StarReLU() if k.pointwise else nn.Identity()
        axial = (grid, k.variant, k.position_embedding, k.bias)
        self.conv_h = _AxialGlobalConv(width // 2, -3, *axial)
        self.conv_w = _AxialGlobalConv(width // 2, -2, *axial)
        self.pwconv2 = nn.Linear(width, dim, bias=False) if k.pointwise else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.pwconv1(x))
        x_h, x_w = x.chunk(2, dim=-1)
        x = torch.cat([self.conv_h(x_h), self.conv_w(x_w)], dim=-1)
        return self.pwconv2(x)
