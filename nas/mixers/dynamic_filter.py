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

import torch
from torch import Tensor, nn

from nas.functional.resize import check_grid_size, grid_or_default, resize_grid
from nas.functional.spectral import spectral_filter2d
from nas.layers.activations import StarReLU
from nas.mixers.registry import register_mixer


@register_mixer("dynamic_filter")
class DynamicFilter(nn.Module):
    """Dynamic global filter mixer on channels-last maps ``(B, H, W, C)``.

    Knobs:
        num_filters: N, size of the shared filter bank the routing mixes (4 in DFFormer).
        expansion_ratio: hidden width factor of the filtered branch (2 in DFFormer).
        reweight_ratio: hidden width factor of the routing MLP (0.25 in DFFormer).
        grid_size: nominal map side the filters are stored at; ``None`` means 14.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_filters: int = 4,
        expansion_ratio: float = 2.0,
        reweight_ratio: float = 0.25,
        grid_size: int | None = None,
    ):
        super().__init__()
        self.validate_knobs(
            dim,
            num_filters=num_filters,
            expansion_ratio=expansion_ratio,
            reweight_ratio=reweight_ratio,
            grid_size=grid_size,
        )
        self.num_filters = num_filters
        self.width = int(expansion_ratio * dim)
        hidden = int(reweight_ratio * dim)
        grid = grid_or_default(grid_size)
        self.pwconv1 = nn.Linear(dim, self.width, bias=False)
        self.act = StarReLU()
        self.reweight = nn.Sequential(
            nn.Linear(dim, hidden, bias=False),
            StarReLU(),
            nn.Linear(hidden, num_filters * self.width, bias=False),
        )
        self.filters = nn.Parameter(torch.randn(grid, grid // 2 + 1, num_filters, 2) * 0.02)
        self.pwconv2 = nn.Linear(self.width, dim, bias=False)

    @staticmethod
    def validate_knobs(
        dim: int,
        *,
        num_filters: int,
        expansion_ratio: float,
        reweight_ratio: float,
        grid_size: int | None,
    ) -> None:
        """Reject knob values that cannot build the mixer at width ``dim``."""
        if isinstance(num_filters, bool) or not isinstance(num_filters, int) or num_filters < 1:
            raise ValueError(f"num_filters must be a positive int, found {num_filters!r}")
        ratios = {"expansion_ratio": expansion_ratio, "reweight_ratio": reweight_ratio}
        for name, ratio in ratios.items():
            if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
                raise ValueError(f"{name} must be a number, found {ratio!r}")
            if int(ratio * dim) < 1:
                raise ValueError(
                    f"{name} must give a hidden width int({name} * dim) >= 1 at dim {dim}, "
                    f"found {ratio!r}"
                )
        check_grid_size(grid_size)

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
