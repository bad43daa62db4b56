"""GCNet's global context block."""

from dataclasses import dataclass
from typing import ClassVar, Literal

from nas.mixers.registry import MixerKnobs, knob, register_mixer
from nas.typed_config import ConfigError


@register_mixer("global_context", module="nas.mixers.global_context:GlobalContext")
@dataclass(frozen=True)
class GlobalContextKnobs(MixerKnobs):
    """A query-independent softmax pooling of the map to one context vector, transformed and
    broadcast: a global mixer at the cost of two small linears.

    ratio: bottleneck width factor (GCNet's 1/4); ``int(ratio * dim)`` must be at least 2, since
    a LayerNorm over one channel outputs a constant. fusion: ``"add"`` (GCNet's channel add) or
    ``"mul"`` (a sigmoid gate on the input).

    Revision 2: GCNet's own init (Kaiming logits, a zero last layer, so the block starts as the
    identity) replaces the backbone's trunc_normal; hashes stored earlier name the old start.
    """

    revision: ClassVar[int] = 2
    ratio: float = knob(0.25, above=0)
    fusion: Literal["add", "mul"] = "add"

    def check(self, dim: int) -> None:
        if int(self.ratio * dim) < 2:
            raise ConfigError(
                f"ratio: expected a bottleneck int(ratio * dim) >= 2 at dim {dim}, "
                f"found int({self.ratio!r} * {dim}) = {int(self.ratio * dim)}"
            )
