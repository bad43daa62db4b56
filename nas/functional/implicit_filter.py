"""Maths of Hyena implicit filters: positional encodings, resampling and decay windows.

An implicit filter is a small MLP evaluated at every tap position of a long kernel. Its inputs
(a learnable positional encoding) and its decay window are defined on a *nominal* tap grid; when
the kernel must follow the actual map size they are resampled so that the filter keeps its shape,
stretched over the new grid, with the centre tap staying the centre tap.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

FAST_DECAY_PCT = 0.3
SLOW_DECAY_PCT = 1.5
DECAY_TARGET = 1e-2


def sincos_embedding_2d(emb_dim: int, height: int, width: int) -> torch.Tensor:
    """Transformer-style sin/cos encoding of a 2D grid, ``(emb_dim, height, width)``.

    The first half of the channels encodes the column, the second half the row, each as
    (sin, cos) pairs at geometrically spaced frequencies (the HyenaPixel filter input).
    """
    if emb_dim % 4 != 0 or emb_dim <= 0:
        raise ValueError(
            f"2D sin/cos encoding needs a positive multiple of 4 channels, got {emb_dim}"
        )
    half = emb_dim // 2
    freqs = torch.exp(torch.arange(0.0, half, 2) * -(math.log(10000.0) / half))
    cols = torch.arange(float(width))[:, None] * freqs
    rows = torch.arange(float(height))[:, None] * freqs
    pe = torch.zeros(emb_dim, height, width)
    pe[0:half:2] = cols.sin().T[:, None, :].expand(-1, height, -1)
    pe[1:half:2] = cols.cos().T[:, None, :].expand(-1, height, -1)
    pe[half::2] = rows.sin().T[:, :, None].expand(-1, -1, width)
    pe[half + 1 :: 2] = rows.cos().T[:, :, None].expand(-1, -1, width)
    return pe


def exp_embedding_1d(emb_dim: int, length: int, causal: bool) -> torch.Tensor:
    """Hyena's 1D filter encoding ``(emb_dim, length)``: a time channel and exponential bands,
    computed as the official Hyena code does (so the initial values are the same floats).

    The time channel runs 0 -> 1 over a causal kernel; for a bidirectional (centred, odd) kernel it
    is symmetric, 1 at offset 0 and 0 at both ends, so the MLP sees ``|offset|``. The remaining
    ``emb_dim - 1`` channels are the real and imaginary parts of ``exp(-i f w)`` (cos, then -sin)
    for ``(emb_dim - 1) // 2`` frequency bands.
    """
    if emb_dim % 2 == 0 or emb_dim < 3:
        raise ValueError(f"1D filter encoding needs an odd emb_dim >= 3, got {emb_dim}")
    if causal:
        t = torch.linspace(0.0, 1.0, length)
    elif length % 2 == 1:
        rising = torch.linspace(0.0, 1.0, length // 2 + 1)
        t = torch.cat([rising[:-1], rising.flip(0)])
    else:
        raise ValueError(f"a centred 1D kernel needs an odd number of taps, got {length}")
    bands = (emb_dim - 1) // 2
    phase = 2 * math.pi * torch.linspace(0, length - 1, length)[:, None] / length
    z = torch.exp(-1j * torch.linspace(1e-4, bands - 1, bands)[None, :] * phase)
    return torch.cat([t[None], z.real.T, z.imag.T])


def resample_centred(grid: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Resize a ``(channels, *taps)`` grid (1D or 2D) to ``size``, keeping the centre aligned.

    ``align_corners=False`` maps tap centres onto tap centres, so an odd grid's middle tap lands
    on the new middle tap; antialiasing keeps large downsampling factors (111 -> 13) from aliasing.
    A grid already at ``size`` is returned as is, except under ``torch.jit.trace``: there the
    (exact, identity) resize is recorded so that the traced model follows other input sizes.
    """
    if not torch.jit.is_tracing() and tuple(grid.shape[1:]) == tuple(size):
        return grid
    if grid.dim() == 2:
        out = F.interpolate(
            grid[None, :, None],
            size=(1, *size),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        return out[0, :, 0]
    out = F.interpolate(grid[None], size=size, mode="bicubic", align_corners=False, antialias=True)
    return out[0]


def centred_offsets(
    size: int, nominal: int, device: torch.device | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Offset of each of ``size`` taps from the centre, in taps of a ``nominal``-tap grid
    (``dtype``: default float dtype unless given, e.g. float64 for a float64 filter).

    These are the positions ``resample_centred`` samples (tap centres mapped onto tap centres);
    the middle tap of an odd kernel is exactly 0 and the offsets are exactly antisymmetric.
    """
    taps = torch.arange(size, device=device, dtype=dtype or torch.get_default_dtype())
    # (i + 1/2 - size/2) * nominal/size, with every division by a size done in ``dtype`` (a traced
    # size is a 0-dim int tensor, and dividing it by a number would round in float32)
    return (2 * taps + 1 - size) * nominal / (2 * size)


def radial_distance(
    size: tuple[int, int],
    nominal: int,
    device: torch.device | None = None,
    resize: str = "stretch",
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Distance of every tap of a ``size`` kernel from its centre, in nominal-grid pixels.

    ``resize="official"`` is the rule of the official HyenaPixel conversion to another kernel
    size (``interpolate_hpx_former_s18_state_dict``): distances on a resized kernel count twice,
    ``2K/K'`` per new tap instead of ``K/K'``, so the window decays twice as steeply; at the stored
    size both rules agree. (Per axis; the official code handles square kernels only.)
    """
    rows, cols = (
        centred_offsets(n, nominal, device, dtype) * _resize_factor(n, nominal, resize)
        for n in size
    )
    return torch.hypot(rows[:, None], cols[None, :])


RESIZE_RULES = ("stretch", "official")


def _resize_factor(size: int, nominal: int, resize: str) -> int | torch.Tensor:
    """1, or for the official rule 2 on a resized axis (without a branch on ``size``, which is a
    traced tensor under ``torch.jit.trace``)."""
    if resize not in RESIZE_RULES:
        raise ValueError(f"resize rule must be one of {RESIZE_RULES}, got {resize!r}")
    return 1 + (size != nominal) if resize == "official" else 1


def offset_distance(
    size: int,
    nominal: int,
    causal: bool,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Normalised lag of every tap of a 1D kernel: on the nominal grid, 0 at offset 0 and 1 at the
    far end(s); other sizes sample it where ``resample_centred`` samples the encoding."""
    offsets = centred_offsets(size, nominal, device, dtype)
    if causal:
        return (offsets + (nominal - 1) / 2) / max(nominal - 1, 1)
    return offsets.abs() / max((nominal - 1) / 2, 1.0)


def initial_decay_rates(channels: int) -> torch.Tensor:
    """Per-channel decay rates spread so that the window falls to 1% between 30% and 150% of the
    unit distance: a mix of short- and long-range channels at initialisation (Hyena)."""
    fast = math.log(DECAY_TARGET) / FAST_DECAY_PCT
    slow = math.log(DECAY_TARGET) / SLOW_DECAY_PCT
    return torch.linspace(slow, fast, channels)


def exponential_decay(
    distance: torch.Tensor, rates: torch.Tensor, shift: torch.Tensor | None = None
) -> torch.Tensor:
    """``exp(-distance * |rate_c|) + shift_c`` per channel: ``(channels, *distance.shape)``;
    no shift is a shift of 0 (the official Hyena's fixed window)."""
    view = (-1,) + (1,) * distance.dim()
    window = torch.exp(-distance * rates.abs().view(view))
    return window if shift is None else window + shift.view(view)
