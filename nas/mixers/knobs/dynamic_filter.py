"""DFFormer's dynamic filter."""

from dataclasses import dataclass

from nas.mixers.registry import MixerKnobs, check_width, knob, register_mixer


@register_mixer("dynamic_filter", module="nas.mixers.dynamic_filter:DynamicFilter")
@dataclass(frozen=True)
class DynamicFilterKnobs(MixerKnobs):
    """num_filters: size of the shared filter bank the routing mixes (4 in DFFormer).
    expansion_ratio: hidden width factor of the filtered branch (2). reweight_ratio: hidden
    width factor of the routing MLP (0.25). grid_size: nominal map side of the filters
    (``None``: 14)."""

    num_filters: int = knob(4, low=1)
    expansion_ratio: float = 2.0
    reweight_ratio: float = 0.25
    grid_size: int | None = knob(None, low=1)

    def check(self, dim: int) -> None:
        check_width("expansion_ratio", self.expansion_ratio, dim)
        check_width("reweight_ratio", self.reweight_ratio, dim)
