"""DFFormer's dynamic filter: a global circular convolution in the Fourier domain whose
per-channel filter is a softmax-weighted mix of a few shared filters, chosen from the input.

Follows ``DynamicFilter`` in okojoalg/dfformer ``models/dfformer.py``: bias-free Linear C->2C,
StarReLU, rfft2 (orthonormal, float32), product with the routed filter, irfft2, bias-free
Linear 2C->C. Routing is MetaFormer's MLP (C -> C/4 -> N*2C, StarReLU, no bias) on the spatial
mean, softmax over the N filters. The N complex filters (``randn * 0.02``) are shared by all
channels, stored at ``grid_size x (grid_size // 2 + 1)`` and bicubically resized to each map's
half spectrum (DFFormer's ``resize_complex_weight``).
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import register_notrace_module
from torch import Tensor, nn

from nas.functional.resize import grid_or_default, resize_grid
from nas.functional.spectral import spectral_filter2d
from nas.layers.activations import StarReLU
from nas.layers.own_init import OwnInit
from nas.mixers.knobs.dynamic_filter import DynamicFilterKnobs


@register_notrace_module  # resizes its filters to the map: FX cannot trace size arithmetic
class DynamicFilter(OwnInit, nn.Module):
    """Dynamic global filter mixer on channels-last maps ``(B, H, W, C)``.

    Knobs: :class:`DynamicFilterKnobs`.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = DynamicFilterKnobs.parse(dim, knobs)
        self.num_filters = k.num_filters
        self.width = int(k.expansion_ratio * dim)
        hidden = int(k.reweight_ratio * dim)
        grid = grid_or_default(k.grid_size)
        self.pwconv1 = nn.Linear(dim, self.width, bias=False)
        self.act = StarReLU()
        self.reweight = nn.Sequential(
            nn.Linear(dim, hidden, bias=False),
            StarReLU(),
            nn.Linear(hidden, k.num_filters * self.width, bias=False),
        )
        self.filters = nn.Parameter(torch.empty(grid, grid // 2 + 1, k.num_filters, 2))
        self.pwconv2 = nn.Linear(self.width, dim, bias=False)
        self.init_weights()

    def init_weights(self) -> None:
        """DFFormer's ``randn * 0.02`` filters; its linears take the backbone's init."""
        nn.init.normal_(self.filters, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, _ = x.shape
        routing = self.reweight(x.mean(dim=(1, 2))).view(b, self.num_filters, self.width)
        u = self.act(self.pwconv1(x))
        with torch.autocast(x.device.type, enabled=False):
            filters = resize_grid(self.filters, (h, w // 2 + 1), mode="bicubic")
            routing = routing.to(filters.dtype).softmax(dim=1)
            weight = torch.einsum("bfc,hwfr->bhwcr", routing, filters).contiguous()
        u = spectral_filter2d(u, torch.view_as_complex(weight))
        return self.pwconv2(u)
