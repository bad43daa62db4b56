"""Hyena over raster-flattened tokens, bidirectional (HyenaPixel's "hb") or causal (original).

Poli et al. 2023; the bidirectional variant is from Spravil et al. 2024. The map is read as one
sequence of L = H * W tokens; a kernel of 2L - 1 taps centred on offset 0 reaches every token from
every other, while the causal variant (kernel of L lags, causal short convolution) keeps the whole
mixer causal in raster order. Channels-last in and out.

The projection's gates are in the official order ``(x_0 .. x_{N-1}, v)``: the recurrence starts
from ``v`` and gates with ``x_{N-1}`` first and ``x_0`` last, so official weights need no
reordering. The short convolution is a Conv1d the backbone's init does not touch; it keeps
PyTorch's default init, as in the official models.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from nas.functional.fftconv import fftconv1d
from nas.functional.resize import grid_or_default
from nas.layers.hyena_recurrence import NORM_EPS, HyenaRecurrence, default_filter_emb_dim
from nas.layers.implicit_filter import ImplicitFilter1d
from nas.layers.norms import LayerNormNoBias
from nas.layers.own_init import OwnInit
from nas.mixers.knobs.hyena import HyenaKnobs

torch.fx.wrap("fftconv1d")


class Hyena(nn.Module, OwnInit):
    """1D Hyena token mixer on the raster order of the map.

    Knobs: :class:`HyenaKnobs`.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = HyenaKnobs.parse(dim, knobs)
        emb_dim = k.emb_dim or default_filter_emb_dim(dim) + 1
        self.dim = dim
        self.order = k.order
        self.causal = not k.bidirectional
        gates = (k.order + 1) * dim
        self.in_proj = nn.Linear(dim, gates)
        self.short_conv = nn.Conv1d(gates, gates, k.short_kernel, groups=gates)
        self.short_pad = (k.short_kernel - 1, 0) if self.causal else (k.short_kernel // 2,) * 2
        self.long_filter = ImplicitFilter1d(
            (k.order - 1) * dim,
            emb_dim=emb_dim,
            hidden=k.filter_width or 2 * (emb_dim - 1),
            nominal_length=grid_or_default(k.grid_size) ** 2,
            causal=self.causal,
            learnable_decay=k.learnable_decay,
        )
        self.recurrence = HyenaRecurrence(dim, k.order, k.use_layernorm)
        self.out_norm = LayerNormNoBias(dim, eps=NORM_EPS) if k.use_layernorm else nn.Identity()
        self.out_proj = nn.Linear(dim, dim)

    def init_weights(self) -> None:
        """PyTorch's default init for the short Conv1d, which the official backbone leaves as
        constructed (its init covers Linear and Conv2d only)."""
        self.short_conv.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C) -> (B, H, W, C)``; tokens interact along the raster order."""
        batch, height, width, _ = x.shape
        length = height * width
        u = self.in_proj(x).reshape(batch, length, -1).transpose(1, 2)
        u = self.short_conv(F.pad(u, self.short_pad)).view(batch, -1, height, width)
        filters = self.long_filter(length).view(self.order - 1, self.dim, -1)

        def long_conv(z: torch.Tensor, i: int) -> torch.Tensor:
            return fftconv1d(z.flatten(2), filters[i], self.causal).view_as(z)

        gates = u.chunk(self.order + 1, dim=1)[::-1]  # official (x_0 .. x_{N-1}, v): v first
        y = self.recurrence(gates, long_conv)
        return self.out_proj(self.out_norm(y.permute(0, 2, 3, 1)))
