"""HyenaPixel (2D) and Hyena (1D) mixers and their implicit filters."""

from __future__ import annotations

import copy
import json
import math
import re
import warnings
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from nas.arch.spec import ArchSpec
from nas.bench.simulate import check_replayable
from nas.bench.table import read_table
from nas.functional.implicit_filter import (
    centred_offsets,
    exp_embedding_1d,
    offset_distance,
    radial_distance,
    resample_centred,
    sincos_embedding_2d,
)
from nas.layers.implicit_filter import ImplicitFilter1d, ImplicitFilter2d, Sin
from nas.layers.own_init import apply_own_init
from nas.mixers.knobs.hyena import HyenaKnobs, HyenaPixelKnobs
from nas.mixers.registry import create_mixer, get_mixer
from nas.models import build_model
from nas.search.config import load_config

ROOT = Path(__file__).resolve().parents[1]

DIM = 8
MIXERS = [
    ("hyena_pixel", {}),
    ("hyena_pixel", {"kernel_size": 21, "use_layernorm": False, "learnable_decay": False}),
    ("hyena", {}),
    ("hyena", {"bidirectional": False, "use_layernorm": True, "learnable_decay": True}),
]
SIZES = [(8, 8), (12, 20), (5, 3)]  # nominal, non-square, unseen at construction


def _build(name: str, knobs: dict, **extra: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_mixer(name, DIM, grid_size=8, **{**knobs, **extra})


@pytest.mark.parametrize(("name", "knobs"), MIXERS)
@pytest.mark.parametrize("order", [2, 3, 4])
def test_shape_and_gradients_reach_every_parameter(name: str, knobs: dict, order: int) -> None:
    mixer = _build(name, knobs, order=order)
    for size in SIZES:
        mixer.zero_grad()
        x = torch.randn(2, *size, DIM)
        y = mixer(x)
        assert y.shape == x.shape
        y.square().mean().backward()
        for pname, p in mixer.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), (size, pname)
            assert p.grad.abs().sum() > 0, (size, pname)


@pytest.mark.parametrize(("name", "knobs"), MIXERS)
def test_bf16_autocast_forward_backward(name: str, knobs: dict) -> None:
    mixer = _build(name, knobs, order=3)
    x = torch.randn(2, 12, 20, DIM, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = mixer(x)
    assert torch.isfinite(y).all()
    y.float().square().mean().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in mixer.parameters())


@pytest.mark.parametrize("order", [2, 3])
def test_causal_hyena_is_causal_in_raster_order(order: int) -> None:
    mixer = _build("hyena", {"bidirectional": False, "use_layernorm": True}, order=order)
    mixer.double()
    height, width = 5, 6
    x = torch.randn(2, height, width, DIM, dtype=torch.float64)
    y = mixer(x).flatten(1, 2)
    for t in (1, 7, 17, 29):
        x2 = x.flatten(1, 2).clone()
        x2[:, t:] = torch.randn_like(x2[:, t:])
        y2 = mixer(x2.view_as(x)).flatten(1, 2)
        torch.testing.assert_close(y2[:, :t], y[:, :t], rtol=0, atol=1e-10)
        assert not torch.allclose(y2[:, t:], y[:, t:])


def _reach(mixer: torch.nn.Module, size: tuple[int, int]) -> float:
    """How much the first token's output moves when the last token changes (float64: the
    official init makes long filters ~1e-5 small, far above round-off)."""
    mixer.double()
    x = torch.randn(1, *size, DIM, dtype=torch.float64)
    x2 = x.clone()
    x2[:, -1, -1] += 1.0
    return (mixer(x)[:, 0, 0] - mixer(x2)[:, 0, 0]).abs().max().item()


def test_bidirectional_hyena_sees_later_tokens() -> None:
    assert _reach(_build("hyena", {}), (4, 4)) > 1e-9


def test_global_kernel_reaches_across_the_map() -> None:
    assert _reach(_build("hyena_pixel", {}), (12, 20)) > 1e-9
    assert _reach(_build("hyena_pixel", {"kernel_size": 5}), (12, 20)) == 0


