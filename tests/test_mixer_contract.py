"""Every registered mixer honours the shared contract: shape, any resolution, gradients, bf16,
and it traces (torch.jit.trace, FX with timm's leaf modules) and compiles (torch.compile with
fullgraph=True) to the same function as eager."""

import warnings

import pytest
import torch
from timm.layers import is_notrace_module
from torch import nn

from nas.mixers import create_mixer, get_mixer, list_mixers

DIM = 32
GRID = 8  # nominal map side the spatial weights are stored at
SIZES = [(8, 8), (6, 10), (11, 7)]  # square, non-square, and a size unseen at construction


VARIANTS: dict[str, list[dict]] = {
    "attention": [
        {"rel_pos": "bias"},
        {"rel_pos": "bias", "window_size": 4, "shift": True},
        {"qkv_conv": True, "kv_stride": 2},
    ],
    "neighborhood_attention": [{"head_dim": 8, "kernel_size": 3, "dilation": 2}],
    "halo_attention": [{"head_dim": 8, "qkv_bias": True, "proj_bias": True, "block": 3, "halo": 2}],
    "multi_axis_attention": [
        {"head_dim": 8},
        {"head_dim": 8, "rel_pos": "none", "qkv_bias": False},
    ],
    "global_context": [{"fusion": "mul"}],
    "attention_augmented": [
        {"attention_share": 0.25, "num_heads": 2},
        {"rel_pos": "none", "kernel_size": 5},
        {"attention_share": 0.0},
    ],
    "acmix": [{"head_dim": 8, "kernel_conv": 5, "kernel_att": 3, "qkv_bias": True}],
    "gnconv": [{"order": 4, "filter": "gf"}],
    "parc": [{"variant": "oversize", "pointwise": True}],
    "parc_v2": [{"expansion_ratio": 3.0, "kernel_size": 5}],
    "global_filter": [{"pointwise": False}],
}
"""Knob settings that build different parameters or code paths, checked beside the defaults."""

CASES = [(name, {}) for name in list_mixers()] + [
    (name, knobs) for name, variants in VARIANTS.items() for knobs in variants
]
IDS = [f"{name}{knobs or ''}" for name, knobs in CASES]


def _make(name: str, knobs: dict) -> torch.nn.Module:
    grid = {"grid_size": GRID} if "grid_size" in get_mixer(name).defaults else {}
    return create_mixer(name, DIM, **grid, **knobs)


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
        "parc_v2",
        "dynamic_filter",
        "global_filter",
        "neighborhood_attention",
        "halo_attention",
        "multi_axis_attention",
        "global_context",
        "attention_augmented",
        "acmix",
    }
    assert expected <= set(list_mixers())


@pytest.mark.parametrize(("name", "knobs"), CASES, ids=IDS)
def test_shape_preserved_at_every_resolution(name: str, knobs: dict) -> None:
    mixer = _make(name, knobs)
    for h, w in SIZES:
        x = torch.randn(2, h, w, DIM)
        y = mixer(x)
        assert y.shape == x.shape, (name, h, w)
        assert torch.isfinite(y).all()


@pytest.mark.parametrize(("name", "knobs"), CASES, ids=IDS)
def test_gradients_reach_every_parameter(name: str, knobs: dict) -> None:
    mixer = _make(name, knobs)
    with torch.no_grad():  # a zero-initialised layer (GCNet's last) blocks the ones before it
        for p in mixer.parameters():
            if not p.any():
                p.normal_(std=0.02)
    x = torch.randn(2, 6, 10, DIM, requires_grad=True)
    mixer(x).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if name != "identity":
        assert x.grad.abs().sum() > 0
    for pname, p in mixer.named_parameters():
        assert p.grad is not None, f"{name}.{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}.{pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name}.{pname} has an all-zero gradient"


