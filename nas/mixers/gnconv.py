"""HorNet's recursive gated convolution (gnConv): spatial interactions of order ``n`` from
element-wise gating alone, with the cost of a depthwise conv plus pointwise projections.

Follows the official code (raoyongming/HorNet ``hornet.py``): every projection and the 7x7
depthwise conv carry a bias, the depthwise output is scaled by ``s = 1/3``, and the Global-Local
Filter variant keeps its own pre/post LayerNorms; 1x1 convs are ``nn.Linear`` on channels-last
maps (same parameters).
"""

from __future__ import annotations

from itertools import pairwise

from torch import Tensor, nn

from nas.functional.resize import check_grid_size, grid_or_default
from nas.layers.global_local_filter import GlobalLocalFilter
from nas.mixers.registry import register_mixer

FILTERS = ("dw", "gf")


def split_dims(dim: int, order: int) -> list[int]:
    """Channel splits ``d_i = dim / 2^(order-1-i)``: the gate widens at every recursion step."""
    return [dim // 2 ** (order - 1 - i) for i in range(order)]


class _DepthwiseConv(nn.Conv2d):
    """A depthwise conv with bias taking and returning channels-last maps."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


@register_mixer("gnconv")
class GnConv(nn.Module):
    """gnConv on channels-last maps ``(B, H, W, C)``.

    ``p0, Q = split(proj_in(x))``; ``q_0..q_{n-1} = split(s * DW(Q))``; ``t = p0 * q_0``;
    ``t = pw_i(t) * q_i`` for ``i = 1..n-1``; ``out = proj_out(t)``.

    Knobs:
        order: interaction order ``n`` (HorNet uses 2, 3, 4, 5 in stages 1-4).
        filter: ``"dw"`` a ``kernel_size`` depthwise conv, or ``"gf"`` HorNet's Global-Local
            Filter (3x3 depthwise on half the channels, global rfft2 filter on the other half).
        kernel_size: depthwise kernel of the ``"dw"`` filter.
        scale: ``s``, the factor on the depthwise output (1/3 in all HorNet models).
        gf_norm: the Global-Local Filter's pre/post LayerNorms (``"gf"`` only); off makes gnConv
            homogeneous of degree ``order + 1`` again.
        grid_size: nominal map side the global filter is stored at (``"gf"`` only); ``None``
            means 14, HorNet's stage-3 size.
    """

    def __init__(
        self,
        dim: int,
        *,
        order: int = 3,
        filter: str = "dw",
        kernel_size: int = 7,
        scale: float = 1.0 / 3.0,
        gf_norm: bool = True,
        grid_size: int | None = None,
    ):
        super().__init__()
        self.validate_knobs(
            dim,
            order=order,
            filter=filter,
            kernel_size=kernel_size,
            scale=scale,
            gf_norm=gf_norm,
            grid_size=grid_size,
        )
        self.dims = split_dims(dim, order)
        self.scale = scale
        gated = sum(self.dims)
        self.proj_in = nn.Linear(dim, self.dims[0] + gated)
        if filter == "dw":
            self.dw: nn.Module = _DepthwiseConv(gated, kernel_size)
        else:
            self.dw = GlobalLocalFilter(gated, grid_or_default(grid_size), norm=gf_norm)
        self.pws = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(self.dims))
        self.proj_out = nn.Linear(dim, dim)

    @staticmethod
    def validate_knobs(
        dim: int,
        *,
        order: int,
        filter: str,
        kernel_size: int,
        scale: float,
        gf_norm: bool,
        grid_size: int | None,
    ) -> None:
        """Reject knob values that cannot build a gnConv at width ``dim``."""
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise ValueError(f"order must be a positive int, found {order!r}")
        if filter not in FILTERS:
            raise ValueError(f"filter must be one of {FILTERS}, found {filter!r}")
        if dim % 2 ** (order - 1):
            raise ValueError(
                f"dim {dim} must be divisible by 2**(order-1)={2 ** (order - 1)} for order {order}"
            )
        if filter == "dw" and (
            isinstance(kernel_size, bool)
            or not isinstance(kernel_size, int)
            or kernel_size < 1
            or kernel_size % 2 == 0
        ):
            raise ValueError(f"kernel_size must be a positive odd int, found {kernel_size!r}")
        if filter == "gf" and dim % 2**order:
            gated = sum(split_dims(dim, order))
            raise ValueError(
                f"filter 'gf' halves the {gated} gated channels: dim {dim} must be divisible "
                f"by 2**order={2**order} for order {order}"
            )
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise ValueError(f"scale must be a number, found {scale!r}")
        if not isinstance(gf_norm, bool):
            raise ValueError(f"gf_norm must be a bool, found {gf_norm!r}")
        check_grid_size(grid_size)

    def forward(self, x: Tensor) -> Tensor:
        p, q = self.proj_in(x).split([self.dims[0], sum(self.dims)], dim=-1)
        gates = (self.dw(q) * self.scale).split(self.dims, dim=-1)
        t = p * gates[0]
        for pw, gate in zip(self.pws, gates[1:], strict=True):
            t = pw(t) * gate
        return self.proj_out(t)
