"""GFNet's global filter as a MetaFormer token mixer (GFFormer): a learnable per-channel
circular convolution over the whole map, applied as a product in the 2-D Fourier domain.

Follows ``GlobalFilter`` in okojoalg/dfformer ``models/dfformer.py`` (the GFFormer baseline of
DFFormer): bias-free Linear C->2C, StarReLU, the static filter on the 2C channels, bias-free
Linear 2C->C; the filter is ``randn * 0.02`` of shape ``(h, w // 2 + 1, 2C)``. DFFormer keeps
the filter at a fixed size; here it is stored at ``grid_size`` and bicubically resized to each
map (DFFormer's ``resize_complex_weight``). ``pointwise=False`` gives GFNet's bare filter over
the C input channels.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from nas.functional.resize import grid_or_default
from nas.layers.activations import StarReLU
from nas.layers.spectral_filter import SpectralFilter2d
from nas.mixers.knobs.global_filter import GlobalFilterKnobs


class GlobalFilter(nn.Module):
    """Static global filter mixer on channels-last maps ``(B, H, W, C)``.

    Knobs: :class:`GlobalFilterKnobs`.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = GlobalFilterKnobs.parse(dim, knobs)
        width = int(k.expansion_ratio * dim) if k.pointwise else dim
        self.pwconv1 = nn.Linear(dim, width, bias=False) if k.pointwise else nn.Identity()
        self.act = StarReLU() if k.pointwise else nn.Identity()
        self.filter = SpectralFilter2d(width, grid_or_default(k.grid_size), mode="bicubic")
        self.pwconv2 = nn.Linear(width, dim, bias=False) if k.pointwise else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.pwconv2(self.filter(self.act(self.pwconv1(x))))
