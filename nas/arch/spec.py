"""Typed architecture spec of a MetaFormer backbone.

The spec is the single currency between the search (which samples it), the store (which caches
measurements by its content hash), the export (which writes it as ``arch.yaml``) and the builder.
A spec is a plain tree of dataclasses; ``from_dict`` validates it and names the key path of any
error, so a wrong YAML file fails before anything is built or trained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nas.errors import NasError
from nas.mixers.registry import get_mixer, suggest
from nas.typed_config import check_range
from nas.yaml_io import parse_yaml, read_yaml


class SpecError(NasError):
    """An invalid architecture spec; the message starts with the offending key path."""


MAX_IMAGE_SIZE = 2048
MAX_DIM = 8192
MAX_DEPTH = 128
MAX_STAGES = 8
MAX_MLP_RATIO = 16.0
MAX_STEM = 64
MAX_CLASSES = 1_000_000
"""Upper bounds of the sizes a spec may ask for (image side in px, stage width and depth,
stages, MLP ratio, stem and downsampling kernel/stride/padding, classes): far beyond any real
backbone, so that a typo (``dim: 1e6``) fails here rather than growing a worker until it is
killed for memory."""

BLOCKS = ("metaformer", "convnext")
"""Block types: ``metaformer`` (MetaFormer baselines: every norm without bias, MLP Linear ->
StarReLU -> Linear without biases) or ``convnext`` (ConvNeXt and HorNet: norms with bias, MLP
Linear -> GELU -> Linear with biases). Both are ``x + ls(mixer(norm(x)))``, then the MLP."""

NORMS = ("layernorm", "groupnorm1")
"""Norms of the blocks: ``layernorm`` over the channels of each position, or ``groupnorm1``
(GroupNorm with one group: over the channels and positions of each image, PoolFormer/V2)."""


@dataclass(frozen=True)
class MixerSpec:
    """A registered mixer by name plus the knobs its constructor takes."""

    name: str
    knobs: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dict(self.knobs)}


@dataclass(frozen=True)
class BlockOverride:
    """A different mixer for some blocks of a stage: the ``last`` k blocks, ``every`` n-th block
    (blocks n-1, 2n-1, ...: interleaved, as CoAtNet/MaxViT-style layouts alternate) or explicit
    ``blocks`` (negative indices count from the end).

    This is how hybrids put attention in the last blocks of a stage, or between convolutions.
    """

    mixer: MixerSpec
    last: int | None = None
    blocks: tuple[int, ...] | None = None
    every: int | None = None

    def indices(self, depth: int) -> list[int]:
        if self.last is not None:
            return list(range(depth - self.last, depth))
        if self.every is not None:
            return list(range(self.every - 1, depth, self.every))
        return sorted({i % depth for i in self.blocks or ()})

    def to_dict(self) -> dict[str, Any]:
        if self.last is not None:
            where: dict[str, Any] = {"last": self.last}
        elif self.every is not None:
            where = {"every": self.every}
        else:
            where = {"blocks": list(self.blocks or ())}
        return {**where, "mixer": self.mixer.to_dict()}


@dataclass(frozen=True)
class StageSpec:
    """One resolution stage: ``depth`` blocks of width ``dim``."""

    depth: int
    dim: int
    mixer: MixerSpec
    overrides: tuple[BlockOverride, ...] = ()
    mlp_ratio: float = 4.0
    res_scale: bool = False
    layer_scale: float | None = None

    def block_mixers(self) -> list[MixerSpec]:
        """The mixer of every block, overrides applied in order (a later one wins). A mixer
        with ``shift: true`` alternates as in Swin: of the blocks it fills, the 1st, 3rd, ...
        are built unshifted and the 2nd, 4th, ... shifted."""
        mixers = [self.mixer] * self.depth
        for override in self.overrides:
            for i in override.indices(self.depth):
                mixers[i] = override.mixer
        seen: dict[int, int] = {}
        for i, mixer in enumerate(mixers):
            if mixer.knobs.get("shift") is True:
                count = seen[id(mixer)] = seen.get(id(mixer), 0) + 1
                if count % 2:
                    mixers[i] = MixerSpec(mixer.name, {**mixer.knobs, "shift": False})
        return mixers

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"depth": self.depth, "dim": self.dim, "mixer": self.mixer.to_dict()}
        if self.overrides:
            out["overrides"] = [o.to_dict() for o in self.overrides]
        out.update(mlp_ratio=self.mlp_ratio, res_scale=self.res_scale, layer_scale=self.layer_scale)
        return out


@dataclass(frozen=True)
class StemSpec:
    """Patchifying stem convolution (MetaFormer: 7x7, stride 4, padding 2) followed by a norm."""

    kernel_size: int = 7
    stride: int = 4
    padding: int = 2


@dataclass(frozen=True)
class DownsampleSpec:
    """The norm-then-conv between stages (MetaFormer: 3x3, stride 2, padding 1; ConvNeXt and
    HorNet: 2x2, stride 2, padding 0)."""

    kernel_size: int = 3
    stride: int = 2
    padding: int = 1


@dataclass(frozen=True)
class HeadSpec:
    """Classifier head: ``mlp`` (fc -> SquaredReLU -> LayerNorm -> dropout -> fc) or ``linear``."""

    kind: str = "mlp"
    hidden_ratio: float = 4.0
    dropout: float = 0.0


@dataclass(frozen=True)
class ArchSpec:
    """A whole backbone. ``image_size`` is the nominal input side; it sets the grid on which
    spatial mixer weights are stored (see ``grid_sizes``), not the sizes the model accepts.
    ``num_classes``: the classes of the data it was exported or trained for, so a built model's
    head fits that checkpoint (``None``: the builder's default); it names a task, not an
    architecture, so the content hash leaves it out."""

    stages: tuple[StageSpec, ...]
    name: str = "custom"
    image_size: int = 224
    in_chans: int = 3
    num_classes: int | None = None
    block: str = "metaformer"
    norm: str = "layernorm"
    stem: StemSpec = StemSpec()
    downsample: DownsampleSpec = DownsampleSpec()
    head: HeadSpec = HeadSpec()
    drop_path_rate: float = 0.0

    def grid_sizes(self) -> list[int]:
        """Nominal feature-map side of each stage at ``image_size``."""

        def conv(side: int, kernel_size: int, stride: int, padding: int) -> int:
            return (side + 2 * padding - kernel_size) // stride + 1

        sides = [conv(self.image_size, **vars(self.stem))]
        for _ in self.stages[1:]:
            sides.append(conv(sides[-1], **vars(self.downsample)))
        return sides

    def reductions(self) -> list[int]:
        """Stride of each stage's output relative to the input (timm's ``reduction``)."""
        return [self.stem.stride * self.downsample.stride**i for i in range(len(self.stages))]

    def resolved_knobs(self, stage: int, mixer: MixerSpec) -> dict[str, Any]:
        """All constructor knobs of ``mixer`` in ``stage``: registry defaults, then the spec's,
        then ``grid_size`` (when the mixer has one and it is unset) from the stage's nominal map."""
        knobs = {**get_mixer(mixer.name).defaults, **dict(mixer.knobs)}
        if "grid_size" in knobs and knobs["grid_size"] is None:
            knobs["grid_size"] = self.grid_sizes()[stage]
        return knobs

    def _hashed_knobs(self, stage: int, mixer: MixerSpec) -> dict[str, Any]:
        defaults = get_mixer(mixer.name).defaults
        resolved = self.resolved_knobs(stage, mixer)
        return {k: v for k, v in resolved.items() if k not in defaults or v != defaults[k]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "image_size": self.image_size,
            "in_chans": self.in_chans,
            "drop_path_rate": self.drop_path_rate,
            "block": self.block,
            "norm": self.norm,
            "stem": dataclasses.asdict(self.stem),
            "downsample": dataclasses.asdict(self.downsample),
            "head": dataclasses.asdict(self.head),
            "stages": [s.to_dict() for s in self.stages],
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml())

    def content_hash(self) -> str:
        """Hash of what determines the network (the ``name`` and ``num_classes`` do not). Mixer
        knobs are resolved and those at their declared defaults left out, so leaving a knob at
        its default and spelling it out hash alike, and a knob added later (whose default keeps
        the old behaviour) leaves every stored hash as it was; so do the spec fields added
        after hashes were first stored (``_LATER_FIELDS``) while at their defaults. A mixer
        whose defaults changed meaning hashes under ``name@revision`` (``MixerKnobs.revision``),
        so no old hash names it."""
        canonical = self.to_dict()
        del canonical["name"], canonical["num_classes"]
        for key, default in _LATER_FIELDS.items():
            if canonical[key] == default:
                del canonical[key]
        for i, (stage, stage_dict) in enumerate(zip(self.stages, canonical["stages"], strict=True)):
            stage_dict["blocks"] = [
                {"name": get_mixer(m.name).hashed_name, **self._hashed_knobs(i, m)}
                for m in stage.block_mixers()
            ]
            del stage_dict["mixer"]
            stage_dict.pop("overrides", None)
        blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Any) -> ArchSpec:
        return _parse_arch(data)

    @classmethod
    def from_yaml(cls, text: str) -> ArchSpec:
        return _parse_arch(parse_yaml(text, "arch.yaml text"))

    @classmethod
    def load(cls, path: str | Path) -> ArchSpec:
        data = read_yaml(path, "architecture file")
        try:
            return _parse_arch(data)
        except SpecError as err:
            raise SpecError(f"{path}: {err}") from None


