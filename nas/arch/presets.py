"""Named seed designs from the papers, as specs: the search's reference points.

Each preset is a row of a table (stage layout, mixer per stage, stage options), not a hand-written
spec, so adding a design is one line. Sizes follow the MetaFormer S18 layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nas.arch.spec import ArchSpec, SpecError

S18_DEPTHS = (3, 3, 9, 3)
S18_DIMS = (64, 128, 320, 512)
LATE_RES_SCALE = (False, False, True, True)

Mixer = dict[str, Any]


def metaformer_s18(
    name: str, mixers: Sequence[Mixer], image_size: int = 224, **extra: Any
) -> ArchSpec:
    """An S18 spec with one mixer per stage and res-scale in stages 3-4 (ConvFormer/CAFormer)."""
    stages = [
        {"depth": d, "dim": c, "mixer": dict(m), "res_scale": r}
        for d, c, m, r in zip(S18_DEPTHS, S18_DIMS, mixers, LATE_RES_SCALE, strict=True)
    ]
    return ArchSpec.from_dict({"name": name, "image_size": image_size, "stages": stages, **extra})


SEP = {"name": "sepconv"}
ATT = {"name": "attention"}
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
    "poolformer_s18": ({"name": "pooling"},) * 4,
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

PRESETS: dict[str, Callable[..., ArchSpec]] = {
    name: (lambda name=name, mixers=mixers, **kw: metaformer_s18(name, mixers, **kw))
    for name, mixers in PRESET_MIXERS.items()
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
