"""Multi-head self-attention mixer, global or in local windows (Vaswani et al. 2017).

Local attention uses non-overlapping ``window_size x window_size`` windows (HaloNet/Swin style):
cost O(HW * w^2) instead of O((HW)^2). Maps that are not a multiple of the window are zero-padded
and the padded keys masked out, so each edge window equals attention over its (smaller) crop. A
window at least as large as the map is global attention.

Optional parts, each off by default (the default is CAFormer's plain MHSA):

- ``shift``: Swin's shifted windows (Liu et al. 2021). The (padded) map is rolled by
  ``window_size // 2`` before partition and back after, with Swin's region mask so no token
  attends across the wrapped boundary; i.e. a window grid offset by half a window with truncated
  edge windows. Unlike Swin, padded keys are masked too (Swin's detection code lets the zero
  tokens take part).
- ``rel_pos="bias"``: a learned per-head relative position bias on the logits (Swin, CoAtNet),
  see :mod:`nas.layers.relative_position`. Windows store it at the window size; a window shrunk
  to a smaller map uses the centre of the table (an offset keeps its meaning in tokens, so a map
  smaller than the window equals an edge window of a larger one). Global attention stores it at
  ``grid_size`` and resizes it bicubically to the actual map.
- ``qkv_conv``: CvT's convolutional projection (Wu et al. 2021): a depthwise 3x3 convolution and a
  norm on the map before each of the q/k/v linears, k and v with stride ``kv_stride`` (fewer keys
  for global attention). CvT normalises with BatchNorm; this uses a channel LayerNorm instead, so
  the mixer does not depend on the other samples of the batch, behaves the same in train and eval
  (short NAS proxy runs leave noisy running statistics) and works on a 1x1 map with batch 1.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import register_notrace_module
from torch import Tensor, nn
from torch.nn import functional as F

from nas.functional.resize import grid_or_default
from nas.layers.relative_position import RelativePositionBias
from nas.mixers.knobs.attention import AttentionKnobs, num_heads


class _ConvProjection(nn.Module):
    """Depthwise 3x3 convolution (padding 1) and channel LayerNorm on a channels-last map."""

    def __init__(self, dim: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, stride=stride, padding=1, groups=dim, bias=False)
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))


@register_notrace_module  # windows, padding and masks come from the map size
class Attention(nn.Module):
    """MHSA via ``F.scaled_dot_product_attention``; CAFormer's defaults (head_dim 32, no bias).

    Knobs: :class:`AttentionKnobs`.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = AttentionKnobs.parse(dim, knobs)
        self.head_dim = k.head_dim
        self.num_heads = num_heads(dim, k.head_dim, k.num_heads)
        self.window_size = k.window_size
        self.shift = k.shift
        self.kv_stride = k.kv_stride
        inner = self.num_heads * k.head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=k.qkv_bias)
        self.proj = nn.Linear(inner, dim, bias=k.proj_bias)
        self.rel_pos = None
        if k.rel_pos == "bias":
            nominal = k.window_size if k.window_size is not None else grid_or_default(k.grid_size)
            self.rel_pos = RelativePositionBias(self.num_heads, nominal)
        self.conv_q = self.conv_k = self.conv_v = None
        if k.qkv_conv:
            self.conv_q = _ConvProjection(dim, 1)
            self.conv_k = _ConvProjection(dim, k.kv_stride)
            self.conv_v = _ConvProjection(dim, k.kv_stride)

    def _maps(self, x: Tensor) -> list[Tensor]:
        """The maps the q, k and v linears read: ``[x]`` (one fused linear) or three conv maps."""
        if self.conv_q is None:
            return [x]
        return [self.conv_q(x), self.conv_k(x), self.conv_v(x)]

    def _project(self, tokens: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """q, k, v of ``tokens`` (one input for all three, or one each), ``(B, N, L, inner)``."""
        if len(tokens) == 1:
            return self.qkv(tokens[0]).chunk(3, dim=-1)
        weights = self.qkv.weight.chunk(3)
        biases = (None,) * 3 if self.qkv.bias is None else self.qkv.bias.chunk(3)
        return tuple(F.linear(t, wt, bs) for t, wt, bs in zip(tokens, weights, biases, strict=True))

    def _split_heads(self, t: Tensor) -> Tensor:
        """``(B, N, L, heads * head_dim)`` -> ``(B, N * heads, L, head_dim)``, window-major."""
        b, n, length, _ = t.shape
        t = t.reshape(b, n, length, self.num_heads, self.head_dim).transpose(2, 3)
        return t.reshape(b, n * self.num_heads, length, self.head_dim)

    def _attend(self, tokens: list[Tensor], mask: Tensor | None) -> Tensor:
        """Attention within each of the N groups of ``tokens`` ``(B, N, L, C)``.

        ``mask`` is boolean (True = may attend) or additive, shaped ``(N * heads, Lq, Lk)``
        (``(heads, Lq, Lk)`` when N = 1), shared by the batch.
        """
        q, k, v = (self._split_heads(t) for t in self._project(tokens))
        if mask is not None and mask.is_floating_point():
            mask = mask.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        b, n, length, _ = tokens[0].shape
        out = out.reshape(b, n, self.num_heads, length, self.head_dim).transpose(2, 3)
        return out.reshape(b, n, length, self.num_heads * self.head_dim)

    def _window_bias(self, wh: int, ww: int) -> Tensor:
        """Relative bias ``(heads, wh*ww, wh*ww)`` for a window of ``wh x ww`` <= window_size.

        A smaller window takes its block of the full window's bias, i.e. the table's centre.
        """
        ws = self.window_size
        bias = self.rel_pos(ws, ws)
        if (wh, ww) == (ws, ws):
            return bias
        bias = bias.reshape(self.num_heads, ws, ws, ws, ws)[:, :wh, :ww, :wh, :ww]
        return bias.reshape(self.num_heads, wh * ww, wh * ww)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        ws = self.window_size
        maps = self._maps(x)
        if ws is None or (ws >= h and ws >= w):
            bias = None
            if self.rel_pos is not None:
                bias = self.rel_pos(h, w, self.kv_stride) if ws is None else self._window_bias(h, w)
            tokens = [t.reshape(b, 1, -1, c) for t in maps]
            return self.proj(self._attend(tokens, bias).reshape(b, h, w, -1))
        wh, ww = min(ws, h), min(ws, w)
        pad_h, pad_w = (-h) % wh, (-w) % ww
        hp, wp = h + pad_h, w + pad_w
        nh, nw = hp // wh, wp // ww
        # Swin's half-window shift, only along an axis with more than one window.
        sh = wh // 2 if self.shift and nh > 1 else 0
        sw = ww // 2 if self.shift and nw > 1 else 0
        windows = []
        for t in maps:
            t = F.pad(t, (0, 0, 0, pad_w, 0, pad_h))
            if sh or sw:
                t = t.roll((-sh, -sw), dims=(1, 2))
            windows.append(_partition(t, wh, ww))
        mask = self._window_mask(h, w, (wh, ww), (sh, sw), x.device)
        out = _unpartition(self._attend(windows, mask), nh, nw, wh, ww)
        if sh or sw:
            out = out.roll((sh, sw), dims=(1, 2))
        return self.proj(out[:, :h, :w])

    def _window_mask(
        self,
        h: int,
        w: int,
        window: tuple[int, int],
        shifts: tuple[int, int],
        device: torch.device,
    ) -> Tensor | None:
        """Mask ``(windows * heads, L, L)`` for windows of the padded, rolled ``h x w`` map.

        A real query may attend to a real key of its own Swin region; a padded query (cropped
        from the output) may attend to every key, so no row is fully masked.
        """
        (wh, ww), (sh, sw) = window, shifts
        hp, wp = h + (-h) % wh, w + (-w) % ww
        n_windows, length = (hp // wh) * (wp // ww), wh * ww
        bias = None if self.rel_pos is None else self._window_bias(wh, ww)
        if (hp, wp) == (h, w) and not (sh or sw):
            return None if bias is None else bias.repeat(n_windows, 1, 1)
        real = torch.zeros(hp, wp, dtype=torch.bool, device=device)
        real[:h, :w] = True
        real = real.roll((-sh, -sw), dims=(0, 1))
        region = _regions(hp, wh, sh, device)[:, None] * 3 + _regions(wp, ww, sw, device)[None, :]
        real = _partition(real[None, :, :, None], wh, ww)[0, :, :, 0]
        region = _partition(region[None, :, :, None], wh, ww)[0, :, :, 0]
        allowed = (region[:, :, None] == region[:, None, :]) & real[:, None, :]
        allowed = (allowed | ~real[:, :, None])[:, None]  # (windows, 1, L, L)
        if bias is None:
            allowed = allowed.expand(-1, self.num_heads, -1, -1)
            return allowed.reshape(n_windows * self.num_heads, length, length)
        bias = bias[None].masked_fill(~allowed, float("-inf"))
        return bias.reshape(n_windows * self.num_heads, length, length)


def _regions(length: int, window: int, shift: int, device: torch.device) -> Tensor:
    """Swin's region label along one rolled axis: the last window holds two regions (wrapped)."""
    labels = torch.zeros(length, dtype=torch.long, device=device)
    if shift:
        labels[length - window : length - shift] = 1
        labels[length - shift :] = 2
    return labels


def _partition(t: Tensor, wh: int, ww: int) -> Tensor:
    """``(B, H, W, C)`` with H, W multiples of the window -> ``(B, windows, wh * ww, C)``."""
    b, h, w, c = t.shape
    t = t.reshape(b, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return t.reshape(b, (h // wh) * (w // ww), wh * ww, c)


def _unpartition(t: Tensor, nh: int, nw: int, wh: int, ww: int) -> Tensor:
    """Inverse of :func:`_partition` for an ``nh x nw`` grid of windows."""
    b, c = t.shape[0], t.shape[-1]
    t = t.reshape(b, nh, nw, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    return t.reshape(b, nh * wh, nw * ww, c)
