"""The search file: what to search, how to judge it, how to run it, where to store it.

Loaded with OmegaConf; command-line overrides use Hydra's grammar (``search.trials=50``,
``storage=postgresql://...``, ``+key=value`` to add, ``~key`` to delete). Every section is a typed
dataclass validated by :mod:`nas.typed_config`, and the ``space`` section by
:mod:`nas.search.space`, so a wrong file fails with the key path before Ray starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nas.arch.spec import MAX_IMAGE_SIZE, ArchSpec
from nas.search.references import parse_references, project_references
from nas.search.space import SearchSpace, SpaceError, parse_space
from nas.training.device import check_device
from nas.training.proxy_config import ProxyConfig
from nas.typed_config import ConfigError, check_range, convert, dump, load, suggest
from nas.yaml_io import read_mapping

MAX_BATCH = 4096
"""The largest batch a throughput measurement or a prescreen scores at once."""


@dataclass(frozen=True)
class SamplerSettings:
    """Optuna sampler: multivariate TPE (grouped, for the conditional space), NSGA-II or random."""

    kind: Literal["tpe", "nsga2", "random"] = "tpe"
    n_startup_trials: int = 8
    population_size: int = 16

    def __post_init__(self) -> None:
        check_range("n_startup_trials", self.n_startup_trials, low=0)
        check_range("population_size", self.population_size, low=2)


@dataclass(frozen=True)
class PrunerSettings:
    """Early stopping of running trials; ``pareto_sh`` for multi-objective studies."""

    kind: Literal["pareto_sh", "median", "successive_halving", "hyperband", "none"] = "pareto_sh"
    min_resource: int = 1
    reduction_factor: int = 2
    n_startup_trials: int = 4
    n_warmup_steps: int = 1

    def __post_init__(self) -> None:
        check_range("min_resource", self.min_resource, low=1)
        check_range("reduction_factor", self.reduction_factor, low=2)
        check_range("n_startup_trials", self.n_startup_trials, low=0)
        check_range("n_warmup_steps", self.n_warmup_steps, low=0)


@dataclass(frozen=True)
class PrescreenSettings:
    """Zero-cost pre-screening: of every ``1 / keep`` new architectures the sampler proposes,
    train only the one the zero-cost ``proxy`` (scored at initialisation on one batch of
    ``batch`` training images) ranks best; the others are told to the sampler as failed."""

    proxy: str | None = None
    keep: float = 0.5
    batch: int = 64

    def __post_init__(self) -> None:
        if not 0.0 < self.keep <= 1.0:
            raise ValueError(f"keep: expected a fraction in (0, 1], found {self.keep}")
        check_range("batch", self.batch, low=2, high=MAX_BATCH)

    @property
    def candidates(self) -> int:
        """How many proposals compete for one training."""
        return max(1, round(1.0 / self.keep)) if self.proxy else 1


@dataclass(frozen=True)
class SearchSettings:
    """``trials`` counts distinct architectures trained: a proposal of an architecture the search
    already trained (a duplicate) costs nothing and is told its twin's result. After
    ``max_duplicate_asks`` proposals in a row without a new architecture the search ends early
    (the sampler has converged or the space is exhausted)."""

    trials: int = 24
    max_concurrent: int = 2
    seed: int = 0
    timeout_minutes: float | None = None
    study: str | None = None
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    pruner: PrunerSettings = field(default_factory=PrunerSettings)
    max_duplicate_asks: int = 50

    def __post_init__(self) -> None:
        if self.max_duplicate_asks < 1:
            raise ValueError(f"max_duplicate_asks: expected >= 1, found {self.max_duplicate_asks}")
        if self.trials < 1:
            raise ValueError(f"trials: expected >= 1, found {self.trials}")
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent: expected >= 1, found {self.max_concurrent}")
        check_range("timeout_minutes", self.timeout_minutes, above=0)


@dataclass(frozen=True)
class Objective:
    """``accuracy`` (proxy val top-1), ``throughput`` (img/s), ``params`` (M), ``macs`` (G)."""

    name: Literal["accuracy", "throughput", "params", "macs"]
    direction: Literal["maximize", "minimize"]


@dataclass(frozen=True)
class ThroughputSettings:
    """How the full-size architecture's throughput is measured (timm benchmark style).

    A round of ``repeats`` timed blocks whose interquartile range exceeds ``max_relative_iqr``
    of its median is measured again, up to ``max_rounds`` rounds (null: never re-measure).
    """

    device: str = "cpu"
    resolution: int | None = None
    batch: int = 32
    precision: Literal["fp32", "bf16"] = "fp32"
    compile: bool = False
    channels_last: bool = True
    mode: Literal["inference", "train"] = "inference"
    threads: int | None = None
    repeats: int = 5
    max_relative_iqr: float | None = 0.05
    max_rounds: int = 3

    def __post_init__(self) -> None:
        check_range("resolution", self.resolution, low=1, high=MAX_IMAGE_SIZE)
        check_range("batch", self.batch, low=1, high=MAX_BATCH)
        check_range("threads", self.threads, low=1)
        check_range("repeats", self.repeats, low=1)
        if self.max_rounds < 1:
            raise ValueError(f"max_rounds: expected an integer >= 1, found {self.max_rounds}")
        if self.max_relative_iqr is not None and self.max_relative_iqr <= 0:
            raise ValueError(
                f"max_relative_iqr: expected null or a positive fraction, "
                f"found {self.max_relative_iqr}"
            )

    def key(self) -> str:
        """Identifies the measurement setting in the store (one architecture, many settings)."""
        return json.dumps(dump(self), sort_keys=True)


def stored_throughput_key(config: dict[str, Any] | None) -> str:
    """The measurement-setting key of a stored search configuration (``nas_searches.config``):
    which ``nas_throughput`` rows that search measured."""
    return load(ThroughputSettings, (config or {}).get("throughput"), "throughput").key()


@dataclass(frozen=True)
class Constraints:
    """Checked before any training; a violating architecture ends its trial as failed."""

    max_params_m: float | None = None
    max_gmacs: float | None = None
    min_throughput: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_params_m", "max_gmacs", "min_throughput"):
            check_range(name, getattr(self, name), above=0)


RESERVED_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")
"""Ray's own resources of a node, never a custom resource."""


