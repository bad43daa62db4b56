"""HyenaPixel (2D) and Hyena (1D) mixers and their implicit filters."""

from __future__ import annotations

import re

import pytest
import torch

from nas.functional.implicit_filter import offset_distance, radial_distance
from nas.layers.implicit_filter import ImplicitFilter1d, ImplicitFilter2d
from nas.mixers.registry import create_mixer, get_mixer

DIM = 8
MIXERS = [
    ("hyena_pixel", {}),
    ("hyena_pixel", {"kernel_size": 21, "use_layernorm": False}),
    ("hyena", {}),
    ("hyena", {"bidirectional": False, "use_layernorm": True}),
]
SIZES = [(8, 8), (12, 20), (5, 3)]  # nominal, non-square, unseen at construction


def _build(name: str, knobs: dict, **extra: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_mixer(name, DIM, grid_size=8, **{**knobs, **extra})


@pytest.mark.parametrize(("name", "knobs"), MIXERS)
@pytest.mark.parametrize("order", [2, 3, 4])
def test_shape_and_gradients_reach_every_parameter(name: str, knobs: dict, order: int) -> None:
    mixer = _build(name, knobs, order=order)
    for size in SIZES:
        mixer.zero_grad()
        x = torch.randn(2, *size, DIM)
        y = mixer(x)
        assert y.shape == x.shape
        y.square().mean().backward()
        for pname, p in mixer.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), (size, pname)
            assert p.grad.abs().sum() > 0, (size, pname)


@pytest.mark.parametrize(("name", "knobs"), MIXERS)
def test_bf16_autocast_forward_backward(name: str, knobs: dict) -> None:
    mixer = _build(name, knobs, order=3)
    x = torch.randn(2, 12, 20, DIM, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = mixer(x)
    assert torch.isfinite(y).all()
    y.float().square().mean().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in mixer.parameters())


@pytest.mark.parametrize("order", [2, 3])
def test_causal_hyena_is_causal_in_raster_order(order: int) -> None:
    mixer = _build("hyena", {"bidirectional": False, "use_layernorm": True}, order=order)
    mixer.double()
    height, width = 5, 6
    x = torch.randn(2, height, width, DIM, dtype=torch.float64)
    y = mixer(x).flatten(1, 2)
    for t in (1, 7, 17, 29):
        x2 = x.flatten(1, 2).clone()
        x2[:, t:] = torch.randn_like(x2[:, t:])
        y2 = mixer(x2.view_as(x)).flatten(1, 2)
        torch.testing.assert_close(y2[:, :t], y[:, :t], rtol=0, atol=1e-10)
        assert not torch.allclose(y2[:, t:], y[:, t:])


def test_bidirectional_hyena_sees_later_tokens() -> None:
    mixer = _build("hyena", {})
    x = torch.randn(1, 4, 4, DIM)
    x2 = x.clone()
    x2[:, -1, -1] += 1.0
    assert not torch.allclose(mixer(x)[:, 0, 0], mixer(x2)[:, 0, 0])


def test_global_kernel_reaches_across_the_map() -> None:
    mixer = _build("hyena_pixel", {})
    x = torch.randn(1, 12, 20, DIM)
    x2 = x.clone()
    x2[:, -1, -1] += 1.0
    assert not torch.allclose(mixer(x)[:, 0, 0], mixer(x2)[:, 0, 0])


def test_global_kernel_at_nominal_size_is_the_explicit_2h_minus_1_kernel() -> None:
    global_mixer = _build("hyena_pixel", {})
    explicit = create_mixer("hyena_pixel", DIM, kernel_size=15)
    explicit.load_state_dict(global_mixer.state_dict())
    x = torch.randn(2, 8, 8, DIM)
    torch.testing.assert_close(explicit(x), global_mixer(x))


