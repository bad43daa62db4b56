"""Depthwise long convolutions computed by FFT.

A kernel as large as the feature map (or larger: HyenaPixel uses 2H-1, and 191 on 96x96 maps)
costs O(N * K) per output directly but O(N log N) by FFT. Both functions here compute an exact
zero-padded *linear* convolution, never a circular one: the FFT grid is long enough that the
wrapped-around tail of the full convolution cannot reach the part that is kept.

Kernel taps further than ``L - 1`` from the centre (bidirectional) or than ``L - 1`` from the
start (causal) never meet an input sample inside the map, so oversized kernels are cropped to
that reach first; the result is identical and the FFT grid stays at about twice the map.

The FFTs always run in float32 (float64 for float64 inputs) with autocast disabled: bf16 FFTs are
unsupported and half-precision cuFFT only takes power-of-two sizes. The result has ``x``'s dtype.
"""

from __future__ import annotations

import torch

_FFT_RADICES = (2, 3, 5, 7)
_MAX_TRACED_FFT_LEN = 2**24


def _even_smooth_lengths(limit: int) -> torch.Tensor:
    """Every even 7-smooth number up to ``limit``, ascending (a few thousand values)."""
    lengths = [1]
    for p in _FFT_RADICES:
        powers = []
        for n in lengths:
            while n <= limit:
                powers.append(n)
                n *= p
        lengths = powers
    return torch.tensor(sorted(n for n in lengths if n % 2 == 0))


_EVEN_SMOOTH = _even_smooth_lengths(_MAX_TRACED_FFT_LEN)


def fast_fft_len(n: int | torch.Tensor) -> int | torch.Tensor:
    """The smallest even 7-smooth length ``>= n``.

    pocketfft (CPU) and cuFFT have dedicated radix-2/3/5/7 kernels, and an even length lets a real
    FFT run as a half-length complex one. For the HyenaPixel stages (H + K//2 = 111/55/27/13 at
    224 px) this gives 112/56/28/14, the same grids as the official ``max(2H, K)``.

    Under ``torch.jit.trace`` sizes are traced 0-dim tensors: the length is then looked up in a
    table of 7-smooth numbers (up to 2**24) by an op the trace records, so a traced model picks
    the right grid at every input size; a Python loop would freeze the traced example's grid.
    """
    if isinstance(n, torch.Tensor):
        return _EVEN_SMOOTH[torch.searchsorted(_EVEN_SMOOTH, n)]
    if n < 1:
        raise ValueError(f"FFT length must be positive, got {n}")
    m = n + (n % 2)
    while not _is_smooth(m):
        m += 2
    return m


def _is_smooth(n: int) -> bool:
    for p in _FFT_RADICES:
        while n % p == 0:
            n = n // p
    return n == 1


def _min(a: int | torch.Tensor, b: int | torch.Tensor) -> int | torch.Tensor:
    """``min(a, b)`` of sizes without a Python branch, so ``torch.jit.trace`` records it."""
    return b + (a - b) * (a < b)


def centred_min_fft_len(length: int, kernel: int) -> int:
    """Shortest FFT length for which a centred ("same") convolution does not wrap around.

    The crop keeps full-convolution indices ``[K//2, K//2 + L)`` out of ``L + K - 1``; the tail
    beyond aliases onto the kept part unless the length is at least ``L + K//2`` (and the kernel,
    after cropping to its useful reach ``2L - 1``, must fit).
    """
    return length + _min(kernel, 2 * length - 1) // 2


def causal_min_fft_len(length: int, kernel: int) -> int:
    """Shortest FFT length for which a causal convolution does not wrap around: ``L + K - 1``."""
    return length + _min(kernel, length) - 1


