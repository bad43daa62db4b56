"""ACmix (Pan et al. 2022, "On the Integration of Self-Attention and Convolution").

One set of 1x1 q/k/v projections feeds two paths, mixed as ``rate1 * att + rate2 * conv``:

* attention: every pixel attends to the ``kernel_att x kernel_att`` neighbourhood centred on it
  (sliding, not partitioned windows), with the official ResNet-ACmix relative encoding: logits
  ``q_i . (k_j + W_p (p_i - p_j))``, ``p`` the pixel's (x, y) position on a ``linspace(-1, 1)``
  grid of the actual map and ``W_p`` a 2 -> head_dim linear shared across heads.
* shift-conv: the 3 * heads q/k/v features of each of the head_dim channel slots go through a
  fully connected layer to ``kernel_conv^2`` feature groups, which a grouped conv (groups =
  head_dim) initialised as the ``kernel_conv^2`` one-hot shifts moves and sums (``dep_conv``).

Follows LeapLabTHU/ACmix ``ResNet/test_bottleneck.py`` (channel layout, shift initialisation,
positional encoding, rates initialised at 0.5 by ``init_rate_half``; the Swin variant's ``ones``
also fills 0.5). Deliberate differences: keys outside the map are masked out (each edge pixel
attends to the part of its window inside the map) instead of reflection padding, which duplicates
edge pixels and fails on maps smaller than ``kernel_att // 2 + 1``; ``W_p`` has no bias (it
cancels in ``p_i - p_j``, so it could never learn); ``dep_conv`` has no bias (the official reset
sets it to None); a Linear ``inner -> dim`` follows the mix (the 1x1 conv that follows ACmix in
the official bottleneck, and lets ``heads * head_dim`` differ from ``dim``); q/k/v are one fused
Linear (three 1x1 convs in the official code, the same map).
Memory: the unfolded neighbourhoods are O(HW * kernel_att^2 * channels), never (HW)^2.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import register_notrace_module
from torch import Tensor, nn
from torch.nn import functional as F

from nas.layers.own_init import OwnInit
from nas.mixers.knobs.attention import num_heads
from nas.mixers.knobs.hybrid_attention import ACmixKnobs


@register_notrace_module  # window offsets and masks come from the map size
class ACmix(OwnInit, nn.Module):
    """ACmix token mixer on channels-last maps ``(B, H, W, C)``.

    Knobs: :class:`ACmixKnobs`.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = ACmixKnobs.parse(dim, knobs)
        self.head_dim = k.head_dim
        self.num_heads = num_heads(dim, k.head_dim, k.num_heads)
        self.kernel_conv = k.kernel_conv
        self.kernel_att = k.kernel_att
        inner = self.num_heads * k.head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=k.qkv_bias)
        self.pos = nn.Linear(2, k.head_dim, bias=False)
        self.fc = nn.Linear(3 * self.num_heads, k.kernel_conv**2, bias=False)
        self.dep_conv = nn.Conv2d(
            k.head_dim * k.kernel_conv**2,
            inner,
            k.kernel_conv,
            padding=k.kernel_conv // 2,
            groups=k.head_dim,
            bias=False,
        )
        self.proj = nn.Linear(inner, dim, bias=k.proj_bias)
        self.rate1 = nn.Parameter(torch.empty(()))
        self.rate2 = nn.Parameter(torch.empty(()))
        self.init_weights()

    def init_weights(self) -> None:
        """The official ``reset_parameters``: rates at 0.5, ``dep_conv`` the one-hot shifts."""
        nn.init.constant_(self.rate1, 0.5)
        nn.init.constant_(self.rate2, 0.5)
        kc = self.kernel_conv
        shifts = torch.eye(kc * kc).reshape(1, kc * kc, kc, kc)
        with torch.no_grad():
            self.dep_conv.weight.copy_(shifts.expand_as(self.dep_conv.weight))

    def _neighbourhood(self, x: Tensor) -> Tensor:
        """``(B, H, W, ...)`` -> ``(B, H, W, ..., ka^2)``: each pixel's zero-padded window."""
        r = self.kernel_att // 2
        pad = [0, 0] * (x.dim() - 3) + [r, r, r, r]
        win = F.pad(x, pad).unfold(1, self.kernel_att, 1).unfold(2, self.kernel_att, 1)
        return win.flatten(-2)

    def _offsets(self, h: int, w: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """Window offsets as ``p_i - p_j`` on the linspace(-1, 1) grid, ``(ka^2, 2)`` in (x, y)
        order and ``like``'s dtype, and the ``(H, W, ka^2)`` mask of keys inside the map."""
        ka, r = self.kernel_att, self.kernel_att // 2
        d = torch.arange(ka, device=like.device) - r
        dy, dx = d.repeat_interleave(ka), d.repeat(ka)
        step_y, step_x = 2 / max(h - 1, 1), 2 / max(w - 1, 1)
        delta = -torch.stack([dx * step_x, dy * step_y], dim=-1).to(like.dtype)
        ys = torch.arange(h, device=like.device)[:, None, None] + dy
        xs = torch.arange(w, device=like.device)[None, :, None] + dx
        inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        return delta, inside

    def _attention(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Neighbourhood attention; ``q, k, v`` are ``(B, H, W, heads, head_dim)``."""
        b, h, w, n, d = q.shape
        q = q * d**-0.5
        delta, inside = self._offsets(h, w, q)
        logits = torch.einsum("bhwnd,bhwndk->bhwnk", q, self._neighbourhood(k))
        logits = logits + (q @ self.pos.weight.to(q.dtype)) @ delta.t()
        logits = logits.masked_fill(~inside[:, :, None, :], float("-inf"))
        att = torch.softmax(logits, dim=-1)
        out = torch.einsum("bhwnk,bhwndk->bhwnd", att, self._neighbourhood(v))
        return out.reshape(b, h, w, n * d)

    def _shift_conv(self, qkv: Tensor) -> Tensor:
        """``(B, H, W, 3 * heads, head_dim)`` -> ``(B, H, W, inner)``: fc, then shift dep_conv."""
        b, h, w, _, d = qkv.shape
        groups = self.fc(qkv.transpose(-1, -2)).reshape(b, h, w, d * self.kernel_conv**2)
        return self.dep_conv(groups.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h, w, 3 * self.num_heads, self.head_dim)
        q, k, v = qkv.reshape(b, h, w, 3, self.num_heads, self.head_dim).unbind(3)
        att = self._attention(q, k, v)
        conv = self._shift_conv(qkv)
        return self.proj(self.rate1 * att + self.rate2 * conv)