def expect_mapping(
    data: Any, where: str, allowed: set[str], error: type[ValueError] = SpecError
) -> dict[str, Any]:
    """``data`` as a dict, raising ``error`` at ``where`` if it is not a mapping or has a key
    outside ``allowed`` (with a suggestion for a misspelt one)."""
    if not isinstance(data, Mapping):
        raise error(f"{where}: expected a mapping, found {type(data).__name__} {data!r}")
    for key in data:
        if key not in allowed:
            raise error(
                f"{where}.{key}: unknown key{suggest(str(key), allowed)}; "
                f"allowed: {sorted(allowed)}"
            )
    return dict(data)


def _typed(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any):
    """``data[key]`` checked against ``kind`` (bools are not ints), or ``default`` if absent."""
    if key not in data:
        if default is _REQUIRED:
            raise SpecError(f"{where}.{key}: required key is missing")
        return default
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if value is None and type(None) in kinds:
        return None
    is_bool = isinstance(value, bool)
    ok = any(
        (k is bool and is_bool)
        or (k is int and isinstance(value, int) and not is_bool)
        or (k is float and isinstance(value, (int, float)) and not is_bool)
        or (k is str and isinstance(value, str))
        for k in kinds
    )
    if not ok:
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise SpecError(f"{where}.{key}: expected {names}, found {type(value).__name__} {value!r}")
    return float(value) if float in kinds and int not in kinds and value is not None else value


