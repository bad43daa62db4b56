"""Architecture spec: YAML round trip, stable content hash, and specific validation errors."""

import subprocess
import sys

import pytest
import yaml

from nas.models import ArchSpec, SpecError, build_model, resolve_spec


def _tiny(**stage0) -> dict:
    return {
        "name": "tiny",
        "image_size": 64,
        "stages": [
            {"depth": 2, "dim": 16, "mixer": {"name": "sepconv"}, **stage0},
            {"depth": 3, "dim": 32, "mixer": "attention", "res_scale": True},
        ],
    }


def test_yaml_round_trip_is_exact() -> None:
    spec = resolve_spec("caformer_s18")
    again = ArchSpec.from_yaml(spec.to_yaml())
    assert again == spec
    assert again.to_yaml() == spec.to_yaml()


def test_round_trip_keeps_overrides() -> None:
    data = _tiny(overrides=[{"last": 1, "mixer": {"name": "attention", "window_size": 4}}])
    spec = ArchSpec.from_dict(data)
    assert [m.name for m in spec.stages[0].block_mixers()] == ["sepconv", "attention"]
    assert ArchSpec.from_yaml(spec.to_yaml()) == spec


def test_block_overrides_by_index_and_last_k() -> None:
    data = _tiny(
        depth=5,
        overrides=[
            {"blocks": [0, -1], "mixer": "pooling"},
            {"last": 2, "mixer": "identity"},
        ],
    )
    names = [m.name for m in ArchSpec.from_dict(data).stages[0].block_mixers()]
    assert names == ["pooling", "sepconv", "sepconv", "identity", "identity"]


def test_hash_ignores_name_and_spelled_out_defaults() -> None:
    base = ArchSpec.from_dict(_tiny())
    explicit = _tiny(mixer={"name": "sepconv", "kernel_size": 7, "expansion_ratio": 2.0})
    explicit["name"] = "other"
    assert ArchSpec.from_dict(explicit).content_hash() == base.content_hash()


def test_hash_changes_with_the_network() -> None:
    base = ArchSpec.from_dict(_tiny()).content_hash()
    assert (
        ArchSpec.from_dict(_tiny(mixer={"name": "sepconv", "kernel_size": 5})).content_hash()
        != base
    )
    assert ArchSpec.from_dict(_tiny(depth=3)).content_hash() != base
    bigger = _tiny()
    bigger["image_size"] = 96
    assert ArchSpec.from_dict(bigger).content_hash() != base


def test_hash_is_stable_across_processes() -> None:
    code = "import nas; from nas.models import resolve_spec; print(resolve_spec('caformer_s18').content_hash())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == resolve_spec("caformer_s18").content_hash()


def _with(path: str, value) -> dict:
    """``_tiny()`` with the dotted ``path`` (list indices as ints) set to ``value``."""
    data = _tiny()
    node = data
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return data


