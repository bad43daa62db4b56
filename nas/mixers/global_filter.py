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

from torch import Tensor, nn

from nas.functional.resize import check_grid_size, grid_or_default
from nas.layers.activations import StarReLU
from nas.layers.spectral_filter import SpectralFilter2d
from nas.mixers.registry import register_mixer


@register_mixer("global_filter")
class GlobalFilter(nn.Module):
    """Static global filter mixer on channels-last maps ``(B, H, W, C)``.

    Knobs:
        pointwise: GFFormer's Linear/StarReLU ... Linear wrapping (True) or GFNet's bare filter.
        expansion_ratio: hidden width factor of ``pointwise`` (2 in GFFormer; ignored without it).
        grid_size: nominal map side the filter is stored at; ``None`` means 14.
    """

    def __init__(
        self,
        dim: int,
        *,
        pointwise: bool = True,
        expansion_ratio: float = 2.0,
        grid_size: int | None = None,
    ):
        super().__init__()
        self.validate_knobs(
            dim, pointwise=pointwise, expansion_ratio=expansion_ratio, grid_size=grid_size
        )
        width = int(expansion_ratio * dim) if pointwise else dim
        self.pwconv1 = nn.Linear(dim, width, bias=False) if pointwise else nn.Identity()
        self.act = StarReLU() if pointwise else nn.Identity()
        self.filter = SpectralFilter2d(width, grid_or_default(grid_size), mode="bicubic")
        self.pwconv2 = nn.Linear(width, dim, bias=False) if pointwise else nn.Identity()

    @staticmethod
    def validate_knobs(
        dim: int, *, pointwise: bool, expansion_ratio: float, grid_size: int | None
    ) -> None:
        """Reject knob values that cannot build the mixer at width ``dim``."""
        if not isinstance(pointwise, bool):
            raise ValueError(f"pointwise must be a bool, found {pointwise!r}")
        if isinstance(expansion_ratio, bool) or not isinstance(expansion_ratio, (int, float)):
            raise ValueError(f"expansion_ratio must be a number, found {expansion_ratio!r}")
        if pointwise and int(expansion_ratio * dim) < 1:
            raise ValueError(
                f"expansion_ratio must give a hidden width >= 1 at dim {dim}, "
                f"found {expansion_ratio!r}"
            )
        check_grid_size(grid_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.pwconv2(self.filter(self.act(self.pwconv1(x))))