def test_decay_windows_peak_at_offset_zero_after_resampling() -> None:
    for size in [(15, 15), (9, 23), (29, 5), (1, 3)]:
        distance = radial_distance(size, 15)
        assert distance[size[0] // 2, size[1] // 2] == 0
        assert (distance > 0).sum() == distance.numel() - 1
    assert torch.equal(radial_distance((15, 15), 15)[7], (torch.arange(15.0) - 7).abs())
    for taps in (31, 19, 45):
        lag = offset_distance(taps, 31, causal=False)
        assert lag[taps // 2] == 0 and torch.equal(lag, lag.flip(0))
        assert (lag[: taps // 2].diff() < 0).all()
    assert offset_distance(16, 16, causal=True)[0] == 0
    filt1d = ImplicitFilter1d(4, emb_dim=9, hidden=16, nominal_length=16, causal=False)
    assert filt1d(10).shape == (4, 19)
    causal = ImplicitFilter1d(4, emb_dim=9, hidden=16, nominal_length=16, causal=True)
    assert causal(10).shape == (4, 10)


def test_filter_is_cached_in_inference_only() -> None:
    filt = ImplicitFilter2d(4, emb_dim=8, hidden=16, nominal_size=15)
    filt.eval()
    with torch.no_grad():
        first = filt((9, 9))
        assert filt((9, 9)) is first
        assert filt((7, 9)) is not first
        second = filt((9, 9))
        filt.decay_shift.add_(1.0)  # in-place update invalidates
        third = filt((9, 9))
        assert third is not second
        assert not torch.allclose(third, second)
    assert filt((9, 9)).requires_grad  # grad enabled: rebuilt with a graph
    filt.train()
    with torch.no_grad():
        assert filt((9, 9)) is not filt((9, 9))


def test_eval_inference_matches_training_forward() -> None:
    mixer = _build("hyena_pixel", {})
    x = torch.randn(2, 12, 20, DIM)
    expected = mixer(x)
    mixer.eval()
    with torch.inference_mode():
        torch.testing.assert_close(mixer(x), expected)
        torch.testing.assert_close(mixer(x), expected)


def test_hpx_former_s18_positional_encoding_size() -> None:
    """The learnable encodings of hpx_former_s18 (official emb 32/32/48/64, kernels 2H-1)."""
    total = 0
    for depth, dim, grid in zip([3, 3, 9, 3], [64, 128, 320, 512], [56, 28, 14, 7], strict=True):
        mixer = create_mixer("hyena_pixel", dim, grid_size=grid)
        total += depth * mixer.long_filter.pos_emb.numel()
    assert total == 3 * 32 * 111**2 + 3 * 32 * 55**2 + 9 * 48 * 27**2 + 3 * 64 * 13**2 == 1_820_592


@pytest.mark.parametrize(
    ("name", "knobs", "message"),
    [
        ("hyena_pixel", {"order": 1}, "order: expected >= 2, found 1"),
        ("hyena_pixel", {"order": 2.0}, "order: expected int, found float 2.0"),
        ("hyena_pixel", {"kernel_size": 4}, "kernel_size: expected an odd int, found 4"),
        (
            "hyena_pixel",
            {"kernel_size": "globl"},
            "kernel_size: expected int or one of 'global', found str 'globl'",
        ),
        ("hyena_pixel", {"emb_dim": 6}, "emb_dim: expected a multiple of 4"),
        ("hyena_pixel", {"short_kernel": 4}, "short_kernel: expected an odd int, found 4"),
        ("hyena_pixel", {"grid_size": 0}, "grid_size: expected >= 1, found 0"),
        ("hyena_pixel", {"use_layernorm": 1}, "use_layernorm: expected bool, found int 1"),
        (
            "hyena",
            {"emb_dim": 32},
            "emb_dim (a time channel plus cos/sin pairs): expected an odd int, found 32",
        ),
        ("hyena", {"bidirectional": "yes"}, "bidirectional: expected bool, found str 'yes'"),
        ("hyena", {"filter_width": 0}, "filter_width: expected >= 1, found 0"),
    ],
)
def test_bad_hyena_knobs_get_messages_naming_the_knob(name: str, knobs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        get_mixer(name).check(DIM, knobs)
    with pytest.raises(ValueError, match=re.escape(message)):
        create_mixer(name, DIM, **knobs)


def test_registry_knobs_are_yaml_scalars() -> None:
    for name in ("hyena_pixel", "hyena"):
        for value in get_mixer(name).defaults.values():
            assert value is None or isinstance(value, int | float | bool | str)
