"""Every preset traces with torch.jit.trace, extracts features through timm's FX feature
extractor, and the backbone compiles in one graph, each equal to eager.

The presets run at test scale (one block per stage, widths 32/64/64/64, 64 x 96 px): the same
mixers, knobs and backbone code as the S18 networks, a fraction of the build and trace time. The
mixers themselves are checked one by one in ``test_mixer_contract.py``.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from timm.layers import create_feature_extractor

from nas.models import PRESETS, build_model, resolve_spec
from nas.models.metaformer import MetaFormer


def _small(preset: str) -> MetaFormer:
    spec = resolve_spec(preset).to_dict()
    for stage, dim in zip(spec["stages"], (32, 64, 64, 64), strict=True):
        stage["depth"], stage["dim"] = 1, dim
    return build_model(spec, num_classes=10).eval()


def _stage_outputs(model: MetaFormer, x: torch.Tensor) -> list[torch.Tensor]:
    outputs: list[torch.Tensor] = []
    hooks = [s.register_forward_hook(lambda m, i, o: outputs.append(o)) for s in model.stages]
    model(x)
    for hook in hooks:
        hook.remove()
    return outputs


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_traces_and_extracts_features_like_eager(name: str) -> None:
    model = _small(name)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates jit.trace
        traced = torch.jit.trace(model, x, check_trace=False)
        torch.testing.assert_close(traced(x), model(x))

        nodes = {f"stages.{i}": f"stage{i}" for i in range(len(model.stages))}
        features = create_feature_extractor(model, return_nodes=nodes)(x)
        for i, expected in enumerate(_stage_outputs(model, x)):
            torch.testing.assert_close(features[f"stage{i}"], expected)


def test_backbone_compiles_in_one_graph() -> None:
    """Stem, downsampling, blocks, norms and head add no graph break to their mixers'."""
    torch._dynamo.reset()
    model = _small("caformer_s18").train()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    x = torch.randn(2, 3, 64, 96)
    torch.testing.assert_close(compiled(x), model(x))
