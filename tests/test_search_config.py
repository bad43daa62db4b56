"""The search file: loading, overrides, the table of bad files and their messages, and
conditional sampling that never yields a knob of a mixer the trial does not use."""

import copy
import re
from pathlib import Path

import optuna
import pytest
import yaml

from nas.mixers import get_mixer
from nas.search.config import load_config
from nas.typed_config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SPACE_FILES = sorted((ROOT / "search_spaces").glob("*.yaml"))

BASE = {
    "name": "t",
    "search": {"trials": 4, "max_concurrent": 1},
    "space": {
        "image_size": 32,
        "stages": [
            {
                "depth": {"choices": [1, 2]},
                "dim": 32,
                "mixer": {"choices": ["sepconv", "hyena_pixel", "gnconv"]},
            },
            {
                "depth": 1,
                "dim": {"choices": [32, 64]},
                "mixer": {"choices": ["attention", "pooling"]},
                "attention_last": {"choices": [0, 1]},
            },
        ],
        "mixers": {
            "sepconv": {"kernel_size": {"choices": [3, 5]}},
            "hyena_pixel": {
                "order": {"low": 2, "high": 3},
                "kernel_size": {"choices": [7, "global"]},
            },
            "gnconv": {"order": {"choices": [2, 3]}},
            "attention": {"window_size": {"choices": [None, 4]}},
        },
    },
}


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _set(path: str, value) -> dict:
    data = copy.deepcopy(BASE)
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    node[keys[-1]] = value
    return data


