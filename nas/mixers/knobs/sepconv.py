"""ConvFormer's separable convolution."""

from dataclasses import dataclass

from nas.mixers.registry import MixerKnobs, check_width, knob, register_mixer


@register_mixer("sepconv", module="nas.mixers.sepconv:SepConv")
@dataclass(frozen=True)
class SepConvKnobs(MixerKnobs):
    """kernel_size: odd side of the depthwise conv (7 in ConvFormer); expansion_ratio: hidden
    width factor of the pointwise projections (2)."""

    kernel_size: int = knob(7, odd=True)
    expansion_ratio: float = 2.0

    def check(self, dim: int) -> None:
        check_width("expansion_ratio", self.expansion_ratio, dim)
