"""The Hyena recurrence shared by the 2D (HyenaPixel) and 1D (Hyena) mixers, and their knob rules.

Order ``N`` uses ``N + 1`` gates ``g_0 .. g_N`` (projections after the short convolution) and
``N - 1`` long convolutions ``h_1 .. h_{N-1}``:

    z = g_0;  for i = 1 .. N-1:  z = h_i * norm_i(z . g_i) + D_i . norm_i(z . g_i);  y = z . g_N

This is the Hyena recursion ``z_{i+1} = x_i . (h_i * z_i)`` with the first filter being the short
convolution alone, as in the official Hyena and HyenaPixel code: order 2 is exactly HyenaPixel's
``v . (h * (q . k) + D . (q . k))`` with one long filter per block, which is what its published
parameter count (29M for hpx_former_s18) implies. The optional LayerNorms (bias-free) use the
official eps 1e-5 (``NORM_EPS``), not the MetaFormer blocks' 1e-6.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from nas.layers.norms import LayerNorm2dNoBias

NORM_EPS = 1e-5


def default_filter_emb_dim(dim: int) -> int:
    """HyenaPixel's encoding width per stage: 32/32/48/64 for S18's widths 64/128/320/512."""
    return 16 * max(2, math.ceil(dim / 128))


class HyenaRecurrence(nn.Module):
    """Gated long convolutions of order ``order`` on ``(B, C, H, W)`` gates."""

    def __init__(self, dim: int, order: int, use_layernorm: bool):
        super().__init__()
        self.skip = nn.Parameter(torch.randn(order - 1, dim))
        self.norms = nn.ModuleList(
            LayerNorm2dNoBias(dim, eps=NORM_EPS) if use_layernorm else nn.Identity()
            for _ in range(order - 1)
        )

    def forward(
        self,
        gates: Sequence[torch.Tensor],
        long_conv: Callable[[torch.Tensor, int], torch.Tensor],
    ) -> torch.Tensor:
        """Run the recurrence; ``long_conv(z, i)`` convolves ``z`` with the ``i``-th long filter."""
        z = gates[0]
        for i, norm in enumerate(self.norms):
            z = norm(z * gates[i + 1])
            z = long_conv(z, i) + self.skip[i].view(-1, 1, 1) * z
        return z * gates[-1]
