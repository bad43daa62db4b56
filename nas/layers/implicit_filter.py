"""Hyena implicit long filters: an MLP over a learnable positional encoding, times a decay window.

A long kernel (up to the whole map, or 2L-1 taps of a flattened map) has too many taps to learn
directly and could not follow the map size. Hyena instead evaluates a small MLP with periodic
activations at every tap position, so the parameter count is set by the MLP and the encoding,
and the filter can be generated for any kernel size. The exponential window biases each channel
towards a different range at initialisation; its rates are trained (HyenaPixel) or fixed buffers
(the official bidirectional Hyena, whose window has no shift). The filter does not depend on the
batch: it is built once per forward with autocast off (float32 for a float32 module) and kept
between forwards in eager inference (eval mode, no grad).

Initialisation (``init_weights``) is the one the official models train from: their MetaFormer
gives every Linear/Conv2d, the filter MLP included, truncated-normal weights (std 0.02) and zero
biases; the Sin frequencies start at 1, the encodings at their sin/cos values and the decay rates
spread between the 30% and 150% ranges.

For ``torch.fx`` the filter generation is one leaf call (:func:`generate_filter`, registered with
``torch.fx.wrap``): its size logic runs on the actual sizes when the traced graph runs.
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
from nas.layers.own_init import OwnInit

MLP_INIT_STD = 0.02


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


def init_filter_mlp(mlp: nn.Sequential) -> None:
    """The official init of a filter MLP: truncated normal (std 0.02) weights, zero biases, Sin
    frequencies 1."""
    for layer in mlp:
        if isinstance(layer, nn.Linear):
            nn.init.trunc_normal_(layer.weight, std=MLP_INIT_STD)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, Sin):
            nn.init.ones_(layer.freq)


def generate_filter(
    module: _ImplicitFilter, size: tuple[int, ...], encoding: torch.Tensor
) -> torch.Tensor:
    """``module``'s kernels for ``size`` taps, a ``torch.fx`` leaf. ``encoding`` (the module's
    ``pos_emb``) is passed so that fx records the call even for a static size (a fixed kernel):
    fx makes a node only when an argument is traced."""
    return module._cached(size, lambda: module._build(size))


torch.fx.wrap("generate_filter")


class _ImplicitFilter(nn.Module, OwnInit):
    """Decay window parameters and the inference cache shared by the 1D and 2D filters.

    The cache key holds the kernel size, device and each parameter's storage and version counter,
    so ``train()``, resizing, moving the module, ``load_state_dict`` or any in-place update all
    invalidate it. With grad enabled the filter is rebuilt so gradients reach its parameters;
    under ``torch.jit.trace`` or ``torch.compile`` it is always rebuilt, so the graph computes it
    from the parameters instead of freezing a cached tensor in.
    """

    def __init__(self, channels: int, learnable_decay: bool):
        super().__init__()
        self._cache: tuple[tuple, torch.Tensor] | None = None
        rate = torch.empty(channels)
        if learnable_decay:
            self.decay_rate = nn.Parameter(rate)
            self.decay_shift = nn.Parameter(torch.empty(channels))
        else:
            self.register_buffer("decay_rate", rate)
            self.register_parameter("decay_shift", None)

    def init_decay(self, rates: torch.Tensor) -> None:
        """Decay rates to ``rates``, shifts (when learnable) to 0."""
        with torch.no_grad():
            self.decay_rate.copy_(rates)
            if self.decay_shift is not None:
                self.decay_shift.zero_()

    def train(self, mode: bool = True) -> _ImplicitFilter:
        self._cache = None
        return super().train(mode)

    def _cached(self, size: tuple[int, ...], build: Callable[[], torch.Tensor]) -> torch.Tensor:
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return build()
        if self.training or torch.is_grad_enabled():
            self._cache = None
            return build()
        tensors = [*self.parameters(), *self.buffers()]
        key = (size, tuple((t.data_ptr(), t._version, t.dtype) for t in tensors))
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, build())
        return self._cache[1]

    def _build(self, size: tuple[int, ...]) -> torch.Tensor:
        raise NotImplementedError


class ImplicitFilter2d(_ImplicitFilter):
    """HyenaPixel's 2D implicit filter: ``channels`` kernels over a grid of taps.

    The encoding (``emb_dim`` sin/cos channels, learnable) is stored at ``nominal_size`` x
    ``nominal_size`` taps and resampled when another kernel size is asked for; the decay uses the
    distance from the centre tap in nominal pixels (``resize="official"``: the official
    conversion's steeper rule, see :func:`radial_distance`), with rates initialised divided by the
    nominal size as in the official HyenaPixel code.
    """

    def __init__(
        self,
        channels: int,
        *,
        emb_dim: int,
        hidden: int,
        nominal_size: int,
        inner_layers: int = 1,
        learnable_decay: bool = True,
        resize: str = "stretch",
    ):
        super().__init__(channels, learnable_decay)
        self.nominal_size = nominal_size
        self.resize = resize
        self.pos_emb = nn.Parameter(torch.empty(emb_dim, nominal_size, nominal_size))
        self.mlp = filter_mlp(emb_dim, hidden, channels, inner_layers)
        self.init_weights()

    def init_weights(self) -> None:
        with torch.no_grad():
            emb_dim, size, _ = self.pos_emb.shape
            self.pos_emb.copy_(sincos_embedding_2d(emb_dim, size, size))
        init_filter_mlp(self.mlp)
        self.init_decay(initial_decay_rates(self.decay_rate.numel()) / self.nominal_size)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """The kernels ``(channels, size[0], size[1])``, in the parameters' dtype."""
        return generate_filter(self, tuple(size), self.pos_emb)

    def _build(self, size: tuple[int, int]) -> torch.Tensor:
        device = self.pos_emb.device
        with torch.autocast(device.type, enabled=False):
            z = resample_centred(self.pos_emb, size)
            h = self.mlp(z.permute(1, 2, 0)).permute(2, 0, 1)
            distance = radial_distance(size, self.nominal_size, device, self.resize, h.dtype)
            return h * exponential_decay(distance, self.decay_rate, self.decay_shift)


class ImplicitFilter1d(_ImplicitFilter):
    """Hyena's 1D implicit filter: ``channels`` kernels over a sequence of taps.

    Causal kernels have ``L`` taps (lags 0 .. L-1); bidirectional ones ``2L - 1`` taps centred on
    offset 0, with a symmetric time channel and a decay that peaks at offset 0. The encoding is
    stored for ``nominal_length`` and resampled for other sequence lengths (the official code
    fixes the length at its training size).
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
        learnable_decay: bool = False,
    ):
        super().__init__(channels, learnable_decay)
        self.causal = causal
        self.nominal_taps = self.num_taps(nominal_length)
        self.pos_emb = nn.Parameter(torch.empty(emb_dim, self.nominal_taps))
        self.mlp = filter_mlp(emb_dim, hidden, channels, inner_layers)
        self.init_weights()

    def init_weights(self) -> None:
        with torch.no_grad():
            self.pos_emb.copy_(
                exp_embedding_1d(self.pos_emb.shape[0], self.nominal_taps, self.causal)
            )
        init_filter_mlp(self.mlp)
        self.init_decay(initial_decay_rates(self.decay_rate.numel()))

    def num_taps(self, length: int) -> int:
        """Kernel taps for a sequence of ``length``: ``L`` causal, ``2L - 1`` bidirectional."""
        return length if self.causal else 2 * length - 1

    def forward(self, length: int) -> torch.Tensor:
        """The kernels ``(channels, num_taps(length))`` for a sequence of ``length``."""
        return generate_filter(self, (self.num_taps(length),), self.pos_emb)

    def _build(self, size: tuple[int]) -> torch.Tensor:
        (taps,) = size
        device = self.pos_emb.device
        with torch.autocast(device.type, enabled=False):
            z = resample_centred(self.pos_emb, size)
            h = self.mlp(z.T).T
            distance = offset_distance(taps, self.nominal_taps, self.causal, device, h.dtype)
            return h * exponential_decay(distance, self.decay_rate, self.decay_shift)