@pytest.mark.parametrize(("name", "knobs"), CASES, ids=IDS)
def test_bf16_autocast_forward_backward(name: str, knobs: dict) -> None:
    mixer = _make(name, knobs)
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


# ---------------------------------------------------------------- traceable and compilable

OTHER_SIZES = [(6, 10), (3, 5)]  # a traced graph is run at these besides the traced GRID x GRID


def _size_specialised(name: str, knobs: dict) -> bool:
    """Mixers whose shapes follow Python branches on the map size, which ``torch.jit.trace``
    freezes: neighbourhood kernels and dilations clamp to short sides, MaxViT partitions shrink
    to short axes and pad otherwise, windows pad and Swin's shift applies only with more than
    one window. Their traced graph holds at the traced size only (trace at the size you run)."""
    windowed = name == "attention" and knobs.get("window_size") is not None
    return windowed or name in ("neighborhood_attention", "multi_axis_attention")


@pytest.mark.parametrize(("name", "knobs"), CASES, ids=IDS)
def test_jit_trace_equals_eager(name: str, knobs: dict) -> None:
    mixer = _make(name, knobs).eval()
    same = {}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates jit.trace
        traced = torch.jit.trace(mixer, torch.randn(2, GRID, GRID, DIM), check_trace=False)
        for size in [(GRID, GRID), *OTHER_SIZES]:
            x = torch.randn(2, *size, DIM)
            try:
                same[size] = torch.allclose(traced(x), mixer(x), rtol=1e-4, atol=1e-5)
            except RuntimeError:
                same[size] = False
    assert same[(GRID, GRID)], f"{name}: the traced graph differs from eager at the traced size"
    if _size_specialised(name, knobs):
        assert not all(same.values()), f"{name} now generalises: drop it from _size_specialised"
    else:
        assert all(same.values()), f"{name}: the traced graph does not generalise: {same}"


class _TimmLeafTracer(torch.fx.Tracer):
    """FX tracing as timm's feature extraction does it: modules registered with
    ``timm.layers.register_notrace_module`` stay opaque (their forward runs in Python)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_notrace_module(type(m)) or super().is_leaf_module(m, module_qualified_name)


@pytest.mark.parametrize(("name", "knobs"), CASES, ids=IDS)
def test_fx_traces_with_timm_leaf_modules(name: str, knobs: dict) -> None:
    mixer = _make(name, knobs)
    holder = nn.Sequential(mixer)  # a registered mixer is itself a leaf inside a model
    graph = torch.fx.GraphModule(holder, _TimmLeafTracer().trace(holder))
    for size in [(GRID, GRID), *OTHER_SIZES]:
        x = torch.randn(2, *size, DIM)
        torch.testing.assert_close(graph(x), mixer(x))


@pytest.mark.parametrize(("name", "knobs"), CASES, ids=IDS)
def test_compiles_in_one_graph_and_equals_eager(name: str, knobs: dict) -> None:
    """``fullgraph=True`` turns any graph break into an error; the eager backend makes that check
    cheap (inductor's code generation is checked below). Both graphs: a training step's (train
    mode, grad on) and a throughput measurement's (eval mode, no grad)."""
    torch._dynamo.reset()
    mixer = _make(name, knobs)
    compiled = torch.compile(mixer, backend="eager", fullgraph=True)
    x = torch.randn(2, 6, 10, DIM)
    torch.testing.assert_close(compiled(x), mixer(x))
    mixer.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), mixer(x))


def test_inductor_compiled_equals_eager() -> None:
    """Inductor's generated code, on two mixers in one graph (inductor compiles C++ on the CPU:
    one compilation pays its start-up once): ParCNetV2's autocast-disabled FFT convolutions,
    depthwise conv and GELU gate, then attention's resized bias table in an SDPA mask."""
    torch._dynamo.reset()
    model = nn.Sequential(_make("parc_v2", {}), _make("attention", {"rel_pos": "bias"})).eval()
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(2, 6, 10, DIM)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
