"""Position-aware circular convolution (ParC / Fast-ParC): a global receptive field from two
depthwise 1-D convolutions whose kernels span the whole map, one along H and one along W.

Follows ParC-ConvNeXt (hkzhang91/ParC-Net ``ParC_convnext.py``), where ParC replaces the
block's depthwise conv directly: channels split in half, each half a depthwise global conv with
bias after adding a learnable position embedding, and no pointwise projections inside the mixer
(channel mixing is left to the MLP). ``pointwise=True`` instead wraps the operator like
ConvFormer's SepConv (bias-free Linear, StarReLU, ParC, bias-free Linear) for a like-for-like
swap of the 7x7 conv in a MetaFormer. Kernels and embeddings are stored at ``grid_size`` and
linearly resized to the map (``align_corners=True``, as Fast-ParC's meta kernels).
``variant="oversize"`` keeps this layout with ParCNetV2's zero-padded 2n-1 kernels; ParCNetV2's
own mixer (gated, H then W on all channels, plus a 7x7 branch) is ``parc_v2``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from nas.functional.resize import grid_or_default
from nas.layers.activations import StarReLU
from nas.layers.axial_conv import AxialGlobalConv
from nas.mixers.knobs.parc import ParCKnobs


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
        self.conv_h = AxialGlobalConv(width // 2, -3, *axial)
        self.conv_w = AxialGlobalConv(width // 2, -2, *axial)
        self.pwconv2 = nn.Linear(width, dim, bias=False) if k.pointwise else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.pwconv1(x))
        x_h, x_w = x.chunk(2, dim=-1)
        x = torch.cat([self.conv_h(x_h), self.conv_w(x_w)], dim=-1)
        return self.pwconv2(x)
