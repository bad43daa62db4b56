"""FFT convolutions against direct linear convolutions (float64 oracles)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from nas.functional.fftconv import (
    causal_min_fft_len,
    centred_min_fft_len,
    fast_fft_len,
    fftconv1d,
    fftconv2d,
)


def _direct2d(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    kh, kw = h.shape[-2:]
    return F.conv2d(x, h.flip(-2, -1)[:, None], padding=(kh // 2, kw // 2), groups=x.shape[1])


@pytest.mark.parametrize(
    ("height", "width", "kh", "kw"),
    [
        (5, 7, 3, 3),
        (6, 9, 5, 1),
        (8, 5, 15, 9),  # K = 2H - 1 on both axes
        (4, 6, 11, 7),  # K > H
        (3, 5, 13, 21),  # K well beyond the 2H - 1 reach
        (14, 14, 191, 191),  # the 384 px stage-1 kernel on a stage-3 map
    ],
)
def test_fftconv2d_equals_zero_padded_conv(height: int, width: int, kh: int, kw: int) -> None:
    x = torch.randn(2, 3, height, width, dtype=torch.float64)
    h = torch.randn(3, kh, kw, dtype=torch.float64)
    torch.testing.assert_close(fftconv2d(x, h), _direct2d(x, h), rtol=1e-10, atol=1e-10)


def test_fftconv2d_grid_one_below_minimum_wraps_around() -> None:
    height, width, k = 7, 10, 11  # K > H; a grid smaller than K could not even hold the kernel
    x = torch.randn(1, 2, height, width, dtype=torch.float64)
    h = torch.randn(2, k, k, dtype=torch.float64)
    expected = _direct2d(x, h)
    n_h, n_w = centred_min_fft_len(height, k), centred_min_fft_len(width, k)
    assert (n_h, n_w) == (height + k // 2, width + k // 2)
    torch.testing.assert_close(fftconv2d(x, h, fft_size=(n_h, n_w)), expected)
    assert not torch.allclose(fftconv2d(x, h, fft_size=(n_h - 1, n_w)), expected)
    assert not torch.allclose(fftconv2d(x, h, fft_size=(n_h, n_w - 1)), expected)


@pytest.mark.parametrize(("length", "k"), [(9, 17), (9, 5), (6, 1), (5, 31)])
def test_fftconv1d_bidirectional_is_middle_of_full_convolution(length: int, k: int) -> None:
    x = torch.randn(2, 3, length, dtype=torch.float64)
    h = torch.randn(3, k, dtype=torch.float64)
    expected = np.stack(
        [
            [np.convolve(x[b, c].numpy(), h[c].numpy())[k // 2 : k // 2 + length] for c in range(3)]
            for b in range(2)
        ]
    )
    torch.testing.assert_close(fftconv1d(x, h, causal=False), torch.from_numpy(expected))


def test_fftconv1d_bidirectional_hyena_filter_crops_l_minus_1() -> None:
    length = 12
    x = torch.randn(1, 1, length, dtype=torch.float64)
    h = torch.randn(1, 2 * length - 1, dtype=torch.float64)
    full = np.convolve(x[0, 0].numpy(), h[0].numpy())
    torch.testing.assert_close(
        fftconv1d(x, h, causal=False)[0, 0], torch.from_numpy(full[length - 1 : 2 * length - 1])
    )
    assert centred_min_fft_len(length, 2 * length - 1) == 2 * length - 1
    with pytest.raises(ValueError, match="fft_size"):
        fftconv1d(x, h, causal=False, fft_size=2 * length - 2)


def test_fftconv1d_grid_one_below_minimum_wraps_around() -> None:
    length, k = 12, 15
    x = torch.randn(1, 2, length, dtype=torch.float64)
    h = torch.randn(2, k, dtype=torch.float64)
    n = centred_min_fft_len(length, k)
    expected = fftconv1d(x, h, causal=False)
    torch.testing.assert_close(fftconv1d(x, h, causal=False, fft_size=n), expected)
    assert not torch.allclose(fftconv1d(x, h, causal=False, fft_size=n - 1), expected)


@pytest.mark.parametrize(("length", "k"), [(10, 10), (10, 4), (7, 20)])
def test_fftconv1d_causal_matches_direct_and_is_causal(length: int, k: int) -> None:
    x = torch.randn(2, 3, length, dtype=torch.float64)
    h = torch.randn(3, k, dtype=torch.float64)
    y = fftconv1d(x, h, causal=True)
    expected = np.stack(
        [[np.convolve(x[b, c].numpy(), h[c].numpy())[:length] for c in range(3)] for b in range(2)]
    )
    torch.testing.assert_close(y, torch.from_numpy(expected))
    for t in range(1, length):
        x2 = x.clone()
        x2[..., t:] = torch.randn_like(x2[..., t:])
        y2 = fftconv1d(x2, h, causal=True)
        torch.testing.assert_close(y2[..., :t], y[..., :t], rtol=0, atol=1e-12)
        assert not torch.allclose(y2[..., t:], y[..., t:])
    n = causal_min_fft_len(length, k)
    assert not torch.allclose(fftconv1d(x, h, causal=True, fft_size=n - 1), y)


def test_fast_fft_len_is_smallest_even_7_smooth() -> None:
    def smooth(m: int) -> bool:
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        return m == 1

    for n in range(1, 400):
        m = fast_fft_len(n)
        assert m >= n and m % 2 == 0 and smooth(m)
        assert not any(j % 2 == 0 and smooth(j) for j in range(n, m))
    # The HyenaPixel stages at 224 px get the official max(2H, K) grids.
    assert [fast_fft_len(h + (2 * h - 1) // 2) for h in (56, 28, 14, 7)] == [112, 56, 28, 14]


def test_traced_sizes_look_up_the_same_fast_lengths() -> None:
    """Under jit.trace sizes are 0-dim tensors: the table lookup must pick the loop's length."""
    n = torch.arange(1, 20_000)
    assert fast_fft_len(n).tolist() == [fast_fft_len(int(i)) for i in n]


