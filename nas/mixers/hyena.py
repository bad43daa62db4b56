"""Hyena over raster-flattened tokens, bidirectional (HyenaPixel's "hb") or causal (original).

Poli et al. 2023; the bidirectional variant is from Spravil et al. 2024. The map is read as one
sequence of L = H * W tokens; a kernel of 2L - 1 taps centred on offset 0 reaches every token from
every other, while the causal variant (kernel of L lags, causal short convolution) keeps the whole
mixer causal in raster order. Channels-last in and out.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from nas.functional.fftconv import fftconv1d
from nas.functional.resize import grid_or_default
from nas.layers.hyena_recurrence import (
    HyenaRecurrence,
    check_hyena_knobs,
    check_int,
    default_filter_emb_dim,
)
from nas.layers.implicit_filter import ImplicitFilter1d
from nas.layers.norms import LayerNormNoBias
from nas.mixers.registry import register_mixer


@register_mixer("hyena")
class Hyena(nn.Module):
    """1D Hyena token mixer on the raster order of the map.

    Knobs:
        order: Hyena order N >= 2: N + 1 gates and N - 1 long filters (see
            ``nas.layers.hyena_recurrence``).
        bidirectional: True: centred short convolution and 2L-1-tap filters centred on offset 0
            (hb_former); False: the original causal operator, causal in raster order.
        grid_size: nominal map side of the stage; the filter encoding is stored for
            L = grid_size ** 2 tokens and resampled to the actual L. None falls back to 14.
        emb_dim: filter encoding channels (odd: a time channel plus cos/sin bands); None = 33/33/
            49/65 for widths 64/128/320/512 (hb_former_s18), i.e. 16 * max(2, ceil(dim/128)) + 1.
        filter_width: hidden width of the filter MLP; None = 2 * (emb_dim - 1) (official).
        short_kernel: odd length of the depthwise short convolution along the sequence.
        use_layernorm: bias-free LayerNorm on each gate product and before the output projection
            (used by hb_former_b36, not by hb_former_s18).
    """

    def __init__(
        self,
        dim: int,
        *,
        order: int = 2,
        bidirectional: bool = True,
        grid_size: int | None = None,
        emb_dim: int | None = None,
        filter_width: int | None = None,
        short_kernel: int = 3,
        use_layernorm: bool = False,
    ):
        super().__init__()
        self.validate_knobs(
            dim,
            order=order,
            bidirectional=bidirectional,
            grid_size=grid_size,
            emb_dim=emb_dim,
            filter_width=filter_width,
            short_kernel=short_kernel,
            use_layernorm=use_layernorm,
        )
        emb_dim = emb_dim or default_filter_emb_dim(dim) + 1
        self.dim = dim
        self.order = order
        self.causal = not bidirectional
        gates = (order + 1) * dim
        self.in_proj = nn.Linear(dim, gates)
        self.short_conv = nn.Conv1d(gates, gates, short_kernel, groups=gates)
        self.short_pad = (short_kernel - 1, 0) if self.causal else (short_kernel // 2,) * 2
        self.long_filter = ImplicitFilter1d(
            (order - 1) * dim,
            emb_dim=emb_dim,
            hidden=filter_width or 2 * (emb_dim - 1),
            nominal_length=grid_or_default(grid_size) ** 2,
            causal=self.causal,
        )
        self.recurrence = HyenaRecurrence(dim, order, use_layernorm)
        self.out_norm = LayerNormNoBias(dim) if use_layernorm else nn.Identity()
        self.out_proj = nn.Linear(dim, dim)

    @staticmethod
    def validate_knobs(
        dim: int,
        *,
        order: int,
        bidirectional: bool,
        grid_size: int | None,
        emb_dim: int | None,
        filter_width: int | None,
        short_kernel: int,
        use_layernorm: bool,
    ) -> None:
        """Raise ``ValueError`` naming the first knob that cannot build a Hyena mixer."""
        check_hyena_knobs(dim, order, grid_size, filter_width, short_kernel, use_layernorm)
        if not isinstance(bidirectional, bool):
            raise ValueError(f"bidirectional must be a bool, got {bidirectional!r}")
        if emb_dim is not None:
            check_int("emb_dim (time channel + cos/sin pairs)", emb_dim, 3, odd=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C) -> (B, H, W, C)``; tokens interact along the raster order."""
        batch, height, width, _ = x.shape
        length = height * width
        u = self.in_proj(x).reshape(batch, length, -1).transpose(1, 2)
        u = self.short_conv(F.pad(u, self.short_pad)).view(batch, -1, height, width)
        filters = self.long_filter(length).view(self.order - 1, self.dim, -1)

        def long_conv(z: torch.Tensor, i: int) -> torch.Tensor:
            return fftconv1d(z.flatten(2), filters[i], self.causal).view_as(z)

        y = self.recurrence(u.chunk(self.order + 1, dim=1), long_conv)
        return self.out_proj(self.out_norm(y.permute(0, 2, 3, 1)))
