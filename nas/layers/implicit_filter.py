"""Hyena implicit long filters: an MLP over a learnable positional encoding, times a decay window.

A long kernel (up to the whole map, or 2L-1 taps of a flattened map) has too many taps to learn
directly and could not follow the map size. Hyena instead evaluates a small MLP with periodic
activations at every tap position, so the parameter count is set by the MLP and the encoding,
and the filter can be generated for any kernel size. The exponential window biases each channel
towards a different range at initialisation. The filter does not depend on the batch: it is built
once per forward with autocast off (float32 for a float32 module) and kept between forwards in
inference (eval mode, no grad).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nas.functional.implicit_filter import (
    exp_embedding_1d,
    exponential_decay,
    initial_decay_rates,
    offset_distance,
    radial_distance,
    resample_centred,
    sincos_embedding_2d,
)


class Sin(nn.Module):
    """``sin(freq_c * x)`` over the last dim with a learnable frequency per channel: periodic
    activations let a small MLP represent the high-frequency content of long filters."""

    def __init__(self, dim: int, freq: float = 1.0):
        super().__init__()
        self.freq = nn.Parameter(torch.full((dim,), freq))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


def filter_mlp(emb_dim: int, hidden: int, channels: int, inner_layers: int) -> nn.Sequential:
    """Linear(E->F), Sin, ``inner_layers`` x [Linear(F->F), Sin], Linear(F->channels, no bias)."""
    layers: list[nn.Module] = [nn.Linear(emb_dim, hidden), Sin(hidden)]
    for _ in range(inner_layers):
        layers += [nn.Linear(hidden, hidden), Sin(hidden)]
    layers.append(nn.Linear(hidden, channels, bias=False))
    return nn.Sequential(*layers)


class _InferenceCached(nn.Module):
    """Keeps the last generated filter while in inference (eval mode and grad disabled).

    The key holds the kernel size, device and each parameter's storage and version counter, so
    ``train()``, resizing, moving the module, ``load_state_dict`` or any in-place update all
    invalidate it. With grad enabled the filter is rebuilt so gradients reach its parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cache: tuple[tuple, torch.Tensor] | None = None

    def train(self, mode: bool = True) -> _InferenceCached:
        self._cache = None
        return super().train(mode)

    def _cached(self, size: tuple[int, ...], build: Callable[[], torch.Tensor]) -> torch.Tensor:
        if self.training or torch.is_grad_enabled():
            self._cache = None
            return build()
        key = (size, tuple((p.data_ptr(), p._version, p.dtype) for p in self.parameters()))
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, build())
        return self._cache[1]


class ImplicitFilter2d(_InferenceCached):
    """HyenaPixel's 2D implicit filter: ``channels`` kernels over a grid of taps.

    The encoding (``emb_dim`` sin/cos channels, learnable) is stored at ``nominal_size`` x
    ``nominal_size`` taps and resampled when another kernel size is asked for; the decay uses the
    distance from the centre tap in nominal pixels, with rates initialised divided by the nominal
    size as in the official HyenaPixel code.
    """

    def __init__(
        self, channels: int, *, emb_dim: int, hidden: int, nominal_size: int, inner_layers: int = 1
    ):
        super().__init__()
        self.nominal_size = nominal_size
        self.pos_emb = nn.Parameter(sincos_embedding_2d(emb_dim, nominal_size, nominal_size))
        self.mlp = filter_mlp(emb_dim, hidden, channels, inner_layers)
        self.decay_rate = nn.Parameter(initial_decay_rates(channels) / nominal_size)
        self.decay_shift = nn.Parameter(torch.zeros(channels))

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """The kernels ``(channels, size[0], size[1])``, in the parameters' dtype."""
        return self._cached(tuple(size), lambda: self._build(tuple(size)))

    def _build(self, size: tuple[int, int]) -> torch.Tensor:
        device = self.pos_emb.device
        with torch.autocast(device.type, enabled=False):
            z = resample_centred(self.pos_emb, size)
            h = self.mlp(z.permute(1, 2, 0)).permute(2, 0, 1)
            distance = radial_distance(size, self.nominal_size, device)
            return h * exponential_decay(distance, self.decay_rate, self.decay_shift)


class ImplicitFilter1d(_InferenceCached):
    """Hyena's 1D implicit filter: ``channels`` kernels over a sequence of taps.

    Causal kernels have ``L`` taps (lags 0 .. L-1); bidirectional ones ``2L - 1`` taps centred on
    offset 0, with a symmetric time channel and a decay that peaks at offset 0. The encoding is
    stored for ``nominal_length`` and resampled for other sequence lengths.
    """

    def __init__(
        self,
        channels: int,
        *,
        emb_dim: int,
        hidden: int,
        nominal_length: int,
        causal: bool,
        inner_layers: int = 2,
    ):
        super().__init__()
        self.causal = causal
        self.nominal_taps = self.num_taps(nominal_length)
        self.pos_emb = nn.Parameter(exp_embedding_1d(emb_dim, self.nominal_taps, causal))
        self.mlp = filter_mlp(emb_dim, hidden, channels, inner_layers)
        self.decay_rate = nn.Parameter(initial_decay_rates(channels))
        self.decay_shift = nn.Parameter(torch.zeros(channels))

    def num_taps(self, length: int) -> int:
        """Kernel taps for a sequence of ``length``: ``L`` causal, ``2L - 1`` bidirectional."""
        return length if self.causal else 2 * length - 1

    def forward(self, length: int) -> torch.Tensor:
        """The kernels ``(channels, num_taps(length))`` for a sequence of ``length``."""
        taps = self.num_taps(length)
        return self._cached((taps,), lambda: self._build(taps))

    def _build(self, taps: int) -> torch.Tensor:
        device = self.pos_emb.device
        with torch.autocast(device.type, enabled=False):
            z = resample_centred(self.pos_emb, (taps,))
            h = self.mlp(z.T).T
            distance = offset_distance(taps, self.nominal_taps, self.causal, device)
            return h * exponential_decay(distance, self.decay_rate, self.decay_shift)
