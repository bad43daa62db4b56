"""timm as the oracle: its caformer_s18, convformer_s18 and poolformerv2_s12 weights copied into
our presets give timm's logits, square and not, so the presets are exactly timm's models."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from nas.models import build_model
from nas.models.transplant import from_timm_metaformer


def perturbed_timm(name: str) -> torch.nn.Module:
    """timm's model with every parameter moved off its init (norm weights and biases, scales,
    StarReLU's scalars), so a differing eps, bias or layout shows in the logits."""
    model = timm.create_model(name).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


@pytest.mark.parametrize("name", ["caformer_s18", "convformer_s18", "poolformerv2_s12"])
def test_timm_weights_give_timm_logits(name: str) -> None:
    """Within 1e-5 in float32 at 224 px and a non-square size (timm's 1x1 convs and our
    linears round differently, ~5e-6), and to float64 precision on a small non-square input."""
    theirs = perturbed_timm(name)
    ours = build_model(name).eval()
    ours.load_state_dict(from_timm_metaformer(theirs.state_dict(), ours))  # strict: every key
    with torch.no_grad():
        for size in ((224, 224), (160, 96)):
            x = torch.randn(1, 3, *size)
            expected = theirs(x)
            torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-5)
            assert expected.abs().max().item() > 0.5  # logits of a size that shows an error
        x = torch.randn(1, 3, 32, 48, dtype=torch.float64)
        torch.testing.assert_close(ours.double()(x), theirs.double()(x), rtol=0, atol=1e-12)


def test_pretrained_file_of_timm_weights_loads_through_timm(tmp_path: Path) -> None:
    """``pretrained=True`` with a timm state dict as the file: the filter converts it."""
    theirs = perturbed_timm("poolformerv2_s12").float()
    torch.save(theirs.state_dict(), tmp_path / "poolformerv2_s12.pth")
    ours = timm.create_model(
        "nas_poolformerv2_s12",
        pretrained=True,
        pretrained_cfg_overlay={"file": str(tmp_path / "poolformerv2_s12.pth")},
    ).eval()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-5)
