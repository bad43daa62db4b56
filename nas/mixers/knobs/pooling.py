"""PoolFormer's pooling mixer."""

from dataclasses import dataclass

from nas.mixers.registry import MixerKnobs, knob, register_mixer


@register_mixer("pooling", module="nas.mixers.pooling:Pooling")
@dataclass(frozen=True)
class PoolingKnobs(MixerKnobs):
    """pool_size: odd side of the average pool (3 in PoolFormer)."""

    pool_size: int = knob(3, odd=True)
