"""Local attention: neighbourhood attention (NAT) and blocked attention with halos (HaloNet)."""

from dataclasses import dataclass
from typing import Literal

from nas.mixers.registry import MixerKnobs, knob, register_mixer


@register_mixer(
    "neighborhood_attention", module="nas.mixers.neighborhood_attention:NeighborhoodAttention"
)
@dataclass(frozen=True)
class NeighborhoodAttentionKnobs(MixerKnobs):
    """Each query attends to the ``kernel_size x kernel_size`` neighbourhood around it.

    head_dim / num_heads: as for ``attention``. kernel_size: odd neighbourhood side. dilation:
    spacing of the neighbours (DiNAT). rel_pos: ``"bias"`` adds NAT's learned relative position
    bias. qkv_bias / proj_bias: projection biases (on in NAT; the key bias is dropped, it never
    changes the output).
    """

    head_dim: int = knob(32, low=1)
    num_heads: int | None = knob(None, low=1)
    kernel_size: int = knob(7, odd=True)
    dilation: int = knob(1, low=1)
    rel_pos: Literal["none", "bias"] = "bias"
    qkv_bias: bool = True
    proj_bias: bool = True


@register_mixer("halo_attention", module="nas.mixers.halo_attention:HaloAttention")
@dataclass(frozen=True)
class HaloAttentionKnobs(MixerKnobs):
    """Queries in ``block x block`` blocks attend to the ``(block + 2 * halo)^2`` keys around.

    head_dim / num_heads: as for ``attention``. block: query block side. halo: width of the key
    ring around each block (0: plain windows). rel_pos: ``"bias"`` adds a learned relative
    position bias per head and offset. qkv_bias / proj_bias: projection biases (off in HaloNet).
    """

    head_dim: int = knob(32, low=1)
    num_heads: int | None = knob(None, low=1)
    block: int = knob(4, low=1)
    halo: int = knob(1, low=0)
    rel_pos: Literal["none", "bias"] = "bias"
    qkv_bias: bool = False
    proj_bias: bool = False


@register_mixer("multi_axis_attention", module="nas.mixers.multi_axis_attention:MultiAxisAttention")
@dataclass(frozen=True)
class MultiAxisAttentionKnobs(MixerKnobs):
    """MaxViT's block attention then grid (dilated, global-sparse) attention in one mixer.

    partition: P, the block window side, and G, the grid cells per axis (one value, as MaxViT).
    head_dim / num_heads: as for ``attention``. qkv_bias / proj_bias: projection biases (on in
    MaxViT). rel_pos: ``"bias"`` adds a learned relative position bias to each attention.
    """

    partition: int = knob(4, low=1)
    head_dim: int = knob(32, low=1)
    num_heads: int | None = knob(None, low=1)
    qkv_bias: bool = True
    proj_bias: bool = True
    rel_pos: Literal["none", "bias"] = "bias"
