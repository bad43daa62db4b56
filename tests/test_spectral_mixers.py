"""Oracles and contract checks for the global (FFT-based) and gated mixers: gnconv, parc,
parc_v2, dynamic_filter, global_filter, and the functional ops under them."""

from __future__ import annotations

import re

import pytest
import torch
from torch.nn import functional as F

from nas.functional.resize import resize_grid, resize_line
from nas.functional.spectral import circular_correlate, padded_correlate, spectral_filter2d
from nas.mixers.dynamic_filter import DynamicFilter
from nas.mixers.global_filter import GlobalFilter
from nas.mixers.gnconv import GnConv
from nas.mixers.parc import ParC
from nas.mixers.parc_v2 import ParCV2
from nas.mixers.registry import create_mixer, get_mixer

F64 = torch.float64


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


# ---------------------------------------------------------------- functional ops


@pytest.mark.parametrize("axis", ["H", "W"])
def test_circular_correlate_matches_concat_valid_conv(axis: str) -> None:
    x = torch.randn(2, 5, 7, 3, dtype=F64)
    n = x.shape[1] if axis == "H" else x.shape[2]
    taps = torch.randn(3, n, dtype=F64)  # (C, n)
    kernel = taps.t().unsqueeze(1) if axis == "H" else taps.t()
    y = circular_correlate(x, kernel, dim=-3 if axis == "H" else -2)

    xn = _nchw(x)
    if axis == "H":
        cat, weight = torch.cat([xn, xn[:, :, :-1]], dim=2), taps[:, None, :, None]
    else:
        cat, weight = torch.cat([xn, xn[:, :, :, :-1]], dim=3), taps[:, None, None, :]
    expected = _nhwc(F.conv2d(cat, weight, groups=3))
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("axis", ["H", "W"])
@pytest.mark.parametrize("length", ["short", "oversize", "longer"])
def test_padded_correlate_matches_zero_padded_conv(axis: str, length: str) -> None:
    x = torch.randn(2, 6, 9, 3, dtype=F64)
    n = x.shape[1] if axis == "H" else x.shape[2]
    k = {"short": 5, "oversize": 2 * n - 1, "longer": 2 * n + 3}[length]
    taps = torch.randn(3, k, dtype=F64)
    kernel = taps.t().unsqueeze(1) if axis == "H" else taps.t()
    y = padded_correlate(x, kernel, dim=-3 if axis == "H" else -2)

    if axis == "H":
        weight, padding = taps[:, None, :, None], (k // 2, 0)
    else:
        weight, padding = taps[:, None, None, :], (0, k // 2)
    expected = _nhwc(F.conv2d(_nchw(x), weight, padding=padding, groups=3))
    torch.testing.assert_close(y, expected)


def test_padded_correlate_rejects_even_kernel() -> None:
    with pytest.raises(ValueError, match="must be odd, found 4"):
        padded_correlate(torch.randn(1, 5, 5, 2), torch.randn(4, 1, 2), dim=-3)


def test_spectral_filter_is_circular_convolution() -> None:
    x = torch.randn(2, 5, 6, 3, dtype=F64)
    k = torch.randn(5, 6, 3, dtype=F64)
    y = spectral_filter2d(x, torch.fft.rfft2(k, dim=(0, 1)))
    expected = sum(
        k[a, b] * torch.roll(x, shifts=(a, b), dims=(1, 2)) for a in range(5) for b in range(6)
    )
    torch.testing.assert_close(y, expected)


def test_spectral_filter_of_ones_is_identity() -> None:
    x = torch.randn(2, 7, 5, 4)
    torch.testing.assert_close(spectral_filter2d(x, torch.ones(7, 3, 4, dtype=torch.cfloat)), x)


def test_resize_keeps_same_size_endpoints_and_constants() -> None:
    line = torch.randn(3, 5)
    assert resize_line(line, 5) is line
    # traced at the stored size, the interpolation is recorded (exactly the identity there) and
    # follows the map to other sizes
    traced = torch.jit.trace(lambda w, x: resize_line(w, x.shape[-1]), (line, torch.zeros(5)))
    assert torch.equal(traced(line, torch.zeros(5)), line)
    assert torch.equal(traced(line, torch.zeros(9)), resize_line(line, 9))
    grid = torch.randn(4, 3, 2, 2)
    for mode in ("bilinear", "bicubic"):
        traced = torch.jit.trace(
            lambda w, x, mode=mode: resize_grid(w, x.shape, mode), (grid, torch.zeros(4, 3))
        )
        assert torch.equal(traced(grid, torch.zeros(4, 3)), grid)
        assert torch.equal(traced(grid, torch.zeros(6, 5)), resize_grid(grid, (6, 5), mode))
    longer = resize_line(line, 9)
    torch.testing.assert_close(longer[:, [0, -1]], line[:, [0, -1]])
    torch.testing.assert_close(longer[:, ::2], line)
    grid = torch.full((4, 3, 2, 2), 0.7)
    for mode in ("bilinear", "bicubic"):
        torch.testing.assert_close(resize_grid(grid, (9, 5), mode), torch.full((9, 5, 2, 2), 0.7))


# ---------------------------------------------------------------- parc


def _parc_direct(m: ParC, x: torch.Tensor) -> torch.Tensor:
    """ParC-ConvNeXt's forward with F.conv2d: PE, concat-with-wrap (or zero padding), bias."""
    xn = _nchw(x)
    outs = []
    for conv, t, axis in zip((m.conv_h, m.conv_w), xn.chunk(2, dim=1), (2, 3), strict=True):
        n = t.shape[axis]
        if conv.pe is not None:
            pe = resize_line(conv.pe, n)
            t = t + (pe[:, :, None] if axis == 2 else pe[:, None, :])
        if conv.variant == "circular":
            taps, pad = resize_line(conv.kernel, n), 0
            t = torch.cat([t, t.narrow(axis, 0, n - 1)], dim=axis)
        else:
            taps, pad = resize_line(conv.kernel, 2 * n - 1), n - 1
        weight = taps[:, None, :, None] if axis == 2 else taps[:, None, None, :]
        padding = (pad, 0) if axis == 2 else (0, pad)
        outs.append(F.conv2d(t, weight, conv.bias, padding=padding, groups=t.shape[1]))
    return _nhwc(torch.cat(outs, dim=1))


@pytest.mark.parametrize("variant", ["circular", "oversize"])
@pytest.mark.parametrize("size", [(6, 6), (6, 9), (11, 4)])
def test_parc_fft_matches_direct_conv(variant: str, size: tuple[int, int]) -> None:
    m = ParC(8, variant=variant, grid_size=6).double()
    with torch.no_grad():
        for conv in (m.conv_h, m.conv_w):
            conv.bias.normal_()
    x = torch.randn(2, *size, 8, dtype=F64)
    torch.testing.assert_close(m(x), _parc_direct(m, x))


@pytest.mark.parametrize("variant", ["circular", "oversize"])
def test_parc_with_pointwise_wraps_the_operator(variant: str) -> None:
    m = ParC(4, variant=variant, pointwise=True, grid_size=5).double()
    x = torch.randn(2, 5, 8, 4, dtype=F64)
    hidden = m.act(m.pwconv1(x))
    torch.testing.assert_close(m(x), m.pwconv2(_parc_direct(m, hidden)))


@pytest.mark.parametrize("dim", [1, 2])
def test_circular_parc_without_pe_is_roll_equivariant(dim: int) -> None:
    m = ParC(8, position_embedding=False, grid_size=6).double()
    x = torch.randn(2, 7, 10, 8, dtype=F64)
    torch.testing.assert_close(m(torch.roll(x, 3, dims=dim)), torch.roll(m(x), 3, dims=dim))
    with_pe = ParC(8, grid_size=6).double()
    with torch.no_grad():
        for conv in (with_pe.conv_h, with_pe.conv_w):
            conv.pe.normal_()
    shifted = with_pe(torch.roll(x, 3, dims=dim))
    assert not torch.allclose(shifted, torch.roll(with_pe(x), 3, dims=dim))


# ---------------------------------------------------------------- parc_v2 (ParCNetV2)


def _parc_v2_direct(m: ParCV2, x: torch.Tensor) -> torch.Tensor:
    """ParCNetV2's ``ParC_V2`` with F.conv2d: 1x1 projection with bias, GELU on the gate half,
    a (2H-1, 1) then a (1, 2W-1) zero-padded depthwise conv plus a 7x7 one, gating, 1x1."""
    value, gate = _nchw(m.pwconv1(x)).chunk(2, dim=1)
    gate = F.gelu(gate)
    c, h, w = gate.shape[1:]
    taps_h = resize_line(m.oversize.conv_h.kernel, 2 * h - 1)
    taps_w = resize_line(m.oversize.conv_w.kernel, 2 * w - 1)
    far = F.conv2d(gate, taps_h[:, None, :, None], padding=(h - 1, 0), groups=c)
    far = F.conv2d(far, taps_w[:, None, None, :], padding=(0, w - 1), groups=c)
    near = F.conv2d(gate, m.dwconv.weight, padding=m.dwconv.padding, groups=c)
    return m.pwconv2(_nhwc(value * (far + near)))


@pytest.mark.parametrize("size", [(6, 6), (6, 9), (11, 4), (1, 3)])
def test_parc_v2_matches_direct_conv_composition(size: tuple[int, int]) -> None:
    m = ParCV2(8, grid_size=6).double()
    with torch.no_grad():
        m.pwconv1.bias.normal_()
    x = torch.randn(2, *size, 8, dtype=F64)
    torch.testing.assert_close(m(x), _parc_v2_direct(m, x))


def test_parc_v2_oversize_kernels_reach_the_whole_map_without_wrap() -> None:
    m = ParCV2(2, grid_size=5).double()  # 2 gate channels, kernels of 2 * 5 - 1 = 9 taps
    x = torch.zeros(1, 5, 5, 2, dtype=F64)
    x[0, 0, 0] = 1.0  # an impulse in the top-left corner
    y = m.oversize(x)
    assert (y[0].abs() > 0).all()  # every position sees it
    # Cross-correlation: output (i, j) reads the impulse through taps (4 - i, 4 - j); a circular
    # conv would instead wrap part of the kernel around onto the far rows and columns.
    kh, kw = m.oversize.conv_h.kernel, m.oversize.conv_w.kernel
    expected = kh[:, :5].flip(-1).t()[:, None, :] * kw[:, :5].flip(-1).t()[None, :, :]
    torch.testing.assert_close(y[0], expected)


def test_parc_v2_follows_the_official_layout() -> None:
    m = ParCV2(64, grid_size=14)
    assert (m.pwconv1.in_features, m.pwconv1.out_features) == (64, 128)
    assert m.pwconv1.bias is not None and m.pwconv2.bias is None and m.dwconv.bias is None
    assert m.oversize.conv_h.kernel.shape == m.oversize.conv_w.kernel.shape == (64, 27)
    assert m.dwconv.weight.shape == (64, 1, 7, 7)
    params = sum(p.numel() for p in m.parameters())
    assert params == 64 * 128 + 128 + 2 * 64 * 27 + 64 * 49 + 64 * 64


# ---------------------------------------------------------------- global / dynamic filter


def _mlp(m: GlobalFilter | DynamicFilter, x: torch.Tensor) -> torch.Tensor:
    return m.pwconv2(m.act(m.pwconv1(x)))


@pytest.mark.parametrize("size", [(6, 6), (7, 10)])
def test_global_filter_of_ones_is_identity(size: tuple[int, int]) -> None:
    bare = GlobalFilter(4, pointwise=False, grid_size=6).double()
    wrapped = GlobalFilter(4, grid_size=6).double()
    for m in (bare, wrapped):
        with torch.no_grad():
            m.filter.weight.copy_(torch.tensor([1.0, 0.0]))
    x = torch.randn(2, *size, 4, dtype=F64)
    torch.testing.assert_close(bare(x), x)
    torch.testing.assert_close(wrapped(x), _mlp(wrapped, x))


@pytest.mark.parametrize("num_filters", [1, 4])
def test_dynamic_filter_with_unit_filters_is_pointwise_mlp(num_filters: int) -> None:
    m = DynamicFilter(8, num_filters=num_filters, grid_size=6).double()
    with torch.no_grad():
        m.filters.copy_(torch.tensor([1.0, 0.0]))  # every filter 1+0j: any routing gives 1
    x = torch.randn(2, 5, 9, 8, dtype=F64)
    torch.testing.assert_close(m(x), _mlp(m, x))


def test_dynamic_filter_is_circular_shift_equivariant() -> None:
    m = DynamicFilter(8, grid_size=6).double()
    x = torch.randn(2, 7, 10, 8, dtype=F64)
    shift = ((2, -3), (1, 2))
    torch.testing.assert_close(m(torch.roll(x, *shift)), torch.roll(m(x), *shift))


# ---------------------------------------------------------------- gnconv


def _zero_biases(m: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("bias"):
                p.zero_()


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("filter", ["dw", "gf"])
def test_gnconv_is_homogeneous_of_degree_order_plus_one(order: int, filter: str) -> None:
    m = GnConv(32, order=order, filter=filter, gf_norm=False, grid_size=6).double()
    _zero_biases(m)
    x = torch.randn(2, 7, 9, 32, dtype=F64)
    for a in (0.5, 1.7):
        torch.testing.assert_close(m(a * x), a ** (order + 1) * m(x))


def test_gnconv_gf_norms_make_the_gates_scale_invariant() -> None:
    m = GnConv(32, order=3, filter="gf", grid_size=6).double()
    _zero_biases(m)
    x = torch.randn(2, 7, 9, 32, dtype=F64)
    torch.testing.assert_close(m(2.0 * x), 2.0 * m(x), rtol=1e-4, atol=1e-6)


def test_gnconv_follows_hornet_layout() -> None:
    m = GnConv(64, order=3)
    assert m.dims == [16, 32, 64]
    assert m.proj_in.out_features == 16 + 112
    assert [(pw.in_features, pw.out_features) for pw in m.pws] == [(16, 32), (32, 64)]
    gf = GnConv(64, order=4, filter="gf", grid_size=14).dw
    assert gf.spectral.weight.shape == (14, 8, 60, 2)  # HorNet: (C/2, h=14, w=8) complex


# ---------------------------------------------------------------- contract, every mixer

CONFIGS = [
    ("gnconv", {}),
    ("gnconv", {"order": 4, "filter": "gf"}),
    ("parc", {}),
    ("parc", {"variant": "oversize", "pointwise": True}),
    ("dynamic_filter", {}),
    ("global_filter", {}),
    ("global_filter", {"pointwise": False}),
]
IDS = [f"{name}-{'-'.join(map(str, knobs.values())) or 'default'}" for name, knobs in CONFIGS]
SIZES = [(8, 8), (12, 20), (7, 5), (1, 3)]  # none equals the grid of 10 they are built at


@pytest.mark.parametrize(("name", "knobs"), CONFIGS, ids=IDS)
def test_shape_grads_and_bf16(name: str, knobs: dict) -> None:
    m = create_mixer(name, 32, grid_size=10, **knobs)
    for size in SIZES:
        x = torch.randn(2, *size, 32)
        y = m(x)
        assert y.shape == x.shape and y.dtype == x.dtype
        y.square().mean().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname

    x = torch.randn(2, 12, 20, 32, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.float().square().mean().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(("name", "knobs"), CONFIGS, ids=IDS)
def test_default_grid_size(name: str, knobs: dict) -> None:
    m = create_mixer(name, 32, **knobs)
    x = torch.randn(1, 9, 6, 32)
    assert m(x).shape == x.shape


def test_registered_knobs() -> None:
    assert get_mixer("gnconv").defaults == {
        "order": 3,
        "filter": "dw",
        "kernel_size": 7,
        "scale": 1 / 3,
        "gf_norm": True,
        "grid_size": None,
    }
    assert get_mixer("parc").defaults["variant"] == "circular"
    assert get_mixer("dynamic_filter").defaults["num_filters"] == 4
    assert get_mixer("global_filter").defaults["pointwise"] is True


@pytest.mark.parametrize(
    ("name", "dim", "knobs", "message"),
    [
        ("gnconv", 100, {"order": 4}, "dim 100 must be divisible by 2**(order-1)=8 for order 4"),
        ("gnconv", 20, {"filter": "gf"}, "filter: 'gf' halves the 35 gated channels: dim 20"),
        ("gnconv", 64, {"filter": "fft"}, "filter: expected one of 'dw', 'gf', found 'fft'"),
        ("gnconv", 64, {"kernel_size": 4}, "kernel_size: expected an odd int, found 4"),
        ("gnconv", 64, {"order": 0}, "order: expected >= 1, found 0"),
        ("parc", 7, {}, "dim must be even and >= 2, found 7"),
        ("parc", 5, {"pointwise": True, "expansion_ratio": 1.5}, "int(1.5 * 5) must be even"),
        (
            "parc",
            64,
            {"variant": "wrap"},
            "variant: expected one of 'circular', 'oversize', found 'wrap'",
        ),
        ("parc", 64, {"grid_size": 0}, "grid_size: expected >= 1, found 0"),
        ("parc_v2", 5, {"expansion_ratio": 1.5}, "int(1.5 * 5) must be even and >= 2, found 7"),
        ("parc_v2", 64, {"kernel_size": 6}, "kernel_size: expected an odd int, found 6"),
        ("parc_v2", 64, {"expansion_ratio": 0.0}, "expansion_ratio: expected > 0, found 0.0"),
        ("dynamic_filter", 64, {"num_filters": 0}, "num_filters: expected >= 1, found 0"),
        (
            "dynamic_filter",
            64,
            {"reweight_ratio": 0.01},
            "reweight_ratio: expected a hidden width int(reweight_ratio * dim) >= 1 at dim 64",
        ),
        (
            "global_filter",
            64,
            {"expansion_ratio": "2"},
            "expansion_ratio: expected float, found str '2'",
        ),
        ("global_filter", 64, {"grid_size": 3.5}, "grid_size: expected int, found float 3.5"),
    ],
)
def test_bad_knobs_get_messages_naming_the_knob(
    name: str, dim: int, knobs: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        create_mixer(name, dim, **knobs)
    cls = get_mixer(name).cls
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(dim, **knobs)
