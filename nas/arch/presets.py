"""Named seed designs from the papers, as specs: the search's reference points.

Each preset is a row of a table (a layout, the mixer per stage), not a hand-written spec, so
adding a design is one line. Most follow the MetaFormer S18 layout (``PRESET_MIXERS``, the
designs a search space can project as references); ``LAYOUT_PRESETS`` are papers' models in
their own layouts: PoolFormerV2 (GroupNorm with one group) and HorNet (ConvNeXt-style blocks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.arch.spec import ArchSpec, SpecError

Mixer = dict[str, Any]


@dataclass(frozen=True)
class Layout:
    """A paper's network around its mixers: depths and widths per stage, res scale per stage,
    layer scale (init value, or ``None``) and the whole-model spec keys (``extra``)."""

    depths: tuple[int, ...]
    dims: tuple[int, ...]
    res_scale: tuple[bool, ...] = (False, False, True, True)
    layer_scale: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def spec(
        self, name: str, mixers: Sequence[Mixer], image_size: int = 224, **extra: Any
    ) -> ArchSpec:
        """The spec with one mixer per stage; ``extra`` overrides whole-model keys."""
        stages = [
            {
                "depth": d,
                "dim": c,
                "mixer": dict(m),
                "res_scale": r,
                "layer_scale": self.layer_scale,
            }
            for d, c, m, r in zip(self.depths, self.dims, mixers, self.res_scale, strict=True)
        ]
        data = {"name": name, "image_size": image_size, **self.extra, **extra, "stages": stages}
        return ArchSpec.from_dict(data)


S18 = Layout((3, 3, 9, 3), (64, 128, 320, 512))
"""MetaFormer S18 with res scale in stages 3-4 (ConvFormer/CAFormer)."""
POOLFORMERV2 = {"norm": "groupnorm1", "head": {"kind": "linear"}}
"""timm's ``poolformerv2_*``: GroupNorm(1) in the blocks, channel LayerNorm in the stem and
downsampling, res scale in stages 3-4, a linear head."""
HORNET = {
    "block": "convnext",
    "stem": {"kernel_size": 4, "stride": 4, "padding": 0},
    "downsample": {"kernel_size": 2, "stride": 2, "padding": 0},
    "head": {"kind": "linear"},
}
"""HorNet's ConvNeXt-style network: 4x4 patch stem, 2x2 downsampling, LayerNorms with bias, GELU
MLP with biases, layer scale 1e-6, no res scale, norm + linear head."""
HORNET_TINY = Layout((2, 3, 18, 2), (64, 128, 256, 512), (False,) * 4, 1e-6, HORNET)

SEP = {"name": "sepconv"}
ATT = {"name": "attention"}
POOL = {"name": "pooling"}
HB = {"name": "hyena", "bidirectional": True}
HPX_KERNELS = (111, 55, 27, 13)  # 2H-1 of the S18 maps at 224 px, fixed at any input size


def _hpx(stage: int, layernorm: bool) -> Mixer:
    """HyenaPixel as the official model builds it in ``stage``: the 224 px kernel, and the inner
    LayerNorm only in hpx_former (c_hpx and hpx_a have none)."""
    return {"name": "hyena_pixel", "kernel_size": HPX_KERNELS[stage], "use_layernorm": layernorm}


DF = {"name": "dynamic_filter"}
GF = {"name": "global_filter"}
PARC = {"name": "parc"}


def _gnconv(order: int, filter_kind: str) -> Mixer:
    return {"name": "gnconv", "order": order, "filter": filter_kind}


PRESET_MIXERS: dict[str, tuple[Mixer, ...]] = {
    "identityformer_s18": ({"name": "identity"},) * 4,
    "poolformer_s18": (POOL,) * 4,
    "convformer_s18": (SEP,) * 4,
    "caformer_s18": (SEP, SEP, ATT, ATT),
    "hpx_former_s18": tuple(_hpx(i, True) for i in range(4)),
    "hb_former_s18": (HB,) * 4,
    "c_hpx_former_s18": (SEP, SEP, _hpx(2, False), _hpx(3, False)),
    "hpx_a_former_s18": (_hpx(0, False), _hpx(1, False), ATT, ATT),
    "hb_a_former_s18": (HB, HB, ATT, ATT),
    "dfformer_s18": (DF,) * 4,
    "cdfformer_s18": (SEP, SEP, DF, DF),
    "gfformer_s18": (GF,) * 4,
    "gnconv_s18": tuple(_gnconv(n, "dw") for n in (2, 3, 4, 5)),
    "gnconv_gf_s18": (_gnconv(2, "dw"), _gnconv(3, "dw"), _gnconv(4, "gf"), _gnconv(5, "gf")),
    "parc_former_s18": (SEP, SEP, PARC, PARC),
}
"""The S18 designs (the ones a search space projects as references)."""

LAYOUT_PRESETS: dict[str, tuple[Layout, tuple[Mixer, ...]]] = {
    "poolformerv2_s12": (Layout((2, 2, 6, 2), S18.dims, extra=POOLFORMERV2), (POOL,) * 4),
    "poolformerv2_s24": (Layout((4, 4, 12, 4), S18.dims, extra=POOLFORMERV2), (POOL,) * 4),
    "hornet_tiny_7x7": (HORNET_TINY, tuple(_gnconv(n, "dw") for n in (2, 3, 4, 5))),
    "hornet_tiny_gf": (HORNET_TINY, PRESET_MIXERS["gnconv_gf_s18"]),
}
"""Papers' models in their own layouts."""

PRESETS: dict[str, Callable[..., ArchSpec]] = {
    name: (lambda name=name, layout=layout, mixers=mixers, **kw: layout.spec(name, mixers, **kw))
    for name, (layout, mixers) in {
        **{name: (S18, mixers) for name, mixers in PRESET_MIXERS.items()},
        **LAYOUT_PRESETS,
    }.items()
}


def list_presets() -> list[str]:
    return sorted(PRESETS)


def resolve_spec(arch: ArchSpec | str | Path | dict) -> ArchSpec:
    """A spec from a spec, a preset name, a YAML file path or a spec dict."""
    if isinstance(arch, ArchSpec):
        return arch
    if isinstance(arch, dict):
        return ArchSpec.from_dict(arch)
    if isinstance(arch, (str, Path)):
        if str(arch) in PRESETS:
            return PRESETS[str(arch)]()
        path = Path(arch)
        if path.suffix in (".yaml", ".yml") or path.exists():
            return ArchSpec.load(path)
        from nas.mixers.registry import suggest

        raise SpecError(
            f"arch: {str(arch)!r} is neither a preset{suggest(str(arch), PRESETS)} "
            "nor a YAML file; "
            f"presets: {list_presets()}"
        )
    raise SpecError(
        f"arch: expected a spec, preset name, YAML path or dict, found {type(arch).__name__}"
    )