_REQUIRED = object()


def _positive(value: int | float, where: str) -> None:
    if value <= 0:
        raise SpecError(f"{where}: expected a positive number, found {value!r}")


def _at_most(value: int | float, high: int | float, where: str) -> None:
    check_range(where, value, high=high, error=SpecError)


def _parse_mixer(data: Any, where: str) -> MixerSpec:
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: expected a mixer name or mapping, found {data!r}")
    if "name" not in data:
        raise SpecError(f"{where}.name: required key is missing")
    name = data["name"]
    try:
        entry = get_mixer(name)
    except KeyError as err:
        raise SpecError(f"{where}.name: {err.args[0]}") from None
    knobs = {k: v for k, v in data.items() if k != "name"}
    for key in knobs:
        if key not in entry.defaults:
            hint = suggest(str(key), entry.defaults)
            raise SpecError(
                f"{where}.{key}: unknown knob for mixer {name!r}{hint}; "
                f"allowed: {sorted(entry.defaults)}"
            )
    return MixerSpec(name, knobs)


def _parse_override(data: Any, where: str, depth: int) -> BlockOverride:
    data = expect_mapping(data, where, {"last", "every", "blocks", "mixer"})
    given = [key for key in ("last", "every", "blocks") if key in data]
    if len(given) != 1:
        raise SpecError(
            f"{where}: give exactly one of 'last' (an int), 'every' (an int) or 'blocks' "
            f"(a list), found {given or 'none'}"
        )
    mixer = _parse_mixer(data.get("mixer"), f"{where}.mixer")
    if "last" in data or "every" in data:
        key = given[0]
        value = _typed(data, key, int, where, _REQUIRED)
        if not 1 <= value <= depth:
            raise SpecError(f"{where}.{key}: expected 1..{depth} (the stage depth), found {value}")
        return BlockOverride(mixer, **{key: value})
    blocks = data["blocks"]
    if not isinstance(blocks, list) or not all(isinstance(b, int) for b in blocks):
        raise SpecError(f"{where}.blocks: expected a list of block indices, found {blocks!r}")
    for b in blocks:
        if not -depth <= b < depth:
            raise SpecError(f"{where}.blocks: index {b} out of range for a stage of depth {depth}")
    return BlockOverride(mixer, blocks=tuple(blocks))


