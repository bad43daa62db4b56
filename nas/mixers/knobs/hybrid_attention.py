"""Convolution and attention inside one mixer: Attention Augmentation and ACmix."""

from dataclasses import dataclass
from typing import Literal

from nas.mixers.registry import MixerKnobs, check_odd, register_mixer
from nas.typed_config import ConfigError, check_range


def attention_split(
    dim: int, share: float, head_dim: int, num_heads: int | None
) -> tuple[int, int]:
    """``(heads, dv)`` of Attention Augmentation: ``dv = heads * max(1, round(share * dim /
    heads))`` attention channels, ``heads = num_heads`` or ``max(round(share * dim) // head_dim,
    1)``; ``(0, 0)`` at share 0."""
    if share == 0:
        return 0, 0
    heads = num_heads or max(round(share * dim) // head_dim, 1)
    return heads, heads * max(1, round(share * dim / heads))


@register_mixer("attention_augmented", module="nas.mixers.attention_augmented:AttentionAugmented")
@dataclass(frozen=True)
class AttentionAugmentedKnobs(MixerKnobs):
    """``concat(conv(x), proj(MHSA(x)))`` (Bello et al. 2019).

    attention_share: fraction of output channels from attention, in [0, 1) (0: the plain conv).
    kernel_size: odd side of the conv. head_dim / num_heads: set the head count (see
    :func:`attention_split`). rel_pos: ``"bias"`` adds AA's factorised 2-D relative logits.
    grid_size: nominal map side of the relative tables (``None``: 14).
    """

    attention_share: float = 0.5
    kernel_size: int = 3
    head_dim: int = 32
    num_heads: int | None = None
    rel_pos: Literal["none", "bias"] = "bias"
    grid_size: int | None = None

    def check(self, dim: int) -> None:
        check_range("attention_share", self.attention_share, low=0)
        if self.attention_share >= 1:
            raise ConfigError(
                f"attention_share: expected a value in [0, 1), found {self.attention_share!r}"
            )
        check_odd("kernel_size", self.kernel_size)
        check_range("head_dim", self.head_dim, low=1)
        check_range("num_heads", self.num_heads, low=1)
        check_range("grid_size", self.grid_size, low=1)
        heads, dv = attention_split(dim, self.attention_share, self.head_dim, self.num_heads)
        if dv >= dim:
            raise ConfigError(
                f"attention_share: attention would take all {dim} channels (dv = {dv} with "
                f"{heads} heads); lower attention_share or num_heads"
            )


@register_mixer("acmix", module="nas.mixers.acmix:ACmix")
@dataclass(frozen=True)
class ACmixKnobs(MixerKnobs):
    """Shared 1x1 q/k/v projections feeding a local-attention path and a shift-conv path,
    mixed by two learned scalars (Pan et al. 2022).

    head_dim / num_heads: as for ``attention`` (head_dim is also the shift-conv's group count).
    kernel_conv: odd side of the shift-conv kernel (3). kernel_att: odd side of the attention
    neighbourhood (7). qkv_bias / proj_bias: projection biases.
    """

    head_dim: int = 32
    num_heads: int | None = None
    kernel_conv: int = 3
    kernel_att: int = 7
    qkv_bias: bool = False
    proj_bias: bool = False

    def check(self, dim: int) -> None:
        check_range("head_dim", self.head_dim, low=1)
        check_range("num_heads", self.num_heads, low=1)
        check_odd("kernel_conv", self.kernel_conv)
        check_odd("kernel_att", self.kernel_att)
