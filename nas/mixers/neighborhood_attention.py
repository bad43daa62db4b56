"""Neighborhood attention mixer (NAT, Hassani et al. 2023; DiNAT's dilation, Hassani & Shi 2022).

Every query attends to the ``kernel_size x kernel_size`` keys around it (a sliding window, as in
Stand-Alone Self-Attention, Ramachandran et al. 2019), spaced ``dilation`` apart. Follows NATTEN's
semantics: at the borders the window is shifted inward so each query always sees exactly k x k real
keys (no zero padding); with dilation, the axis splits into ``dilation`` interleaved sub-grids and
each query runs undilated neighbourhood attention inside its own sub-grid; the relative position
bias (NAT's ``rpb``, shape (heads, 2k-1, 2k-1)) is indexed by the query-key offset in units of the
dilation.

Deliberate differences: NAT's key bias is dropped (q and v biases only, as BEiT): it adds the
same constant to all logits of a query, so the function is unchanged and NAT weights load by
discarding it. NATTEN requires every map side ``L >= kernel_size * dilation`` and errors
otherwise. Here, per axis, the dilation first shrinks to ``max(1, min(dilation, L // kernel_size))``
and then the kernel to ``min(kernel_size, L)``, so after the rule ``L >= kernel * dilation`` always
holds; a kernel at least as large as a map side is global attention along that axis, whatever the
dilation.

Pure PyTorch: the k*k keys and values of every query are gathered with index tensors, so memory is
O(H*W*k^2*C); no (HW) x (HW) matrix is ever formed.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import register_notrace_module
from torch import nn
from torch.nn import functional as F

from nas.layers.own_init import OwnInit
from nas.mixers.knobs.attention import num_heads
from nas.mixers.knobs.local_attention import NeighborhoodAttentionKnobs


def _axis_neighbours(
    length: int, kernel: int, dilation: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Key indices (L, k) of each query along one axis, and their offsets (in dilations) + k - 1.

    Applies the small-map rule of the module docstring; returns the effective kernel's indices.
    """
    dil = max(1, min(dilation, length // kernel))
    k = min(kernel, length)
    pos = torch.arange(length, device=device)
    residue, sub = pos % dil, pos // dil
    sub_len = (length - residue + dil - 1) // dil  # length of this query's interleaved sub-grid
    start = torch.minimum((sub - k // 2).clamp_min(0), sub_len - k)
    taps = start[:, None] + torch.arange(k, device=device)
    index = residue[:, None] + dil * taps
    return index, taps - sub[:, None] + kernel - 1


@register_notrace_module  # the neighbourhood indices come from the map size
class NeighborhoodAttention(OwnInit, nn.Module):
    """Multi-head attention over each pixel's clamped k x k (dilated) neighbourhood.

    Knobs: :class:`NeighborhoodAttentionKnobs`.
    Attention runs at width num_heads * head_dim and projects back to dim, so dim need not be
    divisible by num_heads. Maps smaller than kernel_size * dilation follow the module's rule.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = NeighborhoodAttentionKnobs.parse(dim, knobs)
        self.head_dim = k.head_dim
        self.num_heads = num_heads(dim, k.head_dim, k.num_heads)
        self.kernel_size = k.kernel_size
        self.dilation = k.dilation
        inner = self.num_heads * k.head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(inner)) if k.qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(inner)) if k.qkv_bias else None
        self.proj = nn.Linear(inner, dim, bias=k.proj_bias)
        self.rpb = None
        if k.rel_pos == "bias":
            side = 2 * k.kernel_size - 1
            self.rpb = nn.Parameter(torch.empty(self.num_heads, side, side))
        self.init_weights()

    def init_weights(self) -> None:
        """NAT's init of the bias table: trunc_normal(std 0.02)."""
        if self.rpb is not None:
            nn.init.trunc_normal_(self.rpb, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        rows, rel_h = _axis_neighbours(h, self.kernel_size, self.dilation, x.device)
        cols, rel_w = _axis_neighbours(w, self.kernel_size, self.dilation, x.device)
        bias = None
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, h, w, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(3, 0, 4, 1, 2, 5).unbind(0)  # each (B, heads, H, W, d)
        # (B, heads, H, kh, W, kw, d): keys/values of query (i, j) at [i, :, j, :].
        k = k[:, :, rows][:, :, :, :, cols]
        v = v[:, :, rows][:, :, :, :, cols]
        logits = torch.einsum("bnijd,bniajcd->bnijac", q * self.head_dim**-0.5, k)
        if self.rpb is not None:
            logits = logits + self.rpb[:, rel_h[:, None, :, None], rel_w[None, :, None, :]]
        att = logits.flatten(-2).softmax(-1).unflatten(-1, logits.shape[-2:])
        out = torch.einsum("bnijac,bniajcd->bijnd", att, v)
        return self.proj(out.reshape(b, h, w, self.num_heads * self.head_dim))