def _parse_stage(data: Any, where: str) -> StageSpec:
    allowed = {"depth", "dim", "mixer", "overrides", "mlp_ratio", "res_scale", "layer_scale"}
    data = expect_mapping(data, where, allowed)
    depth = _typed(data, "depth", int, where, _REQUIRED)
    dim = _typed(data, "dim", int, where, _REQUIRED)
    _positive(depth, f"{where}.depth")
    _positive(dim, f"{where}.dim")
    _at_most(depth, MAX_DEPTH, f"{where}.depth")
    _at_most(dim, MAX_DIM, f"{where}.dim")
    if "mixer" not in data:
        raise SpecError(f"{where}.mixer: required key is missing")
    overrides = data.get("overrides") or []
    if not isinstance(overrides, list):
        raise SpecError(f"{where}.overrides: expected a list, found {overrides!r}")
    mlp_ratio = _typed(data, "mlp_ratio", float, where, 4.0)
    _positive(mlp_ratio, f"{where}.mlp_ratio")
    _at_most(mlp_ratio, MAX_MLP_RATIO, f"{where}.mlp_ratio")
    return StageSpec(
        depth=depth,
        dim=dim,
        mixer=_parse_mixer(data["mixer"], f"{where}.mixer"),
        overrides=tuple(
            _parse_override(o, f"{where}.overrides[{i}]", depth) for i, o in enumerate(overrides)
        ),
        mlp_ratio=mlp_ratio,
        res_scale=_typed(data, "res_scale", bool, where, False),
        layer_scale=_typed(data, "layer_scale", (float, type(None)), where, None),
    )


