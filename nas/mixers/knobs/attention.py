"""Multi-head self-attention, global or in local windows."""

from dataclasses import dataclass

from nas.mixers.registry import MixerKnobs, register_mixer
from nas.typed_config import check_range


@register_mixer("attention", module="nas.mixers.attention:Attention")
@dataclass(frozen=True)
class AttentionKnobs(MixerKnobs):
    """CAFormer's defaults.

    head_dim: channels per head; num_heads: heads (``None``: ``max(dim // head_dim, 1)``);
    window_size: side of the non-overlapping windows (``None``: global attention);
    qkv_bias / proj_bias: biases of the projections (off in CAFormer).
    """

    head_dim: int = 32
    num_heads: int | None = None
    window_size: int | None = None
    qkv_bias: bool = False
    proj_bias: bool = False

    def check(self, dim: int) -> None:
        check_range("head_dim", self.head_dim, low=1)
        check_range("num_heads", self.num_heads, low=1)
        check_range("window_size", self.window_size, low=1)
