"""FFT-based global filtering and long convolutions on channels-last maps.

All transforms run with autocast disabled in float32 (float64 stays float64): bf16 rfft is
unsupported and half-precision FFTs lose too much accuracy over a whole feature map. Results are
cast back to the input's dtype so callers keep their autocast behaviour.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _real_dtype(*tensors: Tensor) -> torch.dtype:
    """The real dtype the FFTs run in: float32, or float64 if any input is float64."""
    dtype = torch.float32
    for t in tensors:
        real = t.real.dtype if t.is_complex() else t.dtype
        dtype = torch.promote_types(dtype, real)
    return dtype


def _complex_dtype(real: torch.dtype) -> torch.dtype:
    return torch.complex128 if real == torch.float64 else torch.complex64


def spectral_filter2d(x: Tensor, weight: Tensor, dim: tuple[int, int] = (1, 2)) -> Tensor:
    """``irfft2(rfft2(x) * weight)`` over ``dim``, orthonormal, i.e. a circular 2-D convolution.

    ``weight`` is complex and broadcasts against the half spectrum of ``x``, whose ``dim`` axes
    have sizes ``(H, W // 2 + 1)``; a weight of all ones is the identity.
    """
    size = (x.shape[dim[0]], x.shape[dim[1]])
    real = _real_dtype(x, weight)
    with torch.autocast(x.device.type, enabled=False):
        spectrum = torch.fft.rfft2(x.to(real), dim=dim, norm="ortho")
        spectrum = spectrum * weight.to(_complex_dtype(real))
        y = torch.fft.irfft2(spectrum, s=size, dim=dim, norm="ortho")
    return y.to(x.dtype)


def circular_correlate(x: Tensor, kernel: Tensor, dim: int) -> Tensor:
    """Circular cross-correlation ``y[i] = sum_k kernel[k] * x[(i + k) mod n]`` along ``dim``.

    Fast-ParC's form: ``irfft(rfft(x) * conj(rfft(kernel)))``, O(n log n) instead of the O(n^2)
    valid convolution over ``cat(x, x[:-1])``. ``kernel`` has length ``n = x.shape[dim]`` along
    ``dim`` and broadcasts against ``x`` elsewhere (a per-channel kernel is depthwise).
    """
    n = x.shape[dim]
    if kernel.shape[dim] != n:
        raise ValueError(f"kernel length {kernel.shape[dim]} along dim {dim} must equal {n}")
    real = _real_dtype(x, kernel)
    with torch.autocast(x.device.type, enabled=False):
        x_f = torch.fft.rfft(x.to(real), dim=dim)
        k_f = torch.fft.rfft(kernel.to(real), dim=dim)
        y = torch.fft.irfft(x_f * k_f.conj(), n=n, dim=dim)
    return y.to(x.dtype)


def padded_correlate(x: Tensor, kernel: Tensor, dim: int) -> Tensor:
    """Zero-padded "same" cross-correlation along ``dim`` with an odd, centred kernel, by FFT.

    Equals a convolution layer with padding ``K // 2`` (no wrap-around): ParCNetV2's oversized
    kernels (``K = 2n - 1``) see every position from every output without circular artefacts.
    The FFT length ``max(K, n + K // 2)`` is the shortest one that does not wrap.
    """
    n, k = x.shape[dim], kernel.shape[dim]
    if k % 2 == 0:
        raise ValueError(f"kernel length along dim {dim} must be odd, found {k}")
    half = k // 2
    fft_len = max(k, n + half)
    # Lay the centred kernel out circularly: offsets 0..half first, -half..-1 at the end.
    gap = list(kernel.shape)
    gap[dim] = fft_len - k
    circular = torch.cat(
        [kernel.narrow(dim, half, k - half), kernel.new_zeros(gap), kernel.narrow(dim, 0, half)],
        dim=dim,
    )
    real = _real_dtype(x, kernel)
    with torch.autocast(x.device.type, enabled=False):
        x_f = torch.fft.rfft(x.to(real), n=fft_len, dim=dim)
        k_f = torch.fft.rfft(circular.to(real), dim=dim)
        y = torch.fft.irfft(x_f * k_f.conj(), n=fft_len, dim=dim)
    return y.narrow(dim, 0, n).to(x.dtype)
