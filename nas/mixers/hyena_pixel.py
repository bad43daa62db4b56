"""HyenaPixel: 2D Hyena with implicit depthwise kernels as large as (or larger than) the map.

Spravil et al. 2024. A 1x1 projection to ``order + 1`` gates and a depthwise short convolution
give local context; each long convolution, computed by FFT, lets every pixel see the whole map
(kernel 2H-1) at a cost that does not grow with the kernel. Channels-last in and out.

The official models fix the kernel per stage from the 224 px map (111/55/27/13, also on a 384 px
input); ``kernel_size: global`` instead follows the actual map (2H-1). The FFT convolution is a
``torch.fx`` leaf (its size logic runs on the actual sizes), and the module traces with
``torch.jit.trace`` into a graph that follows the input size.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.functional.fftconv import fftconv2d
from nas.functional.resize import grid_or_default
from nas.layers.hyena_recurrence import NORM_EPS, HyenaRecurrence, default_filter_emb_dim
from nas.layers.implicit_filter import ImplicitFilter2d
from nas.layers.norms import LayerNormNoBias
from nas.mixers.knobs.hyena import HyenaPixelKnobs

torch.fx.wrap("fftconv2d")


class HyenaPixel(nn.Module):
    """HyenaPixel token mixer (order 2 is the paper's operator).

    Knobs: :class:`HyenaPixelKnobs`.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = HyenaPixelKnobs.parse(dim, knobs)
        emb_dim = k.emb_dim or default_filter_emb_dim(dim)
        self.dim = dim
        self.order = k.order
        self.kernel_size = k.kernel_size
        gates = (k.order + 1) * dim
        self.in_proj = nn.Linear(dim, gates)
        self.short_conv = nn.Conv2d(
            gates, gates, k.short_kernel, padding=k.short_kernel // 2, groups=gates
        )
        global_side = 2 * grid_or_default(k.grid_size) - 1
        nominal = k.kernel_size if isinstance(k.kernel_size, int) else global_side
        self.long_filter = ImplicitFilter2d(
            (k.order - 1) * dim,
            emb_dim=emb_dim,
            hidden=k.filter_width or 2 * emb_dim,
            nominal_size=nominal,
            learnable_decay=k.learnable_decay,
            resize=k.decay_resize,
        )
        self.recurrence = HyenaRecurrence(dim, k.order, k.use_layernorm)
        self.out_norm = LayerNormNoBias(dim, eps=NORM_EPS) if k.use_layernorm else nn.Identity()
        self.out_proj = nn.Linear(dim, dim)

    def kernel_shape(self, height: int, width: int) -> tuple[int, int]:
        """Long-kernel size used on a ``height`` x ``width`` map."""
        if self.kernel_size == "global":
            return 2 * height - 1, 2 * width - 1
        return self.kernel_size, self.kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C) -> (B, H, W, C)``."""
        height, width = x.shape[1:3]
        u = self.short_conv(self.in_proj(x).permute(0, 3, 1, 2))
        size = self.kernel_shape(height, width)
        filters = self.long_filter(size).view(self.order - 1, self.dim, *size)
        y = self.recurrence(u.chunk(self.order + 1, dim=1), lambda z, i: fftconv2d(z, filters[i]))
        return self.out_proj(self.out_norm(y.permute(0, 2, 3, 1)))
