"""Noise figures against independent oracles: Wilson intervals, ties, Kendall tau, seeds,
re-measured throughput, seed-design projection and space enumeration."""

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
import scipy.stats

from nas.arch.presets import PRESET_MIXERS
from nas.search.config import load_config
from nas.search.noise import (
    kendall_tau,
    rank_agreement,
    tied_with,
    validation_size_for,
    wilson_interval,
)
from nas.search.references import (
    REFERENCE_FAMILIES,
    middle_value,
    preset_stages_for,
    project_reference,
)
from nas.search.space import enumerate_architectures
from nas.training.proxy import ProxyConfig, train_proxy
from nas.training.throughput import measure_throughput
from nas.typed_config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (940, 1000), (2350, 2500), (1, 7)])
def test_wilson_interval_matches_the_score_test_inversion(k, n) -> None:
    """The Wilson interval is the set of p whose score test does not reject: check both ends
    with scipy's normal quantile and against scipy.stats.binomtest's Wilson interval."""
    low, high = wilson_interval(k / n, n)
    ci = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    z = scipy.stats.norm.ppf(0.975)
    for p in (low, high):
        if 1e-9 < p < 1 - 1e-9:
            assert abs(k / n - p) / math.sqrt(p * (1 - p) / n) == pytest.approx(z, rel=1e-9)


def test_validation_size_gives_about_one_point_at_94_percent() -> None:
    n = validation_size_for(0.01, 0.94)
    low, high = wilson_interval(0.94, n)
    assert (high - low) / 2 == pytest.approx(0.01, rel=0.02)
    low, high = wilson_interval(0.94, 2500)
    assert (high - low) / 2 < 0.0095


def test_ties_equal_a_brute_force_pairwise_overlap_check() -> None:
    rng = np.random.default_rng(0)
    centre = rng.uniform(0, 1, (40, 3))
    half = rng.uniform(0, 0.15, (40, 3))
    half[:, 2] = 0.0  # an exact objective (params): ties need equal values there
    centre[::5, 2] = centre[0, 2]
    lows, highs = centre - half, centre + half
    ties = tied_with(lows, highs)
    for i, j in itertools.permutations(range(40), 2):
        overlap = all(
            max(lows[i, k], lows[j, k]) <= min(highs[i, k], highs[j, k]) for k in range(3)
        )
        assert (j in ties[i]) == overlap
    assert any(ties) and not all(ties)


def test_kendall_tau_equals_scipy_with_and_without_ties() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.integers(0, 6, 15).astype(float)
        y = x + rng.integers(-3, 4, 15)
        assert kendall_tau(x, y) == pytest.approx(scipy.stats.kendalltau(x, y).statistic)


def test_rank_agreement_interval_brackets_tau_and_narrows_with_more_data() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=200)
    y = x + rng.normal(scale=0.7, size=200)
    small, large = rank_agreement(x[:15], y[:15]), rank_agreement(x, y)
    for a in (small, large):
        assert a.low <= a.tau <= a.high
    assert large.high - large.low < small.high - small.low
    assert str(large).startswith(f"kendall tau {large.tau:.2f} [")
    with pytest.raises(ValueError, match="at least 3 architectures"):
        rank_agreement([1, 2], [1, 2])


def test_two_seeds_in_lockstep_are_the_mean_of_two_single_seed_runs() -> None:
    cfg = ProxyConfig(epochs=2, lr=3e-3, warmup_epochs=0.5, device="cpu", threads=1)
    cfg = dataclasses.replace(
        cfg, data=dataclasses.replace(cfg.data, resolution=16, num_train=256, num_val=128)
    )
    spec = {
        "name": "s",
        "image_size": 16,
        "head": {"kind": "linear"},
        "stages": [
            {"depth": 1, "dim": 8, "mixer": "pooling"},
            {"depth": 1, "dim": 16, "mixer": "sepconv"},
        ],
    }
    both = train_proxy(spec, dataclasses.replace(cfg, seeds=2))
    single = [train_proxy(spec, dataclasses.replace(cfg, seed=s)) for s in (0, 1)]
    for epoch, metrics in enumerate(both.history):
        per_seed = [r.history[epoch].val_top1 for r in single]
        assert metrics.val_top1 == pytest.approx(np.mean(per_seed), abs=1e-12)
        assert metrics.val_top1_std == pytest.approx(np.std(per_seed, ddof=1), abs=1e-12)
        assert metrics.seeds == 2 and metrics.val_size == 128
    assert single[0].history[-1].val_top1_std is None


def test_throughput_is_re_measured_until_quiet_and_keeps_the_quietest_round() -> None:
    spec = {"name": "t", "image_size": 16, "stages": [{"depth": 1, "dim": 8, "mixer": "pooling"}]}
    never = measure_throughput(
        spec,
        device="cpu",
        batch=2,
        repeats=4,
        steps=1,
        threads=1,
        max_relative_iqr=1e-9,
        max_rounds=3,
    )
    assert never.rounds == 3
    assert never.q25_images_per_s <= never.images_per_s <= never.q75_images_per_s
    assert never.relative_iqr == pytest.approx(never.iqr_images_per_s / never.images_per_s)
    q = np.percentile(never.per_repeat, [25, 75], method="weibull")  # statistics.quantiles' rule
    assert (never.q25_images_per_s, never.q75_images_per_s) == pytest.approx(tuple(q))
    once = measure_throughput(
        spec,
        device="cpu",
        batch=2,
        repeats=4,
        steps=1,
        threads=1,
        max_relative_iqr=10.0,
        max_rounds=3,
    )
    assert once.rounds == 1