def test_global_kernel_at_nominal_size_is_the_explicit_2h_minus_1_kernel() -> None:
    global_mixer = _build("hyena_pixel", {})
    explicit = create_mixer("hyena_pixel", DIM, kernel_size=15)
    explicit.load_state_dict(global_mixer.state_dict())
    x = torch.randn(2, 8, 8, DIM)
    torch.testing.assert_close(explicit(x), global_mixer(x))


def test_decay_windows_peak_at_offset_zero_after_resampling() -> None:
    for size in [(15, 15), (9, 23), (29, 5), (1, 3)]:
        distance = radial_distance(size, 15)
        assert distance[size[0] // 2, size[1] // 2] == 0
        assert (distance > 0).sum() == distance.numel() - 1
    assert torch.equal(radial_distance((15, 15), 15)[7], (torch.arange(15.0) - 7).abs())
    for taps in (31, 19, 45):
        lag = offset_distance(taps, 31, causal=False)
        assert lag[taps // 2] == 0 and torch.equal(lag, lag.flip(0))
        assert (lag[: taps // 2].diff() < 0).all()
    assert offset_distance(16, 16, causal=True)[0] == 0
    filt1d = ImplicitFilter1d(4, emb_dim=9, hidden=16, nominal_length=16, causal=False)
    assert filt1d(10).shape == (4, 19)
    causal = ImplicitFilter1d(4, emb_dim=9, hidden=16, nominal_length=16, causal=True)
    assert causal(10).shape == (4, 10)


def test_filter_is_cached_in_inference_only() -> None:
    filt = ImplicitFilter2d(4, emb_dim=8, hidden=16, nominal_size=15)
    filt.eval()
    with torch.no_grad():
        first = filt((9, 9))
        assert filt((9, 9)) is first
        assert filt((7, 9)) is not first
        second = filt((9, 9))
        filt.decay_shift.add_(1.0)  # in-place update invalidates
        third = filt((9, 9))
        assert third is not second
        assert not torch.allclose(third, second)
    assert filt((9, 9)).requires_grad  # grad enabled: rebuilt with a graph
    filt.train()
    with torch.no_grad():
        assert filt((9, 9)) is not filt((9, 9))


def test_eval_inference_matches_training_forward() -> None:
    mixer = _build("hyena_pixel", {})
    x = torch.randn(2, 12, 20, DIM)
    expected = mixer(x)
    mixer.eval()
    with torch.inference_mode():
        torch.testing.assert_close(mixer(x), expected)
        torch.testing.assert_close(mixer(x), expected)


def test_hpx_former_s18_positional_encoding_size() -> None:
    """The learnable encodings of hpx_former_s18 (official emb 32/32/48/64, kernels 2H-1)."""
    total = 0
    for depth, dim, grid in zip([3, 3, 9, 3], [64, 128, 320, 512], [56, 28, 14, 7], strict=True):
        mixer = create_mixer("hyena_pixel", dim, grid_size=grid)
        total += depth * mixer.long_filter.pos_emb.numel()
    assert total == 3 * 32 * 111**2 + 3 * 32 * 55**2 + 9 * 48 * 27**2 + 3 * 64 * 13**2 == 1_820_592


@pytest.mark.parametrize(
    ("name", "knobs", "message"),
    [
        ("hyena_pixel", {"order": 1}, "order: expected >= 2, found 1"),
        ("hyena_pixel", {"order": 2.0}, "order: expected int, found float 2.0"),
        ("hyena_pixel", {"kernel_size": 4}, "kernel_size: expected an odd int, found 4"),
        (
            "hyena_pixel",
            {"kernel_size": "globl"},
            "kernel_size: expected int or one of 'global', found str 'globl'",
        ),
        ("hyena_pixel", {"emb_dim": 6}, "emb_dim: expected a multiple of 4"),
        ("hyena_pixel", {"short_kernel": 4}, "short_kernel: expected an odd int, found 4"),
        ("hyena_pixel", {"grid_size": 0}, "grid_size: expected >= 1, found 0"),
        ("hyena_pixel", {"use_layernorm": 1}, "use_layernorm: expected bool, found int 1"),
        (
            "hyena",
            {"emb_dim": 32},
            "emb_dim (a time channel plus cos/sin pairs): expected an odd int, found 32",
        ),
        ("hyena", {"bidirectional": "yes"}, "bidirectional: expected bool, found str 'yes'"),
        (
            "hyena_pixel",
            {"decay_resize": "offical"},
            "decay_resize: expected one of 'stretch', 'official', found 'offical' "
            "(did you mean 'official'?)",
        ),
        ("hyena", {"learnable_decay": "no"}, "learnable_decay: expected bool, found str 'no'"),
        ("hyena", {"filter_width": 0}, "filter_width: expected >= 1, found 0"),
    ],
)
def test_bad_hyena_knobs_get_messages_naming_the_knob(name: str, knobs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        get_mixer(name).check(DIM, knobs)
    with pytest.raises(ValueError, match=re.escape(message)):
        create_mixer(name, DIM, **knobs)


def test_registry_knobs_are_yaml_scalars() -> None:
    for name in ("hyena_pixel", "hyena"):
        for value in get_mixer(name).defaults.values():
            assert value is None or isinstance(value, int | float | bool | str)


# --- the official models: parameter counts, formulas, decay, initialisation -------------------

OFFICIAL_TRAINABLE_PARAMS = {  # spravil/HyenaPixel, counted with requires_grad (fixed decay excluded)
    "hpx_former_s18": 29_291_580,
    "hb_former_s18": 28_250_424,
    "c_hpx_former_s18": 27_740_616,
    "hpx_a_former_s18": 27_882_636,
    "hb_a_former_s18": 27_171_942,
}


@pytest.mark.parametrize("preset", sorted(OFFICIAL_TRAINABLE_PARAMS))
def test_presets_have_the_official_trainable_parameter_counts(preset: str) -> None:
    with torch.device("meta"):  # the full S18 structure without allocating or initialising it
        model = build_model(preset)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == OFFICIAL_TRAINABLE_PARAMS[preset]


def _layer_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Bias-free LayerNorm over channels of an NCHW map with the official eps 1e-5."""
    return F.layer_norm(x.permute(0, 2, 3, 1), weight.shape, weight, None, 1e-5).permute(0, 3, 1, 2)


def test_hyena_pixel_is_the_official_formula() -> None:
    """``out_proj(LN(v . (h * LN(q . k) + D . LN(q . k))))`` with q, k, v in projection order; the
    input is scaled so small that the LayerNorm eps (1e-5, not 1e-6) shows in the result."""
    torch.manual_seed(0)
    mixer = create_mixer("hyena_pixel", DIM, kernel_size=9).double()
    x = 1e-3 * torch.randn(2, 6, 7, DIM, dtype=torch.float64)
    u = mixer.short_conv(mixer.in_proj(x).permute(0, 3, 1, 2))
    q, k, v = u.chunk(3, dim=1)
    qk = _layer_norm(q * k, mixer.recurrence.norms[0].weight)
    h = mixer.long_filter((9, 9)).flip(-2, -1)[:, None]
    conv = F.conv2d(qk, h, padding=4, groups=DIM)
    y = v * (conv + mixer.recurrence.skip[0].view(-1, 1, 1) * qk)
    y = F.layer_norm(y.permute(0, 2, 3, 1), (DIM,), mixer.out_norm.weight, None, 1e-5)
    torch.testing.assert_close(mixer(x), mixer.out_proj(y), rtol=1e-9, atol=1e-12)


def test_bidirectional_hyena_gates_in_the_official_order() -> None:
    """Official Hyena splits the projection into (x_0, x_1, v) and returns
    ``x_0 . (h * (v . x_1) + D . (v . x_1))``: official weights load without reordering."""
    torch.manual_seed(0)
    mixer = create_mixer("hyena", DIM, grid_size=4).double()
    x = torch.randn(2, 4, 4, DIM, dtype=torch.float64)
    u = mixer.in_proj(x).flatten(1, 2).transpose(1, 2)
    x0, x1, v = mixer.short_conv(F.pad(u, (1, 1))).chunk(3, dim=1)
    z = v * x1
    taps = mixer.long_filter(16)  # (C, 31), offset 0 at tap 15: a zero-padded "same" conv
    conv = F.conv1d(z, taps.flip(-1)[:, None], padding=15, groups=DIM)
    y = x0 * (conv + mixer.recurrence.skip[0].view(-1, 1) * z)
    expected = mixer.out_proj(y.transpose(1, 2)).view(2, 4, 4, DIM)
    torch.testing.assert_close(mixer(x), expected, rtol=1e-9, atol=1e-12)


def test_hyena_decay_is_fixed_by_default_and_learnable_as_a_knob() -> None:
    """Official Hyena: rates registered with lr 0 (a buffer) and no shift, window
    ``exp(-t |delta_c|)`` with ``t`` 0 at offset 0 and 1 at both ends."""
    fixed = create_mixer("hyena", DIM, grid_size=4).long_filter.double()
    names = dict(fixed.named_parameters())
    assert "decay_rate" not in names and "decay_shift" not in names
    assert "decay_rate" in dict(fixed.named_buffers()) and "decay_rate" in fixed.state_dict()
    half = torch.linspace(0, 1, 16, dtype=torch.float64)
    t = 1 - torch.cat([half[:-1], half.flip(0)])
    rates = torch.linspace(math.log(1e-2) / 1.5, math.log(1e-2) / 0.3, DIM).double()  # as stored
    with torch.no_grad():
        expected = fixed.mlp(fixed.pos_emb.T).T * torch.exp(-t * rates.abs()[:, None])
        torch.testing.assert_close(fixed(16), expected, rtol=1e-12, atol=1e-15)
    learnable = create_mixer("hyena", DIM, grid_size=4, learnable_decay=True).long_filter
    assert {"decay_rate", "decay_shift"} <= dict(learnable.named_parameters()).keys()
    pixel = create_mixer("hyena_pixel", DIM, grid_size=4).long_filter  # HyenaPixel trains them
    assert {"decay_rate", "decay_shift"} <= dict(pixel.named_parameters()).keys()


def test_official_resize_rule_decays_twice_as_steeply_off_the_stored_size() -> None:
    """interpolate_hpx_former_s18_state_dict: distances x 2K/K' on a resized kernel, which with
    shift 0 squares the stretched window; at the stored size the two rules agree."""
    for size in [(23, 23), (9, 9), (23, 9)]:
        stretch = radial_distance(size, 15, dtype=torch.float64)
        rows = 2 * centred_offsets(size[0], 15, dtype=torch.float64)
        cols = 2 * centred_offsets(size[1], 15, dtype=torch.float64)
        official = radial_distance(size, 15, resize="official", dtype=torch.float64)
        torch.testing.assert_close(official, torch.hypot(rows[:, None], cols[None, :]))
        assert size == (23, 9) or torch.allclose(official, 2 * stretch)
    assert torch.equal(
        radial_distance((15, 15), 15, resize="official"), radial_distance((15, 15), 15)
    )
    torch.manual_seed(0)
    filters = {
        rule: create_mixer("hyena_pixel", DIM, grid_size=8, decay_resize=rule).double().long_filter
        for rule in ("stretch", "official")
    }
    filters["official"].load_state_dict(filters["stretch"].state_dict())
    with torch.no_grad():
        window = filters["stretch"]((23, 23)) / filters["stretch"].mlp(
            resample_centred(filters["stretch"].pos_emb, (23, 23)).permute(1, 2, 0)
        ).permute(2, 0, 1)
        torch.testing.assert_close(
            filters["official"]((23, 23)), filters["stretch"]((23, 23)) * window
        )
        torch.testing.assert_close(filters["official"]((15, 15)), filters["stretch"]((15, 15)))


def _filters(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in model.modules() if isinstance(m, (ImplicitFilter1d, ImplicitFilter2d))]


def _encoding_norm(filt: torch.nn.Module) -> float:
    z = filt.pos_emb.flatten(1)
    return math.sqrt(z.square().sum(0).mean().item())


@pytest.fixture(scope="module")
def hyena_model() -> torch.nn.Module:
    torch.manual_seed(0)
    spec = {
        "name": "hyena_init",
        "image_size": 64,
        "stages": [
            {"depth": 2, "dim": 64, "mixer": {"name": "hyena_pixel", "kernel_size": 31}},
            {"depth": 2, "dim": 128, "mixer": {"name": "hyena"}},
        ],
    }
    return build_model(spec, num_classes=10)


def test_initial_implicit_filters_in_a_built_model_are_the_official_init(hyena_model) -> None:
    """After the backbone's init: encodings at their sin/cos values, Sin frequencies 1, MLP
    weights N(0, 0.02) with zero biases, decay rates spread over 30-150% ranges. With sin(a) ~ a
    at these scales the filter's std is then std^L F^(L-1) |z| (L linear layers of width F):
    ~2e-3 (2D, L=3) and ~3e-4 (1D, L=4) rather than ~1e-1 for PyTorch's default init."""
    filters = _filters(hyena_model)
    assert {type(f) for f in filters} == {ImplicitFilter1d, ImplicitFilter2d} and len(filters) == 4
    for filt in filters:
        linears = [m for m in filt.mlp if isinstance(m, torch.nn.Linear)]
        weights = torch.cat([m.weight.flatten() for m in linears])
        assert abs(weights.std().item() - 0.02) < 0.002 and abs(weights.mean().item()) < 0.002
        assert all(m.bias is None or not m.bias.any() for m in linears)
        assert all(
            torch.equal(s.freq, torch.ones_like(s.freq)) for s in filt.mlp if isinstance(s, Sin)
        )
        channels = filt.decay_rate.numel()
        rates = torch.linspace(math.log(1e-2) / 1.5, math.log(1e-2) / 0.3, channels)
        if isinstance(filt, ImplicitFilter2d):
            assert torch.equal(filt.pos_emb, sincos_embedding_2d(*filt.pos_emb.shape[:2], 31))
            torch.testing.assert_close(filt.decay_rate, rates / 31)
            assert not filt.decay_shift.any()
            z = filt.pos_emb.permute(1, 2, 0)
        else:
            assert torch.equal(
                filt.pos_emb, exp_embedding_1d(filt.pos_emb.shape[0], 2 * 8**2 - 1, False)
            )
            torch.testing.assert_close(filt.decay_rate, rates)
            z = filt.pos_emb.T
        width, layers = linears[0].out_features, len(linears)
        expected = 0.02**layers * width ** ((layers - 1) / 2) * _encoding_norm(filt)
        with torch.no_grad():
            assert abs(filt.mlp(z).std().item() / expected - 1) < 0.25


def test_init_weights_restores_every_filter_parameter(hyena_model) -> None:
    model = copy.deepcopy(hyena_model)
    with torch.no_grad():
        for filt in _filters(model):
            for p in [*filt.parameters(), *filt.buffers()]:
                p.fill_(3.0)
    apply_own_init(model)
    for filt, reference in zip(_filters(model), _filters(hyena_model), strict=True):
        assert torch.equal(filt.pos_emb, reference.pos_emb)
        assert torch.equal(filt.decay_rate, reference.decay_rate)
        for p, q in zip(filt.parameters(), reference.parameters(), strict=True):
            assert p.shape == q.shape and abs(p.std().item() - q.std().item()) < 0.005
            assert (p == 3.0).sum() < p.numel() // 2


# --- tracing: jit.trace, torch.fx, torch.compile ----------------------------------------------

TRACE_CASES = [
    ("hyena_pixel", {"grid_size": 8, "order": 3}),
    ("hyena_pixel", {"grid_size": 8, "kernel_size": 15, "decay_resize": "official"}),
    ("hyena", {"grid_size": 8}),
    ("hyena", {"grid_size": 8, "bidirectional": False, "use_layernorm": True}),
]
OTHER_SIZES = [(8, 8), (12, 20), (5, 3)]


def _loud(name: str, knobs: dict) -> torch.nn.Module:
    """A float64 mixer whose long convolution dominates its output (the official init makes
    the filters ~1e-3 small), so a wrong FFT grid or crop in a trace would show."""
    torch.manual_seed(0)
    mixer = create_mixer(name, DIM, **knobs).double().eval()
    with torch.no_grad():
        mixer.long_filter.mlp[-1].weight.mul_(1e3)
    return mixer


@pytest.mark.parametrize(("name", "knobs"), TRACE_CASES)
def test_jit_trace_equals_eager_at_the_traced_and_other_sizes(name: str, knobs: dict) -> None:
    mixer = _loud(name, knobs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)  # nothing frozen into the graph
        with torch.no_grad():
            traced = torch.jit.trace(mixer, torch.randn(2, 8, 8, DIM, dtype=torch.float64))
    with torch.no_grad():
        for size in OTHER_SIZES:
            x = torch.randn(2, *size, DIM, dtype=torch.float64)
            torch.testing.assert_close(traced(x), mixer(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("name", "knobs"), TRACE_CASES)
def test_fx_symbolic_trace_equals_eager(name: str, knobs: dict) -> None:
    mixer = _loud(name, knobs)
    graph = torch.fx.symbolic_trace(mixer)
    leaves = {n.target.__name__ for n in graph.graph.nodes if n.op == "call_function"}
    assert {"generate_filter", "fftconv1d" if name == "hyena" else "fftconv2d"} <= leaves
    with torch.no_grad():
        for size in OTHER_SIZES:
            x = torch.randn(2, *size, DIM, dtype=torch.float64)
            torch.testing.assert_close(graph(x), mixer(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("name", "knobs"), TRACE_CASES[::2])
def test_torch_compile_has_no_graph_break(name: str, knobs: dict) -> None:
    """fullgraph=True raises on any graph break; the eager backend keeps the check cheap."""
    mixer = _loud(name, knobs)
    for train, size in ((True, (8, 8)), (False, (12, 20))):  # rebuilt filter, and inference
        mixer.train(train)
        torch._dynamo.reset()
        compiled = torch.compile(mixer, backend="eager", fullgraph=True)
        with torch.set_grad_enabled(train):
            x = torch.randn(2, *size, DIM, dtype=torch.float64)
            torch.testing.assert_close(compiled(x), mixer(x), rtol=1e-12, atol=1e-12)
    torch._dynamo.reset()


# --- content hashes: the revised defaults never reuse an old hash -------------------------------


def test_revised_hyena_mixers_do_not_reuse_stored_hashes(monkeypatch) -> None:
    """The defaults changed meaning (LayerNorm eps, init, fixed decay): a spec at the defaults
    hashes unlike the same spec under the revision-1 rule, so a stored trial or measurement of
    the old network is never taken for the new one; other mixers keep their hashes."""
    stages = [
        {"depth": 1, "dim": 16, "mixer": {"name": "sepconv"}},
        {"depth": 1, "dim": 32, "mixer": {"name": "hyena_pixel"}},
        {"depth": 1, "dim": 32, "mixer": {"name": "hyena"}},
    ]
    specs = [ArchSpec.from_dict({"image_size": 32, "stages": stages[:n]}) for n in (1, 2, 3)]
    today = [s.content_hash() for s in specs]
    monkeypatch.setattr(HyenaPixelKnobs, "revision", 1)
    monkeypatch.setattr(HyenaKnobs, "revision", 1)
    before = [s.content_hash() for s in specs]
    assert before[0] == today[0]
    assert before[1] != today[1] and before[2] != today[2]


def test_shipped_bench_table_still_replays() -> None:
    """Its rows are re-keyed by today's hash when read, so the revised mixers' archs are found."""
    table = read_table(ROOT / "benchmarks" / "tables" / "bench.parquet")
    check_replayable(table, load_config(ROOT / "search_spaces" / "bench.yaml"), "bench.parquet")
    assert any("hyena" in json.dumps(a.spec) for a in table.archs.values())
