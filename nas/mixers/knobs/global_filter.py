"""GFNet / GFFormer static global filter."""

from dataclasses import dataclass

from nas.mixers.registry import MixerKnobs, check_width, knob, register_mixer


@register_mixer("global_filter", module="nas.mixers.global_filter:GlobalFilter")
@dataclass(frozen=True)
class GlobalFilterKnobs(MixerKnobs):
    """pointwise: GFFormer's Linear/StarReLU ... Linear wrapping (True) or GFNet's bare filter.
    expansion_ratio: hidden width factor of ``pointwise`` (2; ignored without it). grid_size:
    nominal map side of the filter (``None``: 14)."""

    pointwise: bool = True
    expansion_ratio: float = 2.0
    grid_size: int | None = knob(None, low=1)

    def check(self, dim: int) -> None:
        if self.pointwise:
            check_width("expansion_ratio", self.expansion_ratio, dim)
