"""Every registered mixer honours the shared contract: shape, any resolution, gradients, bf16."""

import pytest
import torch

from nas.mixers import create_mixer, get_mixer, list_mixers

DIM = 32
GRID = 8  # nominal map side the spatial weights are stored at
SIZES = [(8, 8), (6, 10), (11, 7)]  # square, non-square, and a size unseen at construction


def _make(name: str) -> torch.nn.Module:
    knobs = {"grid_size": GRID} if "grid_size" in get_mixer(name).defaults else {}
    return create_mixer(name, DIM, **knobs)


def test_all_seed_mixers_registered() -> None:
    expected = {
        "identity",
        "pooling",
        "sepconv",
        "attention",
        "hyena_pixel",
        "hyena",
        "gnconv",
        "parc",
        "dynamic_filter",
        "global_filter",
    }
    assert expected <= set(list_mixers())


@pytest.mark.parametrize("name", list_mixers())
def test_shape_preserved_at_every_resolution(name: str) -> None:
    mixer = _make(name)
    for h, w in SIZES:
        x = torch.randn(2, h, w, DIM)
        y = mixer(x)
        assert y.shape == x.shape, (name, h, w)
        assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", list_mixers())
def test_gradients_reach_every_parameter(name: str) -> None:
    mixer = _make(name)
    x = torch.randn(2, 6, 10, DIM, requires_grad=True)
    mixer(x).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if name != "identity":
        assert x.grad.abs().sum() > 0
    for pname, p in mixer.named_parameters():
        assert p.grad is not None, f"{name}.{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}.{pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name}.{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", list_mixers())
def test_bf16_autocast_forward_backward(name: str) -> None:
    mixer = _make(name)
    x = torch.randn(2, 6, 10, DIM, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = mixer(x)
    assert y.shape == x.shape
    assert torch.isfinite(y.float()).all()
    y.float().square().mean().backward()
    assert torch.isfinite(x.grad).all()
    ref = mixer(x.detach())
    if name != "identity":
        rel = (y.float() - ref).norm() / ref.norm().clamp_min(1e-6)
        assert rel < 0.1, f"{name}: bf16 output deviates {rel:.3f} from float32"


@pytest.mark.parametrize("name", list_mixers())
def test_unknown_knob_is_a_specific_error(name: str) -> None:
    with pytest.raises(ValueError, match=rf"unknown knob 'no_such_knob' for mixer '{name}'"):
        create_mixer(name, DIM, no_such_knob=1)