def _parse_choice(data: dict[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = _typed(data, key, str, "arch", default)
    if value not in choices:
        raise SpecError(
            f"arch.{key}: expected one of {', '.join(map(repr, choices))}, found {value!r}"
            f"{suggest(value, choices)}"
        )
    return value


def _parse_layout(data: Any, key: str, defaults: dict[str, int]) -> dict[str, int]:
    """A stem or downsampling conv layout: kernel_size, stride, padding (ints)."""
    where = f"arch.{key}"
    layout = expect_mapping(data.get(key, {}), where, set(defaults))
    return {k: _typed(layout, k, int, where, d) for k, d in defaults.items()}


def _parse_arch(data: Any) -> ArchSpec:
    allowed = {
        "name",
        "num_classes",
        "image_size",
        "in_chans",
        "drop_path_rate",
        "block",
        "norm",
        "stem",
        "downsample",
        "head",
        "stages",
    }
    data = expect_mapping(data, "arch", allowed)
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise SpecError(f"arch.stages: expected a non-empty list of stages, found {stages!r}")
    if len(stages) > MAX_STAGES:
        raise SpecError(f"arch.stages: expected at most {MAX_STAGES} stages, found {len(stages)}")
    head = expect_mapping(data.get("head", {}), "arch.head", {"kind", "hidden_ratio", "dropout"})
    head_kind = _typed(head, "kind", str, "arch.head", "mlp")
    if head_kind not in ("mlp", "linear"):
        raise SpecError(f"arch.head.kind: expected 'mlp' or 'linear', found {head_kind!r}")
    spec = ArchSpec(
        name=_typed(data, "name", str, "arch", "custom"),
        num_classes=_typed(data, "num_classes", (int, type(None)), "arch", None),
        image_size=_typed(data, "image_size", int, "arch", 224),
        in_chans=_typed(data, "in_chans", int, "arch", 3),
        drop_path_rate=_typed(data, "drop_path_rate", float, "arch", 0.0),
        block=_parse_choice(data, "block", BLOCKS, "metaformer"),
        norm=_parse_choice(data, "norm", NORMS, "layernorm"),
        stem=StemSpec(**_parse_layout(data, "stem", _STEM_DEFAULTS)),
        downsample=DownsampleSpec(**_parse_layout(data, "downsample", _DOWNSAMPLE_DEFAULTS)),
        head=HeadSpec(
            kind=head_kind,
            hidden_ratio=_typed(head, "hidden_ratio", float, "arch.head", 4.0),
            dropout=_typed(head, "dropout", float, "arch.head", 0.0),
        ),
        stages=tuple(_parse_stage(s, f"arch.stages[{i}]") for i, s in enumerate(stages)),
    )
    validate(spec)
    return spec


_STEM_DEFAULTS = dataclasses.asdict(StemSpec())
_DOWNSAMPLE_DEFAULTS = dataclasses.asdict(DownsampleSpec())
_LATER_FIELDS: dict[str, Any] = {
    "block": "metaformer",
    "norm": "layernorm",
    "downsample": _DOWNSAMPLE_DEFAULTS,
}
"""Spec fields added after content hashes were first stored, with the default that builds what
specs without them always built; at that default they stay out of the hash."""


def validate(spec: ArchSpec) -> None:
    """Check what needs the whole spec: sizes, drop-path range, and every block's mixer knobs
    against its mixer at the stage width (e.g. channel splits that must divide ``dim``)."""
    _positive(spec.image_size, "arch.image_size")
    _positive(spec.in_chans, "arch.in_chans")
    _at_most(spec.image_size, MAX_IMAGE_SIZE, "arch.image_size")
    _at_most(spec.in_chans, MAX_STEM, "arch.in_chans")
    _at_most(spec.head.hidden_ratio, MAX_MLP_RATIO, "arch.head.hidden_ratio")
    if not 0.0 <= spec.drop_path_rate < 1.0:
        raise SpecError(
            f"arch.drop_path_rate: expected a value in [0, 1), found {spec.drop_path_rate}"
        )
    if not 0.0 <= spec.head.dropout < 1.0:
        raise SpecError(f"arch.head.dropout: expected a value in [0, 1), found {spec.head.dropout}")
    if spec.num_classes is not None:
        _positive(spec.num_classes, "arch.num_classes")
        _at_most(spec.num_classes, MAX_CLASSES, "arch.num_classes")
    for part in ("stem", "downsample"):
        for key, value in dataclasses.asdict(getattr(spec, part)).items():
            _positive(value + (key == "padding"), f"arch.{part}.{key}")
            _at_most(value, MAX_STEM, f"arch.{part}.{key}")
    if min(spec.grid_sizes()) < 1:
        raise SpecError(
            f"arch.image_size: {spec.image_size} px is too small for {len(spec.stages)} stages"
        )
    for i, stage in enumerate(spec.stages):
        mixers = [(f"arch.stages[{i}].mixer", stage.mixer)] + [
            (f"arch.stages[{i}].overrides[{j}].mixer", o.mixer)
            for j, o in enumerate(stage.overrides)
        ]
        for where, mixer in mixers:
            knobs = spec.resolved_knobs(i, mixer)
            try:
                get_mixer(mixer.name).check(stage.dim, knobs, where=where)
            except ValueError as err:
                raise SpecError(f"{err} (stage dim {stage.dim})") from None
