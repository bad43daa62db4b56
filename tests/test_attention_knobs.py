"""Oracles for the attention mixer's rel_pos, shift and qkv_conv knobs and the relative bias layer."""

import math
import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nas.layers.relative_position import RelativePositionBias
from nas.mixers.attention import Attention

DIM = 32
SIZES = [(8, 8), (6, 10), (11, 7)]


def _double(mixer: Attention) -> Attention:
    return mixer.double().eval()


def _conv_maps(mixer: Attention, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """q/k/v input maps written out with F.conv2d and F.layer_norm (x itself without qkv_conv)."""
    if mixer.conv_q is None:
        return x, x, x
    maps = []
    for proj in (mixer.conv_q, mixer.conv_k, mixer.conv_v):
        conv = F.conv2d(
            x.permute(0, 3, 1, 2),
            proj.conv.weight,
            stride=proj.conv.stride,
            padding=1,
            groups=x.shape[-1],
        ).permute(0, 2, 3, 1)
        maps.append(F.layer_norm(conv, (x.shape[-1],), proj.norm.weight, proj.norm.bias, 1e-6))
    return tuple(maps)


def _naive(mixer: Attention, x: torch.Tensor, *, group=None, table=None, stride: int = 1):
    """softmax(q.k * scale + bias) v for every query, by loops over queries and keys.

    ``group(i, j)`` names the region a token belongs to (keys of other regions are not seen;
    None = global). ``table`` (heads, 2Th-1, 2Tw-1) gives the bias of offset (dy, dx) at
    ``table[:, dy + Th - 1, dx + Tw - 1]``; keys sit at ``stride`` times their grid index.
    """
    b, h, w, _ = x.shape
    heads, hd = mixer.num_heads, mixer.head_dim
    xq, xk, xv = _conv_maps(mixer, x)
    wq, wk, wv = mixer.qkv.weight.chunk(3)
    q = (xq @ wq.T).reshape(b, h * w, heads, hd)
    hk, wk_ = xk.shape[1:3]
    k = (xk @ wk.T).reshape(b, hk * wk_, heads, hd)
    v = (xv @ wv.T).reshape(b, hk * wk_, heads, hd)
    bias = torch.zeros(heads, h * w, hk * wk_, dtype=x.dtype)
    allowed = torch.ones(h * w, hk * wk_, dtype=torch.bool)
    for qi in range(h):
        for qj in range(w):
            for ki in range(hk):
                for kj in range(wk_):
                    p, s = qi * w + qj, ki * wk_ + kj
                    dy, dx = qi - ki * stride, qj - kj * stride
                    if group is not None:
                        allowed[p, s] = group(qi, qj) == group(ki, kj)
                    if table is not None and allowed[p, s]:
                        th, tw = (table.shape[1] + 1) // 2, (table.shape[2] + 1) // 2
                        bias[:, p, s] = table[:, dy + th - 1, dx + tw - 1]
    out = torch.zeros(b, h * w, heads, hd, dtype=x.dtype)
    for n in range(b):
        for head in range(heads):
            for p in range(h * w):
                logits = k[n, :, head] @ q[n, p, head] / math.sqrt(hd) + bias[head, p]
                logits = logits.masked_fill(~allowed[p], float("-inf"))
                out[n, p, head] = torch.softmax(logits, 0) @ v[n, :, head]
    return (out.reshape(b, h, w, heads * hd) @ mixer.proj.weight.T).reshape(b, h, w, -1)


def _shifted_group(h: int, w: int, ws: int, shift: bool):
    """Region of a token under (shifted) windows: a window grid offset by half a window, edge
    windows truncated; no shift along an axis that holds a single window."""
    sh = ws // 2 if shift and h > ws else 0
    sw = ws // 2 if shift and w > ws else 0
    return lambda i, j: ((i + ws - sh) // ws, (j + ws - sw) // ws)


def _same_weights(target: Attention, source: Attention) -> Attention:
    """Load ``source``'s qkv/proj weights into ``target``."""
    for name in ("qkv", "proj"):
        getattr(target, name).load_state_dict(getattr(source, name).state_dict())
    return target


# --- relative position bias layer -------------------------------------------------------------


def test_bias_at_construction_size_is_the_table_itself() -> None:
    layer = RelativePositionBias(3, (4, 5))
    assert torch.equal(layer.table_at(4, 5), layer.table)
    assert layer.table.shape == (3, 7, 9)


@pytest.mark.parametrize(("h", "w", "stride"), [(4, 5, 1), (3, 3, 1), (5, 4, 2), (4, 7, 3)])
def test_bias_entry_is_the_table_at_the_offset(h, w, stride) -> None:
    layer = RelativePositionBias(2, (h, w)).double()
    table = layer.table_at(h, w)
    bias = layer(h, w, stride)
    hk, wk = -(-h // stride), -(-w // stride)
    assert bias.shape == (2, h * w, hk * wk)
    for qi in range(h):
        for qj in range(w):
            for ki in range(hk):
                for kj in range(wk):
                    dy, dx = qi - stride * ki, qj - stride * kj
                    expected = table[:, dy + h - 1, dx + w - 1]
                    assert torch.equal(bias[:, qi * w + qj, ki * wk + kj], expected)


def test_bias_table_is_resized_bicubically_keeping_centre_and_corners() -> None:
    layer = RelativePositionBias(2, 4).double()
    resized = layer.table_at(3, 6)
    assert resized.shape == (2, 5, 11)
    expected = F.interpolate(layer.table[None], (5, 11), mode="bicubic", align_corners=True)[0]
    torch.testing.assert_close(resized, expected)
    # align_corners=True: zero offset and the extreme offsets are sampled exactly.
    torch.testing.assert_close(resized[:, 2, 5], layer.table[:, 3, 3], rtol=0, atol=1e-12)
    for i, j in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        torch.testing.assert_close(resized[:, i, j], layer.table[:, i, j], rtol=0, atol=1e-12)
    assert layer(3, 6).shape == (2, 18, 18)


# --- rel_pos ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window_size", "shift", "size"),
    [
        (None, False, (5, 6)),
        (None, False, (4, 4)),
        (4, False, (8, 8)),
        (4, False, (7, 10)),
        (4, True, (7, 10)),
        (4, True, (8, 12)),
        (4, False, (3, 2)),
    ],
)
def test_zero_bias_table_is_attention_without_bias(window_size, shift, size) -> None:
    knobs = {"head_dim": 8, "window_size": window_size, "shift": shift, "grid_size": 4}
    biased = _double(Attention(16, rel_pos="bias", **knobs))
    nn.init.zeros_(biased.rel_pos.table)
    plain = _same_weights(_double(Attention(16, **knobs)), biased)
    x = torch.randn(2, *size, 16, dtype=torch.float64)
    torch.testing.assert_close(biased(x), plain(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("size", "grid"), [((3, 4), 3), ((3, 3), 3), ((2, 3), 4)])
def test_global_bias_attention_matches_naive_loops(size, grid) -> None:
    mixer = _double(Attention(8, head_dim=4, rel_pos="bias", grid_size=grid))
    nn.init.normal_(mixer.rel_pos.table)  # large enough to matter
    x = torch.randn(2, *size, 8, dtype=torch.float64)
    expected = _naive(mixer, x, table=mixer.rel_pos.table_at(*size))
    torch.testing.assert_close(mixer(x), expected)


@pytest.mark.parametrize(("size", "shift"), [((6, 5), False), ((6, 5), True), ((2, 3), False)])
def test_window_bias_attention_matches_naive_loops(size, shift) -> None:
    """Window 3 with padded edge windows (and shifted): each query sees its region's real keys,
    with the window table's bias at the token offset (centre of the table for a smaller map)."""
    mixer = _double(Attention(8, head_dim=4, window_size=3, rel_pos="bias", shift=shift))
    nn.init.normal_(mixer.rel_pos.table)
    x = torch.randn(1, *size, 8, dtype=torch.float64)
    group = _shifted_group(*size, 3, shift)
    expected = _naive(mixer, x, group=group, table=mixer.rel_pos.table)
    torch.testing.assert_close(mixer(x), expected)


def test_window_bias_edge_window_equals_mixer_on_the_crop() -> None:
    mixer = _double(Attention(16, head_dim=8, window_size=4, rel_pos="bias"))
    nn.init.normal_(mixer.rel_pos.table)
    x = torch.randn(2, 7, 10, 16, dtype=torch.float64)
    out = mixer(x)
    for i in range(0, 7, 4):
        for j in range(0, 10, 4):
            crop = x[:, i : i + 4, j : j + 4]
            torch.testing.assert_close(out[:, i : i + 4, j : j + 4], mixer(crop))


# --- shift ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "rel_pos"), [((8, 8), "none"), ((7, 10), "bias")])
def test_shifted_windows_see_only_their_region(size, rel_pos) -> None:
    """Perturbing a token changes exactly the outputs of the tokens in its shifted window."""
    h, w = size
    mixer = _double(Attention(8, head_dim=4, window_size=4, shift=True, rel_pos=rel_pos))
    x = torch.randn(1, h, w, 8, dtype=torch.float64)
    base = mixer(x)
    group = _shifted_group(h, w, 4, True)
    for ti in range(h):
        for tj in range(w):
            moved = x.clone()
            moved[0, ti, tj] += 1.0
            changed = (mixer(moved) - base).abs().amax(-1)[0] > 1e-12
            for qi in range(h):
                for qj in range(w):
                    same = group(qi, qj) == group(ti, tj)
                    assert bool(changed[qi, qj]) == same, ((ti, tj), (qi, qj))


@pytest.mark.parametrize("size", [(4, 4), (3, 4), (2, 3)])
def test_shift_on_a_map_within_the_window_changes_nothing(size) -> None:
    shifted = _double(Attention(16, head_dim=8, window_size=4, shift=True, rel_pos="bias"))
    plain = _double(Attention(16, head_dim=8, window_size=4, rel_pos="bias"))
    plain.load_state_dict(shifted.state_dict())
    x = torch.randn(2, *size, 16, dtype=torch.float64)
    assert torch.equal(shifted(x), plain(x))


def test_shift_is_a_no_op_for_global_attention() -> None:
    shifted = _double(Attention(16, head_dim=8, shift=True))
    plain = _same_weights(_double(Attention(16, head_dim=8)), shifted)
    x = torch.randn(2, 5, 7, 16, dtype=torch.float64)
    assert torch.equal(shifted(x), plain(x))


# --- qkv_conv -------------------------------------------------------------------------------------


def _identity_kernels(mixer: Attention) -> None:
    for proj in (mixer.conv_q, mixer.conv_k, mixer.conv_v):
        with torch.no_grad():
            proj.conv.weight.zero_()
            proj.conv.weight[:, :, 1, 1] = 1.0


@pytest.mark.parametrize(
    ("window_size", "shift", "size"),
    [(None, False, (5, 6)), (4, False, (7, 10)), (4, True, (8, 8))],
)
def test_identity_conv_projection_is_plain_attention(window_size, shift, size) -> None:
    knobs = {"head_dim": 8, "window_size": window_size, "shift": shift, "qkv_bias": True}
    conv = _double(Attention(16, qkv_conv=True, **knobs))
    _identity_kernels(conv)
    plain = _same_weights(_double(Attention(16, **knobs)), conv)
    x = torch.randn(2, *size, 16, dtype=torch.float64)
    # With the LayerNorms (fresh: unit scale, zero shift) the q/k/v inputs are layer_norm(x).
    torch.testing.assert_close(conv(x), plain(F.layer_norm(x, (16,), eps=1e-6)))
    for proj in (conv.conv_q, conv.conv_k, conv.conv_v):
        proj.norm = nn.Identity()
    torch.testing.assert_close(conv(x), plain(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("size", "rel_pos"), [((5, 4), "none"), ((4, 6), "bias"), ((1, 1), "bias")]
)
def test_strided_kv_conv_matches_naive_loops(size, rel_pos) -> None:
    """kv_stride 2: keys on the half-resolution conv map, the bias at query-minus-2*key offsets."""
    mixer = _double(
        Attention(8, head_dim=4, qkv_conv=True, kv_stride=2, rel_pos=rel_pos, grid_size=3)
    )
    for proj in (mixer.conv_q, mixer.conv_k, mixer.conv_v):
        nn.init.normal_(proj.norm.weight)
        nn.init.normal_(proj.norm.bias)
    table = None
    if rel_pos == "bias":
        nn.init.normal_(mixer.rel_pos.table)
        table = mixer.rel_pos.table_at(*size)
    x = torch.randn(2, *size, 8, dtype=torch.float64)
    expected = _naive(mixer, x, table=table, stride=2)
    torch.testing.assert_close(mixer(x), expected)


# --- knob validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"rel_pos": "rope"}, "rel_pos: expected one of 'none', 'bias', found 'rope'"),
        ({"grid_size": 0}, "grid_size: expected >= 1, found 0"),
        ({"shift": 1}, "shift: expected bool, found int 1"),
        ({"qkv_conv": "yes"}, "qkv_conv: expected bool, found str 'yes'"),
        ({"kv_stride": 0, "qkv_conv": True}, "kv_stride: expected >= 1, found 0"),
        ({"kv_stride": 2}, "needs qkv_conv=true"),
        ({"kv_stride": 2, "qkv_conv": True, "window_size": 4}, "needs global attention"),
    ],
)
def test_bad_new_knobs_are_specific_errors(knobs, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Attention(16, **knobs)


def test_parameter_counts_at_dim_64() -> None:
    def count(**knobs) -> int:
        return sum(p.numel() for p in Attention(64, **knobs).parameters())

    base = 64 * 3 * 64 + 64 * 64
    assert count() == base
    assert count(rel_pos="bias") == base + 2 * 27 * 27
    assert count(rel_pos="bias", window_size=7) == base + 2 * 13 * 13
    assert count(qkv_conv=True, kv_stride=2) == base + 3 * (64 * 9 + 2 * 64)
