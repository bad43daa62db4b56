"""timm entry points: ``timm.create_model("nas_metaformer", arch=...)`` and one per preset.

Importing :mod:`nas.models` registers them. ``arch`` takes an :class:`ArchSpec`, a preset name,
a YAML path (an exported ``arch.yaml``) or a spec dict. Models are built through timm's
``build_model_with_cfg``, so they carry a ``pretrained_cfg`` (input size from the spec's
``image_size``, classes from its ``num_classes``, ImageNet mean/std, ``first_conv``,
``classifier``), take ``features_only``/``out_indices`` and timm's common arguments
(``num_classes``, ``in_chans``, ``global_pool``, ``drop_rate``, ``drop_path_rate``), and load
weights with ``pretrained=True, pretrained_cfg_overlay=dict(file=...)``: a ``nas train``
checkpoint (its EMA weights when it has them) or a timm MetaFormer's state dict
(:mod:`nas.models.transplant`). No published weights exist for these models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._pretrained import PretrainedCfg

from nas.arch.presets import PRESETS, resolve_spec
from nas.arch.spec import ArchSpec
from nas.models.metaformer import MetaFormer
from nas.models.transplant import checkpoint_filter_fn

__all__: list[str] = []


def pretrained_cfg(spec: ArchSpec) -> dict[str, Any]:
    """timm's pretrained cfg of a model built from ``spec``: what its weights expect."""
    side = spec.grid_sizes()[-1]
    return {
        "url": "",
        "num_classes": spec.num_classes or 1000,
        "input_size": (spec.in_chans, spec.image_size, spec.image_size),
        "pool_size": (side, side),
        "crop_pct": 1.0,
        "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.conv",
        "classifier": "head.fc.fc2" if spec.head.kind == "mlp" else "head.fc",
        "license": "apache-2.0",
    }


def build_for_timm(
    spec: ArchSpec,
    num_classes: int | None = None,
    in_chans: int | None = None,
    global_pool: str = "avg",
    drop_rate: float | None = None,
    drop_path_rate: float | None = None,
    device: Any = None,
    dtype: Any = None,
) -> MetaFormer:
    """The model class for ``build_model_with_cfg``: timm's arguments edit the spec."""
    changes: dict[str, Any] = {}
    if in_chans is not None:
        changes["in_chans"] = int(in_chans)
    if drop_path_rate is not None:
        changes["drop_path_rate"] = float(drop_path_rate)
    if drop_rate is not None:
        changes["head"] = dataclasses.replace(spec.head, dropout=float(drop_rate))
    model = MetaFormer(dataclasses.replace(spec, **changes), num_classes, global_pool)
    return model.to(device=device, dtype=dtype)


def _create(
    variant: str,
    arch: ArchSpec | str | Path | dict,
    pretrained: bool,
    cfg: str | dict | PretrainedCfg | None = None,
    **kwargs: Any,
) -> MetaFormer:
    spec = resolve_spec(arch)
    base = pretrained_cfg(spec)
    if isinstance(cfg, PretrainedCfg):
        cfg = cfg.to_dict()
    if isinstance(cfg, dict):  # a tag (str) names no weights of ours: the spec's cfg stands
        base.update(cfg)
    return build_model_with_cfg(
        build_for_timm,
        variant,
        pretrained,
        pretrained_cfg=base,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg={"flatten_sequential": True, "out_indices": tuple(range(len(spec.stages)))},
        spec=spec,
        **kwargs,
    )


@register_model
def nas_metaformer(
    pretrained: bool = False, arch: Any = None, pretrained_cfg: Any = None, **kwargs: Any
) -> MetaFormer:
    """A MetaFormer from ``arch`` (spec, preset name, YAML path or dict)."""
    if arch is None:
        raise ValueError(
            "nas_metaformer needs arch=<ArchSpec | preset name | arch.yaml path | dict>"
        )
    return _create("nas_metaformer", arch, pretrained, pretrained_cfg, **kwargs)


def _preset_entry(preset: str) -> Callable[..., MetaFormer]:
    def entry(pretrained: bool = False, pretrained_cfg: Any = None, **kwargs: Any) -> MetaFormer:
        return _create(f"nas_{preset}", preset, pretrained, pretrained_cfg, **kwargs)

    entry.__name__ = entry.__qualname__ = f"nas_{preset}"
    entry.__doc__ = f"The {preset} seed design built by nas."
    return entry


default_cfgs = generate_default_cfgs(
    {f"nas_{preset}": pretrained_cfg(make()) for preset, make in PRESETS.items()}
)

for _preset in PRESETS:
    register_model(_preset_entry(_preset))