def test_every_seed_design_projects_its_preset_layout_onto_the_default_space() -> None:
    cfg = load_config(ROOT / "search_spaces" / "metaformer.yaml", ["references=all"])
    assert list(cfg.references) == list(REFERENCE_FAMILIES)
    space = cfg.space
    picks = preset_stages_for(len(space.stages), 4)
    assert picks == [1, 2, 3]
    preset_grids = [56, 28, 14, 7]  # S18 at 224 px
    for name, spec in cfg.references.items():
        mixers = PRESET_MIXERS[REFERENCE_FAMILIES[name]]
        assert len(spec.stages) == len(space.stages)
        for stage, stage_space, k, grid in zip(
            spec.stages, space.stages, picks, spec.grid_sizes(), strict=True
        ):
            expected = dict(mixers[k])
            if "kernel_size" in expected:  # HyenaPixel's whole-map kernel spans the space's map
                assert expected["kernel_size"] == 2 * preset_grids[k] - 1
                expected["kernel_size"] = 2 * grid - 1
            assert stage.mixer.name == expected.pop("name")
            assert {k2: stage.mixer.knobs[k2] for k2 in expected} == expected
            assert stage.depth == middle_value(stage_space.depth)
            assert stage.dim == sorted(stage_space.dim.choices)[len(stage_space.dim.choices) // 2]
            assert stage.res_scale == stage_space.res_scale and not stage.overrides
        assert spec.image_size == space.image_size
    assert (
        project_reference("caformer", space).content_hash()
        == cfg.references["caformer"].content_hash()
    )
    assert preset_stages_for(6, 4) == [0, 0, 1, 2, 2, 3]


def test_projected_hyena_pixel_kernels_span_the_space_map_as_global_ones_do() -> None:
    """The fixed 111/55/27/13 kernels mean "the whole 224 px map": projected onto a 32 px space
    they build, and compute at its nominal size, exactly what ``kernel_size: global`` does (not
    111-tap encodings on 8 x 8 maps)."""
    import torch

    from nas.arch.spec import ArchSpec
    from nas.models import build_model

    space = load_config(ROOT / "search_spaces" / "metaformer.yaml").space
    for name in ("hpx_former", "c_hpx_former", "hpx_a_former"):
        spec = project_reference(name, space)
        data = spec.to_dict()
        for stage in data["stages"]:
            if stage["mixer"]["name"] == "hyena_pixel":
                stage["mixer"]["kernel_size"] = "global"
        torch.manual_seed(0)
        fixed = build_model(spec, num_classes=4)
        whole = build_model(ArchSpec.from_dict(data), num_classes=4)
        whole.load_state_dict(fixed.state_dict())  # same parameter shapes, or this raises
        x = torch.randn(2, 3, space.image_size, space.image_size)
        torch.testing.assert_close(fixed(x), whole(x))


def test_reference_errors_name_the_design() -> None:
    tiny = ROOT / "search_spaces" / "tiny.yaml"
    with pytest.raises(
        ConfigError,
        match=r"references\[1\]: unknown seed design 'cafomer' \(did you mean 'caformer'\?\)",
    ):
        load_config(tiny, ["+references=[poolformer,cafomer]"])
    with pytest.raises(
        ConfigError,
        match=r"seed design 'gnconv' cannot be projected onto the space: arch.stages\[1\].mixer: "
        r"mixer 'gnconv': order: dim 12 must be divisible by 2\*\*\(order-1\)=16 for order 5",
    ):
        load_config(tiny, ["+references=[poolformer,gnconv]", "space.stages.1.dim=12"])
    with pytest.raises(ConfigError, match="expected 'all' or a list of seed designs"):
        load_config(tiny, ["+references=caformer"])


def test_enumeration_equals_the_brute_force_product_of_conditional_choices(tmp_path) -> None:
    cfg = load_config(ROOT / "search_spaces" / "tiny.yaml")
    found = enumerate_architectures(cfg.space)
    hashes = {s.content_hash() for s in found}
    assert len(hashes) == len(found)

    class Fixed:
        def __init__(self, values):
            self.values = values

        def suggest_categorical(self, name, choices):
            return self.values.get(name, choices[0])

    brute = set()
    stage0 = [("sepconv", k) for k in (3, 5)] + [("pooling", None), ("global_filter", None)]
    stage0 += [("hyena_pixel", k) for k in (5, "global")]
    for (m0, k0), d0, m1, d1, dim1, last in itertools.product(
        stage0, (8, 16), ("sepconv", "attention", "parc"), (1, 2), (16, 32), (0, 1)
    ):
        for k1 in (3, 5) if m1 == "sepconv" else (None,):
            values = {
                "s0.mixer": m0,
                "s0.dim": d0,
                "s1.mixer": m1,
                "s1.depth": d1,
                "s1.dim": dim1,
                "s1.attention_last": last,
            }
            if k0 is not None:
                values[f"s0.{m0}.kernel_size"] = k0
            if k1 is not None:
                values["s1.sepconv.kernel_size"] = k1
            try:
                brute.add(cfg.space.sample(Fixed(values)).content_hash())
            except ValueError:
                pass
    assert hashes == brute
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(0))
    for _ in range(50):
        try:
            assert cfg.space.sample(study.ask()).content_hash() in hashes
        except ValueError:
            pass
    assert (
        enumerate_architectures(load_config(ROOT / "search_spaces" / "metaformer.yaml").space)
        is None
    )