@dataclass(frozen=True)
class Resources:
    """Ray resources per trial; fractional GPUs let several trials share one device (each
    trial trains on the GPU Ray assigns it). ``custom`` asks for custom resources of the
    nodes (``ray start --resources='{"a100": 1}'``), e.g. to keep trials on nodes of one
    device type so their throughputs compare."""

    cpu: float = 1.0
    gpu: float = 0.0
    custom: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_range("cpu", self.cpu, above=0)
        check_range("gpu", self.gpu, low=0)


def _resources(data: Any, devices: dict[str, str]) -> Resources:
    """``resources`` checked: custom resources by name and amount, and devices a trial can
    see: with GPUs from Ray, a trial sees only the ones it was assigned, from ``cuda:0``."""
    resources = load(Resources, data, "resources")
    for name, amount in resources.custom.items():
        if not isinstance(name, str) or not name or name in RESERVED_RESOURCES:
            raise ConfigError(
                f"resources.custom: expected custom resource names, found {name!r} (cpu and "
                f"gpu have their own keys; {', '.join(RESERVED_RESOURCES)} are Ray's own)"
            )
        where = f"resources.custom.{name}"
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise ConfigError(f"{where}: expected a number, found {amount!r}")
        check_range(where, amount, above=0)
    visible = math.ceil(resources.gpu)
    for where, device in devices.items():
        index = device.partition(":")[2]
        if resources.gpu > 0 and device.startswith("cuda:") and int(index) >= visible:
            raise ConfigError(
                f"{where}: {device!r}, but a trial sees only the {visible} GPU"
                f"{'s' if visible > 1 else ''} Ray assigns it (resources.gpu "
                f"{resources.gpu:g}), from cuda:0; use cuda or auto"
            )
    return resources


@dataclass(frozen=True)
class RaySettings:
    """``address: auto`` joins a running cluster (``ray start --head``); null starts a local one."""

    address: str | None = None