def fftconv2d(
    x: torch.Tensor, h: torch.Tensor, fft_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Depthwise zero-padded "same" 2D convolution of ``x`` (B, C, H, W) with ``h`` (C, Kh, Kw).

    Kernel sizes must be odd (the centre tap is offset 0) and may exceed the map. Equals
    ``F.conv2d(x, h.flip(-2, -1)[:, None], padding=(Kh // 2, Kw // 2), groups=C)``.
    ``fft_size`` overrides the grid, default ``fast_fft_len`` of the minimum per axis; a grid
    below ``centred_min_fft_len`` is accepted but wraps around (a circular convolution).
    """
    if x.dim() != 4 or h.dim() != 3:
        raise ValueError(
            f"fftconv2d expects x (B, C, H, W) and h (C, Kh, Kw), got {tuple(x.shape)} and "
            f"{tuple(h.shape)}"
        )
    height, width = x.shape[-2:]
    h = _crop_centred(_crop_centred(h, -2, height), -1, width)
    grid = _grid(fft_size, (height, width), h.shape[-2:], causal=False)
    return _fftconv(x, h, grid, causal=False, wraps=fft_size is not None)


def fftconv1d(
    x: torch.Tensor, h: torch.Tensor, causal: bool, fft_size: int | None = None
) -> torch.Tensor:
    """Depthwise 1D convolution of ``x`` (B, C, L) with ``h`` (C, K), output length ``L``.

    Bidirectional (``causal=False``): ``K`` is odd and centred, offset 0 at index ``K // 2`` (the
    Hyena filter has ``K = 2L - 1``); the output is the middle ``[K//2, K//2 + L)`` of the full
    linear convolution. Causal: ``h[j]`` is the weight of lag ``j`` (Hyena has ``K = L``), the
    output is the first ``L`` samples, so output ``t`` depends on inputs ``<= t`` only.
    ``fft_size`` as in ``fftconv2d``.
    """
    if x.dim() != 3 or h.dim() != 2:
        raise ValueError(
            f"fftconv1d expects x (B, C, L) and h (C, K), got {tuple(x.shape)} and {tuple(h.shape)}"
        )
    length = x.shape[-1]
    h = h.narrow(-1, 0, _min(h.shape[-1], length)) if causal else _crop_centred(h, -1, length)
    size = None if fft_size is None else (fft_size,)
    grid = _grid(size, (length,), h.shape[-1:], causal=causal)
    return _fftconv(x, h, grid, causal=causal, wraps=fft_size is not None)


def _crop_centred(h: torch.Tensor, dim: int, length: int) -> torch.Tensor:
    """Keep the taps of a centred odd kernel that can reach a map of ``length`` (offsets < L)."""
    k = h.shape[dim]
    if isinstance(k, int) and k % 2 == 0:
        raise ValueError(f"centred kernels need odd sizes, got {k} along dim {dim}")
    kept = _min(k, 2 * length - 1)
    return h.narrow(dim, (k - kept) // 2, kept)


def _grid(
    fft_size: tuple[int, ...] | None,
    lengths: tuple[int, ...],
    kernels: tuple[int, ...],
    causal: bool,
) -> tuple[int, ...]:
    """The FFT grid: the given one (checked to hold the kernel) or the fast wrap-free default."""
    if fft_size is None:
        min_len = causal_min_fft_len if causal else centred_min_fft_len
        return tuple(fast_fft_len(min_len(n, k)) for n, k in zip(lengths, kernels, strict=True))
    if len(fft_size) != len(lengths) or any(
        n < max(k, m) for n, k, m in zip(fft_size, kernels, lengths, strict=True)
    ):
        raise ValueError(
            f"fft_size {tuple(fft_size)} must hold the map {tuple(lengths)} and the (cropped) "
            f"kernel {tuple(kernels)} on every axis"
        )
    return tuple(fft_size)


def _fftconv(
    x: torch.Tensor, h: torch.Tensor, grid: tuple[int, ...], causal: bool, wraps: bool
) -> torch.Tensor:
    """Linear convolution over the last ``len(grid)`` dims by rfftn on ``grid``, then the crop
    (``wraps``: a caller's grid, which may be below the wrap-free minimum)."""
    if not torch.jit.is_tracing() and h.shape[0] != x.shape[1]:
        raise ValueError(f"kernel has {h.shape[0]} channels, input has {x.shape[1]}")
    dims = tuple(range(-len(grid), 0))
    dtype = torch.promote_types(torch.promote_types(x.dtype, h.dtype), torch.float32)
    with torch.autocast(x.device.type, enabled=False):
        x_f = torch.fft.rfftn(x.to(dtype), s=grid, dim=dims)
        h_f = torch.fft.rfftn(h.to(dtype), s=grid, dim=dims)
        y = torch.fft.irfftn(x_f * h_f, s=grid, dim=dims)
    for dim, n, k in zip(dims, x.shape[-len(grid) :], h.shape[1:], strict=True):
        start = 0 if causal else k // 2
        if wraps:  # a grid below the minimum may wrap the crop around too
            y, start = y.roll(-start, dim), 0
        y = y.narrow(dim, start, n)
    return y.to(x.dtype)
