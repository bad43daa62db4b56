"""Multi-axis attention mixer (MaxViT: Tu et al., ECCV 2022, "MaxViT: Multi-Axis Vision
Transformer").

Follows MaxViT's multi-axis self-attention: block attention over non-overlapping ``P x P`` windows
(local), then grid attention over a ``G x G`` grid (global, sparse: the map is cut into ``G x G``
cells of ``H/G x W/G`` tokens and the tokens at the same offset in every cell, i.e. ``H/G`` apart,
attend to each other). Each attention has its own qkv/proj and its own per-head relative position
bias table of ``(2P-1)^2`` entries, trunc-normal initialised (std 0.02) like timm's ``maxxvit``.
As in MaxViT one value serves as both P and G. Cost is O(HW * P^2) for both attentions.

Deliberate differences:

- MaxViT wraps block and grid attention in two residual sub-blocks, each with its own pre-norm
  and MLP. A MetaFormer block has one norm, one mixer and one MLP, so this mixer chains the two
  attentions residually without the inner norm/MLP and returns the sum of their residual
  contributions: ``a = block(x)``, ``g = grid(x + a)``, output ``a + g``. The block's own residual
  then makes ``x + a + g``, which is exactly the two sequential residual attentions.
- MaxViT requires maps divisible by the partition. Here a map that is not is zero-padded up to a
  multiple (of P for blocks, of G for the grid), padded keys are masked out and padded positions
  dropped; each window then equals attention over its real tokens. An axis shorter than the
  partition is not padded: that axis is taken whole, so a map smaller than ``P x P`` is one window.
- timm resizes the bias table when the window grows; here a window is never larger than the
  constructed ``P``, only smaller (short axes), and a smaller window reads the central crop of the
  table. That is exact: the offsets of a ``w``-window are a subset of the ``P``-window's, whereas
  bicubic interpolation would give an offset the bias learned for a larger one.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import register_notrace_module
from torch import nn
from torch.nn import functional as F

from nas.layers.own_init import OwnInit
from nas.mixers.knobs.attention import num_heads
from nas.mixers.knobs.local_attention import MultiAxisAttentionKnobs


def block_partition(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """``(B, H, W, C)`` -> ``(B * H/wh * W/ww, wh * ww, C)``: token (i, j) goes to window
    ``(i // wh, j // ww)`` at position ``(i % wh, j % ww)``. H, W must be multiples of ``window``.
    """
    b, h, w, c = x.shape
    wh, ww = window
    x = x.reshape(b, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wh * ww, c)


def block_unpartition(
    windows: torch.Tensor, size: tuple[int, int], window: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`block_partition` for a map of ``size`` (H, W)."""
    (h, w), (wh, ww), c = size, window, windows.shape[-1]
    x = windows.reshape(-1, h // wh, w // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def grid_partition(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``(B, H, W, C)`` -> ``(B * H/gh * W/gw, gh * gw, C)``: with strides ``sh, sw = H/gh, W/gw``,
    token (i, j) goes to group ``(i % sh, j % sw)`` at position ``(i // sh, j // sw)``, so a group
    holds ``gh x gw`` tokens spaced ``sh, sw`` apart. H, W must be multiples of the grid."""
    b, h, w, c = x.shape
    gh, gw = grid
    x = x.reshape(b, gh, h // gh, gw, w // gw, c).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(-1, gh * gw, c)


def grid_unpartition(
    groups: torch.Tensor, size: tuple[int, int], grid: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`grid_partition` for a map of ``size`` (H, W)."""
    (h, w), (gh, gw), c = size, grid, groups.shape[-1]
    x = groups.reshape(-1, h // gh, w // gw, gh, gw, c).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(-1, h, w, c)


@register_notrace_module  # partitions and padding come from the map size
class PartitionAttention(OwnInit, nn.Module):
    """Multi-head attention inside the block or grid partitions of a map (one MaxViT sub-attention).

    ``mode="block"`` attends within ``P x P`` windows, ``mode="grid"`` within the groups of a
    ``P x P`` grid; in both a partition that covers the whole map is global attention.
    """

    def __init__(
        self,
        dim: int,
        *,
        mode: str,
        partition: int,
        num_heads: int,
        head_dim: int,
        qkv_bias: bool,
        proj_bias: bool,
        rel_pos: str,
    ):
        super().__init__()
        if mode not in ("block", "grid"):
            raise ValueError(f"mode must be 'block' or 'grid', found {mode!r}")
        self.mode = mode
        self.partition = partition
        self.num_heads = num_heads
        self.head_dim = head_dim
        inner = num_heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        self.proj = nn.Linear(inner, dim, bias=proj_bias)
        self.rel_pos_table: nn.Parameter | None = None
        if rel_pos == "bias":
            table = torch.empty(num_heads, 2 * partition - 1, 2 * partition - 1)
            self.rel_pos_table = nn.Parameter(table)
        self.init_weights()

    def init_weights(self) -> None:
        """timm's ``maxxvit`` init of the bias table: trunc_normal(std 0.02)."""
        if self.rel_pos_table is not None:
            nn.init.trunc_normal_(self.rel_pos_table, std=0.02)

    def rel_pos_bias(self, window: tuple[int, int]) -> torch.Tensor:
        """``(heads, L, L)`` bias for a ``window`` of ``L = wh * ww`` tokens in row-major order:
        entry ``[h, q, k]`` is the table at the offset ``pos(q) - pos(k)``, read from the table's
        central crop when the window is smaller than the partition."""
        wh, ww = window
        p = self.partition
        table = self.rel_pos_table[:, p - wh : p + wh - 1, p - ww : p + ww - 1]
        device = table.device
        rows = torch.arange(wh, device=device).repeat_interleave(ww)
        cols = torch.arange(ww, device=device).repeat(wh)
        dr = rows[:, None] - rows[None, :] + wh - 1
        dc = cols[:, None] - cols[None, :] + ww - 1
        return table[:, dr, dc]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        # Window extent per axis (block) or grid cells per axis (grid); an axis shorter than the
        # partition is taken whole: one window of it, or a grid with stride 1.
        ph, pw = min(self.partition, h), min(self.partition, w)
        pad_h, pad_w = (-h) % ph, (-w) % pw
        hp, wp = h + pad_h, w + pad_w
        window = (ph, pw)
        if self.mode == "block":
            part, unpart = block_partition, block_unpartition
        else:
            part, unpart = grid_partition, grid_unpartition
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        tokens = part(x, window)
        n, length, _ = tokens.shape
        qkv = self.qkv(tokens).reshape(n, length, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        mask = self._mask(window, (h, w), (hp, wp), b, q.dtype, x.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = out.transpose(1, 2).reshape(n, length, self.num_heads * self.head_dim)
        return self.proj(unpart(out, (hp, wp), window)[:, :h, :w])

    def _mask(
        self,
        window: tuple[int, int],
        size: tuple[int, int],
        padded: tuple[int, int],
        batch: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> torch.Tensor | None:
        """Additive attention mask: the relative position bias, and ``-inf`` on padded keys. Every
        partition holds at least one real token (padding is shorter than a window, and the grid's
        first cell is real), so no row is fully masked."""
        (h, w), (hp, wp) = size, padded
        bias = None if self.rel_pos_table is None else self.rel_pos_bias(window).to(dtype)[None]
        if (h, w) == (hp, wp):
            return bias
        real = torch.zeros(1, hp, wp, 1, dtype=torch.bool, device=device)
        real[:, :h, :w] = True
        part = block_partition if self.mode == "block" else grid_partition
        key_real = part(real, window)[..., 0].repeat(batch, 1)[:, None, None, :]
        mask = torch.zeros(key_real.shape, dtype=dtype, device=device)
        mask = mask.masked_fill(~key_real, float("-inf"))
        return mask if bias is None else mask + bias


class MultiAxisAttention(nn.Module):
    """MaxViT's block attention then grid attention in one mixer; returns ``a + g`` with
    ``a = block(x)`` and ``g = grid(x + a)`` so the block residual completes both sub-blocks.

    Knobs: :class:`MultiAxisAttentionKnobs`.
    """

    def __init__(self, dim: int, **knobs: Any):
        super().__init__()
        k = MultiAxisAttentionKnobs.parse(dim, knobs)
        heads = num_heads(dim, k.head_dim, k.num_heads)
        common = dict(
            partition=k.partition,
            num_heads=heads,
            head_dim=k.head_dim,
            qkv_bias=k.qkv_bias,
            proj_bias=k.proj_bias,
            rel_pos=k.rel_pos,
        )
        self.block_attn = PartitionAttention(dim, mode="block", **common)
        self.grid_attn = PartitionAttention(dim, mode="grid", **common)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.block_attn(x)
        return a + self.grid_attn(x + a)
