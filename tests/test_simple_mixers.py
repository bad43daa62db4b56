"""Oracles for the pooling, sepconv and attention mixers."""

import pytest
import torch
from torch.nn import functional as F

from nas.mixers import create_mixer


def test_pooling_is_zero_on_a_constant_map() -> None:
    pool = create_mixer("pooling", 8)
    x = torch.full((2, 7, 9, 8), 3.5)
    assert torch.equal(pool(x), torch.zeros_like(x))


def test_pooling_equals_mean_of_valid_neighbours_minus_centre() -> None:
    pool = create_mixer("pooling", 1)
    x = torch.randn(1, 4, 5, 1, dtype=torch.float64)
    img = x[0, :, :, 0]
    expected = torch.empty_like(img)
    for i in range(4):
        for j in range(5):
            expected[i, j] = img[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2].mean() - img[i, j]
    torch.testing.assert_close(pool(x)[0, :, :, 0], expected)


def test_sepconv_matches_its_definition() -> None:
    mixer = create_mixer("sepconv", 4, kernel_size=3).double()
    x = torch.randn(2, 5, 6, 4, dtype=torch.float64)
    hidden = mixer.act(x @ mixer.pwconv1.weight.T).permute(0, 3, 1, 2)
    conv = F.conv2d(hidden, mixer.dwconv.weight, padding=1, groups=hidden.shape[1])
    expected = conv.permute(0, 2, 3, 1) @ mixer.pwconv2.weight.T
    torch.testing.assert_close(mixer(x), expected)


def _naive_attention(mixer, tokens: torch.Tensor) -> torch.Tensor:
    """Softmax attention written out, the oracle for F.scaled_dot_product_attention's use."""
    b, n, _ = tokens.shape
    qkv = (tokens @ mixer.qkv.weight.T).reshape(b, n, 3, mixer.num_heads, mixer.head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    att = torch.softmax(q @ k.transpose(-1, -2) / mixer.head_dim**0.5, dim=-1)
    out = (att @ v).transpose(1, 2).reshape(b, n, -1)
    return out @ mixer.proj.weight.T


def test_global_attention_matches_naive_softmax_attention() -> None:
    mixer = create_mixer("attention", 16, head_dim=8).double()
    x = torch.randn(2, 3, 5, 16, dtype=torch.float64)
    expected = _naive_attention(mixer, x.reshape(2, 15, 16)).reshape(2, 3, 5, 16)
    torch.testing.assert_close(mixer(x), expected)


@pytest.mark.parametrize(("h", "w", "ws"), [(8, 8, 4), (7, 10, 4), (5, 9, 3), (3, 10, 4)])
def test_window_attention_equals_global_attention_inside_each_window(h, w, ws) -> None:
    mixer = create_mixer("attention", 16, head_dim=8, window_size=ws).double()
    x = torch.randn(2, h, w, 16, dtype=torch.float64)
    out = mixer(x)
    global_mixer = create_mixer("attention", 16, head_dim=8).double()
    global_mixer.load_state_dict(mixer.state_dict())
    for i in range(0, h, ws):
        for j in range(0, w, ws):
            crop = x[:, i : i + ws, j : j + ws]
            torch.testing.assert_close(out[:, i : i + ws, j : j + ws], global_mixer(crop))


def test_window_larger_than_map_is_global_attention() -> None:
    local = create_mixer("attention", 16, head_dim=8, window_size=64)
    glob = create_mixer("attention", 16, head_dim=8)
    glob.load_state_dict(local.state_dict())
    x = torch.randn(1, 6, 9, 16)
    torch.testing.assert_close(local(x), glob(x))


@pytest.mark.parametrize(
    ("name", "knobs", "message"),
    [
        ("pooling", {"pool_size": 4}, "pool_size: expected an odd int, found 4"),
        ("sepconv", {"kernel_size": 0}, "kernel_size: expected >= 1, found 0"),
        ("attention", {"window_size": -2}, "window_size: expected >= 1, found -2"),
        ("attention", {"head_dim": "32"}, "head_dim: expected int, found str '32'"),
    ],
)
def test_bad_knob_values_get_specific_errors(name, knobs, message) -> None:
    with pytest.raises(ValueError, match=message):
        create_mixer(name, 16, **knobs)
