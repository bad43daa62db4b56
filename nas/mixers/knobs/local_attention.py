"""Local attention: neighbourhood attention (NAT) and blocked attention with halos (HaloNet)."""

from dataclasses import dataclass
from typing import Literal

from nas.mixers.registry import MixerKnobs, check_odd, register_mixer
from nas.typed_config import check_range


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

    head_dim: int = 32
    num_heads: int | None = None
    kernel_size: int = 7
    dilation: int = 1
    rel_pos: Literal["none", "bias"] = "bias"
    qkv_bias: bool = True
    proj_bias: bool = True

    def check(self, dim: int) -> None:
        check_range("head_dim", self.head_dim, low=1)
        check_range("num_heads", self.num_heads, low=1)
        check_odd("kernel_size", self.kernel_size)
        check_range("dilation", self.dilation, low=1)


@register_mixer("halo_attention", module="nas.mixers.halo_attention:HaloAttention")
@dataclass(frozen=True)
class HaloAttentionKnobs(MixerKnobs):
    """Queries in ``block x block`` blocks attend to the ``(block + 2 * halo)^2`` keys around.

    head_dim / num_heads: as for ``attention``. block: query block side. halo: width of the key
    ring around each block (0: plain windows). rel_pos: ``"bias"`` adds a learned relative
    position bias per head and offset. qkv_bias / proj_bias: projection biases (off in HaloNet).
    """

    head_dim: int = 32
    num_heads: int | None = None
    block: int = 4
    halo: int = 1
    rel_pos: Literal["none", "bias"] = "bias"
    qkv_bias: bool = False
    proj_bias: bool = False

    def check(self, dim: int) -> None:
        check_range("head_dim", self.head_dim, low=1)
        check_range("num_heads", self.num_heads, low=1)
        check_range("block", self.block, low=1)
        check_range("halo", self.halo, low=0)


@register_mixer("multi_axis_attention", module="nas.mixers.multi_axis_attention:MultiAxisAttention")
@dataclass(frozen=True)
class MultiAxisAttentionKnobs(MixerKnobs):
    """MaxViT's block attention then grid (dilated, global-sparse) attention in one mixer.

    partition: P, the block window side, and G, the grid cells per axis (one value, as MaxViT).
    head_dim / num_heads: as for ``attention``. qkv_bias / proj_bias: projection biases (on in
    MaxViT). rel_pos: ``"bias"`` adds a learned relative position bias to each attention.
    """

    partition: int = 4
    head_dim: int = 32
    num_heads: int | None = None
    qkv_bias: bool = True
    proj_bias: bool = True
    rel_pos: Literal["none", "bias"] = "bias"

    def check(self, dim: int) -> None:
        check_range("partition", self.partition, low=1)
        check_range("head_dim", self.head_dim, low=1)
        check_range("num_heads", self.num_heads, low=1)