@pytest.mark.parametrize("kind", ["2d", "centred", "causal"])
def test_jit_traced_fftconv_follows_the_input_size(kind: str) -> None:
    """Traced at one map size, the graph computes the grid and crops for the size it is given:
    smaller than the kernel's reach, larger, and non-smooth lengths."""
    if kind == "2d":

        def conv(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            return fftconv2d(x, h)

        def direct(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            return _direct2d(x, h)

        shapes = [((6, 7), (13, 9)), ((3, 2), (13, 9)), ((17, 23), (13, 9)), ((11, 4), (35, 3))]
    else:
        causal = kind == "causal"

        def conv(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            return fftconv1d(x, h, causal=causal)

        def direct(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
            k = h.shape[-1]
            w = h.flip(-1)[:, None]
            if causal:
                return F.conv1d(F.pad(x, (k - 1, 0)), w, groups=x.shape[1])
            return F.conv1d(x, w, padding=k // 2, groups=x.shape[1])

        shapes = [((9,), (17,)), ((4,), (17,)), ((97,), (17,)), ((13,), (41,))]
    traced = None
    for size, k in shapes:
        x = torch.randn(2, 3, *size, dtype=torch.float64)
        h = torch.randn(3, *k, dtype=torch.float64)
        if traced is None:
            traced = torch.jit.trace(conv, (x, h))
        torch.testing.assert_close(traced(x, h), direct(x, h), rtol=1e-10, atol=1e-10)


def test_low_precision_inputs_are_computed_in_float32() -> None:
    x = torch.randn(1, 2, 6, 5)
    h = torch.randn(2, 11, 9)
    expected = fftconv2d(x, h)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fftconv2d(x.bfloat16(), h)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), expected, rtol=2e-2, atol=5e-2)


def test_gradients_match_direct_convolution() -> None:
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 9, 11, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fftconv2d, (x, h))
    x1 = torch.randn(1, 2, 7, dtype=torch.float64, requires_grad=True)
    h1 = torch.randn(2, 13, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: fftconv1d(a, b, causal=False), (x1, h1))


def test_invalid_arguments() -> None:
    x = torch.randn(1, 2, 5, 5)
    with pytest.raises(ValueError, match="odd"):
        fftconv2d(x, torch.randn(2, 4, 3))
    with pytest.raises(ValueError, match="channels"):
        fftconv2d(x, torch.randn(3, 3, 3))
    with pytest.raises(ValueError, match="fft_size"):
        fftconv2d(x, torch.randn(2, 9, 9), fft_size=(8, 16))
    with pytest.raises(ValueError, match="expects"):
        fftconv1d(x, torch.randn(2, 3), causal=True)
