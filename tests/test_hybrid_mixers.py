"""Oracles and the mixer contract for the hybrid conv + attention mixers (AA, ACmix)."""

import itertools
import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nas.mixers.acmix import ACmix
from nas.mixers.attention_augmented import AttentionAugmented

DIM = 32
GRID = 8
SIZES = [(8, 8), (6, 10), (11, 7)]


def _conv(x: torch.Tensor, weight: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """Zero-padded same-size conv of a channels-last map."""
    y = F.conv2d(x.permute(0, 3, 1, 2), weight, padding=weight.shape[-1] // 2, groups=groups)
    return y.permute(0, 2, 3, 1)


# --- Attention augmented convolution ---------------------------------------------------------


def _line(table: torch.Tensor, n: int) -> torch.Tensor:
    """The ``(2n-1, d)`` relative embeddings for an axis of n pixels, resized independently."""
    g = (table.shape[0] + 1) // 2
    if n == 1:
        return table[g - 1 : g]
    if 2 * n - 1 == table.shape[0]:
        return table
    return F.interpolate(table.t()[None], size=2 * n - 1, mode="linear", align_corners=True)[0].t()


def _naive_aa_attention(mixer: AttentionAugmented, x: torch.Tensor) -> torch.Tensor:
    """AA's relative self-attention written out pixel by pixel (the attention channels)."""
    b, h, w, _ = x.shape
    n, d = mixer.num_heads, mixer.head_dim
    q, k, v = (x @ mixer.qkv.weight.T).reshape(b, h, w, 3, n, d).unbind(3)
    q = q * d**-0.5
    relative = mixer.rel_h is not None
    if relative:
        rh, rw = _line(mixer.rel_h, h), _line(mixer.rel_w, w)
    out = torch.zeros(b, h, w, n, d, dtype=x.dtype)
    keys = list(itertools.product(range(h), range(w)))
    for bi, head, y, xx in itertools.product(range(b), range(n), range(h), range(w)):
        qi = q[bi, y, xx, head]
        logits = []
        for ky, kx in keys:
            logit = qi @ k[bi, ky, kx, head]
            if relative:
                logit = logit + qi @ rw[kx - xx + w - 1] + qi @ rh[ky - y + h - 1]
            logits.append(logit)
        att = torch.softmax(torch.stack(logits), dim=0)
        for a, (ky, kx) in zip(att, keys, strict=True):
            out[bi, y, xx, head] += a * v[bi, ky, kx, head]
    return out.reshape(b, h, w, n * d) @ mixer.proj.weight.T


def test_aa_without_attention_is_exactly_its_conv() -> None:
    mixer = AttentionAugmented(12, attention_share=0.0, kernel_size=5).double()
    assert [name for name, _ in mixer.named_parameters()] == ["conv.weight"]
    x = torch.randn(2, 6, 7, 12, dtype=torch.float64)
    torch.testing.assert_close(mixer(x), _conv(x, mixer.conv.weight), rtol=0, atol=0)


@pytest.mark.parametrize("rel_pos", ["bias", "none"])
@pytest.mark.parametrize(("h", "w"), [(4, 4), (3, 5), (1, 3)])
def test_aa_is_conv_channels_then_naive_relative_attention(rel_pos, h, w) -> None:
    mixer = AttentionAugmented(
        16, attention_share=0.5, head_dim=4, rel_pos=rel_pos, grid_size=4
    ).double()
    assert (mixer.num_heads, mixer.attention_channels, mixer.head_dim) == (2, 8, 4)
    x = torch.randn(2, h, w, 16, dtype=torch.float64)
    out = mixer(x)
    torch.testing.assert_close(out[..., :8], _conv(x, mixer.conv.weight))
    torch.testing.assert_close(out[..., 8:], _naive_aa_attention(mixer, x))


@pytest.mark.parametrize(
    ("dim", "knobs", "heads", "dv"),
    [
        (64, {}, 1, 32),
        (64, {"attention_share": 0.25, "num_heads": 3}, 3, 15),
        (64, {"attention_share": 0.01, "num_heads": 2}, 2, 2),
        (128, {"attention_share": 0.5, "head_dim": 32}, 2, 64),
    ],
)
def test_aa_attention_width(dim, knobs, heads, dv) -> None:
    mixer = AttentionAugmented(dim, **knobs)
    assert (mixer.num_heads, mixer.attention_channels) == (heads, dv)
    assert mixer.conv.out_channels == dim - dv


# --- ACmix ------------------------------------------------------------------------------------


def _acmix(**knobs) -> ACmix:
    mixer = ACmix(8, head_dim=4, **knobs).double()
    if mixer.qkv.bias is not None:
        with torch.no_grad():
            mixer.qkv.bias.normal_()
    return mixer


def _fc_groups(mixer: ACmix, x: torch.Tensor) -> torch.Tensor:
    """The fc layer's ``(B, H, W, head_dim, k_conv^2)`` feature groups, written as an einsum."""
    b, h, w, _ = x.shape
    qkv = F.linear(x, mixer.qkv.weight, mixer.qkv.bias)
    qkv = qkv.reshape(b, h, w, 3 * mixer.num_heads, mixer.head_dim)
    return torch.einsum("bhwtd,ot->bhwdo", qkv, mixer.fc.weight)


def test_acmix_without_attention_is_its_conv_path() -> None:
    mixer = _acmix(kernel_conv=3, qkv_bias=True)
    with torch.no_grad():
        mixer.rate1.zero_()
        mixer.rate2.fill_(0.7)
        mixer.dep_conv.weight.normal_()
    x = torch.randn(2, 5, 6, 8, dtype=torch.float64)
    groups = _fc_groups(mixer, x).reshape(2, 5, 6, -1)
    conv = _conv(groups, mixer.dep_conv.weight, groups=mixer.head_dim)
    torch.testing.assert_close(mixer(x), (0.7 * conv) @ mixer.proj.weight.T)


def test_acmix_shift_initialisation_sums_shifted_feature_groups() -> None:
    """Fresh dep_conv: out channel o of slot ``o // heads`` = sum over i of group i shifted by
    (i // k - r, i % k - r), zero outside the map."""
    mixer = _acmix(kernel_conv=3)
    with torch.no_grad():
        mixer.rate1.zero_()
        mixer.rate2.fill_(1.0)
        mixer.proj.weight.copy_(torch.eye(8))
    x = torch.randn(1, 4, 5, 8, dtype=torch.float64)
    groups = _fc_groups(mixer, x)[0]
    expected = torch.zeros(4, 5, 8, dtype=torch.float64)
    heads = mixer.num_heads
    for y, xx, o in itertools.product(range(4), range(5), range(8)):
        for i in range(9):
            sy, sx = y + i // 3 - 1, xx + i % 3 - 1
            if 0 <= sy < 4 and 0 <= sx < 5:
                expected[y, xx, o] += groups[sy, sx, o // heads, i]
    torch.testing.assert_close(mixer(x)[0], expected)


def _naive_acmix_attention(mixer: ACmix, x: torch.Tensor) -> torch.Tensor:
    """Neighbourhood attention with ACmix's positional term, pixel by pixel, keys inside the map."""
    b, h, w, _ = x.shape
    n, d, r = mixer.num_heads, mixer.head_dim, mixer.kernel_att // 2
    qkv = F.linear(x, mixer.qkv.weight, mixer.qkv.bias)
    q, k, v = qkv.reshape(b, h, w, 3, n, d).unbind(3)
    q = q * d**-0.5
    lin_y, lin_x = torch.linspace(-1, 1, h, dtype=x.dtype), torch.linspace(-1, 1, w, dtype=x.dtype)

    def pos(y: int, xx: int) -> torch.Tensor:
        return mixer.pos.weight @ torch.stack([lin_x[xx], lin_y[y]])

    out = torch.zeros(b, h, w, n, d, dtype=x.dtype)
    for bi, head, y, xx in itertools.product(range(b), range(n), range(h), range(w)):
        qi = q[bi, y, xx, head]
        keys = [
            (ky, kx)
            for ky in range(y - r, y + r + 1)
            for kx in range(xx - r, xx + r + 1)
            if 0 <= ky < h and 0 <= kx < w
        ]
        logits = torch.stack(
            [qi @ (k[bi, ky, kx, head] + pos(y, xx) - pos(ky, kx)) for ky, kx in keys]
        )
        att = torch.softmax(logits, dim=0)
        for a, (ky, kx) in zip(att, keys, strict=True):
            out[bi, y, xx, head] += a * v[bi, ky, kx, head]
    return out.reshape(b, h, w, n * d)


@pytest.mark.parametrize(("h", "w", "ka"), [(4, 5, 3), (3, 4, 7), (5, 2, 5), (1, 3, 3)])
def test_acmix_without_conv_is_naive_neighbourhood_attention(h, w, ka) -> None:
    mixer = _acmix(kernel_att=ka, qkv_bias=True)
    with torch.no_grad():
        mixer.rate1.fill_(1.3)
        mixer.rate2.zero_()
        mixer.pos.weight.mul_(5)  # make the positional term visible against the content logits
    x = torch.randn(2, h, w, 8, dtype=torch.float64)
    expected = (1.3 * _naive_acmix_attention(mixer, x)) @ mixer.proj.weight.T
    torch.testing.assert_close(mixer(x), expected)


@pytest.mark.parametrize(
    ("cls", "knobs", "message"),
    [
        (
            AttentionAugmented,
            {"attention_share": 1.0},
            "attention_share: expected a value in [0, 1), found 1.0",
        ),
        (AttentionAugmented, {"kernel_size": 4}, "kernel_size: expected an odd int, found 4"),
        (
            AttentionAugmented,
            {"rel_pos": "rope"},
            "rel_pos: expected one of 'none', 'bias', found 'rope'",
        ),
        (AttentionAugmented, {"grid_size": 0}, "grid_size: expected >= 1, found 0"),
        (AttentionAugmented, {"attention_share": 0.9, "num_heads": 8}, "take all 8 channels"),
        (ACmix, {"kernel_conv": 2}, "kernel_conv: expected an odd int, found 2"),
        (ACmix, {"kernel_att": 0}, "kernel_att: expected >= 1, found 0"),
        (ACmix, {"num_heads": 0}, "num_heads: expected >= 1, found 0"),
    ],
)
def test_bad_knob_values_raise(cls: type[nn.Module], knobs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(8, **knobs)
