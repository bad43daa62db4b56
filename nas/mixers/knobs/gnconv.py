"""HorNet's recursive gated convolution (gnConv)."""

from dataclasses import dataclass
from typing import Literal

from nas.mixers.registry import MixerKnobs, check_odd, knob, register_mixer
from nas.typed_config import ConfigError


def split_dims(dim: int, order: int) -> list[int]:
    """Channel splits ``d_i = dim / 2^(order-1-i)``: the gate widens at every recursion step."""
    return [dim // 2 ** (order - 1 - i) for i in range(order)]


@register_mixer("gnconv", module="nas.mixers.gnconv:GnConv")
@dataclass(frozen=True)
class GnConvKnobs(MixerKnobs):
    """order: interaction order n (HorNet uses 2, 3, 4, 5 in stages 1-4). filter: ``"dw"`` a
    ``kernel_size`` depthwise conv, or ``"gf"`` HorNet's Global-Local Filter. scale: the factor
    on the depthwise output (1/3 in all HorNet models). gf_norm: the Global-Local Filter's
    pre/post LayerNorms. grid_size: nominal map side of the global filter (``None``: 14)."""

    order: int = knob(3, low=1)
    filter: Literal["dw", "gf"] = "dw"
    kernel_size: int = 7
    scale: float = 1.0 / 3.0
    gf_norm: bool = True
    grid_size: int | None = knob(None, low=1)

    def check(self, dim: int) -> None:
        order = self.order
        if dim % 2 ** (order - 1):
            raise ConfigError(
                f"order: dim {dim} must be divisible by 2**(order-1)={2 ** (order - 1)} "
                f"for order {order}"
            )
        if self.filter == "dw":
            check_odd("kernel_size", self.kernel_size)
        elif dim % 2**order:
            raise ConfigError(
                f"filter: 'gf' halves the {sum(split_dims(dim, order))} gated channels: dim {dim} "
                f"must be divisible by 2**order={2**order} for order {order}"
            )
