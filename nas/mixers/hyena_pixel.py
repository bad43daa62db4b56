"""HyenaPixel: 2D Hyena with implicit depthwise kernels as large as (or larger than) the map.

Spravil et al. 2024. A 1x1 projection to ``order + 1`` gates and a depthwise short convolution
give local context; each long convolution, computed by FFT, lets every pixel see the whole map
(kernel 2H-1) at a cost that does not grow with the kernel. Channels-last in and out.
"""

from __future__ import annotations

import torch
from torch import nn

from nas.functional.fftconv import fftconv2d
from nas.functional.resize import grid_or_default
from nas.layers.hyena_recurrence import (
    HyenaRecurrence,
    check_hyena_knobs,
    check_int,
    default_filter_emb_dim,
)
from nas.layers.implicit_filter import ImplicitFilter2d
from nas.layers.norms import LayerNormNoBias
from nas.mixers.registry import register_mixer


@register_mixer("hyena_pixel")
class HyenaPixel(nn.Module):
    """HyenaPixel token mixer (order 2 is the paper's operator).

    Knobs:
        order: Hyena order N >= 2: N + 1 gates and N - 1 long filters (see
            ``nas.layers.hyena_recurrence``).
        kernel_size: odd long-kernel side, or ``"global"`` for (2H-1) x (2W-1) of the actual map,
            so every pixel sees every other at any input size. Larger than the map is allowed.
        grid_size: nominal map side of the stage (e.g. 56/28/14/7 at 224 px); with ``"global"``
            the positional encoding is stored at 2 * grid_size - 1 taps and resampled to the
            actual kernel. None falls back to 14. Unused for an int kernel_size.
        emb_dim: positional-encoding channels (multiple of 4); None = 32/32/48/64 for widths
            64/128/320/512 (HyenaPixel S18), i.e. 16 * max(2, ceil(dim / 128)).
        filter_width: hidden width of the filter MLP; None = 2 * emb_dim (official).
        short_kernel: odd side of the depthwise short convolution on the gates.
        use_layernorm: bias-free LayerNorm on each gate product and before the output
            projection (hpx_former_s18 uses it).
    """

    def __init__(
        self,
        dim: int,
        *,
        order: int = 2,
        kernel_size: int | str = "global",
        grid_size: int | None = None,
        emb_dim: int | None = None,
        filter_width: int | None = None,
        short_kernel: int = 5,
        use_layernorm: bool = True,
    ):
        super().__init__()
        self.validate_knobs(
            dim,
            order=order,
            kernel_size=kernel_size,
            grid_size=grid_size,
            emb_dim=emb_dim,
            filter_width=filter_width,
            short_kernel=short_kernel,
            use_layernorm=use_layernorm,
        )
        emb_dim = emb_dim or default_filter_emb_dim(dim)
        self.dim = dim
        self.order = order
        self.kernel_size = kernel_size
        gates = (order + 1) * dim
        self.in_proj = nn.Linear(dim, gates)
        self.short_conv = nn.Conv2d(
            gates, gates, short_kernel, padding=short_kernel // 2, groups=gates
        )
        nominal = (
            kernel_size if isinstance(kernel_size, int) else 2 * grid_or_default(grid_size) - 1
        )
        self.long_filter = ImplicitFilter2d(
            (order - 1) * dim,
            emb_dim=emb_dim,
            hidden=filter_width or 2 * emb_dim,
            nominal_size=nominal,
        )
        self.recurrence = HyenaRecurrence(dim, order, use_layernorm)
        self.out_norm = LayerNormNoBias(dim) if use_layernorm else nn.Identity()
        self.out_proj = nn.Linear(dim, dim)

    @staticmethod
    def validate_knobs(
        dim: int,
        *,
        order: int,
        kernel_size: int | str,
        grid_size: int | None,
        emb_dim: int | None,
        filter_width: int | None,
        short_kernel: int,
        use_layernorm: bool,
    ) -> None:
        """Raise ``ValueError`` naming the first knob that cannot build a HyenaPixel mixer."""
        check_hyena_knobs(dim, order, grid_size, filter_width, short_kernel, use_layernorm)
        if kernel_size != "global":
            if isinstance(kernel_size, str):
                raise ValueError(f"kernel_size must be an odd int or 'global', got {kernel_size!r}")
            check_int("kernel_size (or 'global')", kernel_size, 1, odd=True)
        if emb_dim is not None:
            check_int("emb_dim", emb_dim, 4)
            if emb_dim % 4:
                raise ValueError(
                    f"emb_dim must be a multiple of 4 (sin and cos for rows and columns), "
                    f"got {emb_dim}"
                )

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