@dataclass(frozen=True)
class SearchConfig:
    name: str
    space: SearchSpace
    search: SearchSettings = field(default_factory=SearchSettings)
    objectives: tuple[Objective, ...] = (
        Objective("accuracy", "maximize"),
        Objective("throughput", "maximize"),
    )
    throughput: ThroughputSettings = field(default_factory=ThroughputSettings)
    constraints: Constraints = field(default_factory=Constraints)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    prescreen: PrescreenSettings = field(default_factory=PrescreenSettings)
    resources: Resources = field(default_factory=Resources)
    ray: RaySettings = field(default_factory=RaySettings)
    storage: str | None = None
    run_dir: str = "runs"
    references: dict[str, ArchSpec] = field(default_factory=dict, compare=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    def storage_url(self) -> str:
        """The store: the configured URL, else SQLite in the run folder."""
        if self.storage:
            return self.storage
        path = Path(self.run_dir).resolve() / self.name / "search.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"

    @property
    def stored_raw(self) -> dict[str, Any]:
        """``raw`` as it may be stored or shown: the storage URL with its password masked
        (whoever reads the row already holds the URL; a re-run is given it again)."""
        if not self.raw.get("storage"):
            return self.raw
        from nas.store.engine import mask_url

        return {**self.raw, "storage": mask_url(str(self.raw["storage"]))}

    def fingerprint(self) -> str:
        """What makes two runs the same search: everything but where and how wide it runs.
        A command started again with the same fingerprint resumes the unfinished search."""
        keep = {k: v for k, v in self.raw.items() if k not in ("ray", "resources", "run_dir")}
        keep["search"] = {k: v for k, v in keep.get("search", {}).items() if k != "max_concurrent"}
        blob = json.dumps(keep, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


SINGLE_OBJECTIVE_PRUNERS = ("median", "successive_halving", "hyperband")
_TOP_KEYS = {
    "name",
    "space",
    "search",
    "objectives",
    "throughput",
    "constraints",
    "proxy",
    "resources",
    "ray",
    "storage",
    "run_dir",
    "references",
    "prescreen",
}


def apply_overrides(cfg: Any, overrides: list[str], source: str) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as err:
        raise ConfigError(f"command-line override: {err}") from None
    for override in parsed:
        key = override.key_or_group
        exists = OmegaConf.select(cfg, key, throw_on_missing=False, default=_ABSENT) is not _ABSENT
        if override.is_delete():
            if not exists:
                raise ConfigError(f"override ~{key}: {key} is not in {source}")
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(cfg, parent) if parent else cfg
            del node[int(leaf) if leaf.isdigit() else leaf]
            continue
        if (
            not exists
            and not override.is_add()
            and not override.is_force_add()
            and not _in_schema(key)
        ):
            missing, siblings = _first_missing(cfg, key)
            raise ConfigError(
                f"override {key}={override.input_line.split('=', 1)[-1]}: {key} is not in {source}"
                f"{suggest(missing, siblings)}; use +{key}=... to add a key"
            )
        OmegaConf.update(cfg, key, override.value(), merge=False, force_add=True)


_ABSENT = object()


def _first_missing(cfg: Any, key: str) -> tuple[str, list[str]]:
    """The first segment of ``key`` absent from ``cfg``, and the keys beside it."""
    node, siblings = cfg, sorted(set(cfg.keys()) | _TOP_KEYS)
    for part in key.split("."):
        if not OmegaConf.is_dict(node) or part not in node:
            return part, siblings
        node = node[part]
        siblings = list(node.keys()) if OmegaConf.is_dict(node) else []
    return key, siblings


def _in_schema(key: str) -> bool:
    """Whether a dotted key names a field of the typed sections (so a file may omit it)."""
    tp: Any = SearchConfig
    for part in key.split("."):
        if not dataclasses.is_dataclass(tp) or part in ("space", "raw"):
            return False
        hints = typing.get_type_hints(tp)
        if part not in hints:
            return False
        tp = hints[part]
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            tp = next((a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)), tp)
    return True


def plain_name(value: str | None, key: str) -> str | None:
    """``value`` if it can be one folder name: it becomes a path under the run folder and the
    export folder, so a separator or ``..`` would write outside them."""
    if value is not None and (not value.strip(" .") or any(s in value for s in ("/", "\\", ".."))):
        raise ConfigError(f"{key}: expected a plain name (no '/', '\\' or '..'), found {value!r}")
    return value


def folder_name(name: str) -> str:
    """A name read back from a store (which anyone could have written) as one path component."""
    text = name.replace("/", "_").replace("\\", "_").replace("..", "_")
    return text if text.strip(" .") else "_"


def parse_config(data: Any, default_name: str = "search") -> SearchConfig:
    """Validate a whole search mapping into a :class:`SearchConfig`."""
    if not isinstance(data, dict):
        raise ConfigError(f"search file: expected a mapping at the top, found {data!r}")
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(
                f"{key}: unknown top-level key{suggest(key, _TOP_KEYS)}; "
                f"allowed: {sorted(_TOP_KEYS)}"
            )
    if "space" not in data:
        raise ConfigError("space: required key is missing (the architecture search space)")
    try:
        space = parse_space(data["space"])
    except SpaceError as err:
        raise ConfigError(str(err)) from None
    objectives = convert(
        tuple[Objective, ...],
        data.get(
            "objectives",
            [
                {"name": "accuracy", "direction": "maximize"},
                {"name": "throughput", "direction": "maximize"},
            ],
        ),
        "objectives",
    )
    if not objectives:
        raise ConfigError("objectives: expected at least one objective")
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise ConfigError(f"objectives: each objective may appear once, found {names}")
    if "accuracy" not in names:
        raise ConfigError(f"objectives: 'accuracy' must be one of the objectives, found {names}")
    search = load(SearchSettings, data.get("search"), "search")
    plain_name(search.study, "search.study")
    if len(objectives) > 1 and search.pruner.kind in SINGLE_OBJECTIVE_PRUNERS:
        raise ConfigError(
            f"search.pruner.kind: {search.pruner.kind!r} is a single-objective Optuna pruner but "
            f"the study has {len(objectives)} objectives; use 'pareto_sh' (or 'none')"
        )
    proxy = load(ProxyConfig, data.get("proxy"), "proxy")
    try:
        proxy.validate()
    except ValueError as err:
        message = _dotted(str(err))
        raise ConfigError(message if message.startswith("proxy.") else f"proxy.{message}") from None
    throughput = load(ThroughputSettings, data.get("throughput"), "throughput")
    ray = load(RaySettings, data.get("ray"), "ray")
    for where, device in (("throughput.device", throughput.device), ("proxy.device", proxy.device)):
        check_device(device, where, local=ray.address is None)
    return SearchConfig(
        name=plain_name(convert(str, data.get("name", default_name), "name"), "name"),
        space=space,
        search=search,
        objectives=tuple(objectives),
        throughput=throughput,
        constraints=load(Constraints, data.get("constraints"), "constraints"),
        proxy=proxy,
        prescreen=_prescreen(data.get("prescreen")),
        resources=_resources(
            data.get("resources"),
            {"throughput.device": throughput.device, "proxy.device": proxy.device},
        ),
        ray=ray,
        storage=convert(str | None, data.get("storage"), "storage"),
        run_dir=convert(str, data.get("run_dir", "runs"), "run_dir"),
        references=project_references(parse_references(data.get("references")), space),
        raw=data,
    )


def _prescreen(data: Any) -> PrescreenSettings:
    settings = load(PrescreenSettings, data, "prescreen")
    if settings.proxy is not None:
        from nas.bench.zero_cost import ZERO_COST_PROXIES

        if settings.proxy not in ZERO_COST_PROXIES:
            raise ConfigError(
                f"prescreen.proxy: unknown zero-cost proxy {settings.proxy!r}"
                f"{suggest(settings.proxy, list(ZERO_COST_PROXIES))}; "
                f"expected one of {', '.join(ZERO_COST_PROXIES)}"
            )
    return settings


def _dotted(message: str) -> str:
    """``data name: expected ...`` (the trainer's style) as ``data.name: expected ...``."""
    head, sep, rest = message.partition(": ")
    return head.replace(" ", ".") + sep + rest if sep and " " in head else message


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SearchConfig:
    """Read a search file, apply command-line overrides, and validate the result."""
    path = Path(path)
    try:
        cfg = OmegaConf.create(read_mapping(path, "search file"))
    except OmegaConfBaseException as err:
        raise ConfigError(f"{path}: {str(err).splitlines()[0]}") from None
    apply_overrides(cfg, list(overrides), str(path))
    try:
        data = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        key = f"{err.full_key}: " if getattr(err, "full_key", None) else ""
        raise ConfigError(f"{path}: {key}{str(err).splitlines()[0]}") from None
    try:
        return parse_config(data, default_name=path.stem)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
