"""Convolution and attention inside one mixer: Attention Augmentation and ACmix."""

from dataclasses import dataclass
from typing import ClassVar, Literal

from nas.mixers.registry import MixerKnobs, knob, register_mixer
from nas.typed_config import ConfigError


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

    attention_share: float = knob(0.5, low=0)
    kernel_size: int = knob(3, odd=True)
    head_dim: int = knob(32, low=1)
    num_heads: int | None = knob(None, low=1)
    rel_pos: Literal["none", "bias"] = "bias"
    grid_size: int | None = knob(None, low=1)

    def check(self, dim: int) -> None:
        if self.attention_share >= 1:
            raise ConfigError(
                f"attention_share: expected a value in [0, 1), found {self.attention_share!r}"
            )
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

    Revision 2: the one-hot shift initialisation of the conv path reaches the built model (the
    backbone's trunc_normal init overwrote it before), so hashes stored earlier name another
    starting point and are not reused.
    """

    revision: ClassVar[int] = 2
    head_dim: int = knob(32, low=1)
    num_heads: int | None = knob(None, low=1)
    kernel_conv: int = knob(3, odd=True)
    kernel_att: int = knob(7, odd=True)
    qkv_bias: bool = False
    proj_bias: bool = False
