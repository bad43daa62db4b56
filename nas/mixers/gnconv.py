"""HorNet's recursive gated convolution (gnConv): spatial interactions of order ``n`` from
element-wise gating alone, with the cost of a depthwise conv plus pointwise projections.

Follows the official code (raoyongming/HorNet ``hornet.py``): every projection and the 7x7
depthwise conv carry a bias, the depthwise output is scaled by ``s = 1/3``, and the Global-Local
Filter variant keeps its own pre/post LayerNorms; 1x1 convs are ``nn.Linear`` on channels-last
maps (same parameters).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from torch import Tensor, nn

from nas.functional.resize import grid_or_default
from nas.layers.global_local_filter import GlobalLocalFilter
from nas.mixers.knobs.gnconv import GnConvKnobs, split_dims


class _DepthwiseConv(nn.Conv2d):
    """A depthwise conv with bias taking and returning channels-last maps."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class GnConv(nn.Module):
    """gnConv on channels-last maps ``(B, H, W, C)``.

    ``p0, Q = split(proj_in(x))``; ``q_0..q_{n-1} = split(s * DW(Q))``; ``t = p0 * q_0``;
    ``t = pw_i(t) * q_i`` for ``i = 1..n-1``; ``out = proj_out(t)``.

    Knobs: :class:`GnConvKnobs`.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = GnConvKnobs.parse(dim, knobs)
        self.dims = split_dims(dim, k.order)
        self.scale = k.scale
        gated = sum(self.dims)
        self.proj_in = nn.Linear(dim, self.dims[0] + gated)
        if k.filter == "dw":
            self.dw: nn.Module = _DepthwiseConv(gated, k.kernel_size)
        else:
            self.dw = GlobalLocalFilter(gated, grid_or_default(k.grid_size), norm=k.gf_norm)
        self.pws = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(self.dims))
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        p, q = self.proj_in(x).split([self.dims[0], sum(self.dims)], dim=-1)
        gates = (self.dw(q) * self.scale).split(self.dims, dim=-1)
        t = p * gates[0]
        for i, pw in enumerate(self.pws):  # indexed, not zipped: FX cannot iterate a split
            t = pw(t) * gates[i + 1]
        return self.proj_out(t)