BAD_SPECS = [
    (
        _with("stages.0.mixer", {"name": "atention"}),
        r"arch.stages\[0\].mixer.name: unknown mixer 'atention' \(did you mean 'attention'\?\)",
    ),
    (
        _with("stages.0.mixer", {"name": "sepconv", "kernal_size": 5}),
        r"arch.stages\[0\].mixer.kernal_size: unknown knob for mixer 'sepconv' \(did you mean 'kernel_size'\?\)",
    ),
    (
        _with("stages.0.mixer", {"name": "sepconv", "kernel_size": 4}),
        r"arch.stages\[0\].mixer: mixer 'sepconv': kernel_size: expected an odd int, found 4",
    ),
    (_with("stages.0.depht", 2), r"arch.stages\[0\].depht: unknown key \(did you mean 'depth'\?\)"),
    (_with("stages.0.depth", "3"), r"arch.stages\[0\].depth: expected int, found str '3'"),
    (_with("stages.0.depth", 0), r"arch.stages\[0\].depth: expected a positive number, found 0"),
    (
        _with("stages.1.res_scale", "yes"),
        r"arch.stages\[1\].res_scale: expected bool, found str 'yes'",
    ),
    (
        _with("stages.0.overrides", [{"last": 5, "mixer": "pooling"}]),
        r"arch.stages\[0\].overrides\[0\].last: expected 1..2 \(the stage depth\), found 5",
    ),
    (
        _with("stages.0.overrides", [{"blocks": [7], "mixer": "pooling"}]),
        r"arch.stages\[0\].overrides\[0\].blocks: index 7 out of range for a stage of depth 2",
    ),
    (
        _with("stages.0.overrides", [{"mixer": "pooling"}]),
        r"arch.stages\[0\].overrides\[0\]: give exactly one of 'last'",
    ),
    (
        _with("stages.0.overrides", [{"every": 0, "mixer": "pooling"}]),
        r"arch.stages\[0\].overrides\[0\].every: expected 1..2 \(the stage depth\), found 0",
    ),
    (
        _with("stages.0.overrides", [{"every": 2, "last": 1, "mixer": "pooling"}]),
        r"give exactly one of 'last' \(an int\), 'every' \(an int\) or 'blocks' \(a list\), "
        r"found \['last', 'every'\]",
    ),
    (_with("stages", []), r"arch.stages: expected a non-empty list of stages"),
    (_with("head", {"kind": "conv"}), r"arch.head.kind: expected 'mlp' or 'linear', found 'conv'"),
    (_with("drop_path_rate", 1.5), r"arch.drop_path_rate: expected a value in \[0, 1\), found 1.5"),
    (_with("image_sise", 32), r"arch.image_sise: unknown key \(did you mean 'image_size'\?\)"),
    (_with("image_size", 2), r"arch.image_size: 2 px is too small for 2 stages"),
]


@pytest.mark.parametrize(("data", "message"), BAD_SPECS)
def test_bad_specs_get_specific_errors(data, message) -> None:
    with pytest.raises(SpecError, match=message):
        ArchSpec.from_dict(data)


def test_dims_not_divisible_as_the_mixer_requires(tmp_path) -> None:
    data = _with("stages.0.mixer", {"name": "gnconv", "order": 4})
    data["stages"][0]["dim"] = 20
    path = tmp_path / "arch.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(
        SpecError, match=r"arch.yaml: arch.stages\[0\].mixer: mixer 'gnconv': .*20.*8"
    ):
        ArchSpec.load(path)


def test_unknown_preset_gets_a_suggestion() -> None:
    with pytest.raises(
        SpecError, match=r"'cafomer_s18' is neither a preset \(did you mean 'caformer_s18'\?\)"
    ):
        resolve_spec("cafomer_s18")


def test_every_nth_block_interleaves_the_override() -> None:
    data = _tiny(depth=7, overrides=[{"every": 3, "mixer": {"name": "attention"}}])
    spec = ArchSpec.from_dict(data)
    names = [m.name for m in spec.stages[0].block_mixers()]
    assert names == ["sepconv", "sepconv", "attention"] * 2 + ["sepconv"]
    assert ArchSpec.from_yaml(spec.to_yaml()) == spec
    model = build_model(spec, num_classes=2)
    built = [type(b.token_mixer).__name__ for b in model.stages[0].blocks]
    assert built == ["SepConv", "SepConv", "Attention"] * 2 + ["SepConv"]


def test_shifted_windows_alternate_over_the_blocks_a_mixer_fills() -> None:
    shifted = {"name": "attention", "window_size": 4, "shift": True}
    whole = _tiny(depth=4, mixer=shifted)
    interleaved = _tiny(depth=4, overrides=[{"every": 2, "mixer": shifted}])
    for data, expected in ((whole, [False, True, False, True]), (interleaved, [False, True])):
        model = build_model(ArchSpec.from_dict(data), num_classes=2)
        mixers = [b.token_mixer for b in model.stages[0].blocks]
        assert [m.shift for m in mixers if hasattr(m, "shift")] == expected


def test_a_knob_at_its_default_leaves_the_hash_as_it_was() -> None:
    """Spelling out a default, or a knob added later at its default, keeps stored hashes."""
    plain = ArchSpec.from_dict(_tiny(mixer={"name": "attention"}))
    spelled = ArchSpec.from_dict(
        _tiny(mixer={"name": "attention", "rel_pos": "none", "shift": False, "kv_stride": 1})
    )
    changed = ArchSpec.from_dict(_tiny(mixer={"name": "attention", "rel_pos": "bias"}))
    assert plain.content_hash() == spelled.content_hash() != changed.content_hash()


