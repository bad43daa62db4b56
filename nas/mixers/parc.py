"""Position-aware circular convolution (ParC / Fast-ParC): a global receptive field from two
depthwise 1-D convolutions whose kernels span the whole map, one along H and one along W.

Follows ParC-ConvNeXt (hkzhang91/ParC-Net ``ParC_convnext.py``), where ParC replaces the
block's depthwise conv directly: channels split in half, each half a depthwise global conv with
bias after adding a learnable position embedding, and no pointwise projections inside the mixer
(channel mixing is left to the MLP). ``pointwise=True`` instead wraps the operator like
ConvFormer's SepConv (bias-free Linear, StarReLU, ParC, bias-free Linear) for a like-for-like
swap of the 7x7 conv in a MetaFormer. Kernels and embeddings are stored at ``grid_size`` and
linearly resized to the map (``align_corners=True``, as Fast-ParC's meta kernels).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nas.functional.resize import check_grid_size, grid_or_default, resize_line
from nas.functional.spectral import circular_correlate, padded_correlate
from nas.layers.activations import StarReLU
from nas.mixers.registry import register_mixer

VARIANTS = ("circular", "oversize")


class _AxialGlobalConv(nn.Module):
    """Depthwise global conv along one axis (``-3`` = H, ``-2`` = W) of a channels-last map.

    ``"circular"``: kernel length n with wrap-around (ParC), computed by FFT (Fast-ParC).
    ``"oversize"``: kernel length 2n - 1 with zero padding (ParCNetV2), also by FFT.
    Kernel and embedding start as trunc_normal(std 0.02), the bias at 0 (ParC-ConvNeXt's init).
    """

    def __init__(
        self, channels: int, axis: int, grid_size: int, variant: str, pe: bool, bias: bool
    ):
        super().__init__()
        self.axis = axis
        self.variant = variant
        length = grid_size if variant == "circular" else 2 * grid_size - 1
        self.kernel = nn.Parameter(nn.init.trunc_normal_(torch.empty(channels, length), std=0.02))
        self.pe = (
            nn.Parameter(nn.init.trunc_normal_(torch.empty(channels, grid_size), std=0.02))
            if pe
            else None
        )
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

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


@register_mixer("parc")
class ParC(nn.Module):
    """ParC on channels-last maps ``(B, H, W, C)``: first half of the channels convolved along H,
    second half along W, each with a global depthwise kernel.

    Knobs:
        variant: ``"circular"`` (ParC/Fast-ParC, kernel length H with wrap-around) or
            ``"oversize"`` (ParCNetV2, kernel length 2H-1 with zero padding, no wrap).
        position_embedding: learnable per-channel embedding along the conv axis, added before
            the conv and broadcast along the other axis (ParCNetV2 drops it).
        bias: per-channel bias of the global convs (on in ParC).
        pointwise: wrap in Linear C->rC, StarReLU ... Linear rC->C (no biases), like SepConv.
        expansion_ratio: r, the hidden width of ``pointwise`` (ignored without it).
        grid_size: nominal map side the kernels are stored at; ``None`` means 14.
    """

    def __init__(
        self,
        dim: int,
        *,
        variant: str = "circular",
        position_embedding: bool = True,
        bias: bool = True,
        pointwise: bool = False,
        expansion_ratio: float = 2.0,
        grid_size: int | None = None,
    ):
        super().__init__()
        self.validate_knobs(
            dim,
            variant=variant,
            position_embedding=position_embedding,
            bias=bias,
            pointwise=pointwise,
            expansion_ratio=expansion_ratio,
            grid_size=grid_size,
        )
        width = int(expansion_ratio * dim) if pointwise else dim
        grid = grid_or_default(grid_size)
        self.pwconv1 = nn.Linear(dim, width, bias=False) if pointwise else nn.Identity()
        self.act = StarReLU() if pointwise else nn.Identity()
        self.conv_h = _AxialGlobalConv(width // 2, -3, grid, variant, position_embedding, bias)
        self.conv_w = _AxialGlobalConv(width // 2, -2, grid, variant, position_embedding, bias)
        self.pwconv2 = nn.Linear(width, dim, bias=False) if pointwise else nn.Identity()

    @staticmethod
    def validate_knobs(
        dim: int,
        *,
        variant: str,
        position_embedding: bool,
        bias: bool,
        pointwise: bool,
        expansion_ratio: float,
        grid_size: int | None,
    ) -> None:
        """Reject knob values that cannot build a ParC mixer at width ``dim``."""
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, found {variant!r}")
        for name, value in (
            ("position_embedding", position_embedding),
            ("bias", bias),
            ("pointwise", pointwise),
        ):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be a bool, found {value!r}")
        if isinstance(expansion_ratio, bool) or not isinstance(expansion_ratio, (int, float)):
            raise ValueError(f"expansion_ratio must be a number, found {expansion_ratio!r}")
        width = int(expansion_ratio * dim) if pointwise else dim
        if width < 2 or width % 2:
            what = f"hidden width int({expansion_ratio} * {dim})" if pointwise else "dim"
            raise ValueError(
                f"ParC splits its channels in half between H and W: {what} must be even and "
                f">= 2, found {width}"
            )
        check_grid_size(grid_size)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.pwconv1(x))
        x_h, x_w = x.chunk(2, dim=-1)
        x = torch.cat([self.conv_h(x_h), self.conv_w(x_w)], dim=-1)
        return self.pwconv2(x)
