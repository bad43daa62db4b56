"""ParC / Fast-ParC position-aware global circular convolution."""

from dataclasses import dataclass
from typing import Literal

from nas.mixers.registry import MixerKnobs, knob, register_mixer
from nas.typed_config import ConfigError


@register_mixer("parc", module="nas.mixers.parc:ParC")
@dataclass(frozen=True)
class ParCKnobs(MixerKnobs):
    """variant: ``"circular"`` (ParC/Fast-ParC, kernel length H with wrap-around) or
    ``"oversize"`` (ParCNetV2, 2H-1 with zero padding). position_embedding: learnable per-channel
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
