"""Blocked local self-attention with halos (HaloNet, Vaswani et al. 2021).

The map is cut into non-overlapping ``block x block`` query blocks; each block attends to the
``(block + 2*halo)^2`` keys around it (its own block plus a ``halo``-wide ring). Following HaloNet,
keys beyond the map border are zero-padded; unlike a plain zero pad they are masked out here, so
they get no attention weight (an edge block is attention over its real neighbourhood only). Maps
that are not a multiple of ``block`` are padded at the bottom/right, those keys masked and those
queries dropped. Cost O(HW * (block + 2*halo)^2), never an (HW) x (HW) matrix.

Deliberate difference: HaloNet's relative position term is content-dependent (q dotted with
factorised row/column embeddings); here ``rel_pos="bias"`` is a learned scalar per head and
query-key offset (as Swin/NAT), offsets in [-(block-1+halo), block-1+halo] along each axis.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import register_notrace_module
from torch import nn
from torch.nn import functional as F

from nas.layers.own_init import OwnInit
from nas.mixers.knobs.attention import num_heads
from nas.mixers.knobs.local_attention import HaloAttentionKnobs


@register_notrace_module  # block counts and padding come from the map size
class HaloAttention(OwnInit, nn.Module):
    """Multi-head attention of each query block over its haloed neighbourhood.

    Knobs: :class:`HaloAttentionKnobs`.
    Attention runs at width num_heads * head_dim and projects back to dim, so dim need not be
    divisible by num_heads. A block at least as large as the map is global attention.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = HaloAttentionKnobs.parse(dim, knobs)
        self.head_dim = k.head_dim
        self.num_heads = num_heads(dim, k.head_dim, k.num_heads)
        self.block = k.block
        self.halo = k.halo
        inner = self.num_heads * k.head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=k.qkv_bias)
        self.proj = nn.Linear(inner, dim, bias=k.proj_bias)
        self.rpb = None
        if k.rel_pos == "bias":
            side = 2 * (k.block + k.halo) - 1
            self.rpb = nn.Parameter(torch.empty(self.num_heads, side, side))
            # Offset of window key (a, c) from block query (i, j), shifted to a table index.
            qpos = torch.arange(k.block)
            kpos = torch.arange(k.block + 2 * k.halo) - k.halo
            rel = kpos[None, :] - qpos[:, None] + k.block + k.halo - 1  # (block, window)
            self.register_buffer("rel_index", rel, persistent=False)
        self.init_weights()

    def init_weights(self) -> None:
        """The bias table as NAT's and Swin's: trunc_normal(std 0.02)."""
        if self.rpb is not None:
            nn.init.trunc_normal_(self.rpb, std=0.02)

    def _windows(self, t: torch.Tensor) -> torch.Tensor:
        """(B, heads, Hp+2h, Wp+2h, ...) -> (B, heads, nbh, nbw, win*win, ...) haloed windows."""
        win, s = self.block + 2 * self.halo, self.block
        t = t.unfold(2, win, s).unfold(3, win, s)  # (B, heads, nbh, nbw, ..., win, win)
        return t.movedim((-2, -1), (4, 5)).flatten(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        bs, heads, d = self.block, self.num_heads, self.head_dim
        nbh, nbw = -(-h // bs), -(-w // bs)
        pad_h, pad_w = nbh * bs - h, nbw * bs - w
        # Keys: halo on every side plus the padding that makes the map a multiple of block.
        key_pad = (self.halo, self.halo + pad_w, self.halo, self.halo + pad_h)
        qkv = self.qkv(x).reshape(b, h, w, 3, heads, d).permute(3, 0, 4, 1, 2, 5)
        q, kv = qkv[0], qkv[1:]  # (B, heads, H, W, d), (2, B, heads, H, W, d)
        q = F.pad(q, (0, 0, 0, pad_w, 0, pad_h)).reshape(b, heads, nbh, bs, nbw, bs, d)
        q = q.transpose(3, 4).reshape(b, heads, nbh, nbw, bs * bs, d)
        k, v = (self._windows(t) for t in F.pad(kv, (0, 0, *key_pad)).unbind(0))
        real = F.pad(x.new_ones(1, 1, h, w, dtype=torch.bool), key_pad)
        real = self._windows(real)[0, 0]  # (nbh, nbw, win*win)
        mask = torch.zeros(real.shape, dtype=q.dtype, device=x.device)
        mask = mask.masked_fill(~real, float("-inf"))[:, :, None, :]
        if self.rpb is not None:
            r = self.rel_index  # bias: (heads, bs, bs, win, win)
            bias = self.rpb[:, r[:, None, :, None], r[None, :, None, :]]
            mask = mask + bias.flatten(1, 2).flatten(-2).to(q.dtype)[:, None, None]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = out.reshape(b, heads, nbh, nbw, bs, bs, d).permute(0, 2, 4, 3, 5, 1, 6)
        return self.proj(out.reshape(b, nbh * bs, nbw * bs, heads * d)[:, :h, :w])
