"""IdentityFormer's mixer has no knobs."""

from dataclasses import dataclass

from nas.mixers.registry import MixerKnobs, register_mixer


@register_mixer("identity", module="nas.mixers.identity:IdentityMixer")
@dataclass(frozen=True)
class IdentityKnobs(MixerKnobs):
    """No mixing: the block keeps only its MLP."""
