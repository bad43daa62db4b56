"""Learned relative position bias for attention logits (Shaw et al. 2018; Swin, Liu et al. 2021;
CoAtNet, Dai et al. 2021).

One scalar per head and per 2D offset ``(dy, dx)`` between a query and a key, kept in a table of
shape ``(num_heads, 2*Wh-1, 2*Ww-1)`` for a nominal ``Wh x Ww`` window (or map): offset
``(dy, dx)`` lives at ``table[:, dy + Wh - 1, dx + Ww - 1]``, as in Swin.

For another size ``h x w`` the table is resized bicubically to ``(2h-1, 2w-1)``, like Swin's and
BEiT's fine-tuning at a new resolution, with the project's ``align_corners=True``
(:func:`nas.functional.resize.resize_grid`, the convention of every other grid weight here): the
zero offset and the extreme offsets ``+-(Wh-1)`` land exactly on ``+-(h-1)``, so the bias stretches
with the map around an unchanged centre. Swin's own resize uses ``align_corners=False``, which
differs by sub-tap shifts of the sampling points; neither is exact away from the stored size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nas.functional.resize import resize_grid
from nas.layers.own_init import OwnInit


class RelativePositionBias(OwnInit, nn.Module):
    """Per-head bias ``B[n, query, key]`` of the query-to-key offset on an ``h x w`` grid.

    ``size`` is the nominal grid (an int for a square one) the table is stored at; the table is
    initialised like Swin's (truncated normal, std 0.02). A zero table adds nothing.
    """

    def __init__(self, num_heads: int, size: int | tuple[int, int]):
        super().__init__()
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        height, width = self.size
        self.table = nn.Parameter(torch.empty(num_heads, 2 * height - 1, 2 * width - 1))
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.trunc_normal_(self.table, std=0.02)

    def table_at(self, height: int, width: int) -> Tensor:
        """The table ``(heads, 2h-1, 2w-1)`` for an ``h x w`` grid; ``table`` itself at ``size``
        (see :mod:`nas.functional.resize` for ``torch.jit.trace``)."""
        grid = resize_grid(self.table.permute(1, 2, 0), (2 * height - 1, 2 * width - 1))
        return grid.permute(2, 0, 1)

    def forward(self, height: int, width: int, key_stride: int = 1) -> Tensor:
        """Bias ``(num_heads, h*w, hk*wk)`` for queries on the ``h x w`` grid, row-major.

        Keys sit on the same grid subsampled by ``key_stride`` (``hk = ceil(h / key_stride)``), the
        key at ``(i, j)`` being centred on query position ``(i * key_stride, j * key_stride)``, as a
        stride-s, padding-1 3x3 convolution places it (CvT's reduced keys). All offsets then lie
        within ``+-(h-1), +-(w-1)``, so the resized table covers them.
        """
        table = self.table_at(height, width)
        dy = self._offsets(height, key_stride, table.device)
        dx = self._offsets(width, key_stride, table.device)
        bias = table[:, dy][..., dx]  # (heads, h, hk, w, wk)
        heads, h, hk, w, wk = bias.shape
        return bias.permute(0, 1, 3, 2, 4).reshape(heads, h * w, hk * wk)

    @staticmethod
    def _offsets(length: int, key_stride: int, device: torch.device) -> Tensor:
        """Table index ``query - key_stride * key + length - 1`` of each query/key pair."""
        queries = torch.arange(length, device=device)
        keys = torch.arange(0, length, key_stride, device=device)
        return queries[:, None] - keys[None, :] + (length - 1)
