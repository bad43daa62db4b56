"""timm entry points: ``timm.create_model("nas_metaformer", arch=...)`` and one per preset.

Importing :mod:`nas` registers them. ``arch`` takes an :class:`ArchSpec`, a preset name, a YAML
path (an exported ``arch.yaml``) or a spec dict. No pretrained weights exist for searched designs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from timm.models import register_model

from nas.arch.presets import PRESETS, resolve_spec
from nas.arch.spec import ArchSpec
from nas.models.metaformer import MetaFormer, build_model

__all__: list[str] = []


_FACTORY_ONLY = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def _create(
    arch: ArchSpec | str | Path | dict, pretrained: bool, kwargs: dict[str, Any]
) -> MetaFormer:
    """Build ``arch``; timm's common overrides (``drop_path_rate``, ``drop_rate``) edit the spec."""
    if pretrained:
        raise ValueError("nas_metaformer models have no pretrained weights; use pretrained=False")
    for key in _FACTORY_ONLY:
        kwargs.pop(key, None)
    spec = resolve_spec(arch)
    if "drop_path_rate" in kwargs:
        spec = dataclasses.replace(spec, drop_path_rate=float(kwargs.pop("drop_path_rate")))
    if "drop_rate" in kwargs:
        head = dataclasses.replace(spec.head, dropout=float(kwargs.pop("drop_rate")))
        spec = dataclasses.replace(spec, head=head)
    num_classes = kwargs.pop("num_classes", 1000)
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    if kwargs:
        raise TypeError(f"nas_metaformer: unexpected arguments {sorted(kwargs)}")
    return build_model(spec, num_classes=num_classes).to(device=device, dtype=dtype)


@register_model
def nas_metaformer(pretrained: bool = False, arch: Any = None, **kwargs: Any) -> MetaFormer:
    """A MetaFormer from ``arch`` (spec, preset name, YAML path or dict)."""
    if arch is None:
        raise ValueError(
            "nas_metaformer needs arch=<ArchSpec | preset name | arch.yaml path | dict>"
        )
    return _create(arch, pretrained, kwargs)


def _preset_entry(preset: str) -> Callable[..., MetaFormer]:
    def entry(pretrained: bool = False, **kwargs: Any) -> MetaFormer:
        return _create(preset, pretrained, kwargs)

    entry.__name__ = entry.__qualname__ = f"nas_{preset}"
    entry.__doc__ = f"The {preset} seed design built by nas."
    return entry


for _preset in PRESETS:
    register_model(_preset_entry(_preset))
