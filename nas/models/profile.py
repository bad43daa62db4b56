"""Parameters and MACs of an architecture, counted by running it under torch's FlopCounterMode.

torch counts matmuls, convolutions and attention but treats FFTs and complex products as free,
which would make every spectral mixer look costless. We add the textbook formulas: a complex FFT
of n points costs 5 n log2 n real FLOPs, a real one half that, a complex product 6 FLOPs; and
torch's formula for attention's CPU kernel, which torch 2.14's counter leaves out. MACs are
FLOPs / 2, the convention behind the published MetaFormer numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from nas.arch.presets import resolve_spec
from nas.arch.spec import ArchSpec

aten = torch.ops.aten


def _fft_flops(signal_shape: torch.Size, dims: list[int], per_point: float) -> int:
    n = math.prod(signal_shape[d] for d in dims)
    if n <= 1:
        return 0
    return int(per_point * math.prod(signal_shape) * math.log2(n))


def _r2c_flops(x_shape, dim, normalization, onesided, out_shape=None, **_: Any) -> int:
    return _fft_flops(x_shape, dim, 2.5)


def _c2r_flops(x_shape, dim, normalization, last_dim_size, out_shape=None, **_: Any) -> int:
    return _fft_flops(out_shape, dim, 2.5)


def _c2c_flops(x_shape, dim, normalization, forward, out_shape=None, **_: Any) -> int:
    return _fft_flops(x_shape, dim, 5.0)


def _complex_mul_flops(*args: Any, out_val: Any = None, **_: Any) -> int:
    """6 FLOPs per element of a complex product; real elementwise products stay uncounted."""
    if isinstance(out_val, torch.Tensor) and out_val.is_complex():
        return 6 * out_val.numel()
    return 0


_complex_mul_flops._get_raw = True  # type: ignore[attr-defined]


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *_: Any, **__: Any) -> int:
    """The CPU flash-attention kernel, which torch's counter has no formula for: the same
    QK^T and AV products as its CUDA twins."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


COST_FORMULAS = {
    aten._fft_r2c: _r2c_flops,
    aten._fft_c2r: _c2r_flops,
    aten._fft_c2c: _c2c_flops,
    aten.mul: _complex_mul_flops,
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops,
}


@dataclass(frozen=True)
class Profile:
    """Cost of one architecture at one input resolution (batch 1, classifier included)."""

    params: int
    macs: int
    resolution: tuple[int, int]
    macs_by_op: dict[str, int] = field(default_factory=dict)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def mparams(self) -> float:
        return self.params / 1e6


def profile(
    spec: ArchSpec | str | dict,
    resolution: int | tuple[int, int] | None = None,
    num_classes: int = 1000,
) -> Profile:
    """Count parameters and MACs of ``spec`` at ``resolution`` (default: the spec's image size)."""
    from nas.models.metaformer import MetaFormer

    spec = resolve_spec(spec)
    side = resolution if resolution is not None else spec.image_size
    h, w = (side, side) if isinstance(side, int) else side
    model = MetaFormer(spec, num_classes=num_classes).eval()
    params = sum(p.numel() for p in model.parameters())
    # Frozen parameters rather than no_grad(): the counter's module tracker cannot hook tensors
    # that require grad but were produced under no_grad (e.g. cached implicit filters).
    model.requires_grad_(False)
    counter = FlopCounterMode(display=False, custom_mapping=COST_FORMULAS)
    with counter:
        model(torch.zeros(1, spec.in_chans, h, w))
    by_op = {str(op): int(f) // 2 for op, f in counter.get_flop_counts()["Global"].items() if f}
    return Profile(params, counter.get_total_flops() // 2, (h, w), by_op)
