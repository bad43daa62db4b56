"""Oracles for the neighbourhood (NAT) and halo (HaloNet) attention mixers."""

import re

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from nas.mixers.halo_attention import HaloAttention
from nas.mixers.neighborhood_attention import NeighborhoodAttention

DIM = 32
SIZES = [(8, 8), (6, 10), (11, 7)]
MIXERS = [NeighborhoodAttention, HaloAttention]


def _qkv(mixer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(heads, H, W, d) q, k, v of one image, written out from the mixer's weights."""
    h, w, _ = x.shape
    q, k, v = (x @ mixer.qkv.weight.T).reshape(h, w, 3, mixer.num_heads, mixer.head_dim).unbind(2)
    if getattr(mixer, "q_bias", None) is not None:
        q = q + mixer.q_bias.reshape(mixer.num_heads, mixer.head_dim)
        v = v + mixer.v_bias.reshape(mixer.num_heads, mixer.head_dim)
    elif mixer.qkv.bias is not None:
        bq, bk, bv = mixer.qkv.bias.reshape(3, mixer.num_heads, mixer.head_dim)
        q, k, v = q + bq, k + bk, v + bv
    return q.permute(2, 0, 1, 3), k.permute(2, 0, 1, 3), v.permute(2, 0, 1, 3)


def _proj(mixer, out: torch.Tensor) -> torch.Tensor:
    """(heads, H, W, d) -> (H, W, dim) through the output projection."""
    out = out.permute(1, 2, 0, 3).flatten(2) @ mixer.proj.weight.T
    return out if mixer.proj.bias is None else out + mixer.proj.bias


def _global_attention(mixer, x: torch.Tensor) -> torch.Tensor:
    """Plain softmax attention over all pixels of one (H, W, C) image with the mixer's weights."""
    h, w, _ = x.shape
    q, k, v = (t.flatten(1, 2) for t in _qkv(mixer, x))
    att = torch.softmax(q @ k.transpose(-1, -2) / mixer.head_dim**0.5, dim=-1)
    return _proj(mixer, (att @ v).unflatten(1, (h, w)))


def _natten_window_start(i: int, length: int, kernel: int, dilation: int) -> int:
    """NATTEN's own window-start formula (odd kernel, length >= kernel * dilation)."""
    nh = kernel // 2
    if dilation <= 1:
        return max(i - nh, 0) + (i + nh >= length) * (length - i - nh - 1)
    if i - nh * dilation < 0:
        return i % dilation
    if i + nh * dilation >= length:
        imodd = i % dilation
        a = (length // dilation) * dilation
        b = length - a
        if imodd < b:
            return length - b + imodd - 2 * nh * dilation
        return a + imodd - kernel * dilation
    return i - nh * dilation


def _naive_keys(i: int, length: int, kernel: int, dilation: int) -> list[tuple[int, int]]:
    """(key index, bias-table index) along one axis, applying the documented small-map rule."""
    dil = max(1, min(dilation, length // kernel))
    if kernel >= length:
        keys = list(range(length))
    else:
        start = _natten_window_start(i, length, kernel, dil)
        keys = [start + t * dil for t in range(kernel)]
    assert all((key - i) % dil == 0 for key in keys)
    return [(key, (key - i) // dil + kernel - 1) for key in keys]


def _naive_neighborhood(
    mixer: NeighborhoodAttention, x: torch.Tensor, key_bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-pixel loop; ``key_bias`` (heads, d) adds the key bias NAT has and the mixer drops."""
    h, w, _ = x.shape
    ks, dil = mixer.kernel_size, mixer.dilation
    q, k, v = _qkv(mixer, x)
    if key_bias is not None:
        k = k + key_bias[:, None, None]
    out = torch.empty_like(q)
    for i in range(h):
        for j in range(w):
            pairs = [(a, c) for a in _naive_keys(i, h, ks, dil) for c in _naive_keys(j, w, ks, dil)]
            assert len({(a[0], c[0]) for a, c in pairs}) == len(pairs)
            keys = torch.stack([k[:, a[0], c[0]] for a, c in pairs], 1)  # (heads, n, d)
            vals = torch.stack([v[:, a[0], c[0]] for a, c in pairs], 1)
            logits = (keys @ q[:, i, j, :, None])[..., 0] / mixer.head_dim**0.5
            if mixer.rpb is not None:
                logits = logits + torch.stack([mixer.rpb[:, a[1], c[1]] for a, c in pairs], 1)
            out[:, i, j] = (logits.softmax(-1)[:, None] @ vals)[:, 0]
    return _proj(mixer, out)


def _naive_halo(mixer: HaloAttention, x: torch.Tensor) -> torch.Tensor:
    h, w, _ = x.shape
    bs, halo = mixer.block, mixer.halo
    q, k, v = _qkv(mixer, x)
    out = torch.empty_like(q)
    for i in range(h):
        for j in range(w):
            r0, c0 = (i // bs) * bs - halo, (j // bs) * bs - halo
            # Real keys of the haloed window only: out-of-map keys are masked, so they are absent.
            keys = [
                (y, z)
                for y in range(max(r0, 0), min(r0 + bs + 2 * halo, h))
                for z in range(max(c0, 0), min(c0 + bs + 2 * halo, w))
            ]
            kk = torch.stack([k[:, y, z] for y, z in keys], 1)
            vv = torch.stack([v[:, y, z] for y, z in keys], 1)
            logits = (kk @ q[:, i, j, :, None])[..., 0] / mixer.head_dim**0.5
            if mixer.rpb is not None:
                off = bs + halo - 1
                logits = logits + torch.stack(
                    [mixer.rpb[:, y - i + off, z - j + off] for y, z in keys], 1
                )
            out[:, i, j] = (logits.softmax(-1)[:, None] @ vv)[:, 0]
    return _proj(mixer, out)


def _randomise(mixer: torch.nn.Module) -> torch.nn.Module:
    """float64 with every parameter random, so zero-initialised biases are exercised too."""
    mixer = mixer.double()
    with torch.no_grad():
        for p in mixer.parameters():
            p.normal_(0, 0.5)
    return mixer


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("h", "w", "kernel"), [(5, 5, 9), (5, 7, 7), (4, 6, 11)])
def test_neighborhood_covering_the_map_is_global_attention(h, w, kernel) -> None:
    mixer = _randomise(NeighborhoodAttention(16, head_dim=8, kernel_size=kernel, rel_pos="none"))
    x = torch.randn(2, h, w, 16, dtype=torch.float64)
    out = mixer(x)
    for n in range(2):
        _close(out[n], _global_attention(mixer, x[n]))


@pytest.mark.parametrize(
    ("h", "w", "kernel", "dilation"),
    [
        (7, 6, 3, 2),  # clamped dilated windows at every border, 7 not a multiple of 2
        (7, 6, 3, 1),
        (9, 8, 5, 1),
        (5, 13, 3, 3),  # dilation shrinks to 1 along H (5 < 3*3), kept along W
        (4, 11, 5, 2),  # kernel shrinks to the 4-row map along H
    ],
)
def test_neighborhood_matches_naive_loop_with_bias(h, w, kernel, dilation) -> None:
    mixer = NeighborhoodAttention(16, head_dim=8, kernel_size=kernel, dilation=dilation)
    mixer = _randomise(mixer)
    x = torch.randn(1, h, w, 16, dtype=torch.float64)
    _close(mixer(x)[0], _naive_neighborhood(mixer, x[0]))


@pytest.mark.parametrize(("h", "w", "block", "halo"), [(5, 7, 8, 0), (5, 7, 7, 2), (6, 6, 6, 1)])
def test_halo_block_covering_the_map_is_global_attention(h, w, block, halo) -> None:
    mixer = _randomise(HaloAttention(16, head_dim=8, block=block, halo=halo, rel_pos="none"))
    x = torch.randn(2, h, w, 16, dtype=torch.float64)
    out = mixer(x)
    for n in range(2):
        _close(out[n], _global_attention(mixer, x[n]))


@pytest.mark.parametrize(
    ("h", "w", "block", "halo", "rel_pos"),
    [
        (7, 6, 3, 1, "bias"),  # 7 is not a multiple of 3: padded queries and keys
        (5, 9, 4, 2, "bias"),
        (8, 8, 4, 0, "bias"),
        (6, 5, 2, 3, "none"),  # halo wider than the block
    ],
)
def test_halo_matches_naive_loop(h, w, block, halo, rel_pos) -> None:
    mixer = HaloAttention(16, head_dim=8, block=block, halo=halo, rel_pos=rel_pos, qkv_bias=True)
    mixer = _randomise(mixer)
    x = torch.randn(1, h, w, 16, dtype=torch.float64)
    _close(mixer(x)[0], _naive_halo(mixer, x[0]))


class _LargestTensor(TorchDispatchMode):
    """Records the largest numel of any tensor an op produces."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_largest_tensor_tracker_sees_a_global_attention_matrix() -> None:
    q = torch.randn(1, 300, 8)
    with _LargestTensor() as tracker:
        (q @ q.transpose(1, 2)).softmax(-1)
    assert tracker.largest == 300 * 300


@pytest.mark.parametrize(
    ("mixer", "window"),
    [
        (NeighborhoodAttention(8, head_dim=8, kernel_size=7), 7 * 7),
        (NeighborhoodAttention(8, head_dim=8, kernel_size=3, dilation=4), 3 * 3),
        (HaloAttention(8, head_dim=8, block=8, halo=3), 14 * 14),
    ],
)
def test_memory_is_bounded_by_the_neighbourhood(mixer, window) -> None:
    h = w = 64
    x = torch.randn(1, h, w, 8, requires_grad=True)
    with _LargestTensor() as tracker:
        mixer(x).square().mean().backward()
    assert tracker.largest < (h * w) ** 2 // 8
    assert tracker.largest <= h * w * window * 8  # gathered keys: HW * k^2 * head channels


@pytest.mark.parametrize(
    ("cls", "knobs", "message"),
    [
        (NeighborhoodAttention, {"kernel_size": 4}, "kernel_size: expected an odd int, found 4"),
        (NeighborhoodAttention, {"dilation": 0}, "dilation: expected >= 1, found 0"),
        (
            NeighborhoodAttention,
            {"rel_pos": "rope"},
            "rel_pos: expected one of 'none', 'bias', found 'rope'",
        ),
        (HaloAttention, {"block": 0}, "block: expected >= 1, found 0"),
        (HaloAttention, {"halo": -1}, "halo: expected >= 0, found -1"),
        (
            HaloAttention,
            {"rel_pos": "table"},
            "rel_pos: expected one of 'none', 'bias', found 'table'",
        ),
    ],
)
def test_bad_knob_values_raise(cls, knobs, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(16, **knobs)


def test_key_bias_is_dropped_because_softmax_ignores_it() -> None:
    """NAT's full q/k/v bias gives the same output as the mixer's q and v biases alone."""
    mixer = _randomise(NeighborhoodAttention(16, head_dim=8, kernel_size=3, dilation=2))
    x = torch.randn(1, 7, 6, 16, dtype=torch.float64)
    key_bias = torch.randn(mixer.num_heads, mixer.head_dim, dtype=torch.float64)
    _close(mixer(x)[0], _naive_neighborhood(mixer, x[0], key_bias))
