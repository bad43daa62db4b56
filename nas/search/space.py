"""The architecture search space and its define-by-run sampling.

A space is a MetaFormer template whose values may be searched. Every value is either fixed
(a plain scalar), a categorical ``{choices: [...]}``, or a range ``{low, high, step?, log?}``.
For the whole model one may search the block type (``block``: ``metaformer`` or ``convnext``)
and the blocks' norm (``norm``: ``layernorm`` or ``groupnorm1``); per stage the depth, width,
mixer, layer scale and where attention goes between the mixer's blocks (hybrids: the last k
blocks, ``attention_last``, or every n-th, ``attention_every``);
each mixer's knobs live under ``mixers.<name>`` and are sampled only for the stages where that
mixer was chosen (conditional parameters, named ``s<i>.<mixer>.<knob>``), so a trial never
carries a knob of a mixer it does not use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from nas.arch.spec import (
    BLOCKS,
    MAX_DEPTH,
    MAX_DIM,
    MAX_MLP_RATIO,
    NORMS,
    ArchSpec,
    SpecError,
    expect_mapping,
)
from nas.errors import NasError
from nas.mixers.registry import get_mixer, list_mixers, suggest
from nas.typed_config import check_range


class ParamSampler(Protocol):
    """The part of ``optuna.Trial`` sampling needs (define-by-run suggestions)."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...
    def suggest_int(
        self, name: str, low: int, high: int, step: int = 1, log: bool = False
    ) -> int: ...
    def suggest_float(
        self, name: str, low: float, high: float, step: float | None = None, log: bool = False
    ) -> float: ...


class SpaceError(NasError):
    """An invalid search space; the message starts with the key path."""


