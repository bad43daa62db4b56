"""Attention-augmented convolution (Bello et al. 2019, "Attention Augmented Convolutional
Networks").

The output channels are the concatenation of a dense KxK convolution's channels and the channels
of global multi-head self-attention over the map, the attention part with its own output projection
(AA's W^O, dv -> dv). Follows the paper's relative logits: a query at (y, x) attending to a key at
(y', x') adds ``q . r^W[x' - x] + q . r^H[y' - y]`` to its content logit, the embeddings (one table
of 2n-1 rows per axis, per-head width) shared across heads, initialised N(0, dkh^-0.5) as in the
paper's code, the query scaled by dkh^-0.5 before both logits.

Deliberate differences: keys are as wide as values (AA's kappa = upsilon); the tables are stored
at a nominal grid and linearly resized (``align_corners=True``) to the actual map instead of being
built for one input size; no biases (the MetaFormer convention; AA's conv is followed by BN).
Attention is global, so memory is O((HW)^2), as in AA, which uses it at low resolution.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import register_notrace_module
from torch import Tensor, nn
from torch.nn import functional as F

from nas.functional.resize import grid_or_default, resize_line
from nas.layers.own_init import OwnInit
from nas.mixers.knobs.hybrid_attention import AttentionAugmentedKnobs, attention_split


def _relative_table(table: Tensor, n: int) -> Tensor:
    """``(n, n, d)`` embeddings ``e[i, j] = table'[j - i + n - 1]`` of a ``(2g-1, d)`` table
    resized to ``2n - 1`` rows; a single-pixel axis keeps the centre (offset 0) row."""
    g = (table.shape[0] + 1) // 2
    rows = table[g - 1 : g] if n == 1 else resize_line(table.t(), 2 * n - 1).t()
    pos = torch.arange(n, device=table.device)
    return rows[pos[None, :] - pos[:, None] + n - 1]


@register_notrace_module  # relative tables resized to the map size
class AttentionAugmented(OwnInit, nn.Module):
    """``concat(conv(x), proj(MHSA(x)))`` on channels-last maps ``(B, H, W, C)``.

    Attention width: ``dv = heads * max(1, round(attention_share * dim / heads))`` with
    ``heads = num_heads`` if given, else ``max(round(attention_share * dim) // head_dim, 1)``;
    each head is ``dv / heads`` wide (keys, queries and values alike). The conv keeps the first
    ``dim - dv`` output channels. ``attention_share == 0`` builds the plain conv and nothing else.

    Knobs: :class:`AttentionAugmentedKnobs`.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = AttentionAugmentedKnobs.parse(dim, knobs)
        heads, dv = attention_split(dim, k.attention_share, k.head_dim, k.num_heads)
        self.num_heads = heads
        self.attention_channels = dv
        self.conv = nn.Conv2d(dim, dim - dv, k.kernel_size, padding=k.kernel_size // 2, bias=False)
        self.rel_h = self.rel_w = None
        if dv == 0:
            return
        self.head_dim = dv // heads
        self.qkv = nn.Linear(dim, 3 * dv, bias=False)
        self.proj = nn.Linear(dv, dv, bias=False)
        if k.rel_pos == "bias":
            rows = 2 * grid_or_default(k.grid_size) - 1
            self.rel_h = nn.Parameter(torch.empty(rows, self.head_dim))
            self.rel_w = nn.Parameter(torch.empty(rows, self.head_dim))
            self.init_weights()

    def init_weights(self) -> None:
        """AA's relative embeddings: N(0, dkh^-0.5), dkh the per-head key width."""
        if self.rel_h is not None:
            for table in (self.rel_h, self.rel_w):
                nn.init.normal_(table, std=self.head_dim**-0.5)

    def _relative_logits(self, q: Tensor) -> Tensor:
        """``(B, heads, HW, HW)`` relative logits of scaled queries ``q`` (B, heads, H, W, d)."""
        b, n, h, w, _ = q.shape
        rh = _relative_table(self.rel_h, h).to(q.dtype)
        rw = _relative_table(self.rel_w, w).to(q.dtype)
        logit_h = torch.einsum("bnyxd,yzd->bnyxz", q, rh)
        logit_w = torch.einsum("bnyxd,xzd->bnyxz", q, rw)
        rel = logit_h[..., :, None] + logit_w[..., None, :]
        return rel.reshape(b, n, h * w, h * w)

    def _attend(self, x: Tensor) -> Tensor:
        b, h, w, _ = x.shape
        n, d = self.num_heads, self.head_dim
        qkv = self.qkv(x).reshape(b, h * w, 3, n, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = None
        if self.rel_h is not None:
            bias = self._relative_logits((q * d**-0.5).reshape(b, n, h, w, d))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(b, h, w, n * d))

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        if self.attention_channels == 0:
            return y
        att = self._attend(x)
        return torch.cat([y, att], dim=-1)
