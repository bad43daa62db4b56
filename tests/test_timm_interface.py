"""timm's model contract for every preset, from timm's documented behaviour: ``create_model``
arguments and the pretrained cfg, ``features_only`` and ``feature_info``, ``forward_intermediates``
against ``forward_features``, ``reset_classifier``, ``in_chans``; and each mixer's own
initialisation surviving the backbone's.

Every preset is checked on a reduced copy, one block per stage at a quarter of its widths (the
same stem, downsampling, norms, mixers and head; a full-size build of each preset is in
``test_models.py``), at 64 x 96 px.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import timm
import torch
from torch import nn

from nas.arch import PRESETS, ArchSpec, resolve_spec
from nas.layers.own_init import OwnInit
from nas.mixers import registry
from nas.mixers.registry import MixerEntry, MixerKnobs
from nas.models import build_model
from nas.models.metaformer import ModelError

H, W = 64, 96


def reduced(preset: str) -> ArchSpec:
    spec = resolve_spec(preset)
    stages = [{**s.to_dict(), "depth": 1, "dim": s.dim // 4} for s in spec.stages]
    return ArchSpec.from_dict({**spec.to_dict(), "stages": stages})


def create(preset: str, **kwargs: Any) -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model("nas_metaformer", arch=reduced(preset), **kwargs).eval()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_intermediates_heads_and_classifier_reset(preset: str) -> None:
    model = create(preset, num_classes=7)
    x = torch.randn(1, 3, H, W)
    with torch.no_grad():
        features = model.forward_features(x)
        final, maps = model.forward_intermediates(x)
        assert torch.equal(final, features)
        assert [m.shape for m in maps] == [
            (1, info["num_chs"], H // info["reduction"], W // info["reduction"])
            for info in model.feature_info
        ]
        assert torch.equal(maps[-1], features)
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert all(torch.equal(a, b) for a, b in zip(last_two, maps[2:], strict=True))
        early, taken = model.forward_intermediates(x, indices=[1], stop_early=True)
        assert torch.equal(early, maps[1]) and torch.equal(taken[0], maps[1])

        logits = model(x)
        assert torch.equal(model.forward_head(features), logits) and logits.shape == (1, 7)
        pooled = model.forward_head(features, pre_logits=True)
        assert pooled.shape == (1, model.num_features)

        model.reset_classifier(0)
        assert torch.equal(model(x), pooled)
        model.reset_classifier(0, "")
        assert model(x).shape == features.shape
        model.reset_classifier(5, "avg")
        assert model(x).shape == (1, 5) and model.num_classes == 5
    for layer in model.get_classifier().modules():  # the new head gets the backbone's init
        if isinstance(layer, nn.Linear):
            assert layer.weight.std().item() == pytest.approx(0.02, rel=0.25)
            assert not layer.bias.any()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_features_only_maps_and_feature_info(preset: str) -> None:
    """timm's list extractor (hooks on ``stages.i``) and getter (``forward_intermediates``)."""
    x = torch.randn(1, 3, H, W)
    with torch.no_grad():
        expected = create(preset).forward_intermediates(x, indices=[0, 2], intermediates_only=True)
    for feature_cls in ("list", "getter"):
        features = create(preset, features_only=True, out_indices=(0, 2), feature_cls=feature_cls)
        with torch.no_grad():
            maps = features(x)
        info = features.feature_info
        assert [m.shape[1] for m in maps] == info.channels()
        assert [H // m.shape[2] for m in maps] == [W // m.shape[3] for m in maps]
        assert [H // m.shape[2] for m in maps] == info.reduction()
        assert all(torch.equal(a, b) for a, b in zip(maps, expected, strict=True)), feature_cls


@pytest.mark.parametrize("preset", ["caformer_s18", "hornet_tiny_gf", "poolformerv2_s12"])
def test_timm_arguments_reach_the_model(preset: str) -> None:
    model = create(preset, in_chans=1, num_classes=3, drop_rate=0.25, drop_path_rate=0.1)
    assert model.in_chans == 1 and model.stem.conv.in_channels == 1
    assert model(torch.randn(2, 1, H, W)).shape == (2, 3)
    assert model.spec.drop_path_rate == 0.1 and model.drop_rate == 0.25
    dropouts = [m.p for m in model.head.modules() if isinstance(m, nn.Dropout)]
    assert 0.25 in dropouts
    assert any(type(m).__name__ == "DropPath" for m in model.modules())
    pooled = create(preset, global_pool="max", num_classes=0)
    assert pooled(torch.randn(1, 3, H, W)).shape == (1, pooled.num_features)
    with pytest.raises(ModelError, match="global_pool: 'catavgmax' widens the pooled features"):
        pooled.reset_classifier(3, "catavgmax")
    with pytest.raises(ModelError, match="output_fmt: expected 'NCHW', found 'NHWC'"):
        pooled.forward_intermediates(torch.randn(1, 3, H, W), output_fmt="NHWC")


def test_prune_intermediate_layers_keeps_the_stages_asked_for() -> None:
    model = create("convformer_s18")
    x = torch.randn(1, 3, H, W)
    with torch.no_grad():
        maps = model.forward_intermediates(x, intermediates_only=True)
        assert model.prune_intermediate_layers([0, 1]) == [0, 1]
        assert len(model.stages) == 2 and model.num_features == 32
        assert torch.equal(model.forward_features(x), maps[1])
        assert torch.equal(model(x), maps[1])  # the head is gone: no pooling, norm or classifier


@dataclasses.dataclass(frozen=True)
class ProbeKnobs(MixerKnobs):
    """No knobs: a mixer that exists only to show whose init a built model keeps."""


class OwnInitProbe(OwnInit, nn.Module):
    """A token mixer whose documented init (identity weights, a bias of 0.5) no backbone init
    produces: a channel mixing Linear."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def init_weights(self) -> None:
        nn.init.eye_(self.proj.weight)
        nn.init.constant_(self.proj.bias, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def test_a_mixers_own_init_survives_the_backbone(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = MixerEntry("own_init_probe", ProbeKnobs, f"{__name__}:OwnInitProbe")
    monkeypatch.setitem(registry._registered(), "own_init_probe", probe)  # undone after the test
    spec = {"image_size": 32, "stages": [{"depth": 2, "dim": 8, "mixer": "own_init_probe"}]}
    model = build_model(spec, num_classes=3)
    for block in model.stages[0].blocks:
        assert torch.equal(block.token_mixer.proj.weight, torch.eye(8))
        assert torch.equal(block.token_mixer.proj.bias, torch.full((8,), 0.5))
    # the other layers got timm's init: truncated normal, std 0.02, zero bias
    assert model.stages[0].blocks[0].mlp.fc1.weight.std().item() == pytest.approx(0.02, rel=0.3)
    assert not model.stem.conv.bias.any()
