"""The Hyena family: HyenaPixel (2D) and Hyena over raster-flattened tokens (1D), which share
the recurrence, the implicit filter and therefore most knobs.

Revision 2 of both (hashed as ``name@2``): the official models' defaults: inner LayerNorm eps
1e-5 (was 1e-6), the official init of a standalone implicit filter, and for ``hyena`` the fixed
decay window without shift (was learnable), the official gate order and encoding sign. Specs
stored before name the revision-1 networks, so their hashes no longer match today's networks.
"""

from dataclasses import dataclass
from typing import ClassVar, Literal

from nas.mixers.registry import MixerKnobs, check_odd, knob, register_mixer
from nas.typed_config import ConfigError


@register_mixer("hyena_pixel", module="nas.mixers.hyena_pixel:HyenaPixel")
@dataclass(frozen=True)
class HyenaPixelKnobs(MixerKnobs):
    """HyenaPixel (order 2 is the paper's operator).

    order: Hyena order N >= 2: N + 1 gates and N - 1 long filters. kernel_size: odd long-kernel
    side, or ``"global"`` for (2H-1) x (2W-1) of the actual map. grid_size: nominal map side of
    the stage (``None``: 14); with ``"global"`` the encoding is stored at 2 * grid_size - 1 taps.
    emb_dim: positional-encoding channels, a multiple of 4 (``None``: 16 * max(2, ceil(dim/128))).
    filter_width: hidden width of the filter MLP (``None``: 2 * emb_dim). short_kernel: odd side
    of the depthwise short convolution. use_layernorm: bias-free LayerNorm (eps 1e-5) on each
    gate product and before the output projection (hpx_former_s18; not c_hpx / hpx_a).
    learnable_decay: train the decay rates and shifts (official) or keep the initial window fixed.
    decay_resize: how the decay follows a kernel of another size than the stored one (``global``
    kernels off the nominal map): ``stretch`` with the encoding, or ``official`` — the official
    conversion to a new kernel size, twice as steep (2K/K' per tap; its 384 px 191-tap variant).
    """

    revision: ClassVar[int] = 2
    order: int = knob(2, low=2)
    kernel_size: int | Literal["global"] = knob("global", odd=True)
    grid_size: int | None = knob(None, low=1)
    emb_dim: int | None = knob(None, low=4)
    filter_width: int | None = knob(None, low=1)
    short_kernel: int = knob(5, odd=True)
    use_layernorm: bool = True
    learnable_decay: bool = True
    decay_resize: Literal["stretch", "official"] = "stretch"

    def check(self, dim: int) -> None:
        if self.emb_dim is not None and self.emb_dim % 4:
            raise ConfigError(
                f"emb_dim: expected a multiple of 4 (sin and cos for rows and columns), "
                f"found {self.emb_dim}"
            )


@register_mixer("hyena", module="nas.mixers.hyena:Hyena")
@dataclass(frozen=True)
class HyenaKnobs(MixerKnobs):
    """1D Hyena on the raster order of the map.

    bidirectional: centred short convolution and 2L-1-tap filters (hb_former), or the original
    causal operator. grid_size: nominal map side (``None``: 14); the encoding is stored for
    grid_size ** 2 tokens. emb_dim: odd, a time channel plus cos/sin pairs (``None``:
    16 * max(2, ceil(dim/128)) + 1). learnable_decay: train the decay rates and shifts; the
    official Hyena keeps them fixed (default). The other knobs as for ``hyena_pixel``.
    """

    revision: ClassVar[int] = 2
    order: int = knob(2, low=2)
    bidirectional: bool = True
    grid_size: int | None = knob(None, low=1)
    emb_dim: int | None = knob(None, low=3)
    filter_width: int | None = knob(None, low=1)
    short_kernel: int = knob(3, odd=True)
    use_layernorm: bool = False
    learnable_decay: bool = False

    def check(self, dim: int) -> None:
        if self.emb_dim is not None:
            check_odd("emb_dim (a time channel plus cos/sin pairs)", self.emb_dim)
