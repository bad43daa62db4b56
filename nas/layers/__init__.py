"""Building blocks shared by mixers and the MetaFormer backbone."""

from nas.layers.activations import SquaredReLU, StarReLU
from nas.layers.norms import LayerNorm2dNoBias, LayerNormNoBias

__all__ = ["LayerNorm2dNoBias", "LayerNormNoBias", "SquaredReLU", "StarReLU"]