# Content hashes computed before the spec had block, norm, downsample and num_classes (commit
# b6c471a): the stored measurements of these architectures must still be found by hash.
HASHES_BEFORE_THE_LAYOUT_FIELDS = {
    "caformer_s18": "a815ac12fdb22e49",
    "convformer_s18": "4b9ec3f86de9ec42",
    "poolformer_s18": "4d5b110ff4b17484",
    "identityformer_s18": "45b6976736257539",
    "gnconv_s18": "26f769561981bffb",
}
TINY_LAYOUT = {
    "name": "tiny",
    "image_size": 64,
    "drop_path_rate": 0.1,
    "head": {"kind": "linear"},
    "stem": {"kernel_size": 4, "stride": 4, "padding": 0},
    "stages": [
        {"depth": 2, "dim": 16, "mixer": {"name": "sepconv"}, "layer_scale": 1e-6},
        {
            "depth": 3,
            "dim": 32,
            "mixer": "pooling",
            "res_scale": True,
            "overrides": [{"last": 1, "mixer": "attention"}],
        },
    ],
}


def test_new_spec_fields_at_their_defaults_keep_every_stored_hash() -> None:
    for preset, stored in HASHES_BEFORE_THE_LAYOUT_FIELDS.items():
        assert resolve_spec(preset).content_hash() == stored, preset
    tiny = ArchSpec.from_dict(TINY_LAYOUT)
    assert tiny.content_hash() == "4264776871d94ad0"
    spelled = {
        **TINY_LAYOUT,
        "block": "metaformer",
        "norm": "layernorm",
        "downsample": {"kernel_size": 3, "stride": 2, "padding": 1},
    }
    assert ArchSpec.from_dict(spelled).content_hash() == tiny.content_hash()


def test_layout_fields_change_the_hash_and_num_classes_does_not() -> None:
    base = ArchSpec.from_dict(TINY_LAYOUT)
    changed = [
        {"block": "convnext"},
        {"norm": "groupnorm1"},
        {"downsample": {"kernel_size": 2, "stride": 2, "padding": 0}},
    ]
    hashes = {ArchSpec.from_dict({**TINY_LAYOUT, **c}).content_hash() for c in changed}
    assert len(hashes) == 3 and base.content_hash() not in hashes
    ten = ArchSpec.from_dict({**TINY_LAYOUT, "num_classes": 10})
    assert ten.content_hash() == base.content_hash() and ten != base
    assert ArchSpec.from_yaml(ten.to_yaml()) == ten


@pytest.mark.parametrize("preset", ["poolformerv2_s12", "hornet_tiny_gf"])
def test_layout_presets_round_trip(preset: str) -> None:
    spec = resolve_spec(preset)
    assert ArchSpec.from_yaml(spec.to_yaml()) == spec
    assert spec.grid_sizes() == [56, 28, 14, 7] and spec.reductions() == [4, 8, 16, 32]


BAD_LAYOUTS = [
    (
        {"block": "convnxt"},
        r"arch.block: expected one of 'metaformer', 'convnext', found 'convnxt' "
        r"\(did you mean 'convnext'\?\)",
    ),
    ({"norm": "batchnorm"}, r"arch.norm: expected one of 'layernorm', 'groupnorm1', found"),
    ({"norm": 1}, r"arch.norm: expected str, found int 1"),
    ({"downsample": {"stride": 0}}, r"arch.downsample.stride: expected a positive number"),
    ({"downsample": {"strde": 2}}, r"arch.downsample.strde: unknown key \(did you mean"),
    ({"num_classes": 0}, r"arch.num_classes: expected a positive number, found 0"),
    ({"num_classes": 2.5}, r"arch.num_classes: expected int or null, found float 2.5"),
    (
        {"downsample": {"kernel_size": 32, "stride": 2, "padding": 0}},
        r"arch.image_size: 64 px is too small for 2 stages",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD_LAYOUTS)
def test_bad_layout_fields_get_specific_errors(change: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        ArchSpec.from_dict({**TINY_LAYOUT, **change})
