"""Seed designs (the papers' hand-made layouts) projected onto a search space.

A search only beats the papers if their designs are trained with exactly its proxy recipe and
budget, at its scale. A space file's ``references: [caformer, hpx_former, ...]`` (or ``all``)
names preset families; each is projected onto the space by one rule:

* stages: the paper's last ``N`` stages map onto the space's ``N`` stages (a 3-stage laptop
  space gets stages 2-4 of the S18 layout: the late stages are where the designs differ); a
  space with more stages than the preset spreads them, stage ``i`` taking preset stage
  ``i * 4 // N``;
* each stage keeps the preset's mixer and knobs (e.g. gnConv's orders, attention where the
  hybrid puts it), with their meaning: a kernel that spans the preset's whole nominal map
  (``kernel_size`` 2 * grid - 1, HyenaPixel's fixed 111/55/27/13 at 224 px) spans the space's
  whole nominal map (2 * grid - 1 at the space's image size), not 111 taps on an 8 x 8 map;
* depth, width and MLP ratio are the space's middle choice of that stage (the upper of the two
  middle values for an even count, the midpoint of a range), ``res_scale`` and the whole-model
  settings (image size, head, stem, downsampling, drop path) are the space's; the block type and
  norm stay the designs' own (MetaFormer blocks, channel LayerNorm).

The result is a normal spec, so it is hashed, measured, trained and stored like any trial.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nas.arch.presets import PRESET_MIXERS, PRESETS
from nas.arch.spec import ArchSpec, SpecError
from nas.search.space import Param, SearchSpace
from nas.typed_config import ConfigError, suggest

REFERENCE_FAMILIES: dict[str, str] = {
    name.removesuffix("_s18"): name for name in sorted(PRESET_MIXERS)
}


def parse_references(data: Any, where: str = "references") -> tuple[str, ...]:
    """``all``, null or a list of family names, each checked against the presets."""
    if data is None:
        return ()
    if data == "all":
        return tuple(REFERENCE_FAMILIES)
    if not isinstance(data, list):
        raise ConfigError(
            f"{where}: expected 'all' or a list of seed designs, found {data!r}; "
            f"seed designs: {sorted(REFERENCE_FAMILIES)}"
        )
    for i, name in enumerate(data):
        if name not in REFERENCE_FAMILIES:
            hint = suggest(str(name), REFERENCE_FAMILIES)
            raise ConfigError(
                f"{where}[{i}]: unknown seed design {name!r}{hint}; "
                f"seed designs: {sorted(REFERENCE_FAMILIES)}"
            )
    if len(set(data)) != len(data):
        raise ConfigError(f"{where}: each seed design may appear once, found {data}")
    return tuple(data)


def middle_value(param: Param) -> Any:
    """The middle choice (upper middle for an even count), a range's midpoint, or the value."""
    if param.choices is not None:
        values = sorted(param.choices, key=lambda v: (v is None, v))
        return values[len(values) // 2]
    if param.low is not None:
        mid = (param.low + param.high) / 2
        return round(mid) if isinstance(param.low, int) and isinstance(param.high, int) else mid
    return param.fixed


def preset_stages_for(n_space: int, n_preset: int) -> list[int]:
    """Which preset stage each of the space's stages takes."""
    if n_space <= n_preset:
        return list(range(n_preset - n_space, n_preset))
    return [i * n_preset // n_space for i in range(n_space)]


def project_reference(name: str, space: SearchSpace) -> ArchSpec:
    """The seed design ``name`` at the space's scale; ``SpecError`` names it if it cannot be."""
    preset = REFERENCE_FAMILIES[name]
    mixers = PRESET_MIXERS[preset]
    picks = preset_stages_for(len(space.stages), len(mixers))
    stages = [
        {
            "depth": middle_value(stage.depth),
            "dim": middle_value(stage.dim),
            "mixer": dict(mixers[k]),
            "mlp_ratio": middle_value(stage.mlp_ratio),
            "res_scale": stage.res_scale,
        }
        for stage, k in zip(space.stages, picks, strict=True)
    ]
    data = {
        "name": name,
        "image_size": space.image_size,
        "drop_path_rate": space.drop_path_rate,
        "head": dict(space.head),
        "stem": dict(space.stem),
        "downsample": dict(space.downsample),
        "stages": stages,
    }
    try:
        preset_grids = PRESETS[preset]().grid_sizes()
        space_grids = ArchSpec.from_dict(data).grid_sizes()
        for stage, k, grid in zip(stages, picks, space_grids, strict=True):
            stage["mixer"] = span_whole_map(stage["mixer"], preset_grids[k], grid)
        return ArchSpec.from_dict(data)
    except SpecError as err:
        raise SpecError(
            f"references: seed design {name!r} cannot be projected onto the space: {err}"
        ) from None


def span_whole_map(mixer: dict[str, Any], preset_grid: int, grid: int) -> dict[str, Any]:
    """``mixer`` with a kernel spanning the preset's whole map (``2 * preset_grid - 1``) made to
    span a ``grid`` map instead; other mixers and kernels as they are."""
    if mixer.get("kernel_size") == 2 * preset_grid - 1:
        return {**mixer, "kernel_size": 2 * grid - 1}
    return mixer


def project_references(names: Sequence[str], space: SearchSpace) -> dict[str, ArchSpec]:
    """Every named seed design projected, in order; the first that cannot be fails by name."""
    try:
        return {name: project_reference(name, space) for name in names}
    except SpecError as err:
        raise ConfigError(str(err)) from None
