"""Multi-head self-attention mixer, global or in local windows.

Local attention uses non-overlapping ``window_size x window_size`` windows (HaloNet/Swin style
without shift): cost O(HW * w^2) instead of O((HW)^2). Maps that are not a multiple of the window
are zero-padded and the padded keys masked out, so each edge window equals global attention over
its (smaller) crop. A window at least as large as the map is global attention.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from nas.mixers.knobs.attention import AttentionKnobs


class Attention(nn.Module):
    """MHSA via ``F.scaled_dot_product_attention``; knobs: :class:`AttentionKnobs`."""

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = AttentionKnobs.parse(dim, knobs)
        self.head_dim = k.head_dim
        self.num_heads = k.num_heads if k.num_heads else max(dim // k.head_dim, 1)
        self.window_size = k.window_size
        inner = self.num_heads * k.head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=k.qkv_bias)
        self.proj = nn.Linear(inner, dim, bias=k.proj_bias)

    def _attend(self, tokens: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        """Attention over ``tokens`` (N, L, C); ``key_mask`` (N, L) marks real (non-padded) keys."""
        n, length, _ = tokens.shape
        qkv = self.qkv(tokens).reshape(n, length, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return out.transpose(1, 2).reshape(n, length, self.num_heads * self.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        ws = self.window_size
        if ws is None or (ws >= h and ws >= w):
            return self.proj(self._attend(x.reshape(b, h * w, c), None)).reshape(b, h, w, c)
        wh, ww = min(ws, h), min(ws, w)
        pad_h, pad_w = (-h) % wh, (-w) % ww
        key_mask = None
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
            real = torch.zeros(h + pad_h, w + pad_w, dtype=torch.bool, device=x.device)
            real[:h, :w] = True
        hp, wp = h + pad_h, w + pad_w
        nh, nw = hp // wh, wp // ww
        windows = x.reshape(b, nh, wh, nw, ww, c).permute(0, 1, 3, 2, 4, 5)
        windows = windows.reshape(b * nh * nw, wh * ww, c)
        if pad_h or pad_w:
            mask = real.reshape(nh, wh, nw, ww).permute(0, 2, 1, 3).reshape(nh * nw, wh * ww)
            key_mask = mask.repeat(b, 1)
        out = self._attend(windows, key_mask)
        out = out.reshape(b, nh, nw, wh, ww, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
        return self.proj(out[:, :h, :w])
