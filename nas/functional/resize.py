"""Resizing weights that live on a spatial grid (global kernels, position embeddings, filters).

Global mixers store their spatial weights at a nominal feature-map size (``grid_size``) and resize
them at run time to the actual map, so one model runs at any input resolution. Interpolation
uses ``align_corners=True`` like the reference implementations (Fast-ParC, HorNet, DFFormer), so
the end points of a kernel or filter are kept exactly.

Weights at their stored size are returned as they are, except under ``torch.jit.trace``: the
shortcut is a Python branch on the map size, which the trace would freeze, so a model traced at
its nominal resolution would silently run the unresized weights at every other size. There the
(exact: ``align_corners=True`` at the same size is the identity) interpolation is recorded, as
:func:`nas.functional.implicit_filter.resample_centred` does.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

DEFAULT_GRID_SIZE = 14
"""Nominal map side when a mixer is built without ``grid_size``: stage 3 of a 224 px MetaFormer."""


def grid_or_default(grid_size: int | None) -> int:
    """``grid_size``, or :data:`DEFAULT_GRID_SIZE` when it is ``None``."""
    return DEFAULT_GRID_SIZE if grid_size is None else grid_size


def resize_line(weight: Tensor, length: int) -> Tensor:
    """Linearly resize ``weight`` of shape ``(C, L)`` to ``(C, length)``."""
    if not torch.jit.is_tracing() and weight.shape[-1] == length:
        return weight
    return F.interpolate(weight.unsqueeze(0), size=length, mode="linear", align_corners=True)[0]


def resize_grid(weight: Tensor, size: tuple[int, int], mode: str = "bicubic") -> Tensor:
    """Resize ``weight`` of shape ``(h, w, *rest)`` to ``(*size, *rest)`` over its first two axes.

    ``mode`` is ``"bilinear"`` or ``"bicubic"``. For a complex filter pass its real view; the
    real and imaginary parts are then interpolated independently, as in GFNet/HorNet/DFFormer.
    """
    h, w, *rest = weight.shape
    if not torch.jit.is_tracing() and (h, w) == tuple(size):
        return weight
    flat = weight.reshape(h, w, -1).permute(2, 0, 1).unsqueeze(0)
    flat = F.interpolate(flat, size=size, mode=mode, align_corners=True)
    return flat[0].permute(1, 2, 0).reshape(*size, *rest)