@dataclass(frozen=True)
class Param:
    """A searched or fixed value: ``fixed``, or ``choices``, or an int/float range."""

    fixed: Any = None
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    @property
    def searched(self) -> bool:
        return self.choices is not None or self.low is not None

    def values(self) -> list[Any]:
        """Every value a categorical or fixed param can take (ranges give their bounds)."""
        if self.choices is not None:
            return list(self.choices)
        if self.low is not None:
            return [self.low, self.high]
        return [self.fixed]

    def sample(self, trial: ParamSampler, name: str) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(name, list(self.choices))
        if self.low is None:
            return self.fixed
        if (
            isinstance(self.low, int)
            and isinstance(self.high, int)
            and not isinstance(self.step, float)
        ):
            return trial.suggest_int(
                name, self.low, self.high, step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(
            name, float(self.low), float(self.high), step=self.step, log=self.log
        )

    def to_yaml(self) -> Any:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        if self.low is not None:
            out = {"low": self.low, "high": self.high}
            if self.step is not None:
                out["step"] = self.step
            if self.log:
                out["log"] = True
            return out
        return self.fixed


def parse_param(data: Any, where: str, kind: type | tuple[type, ...] | None = None) -> Param:
    """Parse a value of the space; ``kind`` restricts the type of every value it can take."""
    if isinstance(data, Mapping):
        keys = set(data)
        if "choices" in keys:
            if keys != {"choices"}:
                raise SpaceError(
                    f"{where}: 'choices' cannot be combined with {sorted(keys - {'choices'})}"
                )
            choices = data["choices"]
            if not isinstance(choices, list) or not choices:
                raise SpaceError(f"{where}.choices: expected a non-empty list, found {choices!r}")
            for i, value in enumerate(choices):
                _check_kind(value, kind, f"{where}.choices[{i}]")
            return Param(choices=tuple(choices))
        if keys & {"low", "high"}:
            extra = keys - {"low", "high", "step", "log"}
            if extra:
                key = sorted(extra)[0]
                raise SpaceError(
                    f"{where}.{key}: unknown key{suggest(key, ['low', 'high', 'step', 'log'])}; "
                    "a range takes low, high, step, log"
                )
            for key in ("low", "high"):
                if key not in data:
                    raise SpaceError(f"{where}.{key}: required key of a range is missing")
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise SpaceError(f"{where}.{key}: expected a number, found {value!r}")
                _check_kind(value, kind, f"{where}.{key}")
            if data["low"] > data["high"]:
                raise SpaceError(f"{where}: low {data['low']} is greater than high {data['high']}")
            if data.get("log") and data["low"] <= 0:
                raise SpaceError(f"{where}.low: a log range needs low > 0, found {data['low']}")
            return Param(
                low=data["low"], high=data["high"], step=data.get("step"), log=bool(data.get("log"))
            )
        raise SpaceError(
            f"{where}: expected a value, {{choices: [...]}} or {{low, high}}, "
            f"found keys {sorted(keys)}"
        )
    _check_kind(data, kind, where)
    return Param(fixed=data)


def _check_kind(value: Any, kind: type | tuple[type, ...] | None, where: str) -> None:
    if kind is None:
        return
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    else:
        ok = isinstance(value, kinds) or (float in kinds and isinstance(value, int))
    if not ok:
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise SpaceError(f"{where}: expected {names}, found {type(value).__name__} {value!r}")


@dataclass(frozen=True)
class StageSpace:
    depth: Param
    dim: Param
    mixer: Param
    attention_last: Param = Param(fixed=0)
    attention_every: Param = Param(fixed=0)
    mlp_ratio: Param = Param(fixed=4.0)
    res_scale: bool = False
    layer_scale: Param = Param(fixed=None)


@dataclass(frozen=True)
class SearchSpace:
    """The MetaFormer template: searched stages plus fixed whole-model settings."""

    stages: tuple[StageSpace, ...]
    mixers: Mapping[str, Mapping[str, Param]] = field(default_factory=dict)
    image_size: int = 224
    drop_path_rate: float = 0.0
    block: Param = Param(fixed="metaformer")
    norm: Param = Param(fixed="layernorm")
    head: Mapping[str, Any] = field(default_factory=dict)
    stem: Mapping[str, Any] = field(default_factory=dict)
    downsample: Mapping[str, Any] = field(default_factory=dict)

    def knob_space(self, mixer: str) -> dict[str, Param]:
        return dict(self.mixers.get(mixer, {}))

    def sample(self, trial: ParamSampler) -> ArchSpec:
        """Sample an architecture define-by-run; raises ``SpecError`` if the combination is
        invalid (e.g. a width not divisible as the chosen mixer requires)."""
        block = self.block.sample(trial, "block")
        norm = self.norm.sample(trial, "norm")
        stages = []
        for i, stage in enumerate(self.stages):
            depth = stage.depth.sample(trial, f"s{i}.depth")
            mixer = stage.mixer.sample(trial, f"s{i}.mixer")
            knobs = {
                k: p.sample(trial, f"s{i}.{mixer}.{k}") for k, p in self.knob_space(mixer).items()
            }
            out: dict[str, Any] = {
                "depth": depth,
                "dim": stage.dim.sample(trial, f"s{i}.dim"),
                "mixer": {"name": mixer, **knobs},
                "mlp_ratio": stage.mlp_ratio.sample(trial, f"s{i}.mlp_ratio"),
                "res_scale": stage.res_scale,
                "layer_scale": stage.layer_scale.sample(trial, f"s{i}.layer_scale"),
            }
            if mixer != "attention":
                placement = {
                    "last": stage.attention_last.sample(trial, f"s{i}.attention_last"),
                    "every": stage.attention_every.sample(trial, f"s{i}.attention_every"),
                }
                placement = {k: min(v, depth) for k, v in placement.items() if v}
                if placement:
                    attn = {
                        k: p.sample(trial, f"s{i}.hybrid_attention.{k}")
                        for k, p in self.knob_space("attention").items()
                    }
                    out["overrides"] = [
                        {key: value, "mixer": {"name": "attention", **attn}}
                        for key, value in placement.items()
                    ]
            stages.append(out)
        return ArchSpec.from_dict(
            {
                "name": "trial",
                "image_size": self.image_size,
                "drop_path_rate": self.drop_path_rate,
                "block": block,
                "norm": norm,
                "head": dict(self.head),
                "stem": dict(self.stem),
                "downsample": dict(self.downsample),
                "stages": stages,
            }
        )


_STAGE_KEYS = {
    "depth",
    "dim",
    "mixer",
    "attention_last",
    "attention_every",
    "mlp_ratio",
    "res_scale",
    "layer_scale",
}
_SPACE_KEYS = {
    "stages",
    "mixers",
    "image_size",
    "drop_path_rate",
    "block",
    "norm",
    "head",
    "stem",
    "downsample",
}


def _positive_ints(param: Param, where: str, high: int) -> None:
    for value in param.values():
        if value <= 0:
            raise SpaceError(f"{where}: expected positive values, found {value!r}")
        check_range(where, value, high=high, error=SpaceError)


def _parse_stage(data: Any, where: str) -> StageSpace:
    data = expect_mapping(data, where, _STAGE_KEYS, SpaceError)
    for key in ("depth", "dim", "mixer"):
        if key not in data:
            raise SpaceError(f"{where}.{key}: required key is missing")
    depth = parse_param(data["depth"], f"{where}.depth", int)
    dim = parse_param(data["dim"], f"{where}.dim", int)
    _positive_ints(depth, f"{where}.depth", MAX_DEPTH)
    _positive_ints(dim, f"{where}.dim", MAX_DIM)
    mixer = parse_param(data["mixer"], f"{where}.mixer", str)
    if mixer.low is not None:
        raise SpaceError(
            f"{where}.mixer: expected a mixer name or {{choices: [...]}}, found a range"
        )
    for i, name in enumerate(mixer.values()):
        if name not in list_mixers():
            at = f"{where}.mixer.choices[{i}]" if mixer.choices else f"{where}.mixer"
            raise SpaceError(
                f"{at}: unknown mixer {name!r}{suggest(name, list_mixers())}; "
                f"registered mixers: {list_mixers()}"
            )
    placement = {}
    for key in ("attention_last", "attention_every"):
        placement[key] = parse_param(data.get(key, 0), f"{where}.{key}", int)
        if any(v < 0 for v in placement[key].values()):
            raise SpaceError(
                f"{where}.{key}: expected values >= 0, found {placement[key].values()}"
            )
        for value in placement[key].values():
            check_range(f"{where}.{key}", value, high=MAX_DEPTH, error=SpaceError)
    mlp_ratio = parse_param(data.get("mlp_ratio", 4.0), f"{where}.mlp_ratio", float)
    for value in mlp_ratio.values():
        check_range(f"{where}.mlp_ratio", value, above=0, high=MAX_MLP_RATIO, error=SpaceError)
    res_scale = data.get("res_scale", False)
    _check_kind(res_scale, bool, f"{where}.res_scale")
    layer_scale = parse_param(data.get("layer_scale"), f"{where}.layer_scale", (float, type(None)))
    for value in layer_scale.values():
        check_range(f"{where}.layer_scale", value, above=0, error=SpaceError)
    return StageSpace(
        depth=depth,
        dim=dim,
        mixer=mixer,
        **placement,
        mlp_ratio=mlp_ratio,
        res_scale=res_scale,
        layer_scale=layer_scale,
    )


def _parse_knob_spaces(data: Any, where: str) -> dict[str, dict[str, Param]]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SpaceError(
            f"{where}: expected a mapping of mixer name to knob spaces, found {data!r}"
        )
    out: dict[str, dict[str, Param]] = {}
    for name, knobs in data.items():
        if name not in list_mixers():
            raise SpaceError(
                f"{where}.{name}: unknown mixer{suggest(str(name), list_mixers())}; "
                f"registered mixers: {list_mixers()}"
            )
        allowed = get_mixer(name).defaults
        knobs = knobs or {}
        if not isinstance(knobs, Mapping):
            raise SpaceError(f"{where}.{name}: expected a mapping of knob spaces, found {knobs!r}")
        out[name] = {}
        for knob, value in knobs.items():
            if knob not in allowed:
                raise SpaceError(
                    f"{where}.{name}.{knob}: unknown knob for mixer {name!r}"
                    f"{suggest(str(knob), allowed)}; allowed: {sorted(allowed)}"
                )
            if knob == "grid_size":
                raise SpaceError(
                    f"{where}.{name}.grid_size: set by the builder from space.image_size, "
                    "not searched"
                )
            out[name][knob] = parse_param(value, f"{where}.{name}.{knob}")
    return out


def parse_space(data: Any, where: str = "space") -> SearchSpace:
    """Validate a ``space`` mapping into a :class:`SearchSpace`.

    Beyond types, every value a knob can take is checked against its mixer at every width the
    stages using that mixer can take, so a typo such as ``kernel_size: 4`` fails here, before Ray
    starts, rather than as a failed trial.
    """
    data = expect_mapping(data, where, _SPACE_KEYS, SpaceError)
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise SpaceError(f"{where}.stages: expected a non-empty list of stages, found {stages!r}")
    image_size = data.get("image_size", 224)
    _check_kind(image_size, int, f"{where}.image_size")
    drop_path_rate = data.get("drop_path_rate", 0.0)
    _check_kind(drop_path_rate, float, f"{where}.drop_path_rate")
    layouts = {key: data.get(key) or {} for key in ("head", "stem", "downsample")}
    for key, value in layouts.items():
        if not isinstance(value, Mapping):
            raise SpaceError(f"{where}.{key}: expected a mapping, found {value!r}")
    space = SearchSpace(
        stages=tuple(_parse_stage(s, f"{where}.stages[{i}]") for i, s in enumerate(stages)),
        mixers=_parse_knob_spaces(data.get("mixers"), f"{where}.mixers"),
        image_size=image_size,
        drop_path_rate=float(drop_path_rate),
        block=_parse_named_choice(data, "block", BLOCKS, where),
        norm=_parse_named_choice(data, "norm", NORMS, where),
        **{key: dict(value) for key, value in layouts.items()},
    )
    _check_knob_values(space, where)
    _check_template(space, where)
    return space


def _parse_named_choice(
    data: Mapping[str, Any], key: str, names: tuple[str, ...], where: str
) -> Param:
    """A whole-model choice among ``names`` (``block``, ``norm``), fixed or searched;
    absent, the first (the spec's default)."""
    param = parse_param(data.get(key, names[0]), f"{where}.{key}", str)
    if param.low is not None:
        raise SpaceError(f"{where}.{key}: expected one of {list(names)} or {{choices: [...]}}")
    for i, value in enumerate(param.values()):
        if value not in names:
            at = f"{where}.{key}.choices[{i}]" if param.choices else f"{where}.{key}"
            raise SpaceError(f"{at}: expected one of {list(names)}, found {value!r}")
    return param


def _check_knob_values(space: SearchSpace, where: str) -> None:
    """Each knob value alone (others at their defaults) must be valid at some width it meets."""
    for name, knobs in space.mixers.items():
        dims = sorted(
            {d for s in space.stages if name in s.mixer.values() for d in s.dim.values()}
            | ({d for s in space.stages for d in s.dim.values()} if name == "attention" else set())
        )
        entry = get_mixer(name)
        for knob, param in knobs.items():
            if param.low is not None:
                continue
            for value in param.values():
                errors = []
                for dim in dims or [64]:
                    try:
                        entry.check(dim, {**entry.defaults, knob: value})
                        break
                    except ValueError as err:
                        errors.append(str(err))
                else:
                    raise SpaceError(
                        f"{where}.mixers.{name}.{knob}: value {value!r} is invalid: {errors[0]}"
                    )


def _check_template(space: SearchSpace, where: str) -> None:
    """The fixed parts (head, stem, sizes) must form a valid spec with the first choices."""

    class First:
        def suggest_categorical(self, name: str, choices: Any) -> Any:
            return choices[0]

        def suggest_int(
            self, name: str, low: int, high: int, step: int = 1, log: bool = False
        ) -> int:
            return low

        def suggest_float(self, name, low, high, step=None, log=False) -> float:
            return low

    try:
        space.sample(First())
    except SpecError as err:
        message = str(err)
        if message.startswith(("arch.head", "arch.stem", "arch.downsample")):
            raise SpaceError(f"{where}.{message[len('arch.') :]}") from None
        if message.startswith("arch.image_size") or message.startswith("arch.drop_path_rate"):
            raise SpaceError(f"{where}.{message[len('arch.') :]}") from None


class _RangeParam(Exception):
    """Raised by the enumerating sampler: a numeric range has no finite list of values."""


class _Script:
    """A sampler that replays a prefix of choice indices, then takes the first choice."""

    def __init__(self, prefix: tuple[int, ...]):
        self.prefix = prefix
        self.taken: list[int] = []
        self.sizes: list[int] = []

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        i = len(self.taken)
        index = self.prefix[i] if i < len(self.prefix) else 0
        self.taken.append(index)
        self.sizes.append(len(choices))
        return choices[index]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        if low != high:
            raise _RangeParam(name)
        return low

    def suggest_float(self, name, low, high, step=None, log=False) -> float:
        if low != high:
            raise _RangeParam(name)
        return low


def enumerate_architectures(space: SearchSpace, max_paths: int = 10_000) -> list[ArchSpec] | None:
    """Every distinct valid architecture of ``space`` (first occurrence of each content hash),
    or None when the space has a numeric range or more than ``max_paths`` sampling paths.

    A depth-first walk of the define-by-run tree: each path fixes a prefix of choices and
    takes the first choice afterwards; every later decision point spawns its alternatives, so
    each path is visited once. Conditional knobs are enumerated only where they exist.
    """
    found: dict[str, ArchSpec] = {}
    stack: list[tuple[int, ...]] = [()]
    paths = 0
    while stack:
        prefix = stack.pop()
        paths += 1
        if paths > max_paths:
            return None
        script = _Script(prefix)
        try:
            spec: ArchSpec | None = space.sample(script)
        except _RangeParam:
            return None
        except SpecError:
            spec = None
        for depth in range(len(prefix), len(script.sizes)):
            for alternative in range(1, script.sizes[depth]):
                stack.append((*script.taken[:depth], alternative))
        if spec is not None:
            found.setdefault(spec.content_hash(), spec)
    return list(found.values())
