"""Multi-head self-attention, global or in (shifted) windows, with optional relative position
bias and convolutional projections."""

from dataclasses import dataclass
from typing import Literal

from nas.mixers.registry import MixerKnobs, knob, register_mixer
from nas.typed_config import ConfigError


def num_heads(dim: int, head_dim: int, heads: int | None) -> int:
    """``heads`` if given, else as many ``head_dim``-wide heads as ``dim`` holds (at least one):
    the rule of every attention mixer with ``head_dim`` / ``num_heads`` knobs."""
    return heads if heads is not None else max(dim // head_dim, 1)


@register_mixer("attention", module="nas.mixers.attention:Attention")
@dataclass(frozen=True)
class AttentionKnobs(MixerKnobs):
    """CAFormer's plain MHSA by default; every addition is off.

    head_dim: channels per head; num_heads: heads (``None``: ``max(dim // head_dim, 1)``).
    window_size: side of the non-overlapping windows (``None``: global attention).
    qkv_bias / proj_bias: biases of the projections (off in CAFormer). rel_pos: ``"bias"``, a
    learned per-head relative position bias (Swin, CoAtNet). grid_size: nominal map side where
    global attention stores that bias (``None``: 14). shift: Swin's shifted windows (the space's
    ``shift`` placement turns it on for alternate blocks). qkv_conv: CvT's depthwise-conv
    projections; kv_stride: their key/value stride (global attention only).
    """

    head_dim: int = knob(32, low=1)
    num_heads: int | None = knob(None, low=1)
    window_size: int | None = knob(None, low=1)
    qkv_bias: bool = False
    proj_bias: bool = False
    rel_pos: Literal["none", "bias"] = "none"
    grid_size: int | None = knob(None, low=1)
    shift: bool = False
    qkv_conv: bool = False
    kv_stride: int = knob(1, low=1)

    def check(self, dim: int) -> None:
        if self.kv_stride > 1 and not self.qkv_conv:
            raise ConfigError(
                f"kv_stride: {self.kv_stride} needs qkv_conv=true (the conv has the stride)"
            )
        if self.kv_stride > 1 and self.window_size is not None:
            raise ConfigError(
                f"kv_stride: {self.kv_stride} needs global attention (window_size null), "
                f"found window_size {self.window_size}"
            )
