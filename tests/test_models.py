"""The MetaFormer builder against timm and the published sizes, presets, timm registration."""

import math

import pytest
import timm
import torch
from timm.data import resolve_data_config

from nas.models import PRESETS, build_model, resolve_spec
from nas.models.profile import profile


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["caformer_s18", "convformer_s18", "poolformerv2_s12"])
def test_parameter_count_equals_timm(name: str) -> None:
    assert _params(build_model(name)) == _params(timm.create_model(name, pretrained=False))


@pytest.mark.parametrize(
    ("name", "official"), [("hornet_tiny_7x7", 22_409_512), ("hornet_tiny_gf", 22_991_848)]
)
def test_hornet_has_the_official_parameter_count(name: str, official: int) -> None:
    """The counts of raoyongming/HorNet's ``hornet_tiny_7x7`` / ``hornet_tiny_gf`` (its
    ConvNeXt-style blocks: GELU MLP with biases, LayerNorms with bias, layer scale)."""
    model = build_model(name)
    assert _params(model) == official
    block = model.stages[0].blocks[0]
    assert isinstance(block.mlp.act, torch.nn.GELU) and block.mlp.fc1.bias is not None
    assert block.layer_scale1.scale.eq(1e-6).all()


@pytest.mark.parametrize(
    ("name", "published_gmacs"), [("caformer_s18", 4.1), ("convformer_s18", 3.9)]
)
def test_macs_match_published(name: str, published_gmacs: float) -> None:
    assert profile(name, 224).gmacs == pytest.approx(published_gmacs, rel=0.05)


def test_hpx_former_s18_size_matches_published_29m() -> None:
    assert _params(build_model("hpx_former_s18")) == pytest.approx(29e6, rel=0.03)


def test_fft_ops_are_counted_with_the_fft_formula() -> None:
    spec = resolve_spec(
        {
            "image_size": 32,
            "head": {"kind": "linear"},
            "stages": [
                {"depth": 1, "dim": 8, "mixer": {"name": "global_filter", "pointwise": False}}
            ],
        }
    )
    prof = profile(spec, 32)
    h = w = 8  # 32 px through the stride-4 stem
    rfft = 2.5 * 8 * h * w * math.log2(h * w) / 2
    assert prof.macs_by_op["aten._fft_r2c"] == pytest.approx(rfft, rel=0.01)
    assert prof.macs_by_op["aten._fft_c2r"] == pytest.approx(rfft, rel=0.01)
    assert "aten.mul" in prof.macs_by_op


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_through_timm_and_runs_non_square(name: str) -> None:
    """``timm.create_model("nas_<preset>")``: timm's pretrained cfg names the model's first conv
    and classifier and gives the spec's input size; logits at a size never seen."""
    model = timm.create_model(f"nas_{name}", num_classes=7)
    cfg, spec = model.pretrained_cfg, resolve_spec(name)
    assert resolve_data_config({}, model=model)["input_size"] == (
        3,
        spec.image_size,
        spec.image_size,
    )
    assert model.get_submodule(cfg["first_conv"]) is model.stem.conv
    assert model.get_submodule(cfg["classifier"]).out_features == 7
    assert cfg["num_classes"] == 1000 and cfg["architecture"] == f"nas_{name}"
    logits = model(torch.randn(2, 3, 64, 96))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()


def test_timm_create_model_from_yaml_path(tmp_path) -> None:
    spec = resolve_spec("c_hpx_former_s18")
    path = tmp_path / "arch.yaml"
    spec.save(path)
    model = timm.create_model("nas_metaformer", arch=str(path), num_classes=10)
    assert model.spec == spec
    assert _params(model) == _params(build_model(spec, num_classes=10))
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_timm_preset_entry_points_and_overrides() -> None:
    model = timm.create_model("nas_caformer_s18", num_classes=5, drop_path_rate=0.2)
    assert model.spec.drop_path_rate == 0.2
    assert model.get_classifier().fc2.out_features == 5
    assert "nas_hpx_former_s18" in timm.list_models("nas_*")


def test_same_seed_same_weights_and_features_are_nchw() -> None:
    torch.manual_seed(3)
    a = build_model("caformer_s18", num_classes=3)
    torch.manual_seed(3)
    b = build_model("caformer_s18", num_classes=3)
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(va, vb), ka
    feats = a.forward_features(torch.randn(1, 3, 64, 64))
    assert feats.shape == (1, 512, 2, 2)
    a.reset_classifier(0)
    assert a(torch.randn(1, 3, 64, 64)).shape == (1, 512)


FFT_MIXERS = {"hyena_pixel", "hyena", "parc", "dynamic_filter", "global_filter"}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_profiles_and_fft_mixers_are_not_free(name: str) -> None:
    prof = profile(name, 64)
    assert prof.macs > 0
    uses_fft = any(
        m.name in FFT_MIXERS or m.knobs.get("filter") == "gf"
        for stage in resolve_spec(name).stages
        for m in stage.block_mixers()
    )
    assert ("aten._fft_r2c" in prof.macs_by_op) == uses_fft
    if uses_fft:
        assert prof.macs_by_op["aten._fft_r2c"] > 0