@pytest.mark.parametrize("path", SPACE_FILES, ids=lambda p: p.name)
def test_shipped_space_files_load(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.search.trials >= 1
    assert cfg.objective_names[0] == "accuracy"


def test_full_space_offers_every_seed_mixer() -> None:
    cfg = load_config(ROOT / "search_spaces" / "metaformer.yaml")
    offered = {m for stage in cfg.space.stages for m in stage.mixer.values()}
    assert {
        "sepconv",
        "attention",
        "hyena_pixel",
        "hyena",
        "gnconv",
        "parc",
        "dynamic_filter",
        "global_filter",
        "pooling",
    } <= offered
    assert any(v > 0 for s in cfg.space.stages for v in s.attention_last.values())


def test_overrides_change_any_key(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE)
    cfg = load_config(
        path,
        [
            "search.trials=50",
            "storage=postgresql://postgres@127.0.0.1:5432/test",
            "search.sampler.kind=nsga2",
            "space.stages.0.dim=64",
        ],
    )
    assert cfg.search.trials == 50
    assert cfg.storage == "postgresql://postgres@127.0.0.1:5432/test"
    assert cfg.search.sampler.kind == "nsga2"
    assert cfg.space.stages[0].dim.fixed == 64


def test_fingerprint_ignores_concurrency_but_not_budget(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE)
    base = load_config(path).fingerprint()
    assert load_config(path, ["search.max_concurrent=4"]).fingerprint() == base
    assert load_config(path, ["search.trials=9"]).fingerprint() != base


BAD_FILES = [
    (_set("search.trals", 3), r"search.trals: unknown key \(did you mean 'trials'\?\)"),
    (_set("search.trials", "ten"), r"search.trials: expected int, found str 'ten'"),
    (_set("search.trials", 0), r"search.trials: expected >= 1, found 0"),
    (
        _set("search.sampler", {"kind": "tpee"}),
        r"search.sampler.kind: expected one of 'tpe', 'nsga2', 'random', found 'tpee' \(did you mean 'tpe'\?\)",
    ),
    (
        _set("search.pruner", {"kind": "median"}),
        r"search.pruner.kind: 'median' is a single-objective Optuna pruner but the study has 2 objectives; use 'pareto_sh'",
    ),
    (
        _set("objectives", [{"name": "accuracy", "direction": "maximise"}]),
        r"objectives\[0\].direction: expected one of 'maximize', 'minimize', found 'maximise' \(did you mean 'maximize'\?\)",
    ),
    (
        _set("objectives", [{"name": "throughput", "direction": "maximize"}]),
        r"objectives: 'accuracy' must be one of the objectives",
    ),
    (
        _set("objectives", [{"name": "acuracy", "direction": "maximize"}]),
        r"objectives\[0\].name: expected one of .* found 'acuracy' \(did you mean 'accuracy'\?\)",
    ),
    (
        _set("throughput.precision", "fp8"),
        r"throughput.precision: expected one of 'fp32', 'bf16', found 'fp8'",
    ),
    (
        _set("constraints.max_params", 5),
        r"constraints.max_params: unknown key \(did you mean 'max_params_m'\?\)",
    ),
    (_set("resources.gpu", "half"), r"resources.gpu: expected float, found str 'half'"),
    (_set("proxy.epochz", 2), r"proxy.epochz: unknown key \(did you mean 'epochs'\?\)"),
    (_set("proxy.data.name", "imagenett"), r"proxy.data.name: expected one of"),
    (_set("spaec", {}), r"spaec: unknown top-level key \(did you mean 'space'\?\)"),
    (
        _set("space.stages.0.mixer", {"choices": ["sepconv", "hyenapixel"]}),
        r"space.stages\[0\].mixer.choices\[1\]: unknown mixer 'hyenapixel' \(did you mean 'hyena_pixel'\?\)",
    ),
    (
        _set("space.stages.0.mixer", {"choice": ["sepconv"]}),
        r"space.stages\[0\].mixer: expected a value, \{choices: \[...\]\} or \{low, high\}, found keys \['choice'\]",
    ),
    (
        _set("space.stages.0.depth", {"low": 3, "high": 1}),
        r"space.stages\[0\].depth: low 3 is greater than high 1",
    ),
    (
        _set("space.stages.0.dim", {"choices": [32, "64"]}),
        r"space.stages\[0\].dim.choices\[1\]: expected int, found str '64'",
    ),
    (
        _set("space.stages.0.deepth", 2),
        r"space.stages\[0\].deepth: unknown key \(did you mean 'depth'\?\)",
    ),
    (
        _set("space.mixers.sepconv", {"kernal_size": {"choices": [3]}}),
        r"space.mixers.sepconv.kernal_size: unknown knob for mixer 'sepconv' \(did you mean 'kernel_size'\?\)",
    ),
    (
        _set("space.mixers.sepconv", {"kernel_size": {"choices": [3, 4]}}),
        r"space.mixers.sepconv.kernel_size: value 4 is invalid: mixer 'sepconv': kernel_size: expected an odd int, found 4",
    ),
    (
        _set("space.mixers.hyena_pixel", {"kernel_size": {"choices": ["globl"]}}),
        r"space.mixers.hyena_pixel.kernel_size: value 'globl' is invalid",
    ),
    (
        _set("space.mixers.gnconv", {"order": {"choices": [7]}}),
        r"space.mixers.gnconv.order: value 7 is invalid: .*dim 32 must be divisible by 2\*\*\(order-1\)=64",
    ),
    (
        _set("space.mixers.atention", {}),
        r"space.mixers.atention: unknown mixer \(did you mean 'attention'\?\)",
    ),
    (
        _set("space.mixers.hyena_pixel", {"grid_size": 7}),
        r"space.mixers.hyena_pixel.grid_size: set by the builder",
    ),
    (
        _set("space.stages.1.attention_last", {"choices": [-1]}),
        r"space.stages\[1\].attention_last: expected values >= 0",
    ),
    (
        _set("space.head", {"kind": "conv"}),
        r"space.head.kind: expected 'mlp' or 'linear', found 'conv'",
    ),
    (_set("space.stages", []), r"space.stages: expected a non-empty list of stages"),
    (
        _set("space.block", {"choices": ["metaformer", "hornet"]}),
        r"space.block.choices\[1\]: expected one of \['metaformer', 'convnext'\], found 'hornet'",
    ),
    (_set("space.norm", "batchnorm"), r"space.norm: expected one of \['layernorm', 'groupnorm1'\]"),
    (
        _set("space.downsample", {"stride": 0}),
        r"space.downsample.stride: expected a positive number, found 0",
    ),
    (
        _set("space.stages.0.layer_scale", {"choices": [None, -1.0]}),
        r"space.stages\[0\].layer_scale: expected > 0, found -1.0",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD_FILES, ids=[m[:40] for _, m in BAD_FILES])
def test_bad_files_get_specific_errors(tmp_path: Path, data: dict, message: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert re.search(message, str(info.value)), str(info.value)
    assert str(info.value).startswith(str(path))


BAD_OVERRIDES = [
    (
        ["search.trails=3"],
        r"override search.trails=3: search.trails is not in .* \(did you mean 'trials'\?\); use \+search.trails=... to add a key",
    ),
    (["serch.trials=3"], r"serch.trials is not in .*\(did you mean 'search'\?\)"),
    (["search.trials=="], r"command-line override"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_OVERRIDES)
def test_bad_overrides_get_specific_errors(tmp_path: Path, overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, BASE), overrides)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="search file .*nope.yaml does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_conditional_sampling_never_yields_a_knob_of_an_unchosen_mixer(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, BASE))
    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=0), directions=["maximize"] * 2
    )
    seen_mixers = set()
    for _ in range(150):
        trial = study.ask()
        spec = cfg.space.sample(trial)
        for i, stage in enumerate(spec.stages):
            chosen = trial.params[f"s{i}.mixer"]
            seen_mixers.add(chosen)
            assert stage.mixer.name == chosen
            knob_params = {
                k
                for k in trial.params
                if k.startswith(f"s{i}.")
                and k.count(".") == 2
                and not k.startswith(f"s{i}.hybrid_attention.")
            }
            assert knob_params == {f"s{i}.{chosen}.{k}" for k in cfg.space.knob_space(chosen)}
            for knob, value in stage.mixer.knobs.items():
                assert knob in get_mixer(chosen).defaults
                assert trial.params[f"s{i}.{chosen}.{knob}"] == value
            hybrid = {k for k in trial.params if k.startswith(f"s{i}.hybrid_attention.")}
            has_hybrid = trial.params.get(f"s{i}.attention_last", 0) > 0
            assert bool(hybrid) == has_hybrid
            assert bool(stage.overrides) == has_hybrid
            if chosen == "attention":
                assert f"s{i}.attention_last" not in trial.params
        study.tell(trial, [0.0, 0.0])
    assert seen_mixers == {"sepconv", "hyena_pixel", "gnconv", "attention", "pooling"}


def test_interleaved_attention_is_sampled_as_every_nth_block(tmp_path: Path) -> None:
    """``attention_every`` samples an ``every`` override (clamped to the depth) with the
    attention knobs, alone or beside ``attention_last``; 0 samples none."""
    data = copy.deepcopy(BASE)
    data["space"]["stages"][1].update(
        depth=4, mixer="pooling", attention_every={"choices": [0, 2, 9]}
    )
    cfg = load_config(_write(tmp_path, data))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        stage = cfg.space.sample(trial).stages[1]
        every, last = trial.params["s1.attention_every"], trial.params["s1.attention_last"]
        expected = {("last", last)} if last else set()
        expected |= {("every", min(every, 4))} if every else set()
        found = {(k, getattr(o, k)) for o in stage.overrides for k in ("last", "every")}
        assert {f for f in found if f[1] is not None} == expected
        mixers = [m.name for m in stage.block_mixers()]
        if every == 2 and not last:
            assert mixers == ["pooling", "attention", "pooling", "attention"]
        seen.add((every, last))
        study.tell(trial, 0.0)
    assert {e for e, _ in seen} == {0, 2, 9}


def test_block_norm_and_layer_scale_are_searched_into_the_spec(tmp_path: Path) -> None:
    """A space may choose the block type (MetaFormer or ConvNeXt/HorNet), the blocks' norm and
    the layer scale; each sampled value is the spec's, and the spec builds."""
    from nas.models import build_model

    data = copy.deepcopy(BASE)
    data["space"].update(
        block={"choices": ["metaformer", "convnext"]},
        norm={"choices": ["layernorm", "groupnorm1"]},
        downsample={"kernel_size": 2, "stride": 2, "padding": 0},
    )
    data["space"]["stages"][0]["layer_scale"] = {"choices": [None, 1e-6]}
    cfg = load_config(_write(tmp_path, data))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        spec = cfg.space.sample(trial)
        assert (spec.block, spec.norm) == (trial.params["block"], trial.params["norm"])
        assert spec.stages[0].layer_scale == trial.params["s0.layer_scale"]
        assert spec.stages[1].layer_scale is None and spec.downsample.kernel_size == 2
        seen.add((spec.block, spec.norm, spec.stages[0].layer_scale))
        study.tell(trial, 0.0)
    assert len(seen) == 8
    model = build_model(spec, num_classes=2)
    assert (type(model.stages[0].blocks[0].mlp.act).__name__ == "GELU") == (
        spec.block == "convnext"
    )
