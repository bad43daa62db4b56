"""Zero-cost proxies against closed forms and direct autograd, and on real tiny specs."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.bench.zero_cost import (
    ALL,
    ZERO_COST_PROXIES,
    ZeroCostError,
    grad_norm,
    naswot,
    naswot_kernel,
    probe_batch,
    score_architecture,
    snip,
    synflow,
)
from nas.errors import NasError
from nas.layers import StarReLU
from nas.models.metaformer import build_model
from nas.models.profile import profile

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_state(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert after[key].dtype == value.dtype, key
        assert torch.equal(after[key], value), key


def _chain() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Linear(5, 4, bias=False),
        nn.ReLU(),
        nn.Linear(4, 6, bias=False),
        nn.Linear(6, 3, bias=False),
    )


def test_synflow_matches_the_closed_form_of_a_linear_chain() -> None:
    model = _chain()
    before = _state(model)
    w1, w2, w3 = (before[f"{i}.weight"].double().abs() for i in (0, 2, 3))
    # On the sign-linearised chain every activation is positive (ReLU is the identity) and the
    # summed output of an all-ones input is R = 1^T |W3| |W2| |W1| 1. dR/d|W2|_ij is
    # (1^T |W3|)_i (|W1| 1)_j, so layer l's term sum |W_l| * dR/d|W_l| equals R for each l.
    left = [torch.ones(3, dtype=torch.float64)]
    for w in (w3, w2):
        left.append(left[-1] @ w)
    right = [torch.ones(5, dtype=torch.float64)]
    for w in (w1, w2):
        right.append(w @ right[-1])
    per_layer = [
        (w1 * torch.outer(left[2], right[0])).sum(),
        (w2 * torch.outer(left[1], right[1])).sum(),
        (w3 * torch.outer(left[0], right[2])).sum(),
    ]
    total = float(sum(per_layer))
    flow = float(left[0] @ w3 @ w2 @ w1 @ right[0])
    assert total == pytest.approx(3 * flow, rel=1e-12)

    inputs = torch.randn(7, 5)  # values and batch size do not matter: one all-ones sample
    score = synflow(model, inputs, torch.zeros(7, dtype=torch.long))
    assert score == pytest.approx(total, rel=1e-10)
    assert score == pytest.approx(synflow(model, inputs[:1] * 0, torch.zeros(1)), rel=1e-12)
    _assert_same_state(model, before)
    assert all(p.grad is None for p in model.parameters())
    assert model.training


def test_synflow_bypasses_batchnorm_and_restores_the_model() -> None:
    plain = _chain()
    with_bn = nn.Sequential(plain[0], nn.BatchNorm1d(4), *plain[1:])
    with_bn.eval()
    with_bn[1].running_mean.fill_(-3.0)  # would change the flow if the norm were applied
    with_bn[1].running_var.fill_(9.0)
    before = _state(with_bn)
    inputs = torch.randn(4, 5)
    assert synflow(with_bn, inputs, torch.zeros(4)) == pytest.approx(
        synflow(plain, inputs, torch.zeros(4)), rel=1e-12
    )
    _assert_same_state(with_bn, before)
    assert not with_bn.training


def _gated_model() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(5)
    m1, m2 = torch.randn(7, 6), torch.randn(5, 7)
    model = nn.Sequential(
        nn.ReLU(),
        nn.Linear(6, 7, bias=False),
        StarReLU(),
        nn.Linear(7, 5, bias=False),
        nn.GELU(),
    )
    with torch.no_grad():
        model[1].weight.copy_(m1)
        model[3].weight.copy_(m2)
    return model, m1, m2


def _hamming_kernel(codes: list[torch.Tensor]) -> torch.Tensor:
    """Units minus Hamming distance, summed over layers, by plain pairwise comparison."""
    batch = codes[0].shape[0]
    kernel = torch.zeros(batch, batch, dtype=torch.float64)
    for c in codes:
        for i in range(batch):
            for j in range(batch):
                kernel[i, j] += c.shape[1] - int((c[i] != c[j]).sum())
    return kernel


def test_naswot_kernel_is_the_hamming_kernel_of_the_activation_inputs() -> None:
    model, m1, m2 = _gated_model()
    x = torch.randn(6, 6)
    h1 = F.relu(x) @ m1.T  # StarReLU's input
    h2 = (F.relu(h1).square()) @ m2.T  # GELU's input (StarReLU scale 1, bias 0 at init)
    expected = _hamming_kernel([x > 0, h1 > 0, h2 > 0])
    kernel = naswot_kernel(model, x)
    assert torch.equal(kernel, expected)
    sign, logdet = torch.linalg.slogdet(expected)
    assert sign != 0
    assert naswot(model, x, torch.zeros(6)) == pytest.approx(float(logdet), rel=1e-12)


def test_naswot_of_identical_inputs_is_minus_infinity() -> None:
    model, _, _ = _gated_model()
    x = torch.randn(1, 6).expand(4, 6)
    kernel = naswot_kernel(model, x)
    assert torch.equal(kernel, torch.full((4, 4), 18.0, dtype=torch.float64))  # 6 + 7 + 5 units
    assert naswot(model, x, torch.zeros(4)) == -math.inf


def test_naswot_needs_a_hookable_activation() -> None:
    with pytest.raises(ZeroCostError, match="no activation module"):
        naswot(nn.Linear(3, 2), torch.randn(4, 3), torch.zeros(4))


def _tiny_classifier() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(11)
    model = nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.LayerNorm(6), nn.Linear(6, 3))
    return model, torch.randn(5, 4), torch.tensor([0, 2, 1, 1, 0])


def test_grad_norm_and_snip_match_direct_autograd() -> None:
    model, x, y = _tiny_classifier()
    reference = _tiny_classifier()[0]
    grads = torch.autograd.grad(F.cross_entropy(reference(x), y), list(reference.parameters()))
    params = list(reference.parameters())
    assert len(params) == 6  # weights, biases and the LayerNorm's affine all count
    expected_norm = sum(float(g.norm()) for g in grads)
    expected_snip = sum(
        float((p.detach() * g).abs().sum()) for p, g in zip(params, grads, strict=True)
    )

    for p in model.parameters():  # pre-existing gradients must survive untouched
        p.grad = torch.full_like(p, 0.5)
    before = _state(model)
    assert grad_norm(model, x, y) == pytest.approx(expected_norm, rel=1e-6)
    assert snip(model, x, y) == pytest.approx(expected_snip, rel=1e-6)
    _assert_same_state(model, before)
    assert all(torch.equal(p.grad, torch.full_like(p, 0.5)) for p in model.parameters())


@pytest.fixture(scope="module")
def tiny_specs():
    from nas.search.config import load_config
    from nas.search.space import enumerate_architectures

    specs = enumerate_architectures(load_config(ROOT / "search_spaces" / "tiny.yaml").space)
    assert specs is not None
    by_mixers = {tuple(s.stages[i].mixer.name for i in range(2)): s for s in specs}
    return [by_mixers[("pooling", "attention")], by_mixers[("global_filter", "sepconv")]]


def test_score_architecture_on_real_specs(tiny_specs) -> None:
    torch.manual_seed(1)
    inputs, targets, num_classes = torch.randn(8, 3, 16, 16), torch.randint(0, 4, (8,)), 4
    for spec in tiny_specs:
        rng_before = torch.random.get_rng_state()
        first = score_architecture(spec, inputs, targets, num_classes)
        assert torch.equal(torch.random.get_rng_state(), rng_before)  # the caller's RNG is kept
        assert list(first) == list(ALL)
        assert all(math.isfinite(v) for v in first.values()), first
        assert score_architecture(spec, inputs, targets, num_classes) == first
        cost = profile(spec, resolution=16, num_classes=num_classes)
        model = build_model(spec, num_classes=num_classes)
        assert first["params"] == cost.params == sum(p.numel() for p in model.parameters())
        assert first["macs"] == cost.macs > 0
        # each proxy scores the model a seeded build gives, whichever proxies are asked for
        torch.manual_seed(0)
        model = build_model(spec, num_classes=num_classes)
        assert first["snip"] == ZERO_COST_PROXIES["snip"](model, inputs, targets)
        assert score_architecture(spec, inputs, targets, num_classes, ["snip"]) == {
            "snip": first["snip"]
        }
        assert score_architecture(spec, inputs, targets, num_classes, seed=1) != first
    a, b = (score_architecture(s, inputs, targets, num_classes) for s in tiny_specs)
    assert a["params"] != b["params"] and a["synflow"] != b["synflow"]


def test_unknown_proxy_is_named_with_a_hint(tiny_specs) -> None:
    args = (tiny_specs[0], torch.randn(2, 3, 16, 16), torch.zeros(2, dtype=torch.long), 4)
    with pytest.raises(ZeroCostError, match="'synflw'.*did you mean 'synflow'") as err:
        score_architecture(*args, proxies=["params", "synflw"])
    assert isinstance(err.value, NasError)
    with pytest.raises(ZeroCostError, match="'jacov'"):
        score_architecture(*args, proxies=["jacov"])


def test_probe_batch_is_the_unaugmented_first_training_batch(tmp_path) -> None:
    from nas.data import DataConfig, build_loaders

    cfg = DataConfig(
        resolution=16, num_train=48, num_val=8, batch_size=16, seed=2, cache_dir=str(tmp_path)
    )
    images, labels, num_classes = probe_batch(cfg, batch_size=16, seed=2)
    bundle = build_loaders(dataclasses.replace(cfg, augment=False), "cpu")
    expected_x, expected_y = next(iter(bundle.train_loader))
    assert images.shape == (16, 3, 16, 16) and images.dtype == torch.float32
    assert torch.equal(images, expected_x) and torch.equal(labels, expected_y)
    assert num_classes == bundle.num_classes
    other, _, _ = probe_batch(cfg, batch_size=16, seed=3)
    assert not torch.equal(other, images)
    with pytest.raises(ZeroCostError, match="batch_size"):
        probe_batch(cfg, batch_size=49)
