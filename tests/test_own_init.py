"""Each mixer's documented initialisation is what a built model starts from: the backbone's
trunc_normal(0.02) of every Linear/Conv2d runs first, then every ``OwnInit`` restores its own."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from nas.layers.own_init import OwnInit
from nas.models import build_model
from nas.models.metaformer import _init_weights

DIM = 128


def _mixer(name: str, **knobs: object) -> nn.Module:
    """The mixer of a one-block model at 224 px (grid 56, so spatial tables are large)."""
    spec = {
        "image_size": 224,
        "head": {"kind": "linear"},
        "stages": [{"depth": 1, "dim": DIM, "mixer": {"name": name, **knobs}}],
    }
    return build_model(spec, num_classes=2).stages[0].blocks[0].token_mixer


def _std(t: torch.Tensor) -> float:
    return t.detach().float().std().item()


def _acmix_shifts(m: nn.Module) -> None:
    taps = m.kernel_conv**2
    shifts = torch.eye(taps).reshape(1, taps, m.kernel_conv, m.kernel_conv)
    assert torch.equal(m.dep_conv.weight, shifts.expand_as(m.dep_conv.weight))
    assert m.rate1.item() == m.rate2.item() == 0.5


# (mixer, knobs, the parameter, its documented std); a trunc_normal(0.02) left by the backbone
# would fail every row whose std is not 0.02, and a missing init (torch.empty) every row.
STDS: dict[str, tuple[str, dict, Callable[[nn.Module], torch.Tensor], float]] = {
    # GFNet / GFFormer (DFFormer's GlobalFilter): complex filter randn * 0.02.
    "global_filter": ("global_filter", {}, lambda m: m.filter.weight, 0.02),
    # HorNet's Global-Local Filter: complex weight trunc_normal(std .02).
    "gnconv_gf": ("gnconv", {"filter": "gf", "order": 2}, lambda m: m.dw.spectral.weight, 0.02),
    # DFFormer: the shared filters randn * 0.02.
    "dynamic_filter": ("dynamic_filter", {}, lambda m: m.filters, 0.02),
    # ParC-ConvNeXt / ParCNetV2: embeddings and kernels (conv weights) trunc_normal 0.02.
    "parc": ("parc", {}, lambda m: m.conv_h.pe, 0.02),
    "parc_v2": ("parc_v2", {}, lambda m: m.oversize.conv_w.kernel, 0.02),
    # Swin / CoAtNet / NAT: relative position tables trunc_normal(std .02).
    "attention_rel_pos": ("attention", {"rel_pos": "bias"}, lambda m: m.rel_pos.table, 0.02),
    "neighborhood_attention": (
        "neighborhood_attention",
        {"kernel_size": 13},
        lambda m: m.rpb,
        0.02,
    ),
    # Attention Augmentation: relative embeddings N(0, dkh^-0.5), dkh = 32 here.
    "attention_augmented": ("attention_augmented", {}, lambda m: m.rel_h, 32**-0.5),
    # GCNet: Kaiming-normal (fan-in, ReLU gain) attention logit.
    "global_context": ("global_context", {}, lambda m: m.attn_logit.weight, (2 / DIM) ** 0.5),
}


@pytest.mark.parametrize("case", sorted(STDS))
def test_documented_init_std_inside_a_built_model(case: str) -> None:
    name, knobs, param, std = STDS[case]
    values = param(_mixer(name, **knobs)).detach()
    assert values.std().item() == pytest.approx(std, rel=0.15)
    assert values.mean().item() == pytest.approx(0.0, abs=0.2 * std)


def test_global_context_last_layer_is_zero_and_acmix_keeps_its_shifts() -> None:
    gc = _mixer("global_context")
    assert not gc.transform[-1].weight.any() and not gc.transform[-1].bias.any()
    assert gc.transform[0].weight.std().item() == pytest.approx(0.02, rel=0.15)  # backbone's
    _acmix_shifts(_mixer("acmix"))


def test_acmix_shift_init_would_be_lost_without_own_init() -> None:
    """The oracle above can fail: the backbone's init alone destroys ACmix's shifts."""
    m = _mixer("acmix")
    m.apply(_init_weights)
    with pytest.raises(AssertionError):
        _acmix_shifts(m)
    for module in m.modules():
        if isinstance(module, OwnInit):
            module.init_weights()
    _acmix_shifts(m)


def test_global_context_block_starts_as_identity() -> None:
    spec = {
        "image_size": 32,
        "head": {"kind": "linear"},
        "stages": [{"depth": 2, "dim": 16, "mixer": {"name": "global_context"}}],
    }
    block = build_model(spec, num_classes=2).stages[0].blocks[0]
    x = torch.randn(2, 8, 8, 16)
    torch.testing.assert_close(block.token_mixer(block.norm1(x)), torch.zeros_like(x))
