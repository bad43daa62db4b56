"""ParC / Fast-ParC position-aware global circular convolution, and ParCNetV2's oversized
convolution mixer."""

from dataclasses import dataclass
from typing import Literal

from nas.mixers.registry import MixerKnobs, knob, register_mixer
from nas.typed_config import ConfigError


@register_mixer("parc", module="nas.mixers.parc:ParC")
@dataclass(frozen=True)
class ParCKnobs(MixerKnobs):
    """variant: ``"circular"`` (ParC/Fast-ParC, kernel length H with wrap-around) or
    ``"oversize"`` (ParCNetV2's 2H-1 zero-padded kernels in ParC's half-split layout; ParCNetV2's
    mixer itself is ``parc_v2``). position_embedding: learnable per-channel
    embedding along the conv axis. bias: per-channel bias of the global convs. pointwise: wrap
    in Linear C->rC, StarReLU ... Linear rC->C. expansion_ratio: r (ignored without pointwise).
    grid_size: nominal map side of the kernels (``None``: 14)."""

    variant: Literal["circular", "oversize"] = "circular"
    position_embedding: bool = True
    bias: bool = True
    pointwise: bool = False
    expansion_ratio: float = 2.0
    grid_size: int | None = knob(None, low=1)

    def check(self, dim: int) -> None:
        width = int(self.expansion_ratio * dim) if self.pointwise else dim
        if width < 2 or width % 2:
            what = f"hidden width int({self.expansion_ratio} * {dim})" if self.pointwise else "dim"
            raise ConfigError(
                f"{'expansion_ratio' if self.pointwise else 'dim'}: ParC splits its channels in "
                f"half between H and W: {what} must be even and >= 2, found {width}"
            )


@register_mixer("parc_v2", module="nas.mixers.parc_v2:ParCV2")
@dataclass(frozen=True)
class ParCV2Knobs(MixerKnobs):
    """ParCNetV2's mixer: a gated pointwise projection whose gate branch goes through oversized
    (2H-1) depthwise convs along H then W plus a local depthwise conv.

    expansion_ratio: the projection is C -> int(r * C), split in half into value and gate (2).
    kernel_size: odd side of the local depthwise conv (7). grid_size: nominal map side of the
    oversized kernels, stored with 2 * grid_size - 1 taps (``None``: 14)."""

    expansion_ratio: float = knob(2.0, above=0)
    kernel_size: int = knob(7, odd=True)
    grid_size: int | None = knob(None, low=1)

    def check(self, dim: int) -> None:
        width = int(self.expansion_ratio * dim)
        if width < 2 or width % 2:
            raise ConfigError(
                f"expansion_ratio: ParCNetV2 splits its projection in half: hidden width "
                f"int({self.expansion_ratio} * {dim}) must be even and >= 2, found {width}"
            )
