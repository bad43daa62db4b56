"""Depthwise 1-D convolutions whose kernel spans a whole axis of the map (ParC, ParCNetV2)."""

from __future__ import annotations

import torch
from timm.layers import register_notrace_module
from torch import Tensor, nn

from nas.functional.resize import resize_line
from nas.functional.spectral import circular_correlate, padded_correlate
from nas.layers.own_init import OwnInit


@register_notrace_module  # resizes its weights to the map: FX cannot trace size arithmetic
class AxialGlobalConv(OwnInit, nn.Module):
    """Depthwise global conv along one axis (``-3`` = H, ``-2`` = W) of a channels-last map.

    ``"circular"``: kernel length n with wrap-around (ParC), computed by FFT (Fast-ParC).
    ``"oversize"``: kernel length 2n - 1 with zero padding (ParCNetV2's ``OversizeConv2d`` axis),
    also by FFT. Kernel and position embedding are stored for a map side of ``grid_size`` and
    linearly resized (``align_corners=True``) to each map, as ParCNetV2's ``interpolate=True``.
    Both start as trunc_normal(std 0.02), the bias at 0: ParC-ConvNeXt's and ParCNetV2's init
    (their kernels are ``nn.Conv2d`` weights under the backbone's trunc_normal).
    """

    def __init__(
        self, channels: int, axis: int, grid_size: int, variant: str, pe: bool, bias: bool
    ):
        super().__init__()
        self.axis = axis
        self.variant = variant
        length = grid_size if variant == "circular" else 2 * grid_size - 1
        self.kernel = nn.Parameter(torch.empty(channels, length))
        self.pe = nn.Parameter(torch.empty(channels, grid_size)) if pe else None
        self.bias = nn.Parameter(torch.empty(channels)) if bias else None
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.trunc_normal_(self.kernel, std=0.02)
        if self.pe is not None:
            nn.init.trunc_normal_(self.pe, std=0.02)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

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
