"""Oracles and the mixer contract for MultiAxisAttention (MaxViT) and GlobalContext (GCNet)."""

import math
import re

import pytest
import torch

from nas.mixers.global_context import GlobalContext
from nas.mixers.multi_axis_attention import (
    MultiAxisAttention,
    PartitionAttention,
    block_partition,
    block_unpartition,
    grid_partition,
    grid_unpartition,
)

DIM = 32
SIZES = [(8, 8), (6, 10), (11, 7)]


# --- partitions -------------------------------------------------------------------------------


@pytest.mark.parametrize(("h", "w", "wh", "ww"), [(6, 8, 2, 4), (6, 8, 3, 2), (4, 12, 4, 3)])
def test_block_partition_matches_index_loops(h, w, wh, ww) -> None:
    b, c = 2, 3
    x = torch.randn(b, h, w, c)
    nh, nw = h // wh, w // ww
    expected = torch.empty(b * nh * nw, wh * ww, c)
    for n in range(b):
        for i in range(h):
            for j in range(w):
                window = (n * nh + i // wh) * nw + j // ww
                expected[window, (i % wh) * ww + j % ww] = x[n, i, j]
    windows = block_partition(x, (wh, ww))
    assert torch.equal(windows, expected)
    assert torch.equal(block_unpartition(windows, (h, w), (wh, ww)), x)


@pytest.mark.parametrize(("h", "w", "gh", "gw"), [(6, 8, 2, 4), (6, 8, 3, 2), (4, 12, 4, 3)])
def test_grid_partition_matches_index_loops(h, w, gh, gw) -> None:
    """A group is the tokens ``H/gh`` rows and ``W/gw`` columns apart, one per grid cell."""
    b, c = 2, 3
    x = torch.randn(b, h, w, c)
    sh, sw = h // gh, w // gw
    expected = torch.empty(b * sh * sw, gh * gw, c)
    for n in range(b):
        for i in range(h):
            for j in range(w):
                group = (n * sh + i % sh) * sw + j % sw
                expected[group, (i // sh) * gw + j // sw] = x[n, i, j]
    groups = grid_partition(x, (gh, gw))
    assert torch.equal(groups, expected)
    assert torch.equal(grid_unpartition(groups, (h, w), (gh, gw)), x)


# --- attention oracles ------------------------------------------------------------------------


def _partition_of(mode: str, p: int, h: int, w: int, i: int, j: int) -> tuple[tuple, tuple]:
    """(partition id, position in it) of token (i, j), from the rules in the module docstring:
    an axis shorter than ``p`` is taken whole; otherwise it is padded up to a multiple of ``p``."""
    ph, pw = min(p, h), min(p, w)
    if mode == "block":
        return (i // ph, j // pw), (i % ph, j % pw)
    sh, sw = math.ceil(h / ph), math.ceil(w / pw)  # grid strides of the padded map
    return (i % sh, j % sw), (i // sh, j // sw)


def _naive_partition_attention(att: PartitionAttention, x: torch.Tensor) -> torch.Tensor:
    """Every query attends to the real tokens of its partition, one query at a time."""
    b, h, w, _ = x.shape
    heads, hd, p = att.num_heads, att.head_dim, att.partition
    q, k, v = (x @ att.qkv.weight.T + att.qkv.bias).reshape(b, h, w, 3, heads, hd).unbind(3)
    out = torch.zeros(b, h, w, heads, hd, dtype=x.dtype)
    cells = [(i, j) for i in range(h) for j in range(w)]
    for i, j in cells:
        part, pos = _partition_of(att.mode, p, h, w, i, j)
        keys = [c for c in cells if _partition_of(att.mode, p, h, w, *c)[0] == part]
        kk = torch.stack([k[:, a, c] for a, c in keys], dim=2)  # (B, heads, K, hd)
        vv = torch.stack([v[:, a, c] for a, c in keys], dim=2)
        logits = torch.einsum("bhd,bhkd->bhk", q[:, i, j], kk) / hd**0.5
        if att.rel_pos_table is not None:
            offsets = [
                (pos[0] - kp[0] + p - 1, pos[1] - kp[1] + p - 1)
                for kp in (_partition_of(att.mode, p, h, w, *c)[1] for c in keys)
            ]
            logits = logits + torch.stack([att.rel_pos_table[:, r, s] for r, s in offsets], -1)
        out[:, i, j] = torch.einsum("bhk,bhkd->bhd", logits.softmax(-1), vv)
    return out.reshape(b, h, w, heads * hd) @ att.proj.weight.T + att.proj.bias


@pytest.mark.parametrize("mode", ["block", "grid"])
@pytest.mark.parametrize(("h", "w", "p"), [(8, 8, 4), (6, 9, 4), (5, 7, 3), (3, 6, 4), (2, 3, 4)])
def test_partition_attention_matches_naive_loops(mode, h, w, p) -> None:
    """Covers divisible, padded (masked keys) and short-axis maps, with the relative bias."""
    mixer = MultiAxisAttention(16, partition=p, head_dim=8).double()
    att = mixer.block_attn if mode == "block" else mixer.grid_attn
    x = torch.randn(2, h, w, 16, dtype=torch.float64)
    torch.testing.assert_close(att(x), _naive_partition_attention(att, x))


def _global_attention(att: PartitionAttention, x: torch.Tensor) -> torch.Tensor:
    """Plain MHSA over all positions from ``att``'s weights, plus its bias over map offsets."""
    b, h, w, _ = x.shape
    heads, hd, p = att.num_heads, att.head_dim, att.partition
    qkv = (x.reshape(b, h * w, -1) @ att.qkv.weight.T + att.qkv.bias).reshape(
        b, h * w, 3, heads, hd
    )
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    logits = q @ k.transpose(-1, -2) / hd**0.5
    if att.rel_pos_table is not None:
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        rows, cols = rows.flatten(), cols.flatten()
        dr = rows[:, None] - rows[None, :] + p - 1
        dc = cols[:, None] - cols[None, :] + p - 1
        logits = logits + att.rel_pos_table[:, dr, dc]
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, h, w, heads * hd)
    return out @ att.proj.weight.T + att.proj.bias


@pytest.mark.parametrize("rel_pos", ["none", "bias"])
@pytest.mark.parametrize(("h", "w", "p"), [(4, 4, 4), (3, 5, 6)])
def test_a_partition_covering_the_map_is_global_attention(rel_pos, h, w, p) -> None:
    """Block windows of side P >= H, W are the whole map; so is one grid group of a G >= H, W
    grid (stride 1). The mixer is then ``a + g`` with ``a = global(x)``, ``g = global'(x + a)``."""
    mixer = MultiAxisAttention(16, partition=p, head_dim=8, rel_pos=rel_pos).double()
    x = torch.randn(2, h, w, 16, dtype=torch.float64)
    a = _global_attention(mixer.block_attn, x)
    g = _global_attention(mixer.grid_attn, x + a)
    torch.testing.assert_close(mixer.block_attn(x), a)
    torch.testing.assert_close(mixer.grid_attn(x + a), g)
    torch.testing.assert_close(mixer(x), a + g)


def test_partition_one_attends_to_self_only() -> None:
    """P = 1: 1x1 windows and a 1x1 grid both leave each token alone: ``proj(v(x))``."""
    mixer = MultiAxisAttention(16, partition=1, head_dim=8).double()
    x = torch.randn(2, 3, 5, 16, dtype=torch.float64)
    for att in (mixer.block_attn, mixer.grid_attn):
        v = (x @ att.qkv.weight.T + att.qkv.bias)[..., 2 * 16 :]
        torch.testing.assert_close(att(x), v @ att.proj.weight.T + att.proj.bias)


@pytest.mark.parametrize(("h", "w"), [(8, 12), (7, 10)])
def test_perturbing_a_token_reaches_only_its_window_or_grid_group(h, w) -> None:
    p = 4
    mixer = MultiAxisAttention(16, partition=p, head_dim=8, rel_pos="none").double()
    x = torch.randn(1, h, w, 16, dtype=torch.float64)
    for att in (mixer.block_attn, mixer.grid_attn):
        base = att(x)
        for ti, tj in [(0, 0), (h - 1, w - 1), (h // 2, 5)]:
            bumped = x.clone()
            bumped[0, ti, tj] += torch.randn(16, dtype=torch.float64)
            changed = (att(bumped) - base)[0].abs().amax(-1) > 0
            target = _partition_of(att.mode, p, h, w, ti, tj)[0]
            expected = torch.tensor(
                [
                    [_partition_of(att.mode, p, h, w, i, j)[0] == target for j in range(w)]
                    for i in range(h)
                ]
            )
            assert torch.equal(changed, expected), (att.mode, ti, tj)


# --- global context ---------------------------------------------------------------------------


def _randomise(mixer: GlobalContext) -> GlobalContext:
    """LayerNorm starts at (1, 0); random affine values make the oracle check them too."""
    norm = mixer.transform[1]
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    return mixer


def _naive_global_context(mixer: GlobalContext, x: torch.Tensor) -> torch.Tensor:
    b, h, w, c = x.shape
    fc1, norm, _, fc2 = mixer.transform
    out = torch.empty_like(x)
    for n in range(b):
        pixels = [x[n, i, j] for i in range(h) for j in range(w)]
        logits = torch.stack([(mixer.attn_logit.weight[0] * px).sum() for px in pixels])
        weights = logits.exp() / logits.exp().sum()
        context = sum(wt * px for wt, px in zip(weights, pixels, strict=True))
        hidden = fc1.weight @ context + fc1.bias
        mean, var = hidden.mean(), ((hidden - hidden.mean()) ** 2).mean()
        hidden = (hidden - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
        t = fc2.weight @ torch.clamp(hidden, min=0) + fc2.bias
        for i in range(h):
            for j in range(w):
                out[n, i, j] = t if mixer.fusion == "add" else x[n, i, j] * torch.sigmoid(t)
    return out


@pytest.mark.parametrize("fusion", ["add", "mul"])
def test_global_context_matches_naive_computation(fusion) -> None:
    mixer = _randomise(GlobalContext(12, ratio=0.5, fusion=fusion)).double()
    x = torch.randn(2, 3, 5, 12, dtype=torch.float64)
    torch.testing.assert_close(mixer(x), _naive_global_context(mixer, x))


@pytest.mark.parametrize("fusion", ["add", "mul"])
def test_global_context_is_invariant_to_permuting_pixels(fusion) -> None:
    mixer = _randomise(GlobalContext(16, fusion=fusion)).double()
    b, h, w, c = 2, 5, 7, 16
    x = torch.randn(b, h, w, c, dtype=torch.float64)
    perm = torch.randperm(h * w)
    shuffled = x.reshape(b, h * w, c)[:, perm].reshape(b, h, w, c)
    torch.testing.assert_close(mixer.context(shuffled), mixer.context(x))
    out, out_shuffled = mixer(x), mixer(shuffled)
    if fusion == "add":
        torch.testing.assert_close(out, out[:, :1, :1].expand_as(out))
        torch.testing.assert_close(out_shuffled, out)
    else:
        torch.testing.assert_close(
            out_shuffled, out.reshape(b, h * w, c)[:, perm].reshape(b, h, w, c)
        )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MultiAxisAttention(16, partition=0), "partition: expected >= 1, found 0"),
        (
            lambda: MultiAxisAttention(16, rel_pos="rpe"),
            "rel_pos: expected one of 'none', 'bias', found 'rpe'",
        ),
        (lambda: MultiAxisAttention(16, num_heads=0), "num_heads: expected >= 1, found 0"),
        (lambda: GlobalContext(16, ratio=0.0), "ratio: expected > 0, found 0.0"),
        (
            lambda: GlobalContext(4, ratio=0.25),
            "ratio: expected a bottleneck int(ratio * dim) >= 2 at dim 4",
        ),
        (
            lambda: GlobalContext(16, fusion="cat"),
            "fusion: expected one of 'add', 'mul', found 'cat'",
        ),
    ],
)
def test_bad_knob_values_raise(make, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make()
