"""ParCNetV2's token mixer (Xu et al. 2022, "ParCNetV2: Oversized Kernel with Enhanced
Attention"): a gated pointwise projection whose gate branch sees the whole map through
oversized depthwise convolutions.

Follows ``ParC_V2`` in XuRuihan/ParCNetV2 ``models/parcnetv2.py``: a 1x1 projection C -> 2C with
bias, split into a value half and a gate half; the gate half goes through GELU, then the sum of
``OversizeConv2d`` (a depthwise (2H-1) x 1 conv then a depthwise 1 x (2W-1) conv, zero padding,
on all channels, no bias) and a bias-free 7x7 depthwise conv; value * gate; a bias-free 1x1
projection back to C. 1x1 convs are ``nn.Linear`` on channels-last maps (same parameters).

Unlike ParC (``parc``) nothing wraps around and no position embedding is added: the zero
padding of a kernel twice the map gives each position its own view of the map. The oversized
kernels are stored with 2 * grid_size - 1 taps (111/55/27/13 at 224 px) and linearly resized
(``align_corners=True``) to 2n - 1 taps of the actual map, as the official ``interpolate=True``
mode does; at the nominal size this is the official fixed kernel. They are applied by FFT
(:func:`nas.functional.spectral.padded_correlate`), the same function as the zero-padded conv.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from nas.functional.resize import grid_or_default
from nas.layers.axial_conv import AxialGlobalConv
from nas.mixers.knobs.parc import ParCV2Knobs


class OversizeConv(nn.Module):
    """ParCNetV2's ``OversizeConv2d`` on channels-last maps: a depthwise conv along H with
    2H-1 taps, then one along W with 2W-1 taps, both zero-padded "same" and bias-free."""

    def __init__(self, channels: int, grid_size: int):
        super().__init__()
        self.conv_h = AxialGlobalConv(channels, -3, grid_size, "oversize", pe=False, bias=False)
        self.conv_w = AxialGlobalConv(channels, -2, grid_size, "oversize", pe=False, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_w(self.conv_h(x))


class ParCV2(nn.Module):
    """ParCNetV2's mixer on channels-last maps ``(B, H, W, C)``:
    ``value, gate = split(pwconv1(x))``; ``gate = GELU(gate)``;
    ``out = pwconv2(value * (oversize(gate) + dwconv(gate)))``.

    Knobs: :class:`ParCV2Knobs`.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = ParCV2Knobs.parse(dim, knobs)
        half = int(k.expansion_ratio * dim) // 2
        self.pwconv1 = nn.Linear(dim, 2 * half)
        self.act = nn.GELU()
        self.oversize = OversizeConv(half, grid_or_default(k.grid_size))
        self.dwconv = nn.Conv2d(
            half, half, k.kernel_size, padding=k.kernel_size // 2, groups=half, bias=False
        )
        self.pwconv2 = nn.Linear(half, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        value, gate = self.pwconv1(x).chunk(2, dim=-1)
        gate = self.act(gate)
        local = self.dwconv(gate.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.pwconv2(value * (self.oversize(gate) + local))
