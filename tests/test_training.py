"""Proxy training: learning, determinism, failure paths, and the proxy shrink rule."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

import nas.training.proxy as proxy_module
from nas.data import DataConfig, build_loaders
from nas.models import ArchSpec, build_model, resolve_spec
from nas.training import EpochMetrics, ProxyConfig, proxy_spec, train_proxy

TINY = {
    "name": "tiny",
    "image_size": 224,
    "stages": [
        {"depth": 1, "dim": 16, "mixer": "sepconv"},
        {"depth": 1, "dim": 32, "mixer": "attention"},
    ],
}


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dataset cache for the session: each generated dataset is built once."""
    return tmp_path_factory.getbasetemp() / "nas-data"


def small_config(cache: Path, **overrides) -> ProxyConfig:
    data = DataConfig(resolution=16, num_train=128, num_val=64, batch_size=32, cache_dir=str(cache))
    return ProxyConfig(**{"epochs": 2, "data": data, "device": "cpu", **overrides})


def numbers(history: list[EpochMetrics]) -> list[tuple]:
    """The run's outcome without the wall-clock fields."""
    return [(m.epoch, m.val_top1, m.val_loss, m.train_loss) for m in history]


# --- learning ---------------------------------------------------------------------------------


def test_proxy_trainer_learns_the_default_dataset(data_cache: Path) -> None:
    """A small MetaFormer, trained by the real recipe, loop and evaluation on the default
    ``nearest`` task, lifts validation accuracy well above chance (0.5) in a few CPU seconds."""
    spec = {
        "name": "small",
        "image_size": 16,
        "head": {"kind": "linear"},
        "stages": [
            {"depth": 1, "dim": 16, "mixer": "pooling"},
            {"depth": 1, "dim": 32, "mixer": "sepconv"},
        ],
    }
    data = DataConfig(
        resolution=16, num_train=2048, num_val=512, batch_size=64, cache_dir=str(data_cache)
    )
    cfg = ProxyConfig(epochs=3, lr=3e-3, warmup_epochs=0.25, data=data, device="cpu")
    result = train_proxy(spec, cfg)
    assert result.status == "completed", result.reason
    assert result.final_top1 > 0.75, numbers(result.history)


# --- determinism and reporting ----------------------------------------------------------------


def test_same_seed_gives_identical_history(data_cache: Path) -> None:
    cfg = small_config(data_cache)
    first, second = train_proxy(TINY, cfg), train_proxy(TINY, cfg)
    assert first.status == second.status == "completed"
    assert numbers(first.history) == numbers(second.history)
    assert len(first.history) == 2
    other = train_proxy(TINY, dataclasses.replace(cfg, seed=1))
    assert numbers(other.history) != numbers(first.history)


def test_report_sees_every_epoch_and_false_prunes(data_cache: Path) -> None:
    seen: list[EpochMetrics] = []
    result = train_proxy(TINY, small_config(data_cache, epochs=3), report=seen.append)
    assert [m.epoch for m in seen] == [1, 2, 3] and result.status == "completed"
    assert all(m.elapsed_s > 0 and m.images_per_s > 0 for m in seen)
    assert seen[-1].elapsed_s >= seen[0].elapsed_s

    pruned = train_proxy(TINY, small_config(data_cache, epochs=3), report=lambda m: m.epoch < 2)
    assert pruned.status == "pruned"
    assert [m.epoch for m in pruned.history] == [1, 2]
    assert "after epoch 2" in pruned.reason


def test_exceptions_from_report_propagate(data_cache: Path) -> None:
    def report(metrics: EpochMetrics) -> bool:
        raise KeyError("the caller's own error")

    with pytest.raises(KeyError, match="the caller's own error"):
        train_proxy(TINY, small_config(data_cache), report=report)


def test_time_budget_ends_run_as_timeout(data_cache: Path) -> None:
    result = train_proxy(TINY, small_config(data_cache, epochs=5, max_seconds=1e-6))
    assert result.status == "timeout"
    assert len(result.history) == 1 and "max_seconds" in result.reason


def test_shared_bundle_gives_the_same_result(data_cache: Path) -> None:
    cfg = small_config(data_cache)
    bundle = build_loaders(cfg.data, "cpu")
    shared = train_proxy(TINY, cfg, bundle=bundle)
    assert numbers(shared.history) == numbers(train_proxy(TINY, cfg, bundle=bundle).history)
    assert numbers(shared.history) == numbers(train_proxy(TINY, cfg).history)


# --- failure paths ----------------------------------------------------------------------------


def patch_model(monkeypatch: pytest.MonkeyPatch, wrap) -> None:
    """Make the proxy trainer build ``wrap(model)`` instead of the model."""

    def build(spec, num_classes):
        return wrap(build_model(spec, num_classes))

    monkeypatch.setattr(proxy_module, "build_model", build)


def test_nan_loss_fails_with_reason(data_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def inject_nan(model: nn.Module) -> nn.Module:
        model.register_forward_hook(lambda module, args, out: out * float("nan"))
        return model

    patch_model(monkeypatch, inject_nan)
    result = train_proxy(TINY, small_config(data_cache))
    assert result.status == "failed"
    assert "nan" in result.reason.lower() and "diverged" in result.reason
    assert result.history == []


def test_huge_learning_rate_diverges_into_failure(data_cache: Path) -> None:
    result = train_proxy(TINY, small_config(data_cache, epochs=3, lr=1e12, warmup_epochs=0))
    assert result.status == "failed", numbers(result.history)
    assert "NaN or inf" in result.reason


class Broken(nn.Module):
    def __init__(self, error: Exception):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.error


def test_exception_in_model_fails_with_message(
    data_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch_model(monkeypatch, lambda model: Broken(RuntimeError("mixer exploded")))
    result = train_proxy(TINY, small_config(data_cache))
    assert result.status == "failed"
    assert result.reason == "RuntimeError: mixer exploded"


def test_out_of_memory_fails_with_reason(data_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")
    patch_model(monkeypatch, lambda model: Broken(oom))
    result = train_proxy(TINY, small_config(data_cache))
    assert result.status == "failed"
    assert result.reason == "out of memory: CUDA out of memory. Tried to allocate 2.00 GiB"


def test_invalid_config_raises_naming_the_key(data_cache: Path) -> None:
    with pytest.raises(ValueError, match=r"proxy\.width_mult"):
        train_proxy(TINY, small_config(data_cache, width_mult=0))
    with pytest.raises(ValueError, match=r"proxy\.amp_dtype"):
        small_config(data_cache, amp_dtype="fp8").validate()


# --- proxy shrink rule ------------------------------------------------------------------------


def shrink(spec, width: float = 1.0, depth: float = 1.0, resolution: int = 32) -> ArchSpec:
    cfg = ProxyConfig(width_mult=width, depth_mult=depth, data=DataConfig(resolution=resolution))
    return proxy_spec(spec, cfg)


def test_identity_multipliers_keep_the_network_but_size_it_for_the_proxy_images() -> None:
    spec = resolve_spec("caformer_s18")
    out = shrink(spec, resolution=32)
    assert [(s.depth, s.dim) for s in out.stages] == [(s.depth, s.dim) for s in spec.stages]
    assert out.image_size == 32 and out.name == "caformer_s18-proxy"
    assert out.drop_path_rate == 0.0


def test_widths_round_to_whole_heads_and_gnconv_groups() -> None:
    cafo = shrink("caformer_s18", width=0.25, depth=0.34)
    # 64/128 * 0.25 -> multiples of 8; 320/512 * 0.25 = 80/128 -> multiples of head_dim 32.
    assert [s.dim for s in cafo.stages] == [16, 32, 96, 128]
    assert [s.depth for s in cafo.stages] == [1, 1, 3, 1]

    gn = shrink("gnconv_gf_s18", width=0.1, depth=0.5)
    # orders 2..5 need multiples of 2, 4, 8, 16 channels; 8 is the floor.
    assert [s.dim for s in gn.stages] == [8, 16, 32, 64]
    assert [s.depth for s in gn.stages] == [2, 2, 5, 2]
    for shrunk in (cafo, gn):
        assert ArchSpec.from_dict(shrunk.to_dict()) == shrunk  # validates
        build_model(shrunk, num_classes=2)(torch.zeros(1, 3, 32, 32))


def test_depths_keep_hybrids_hybrid() -> None:
    spec = ArchSpec.from_dict(
        {
            "stages": [
                {
                    "depth": 9,
                    "dim": 64,
                    "mixer": "sepconv",
                    "overrides": [{"last": 3, "mixer": "attention"}],
                },
                {
                    "depth": 4,
                    "dim": 64,
                    "mixer": "sepconv",
                    "overrides": [{"last": 4, "mixer": {"name": "attention"}}],
                },
                {
                    "depth": 6,
                    "dim": 64,
                    "mixer": "sepconv",
                    "overrides": [{"blocks": [0, -1], "mixer": "attention"}],
                },
            ]
        }
    )
    out = shrink(spec, depth=1 / 3)
    names = [[m.name for m in s.block_mixers()] for s in out.stages]
    assert names[0] == ["sepconv", "sepconv", "attention"]  # last 3 of 9 -> last 1 of 3
    assert names[1] == ["attention"]  # the override covered the stage and still does
    assert names[2] == ["attention", "attention"]  # first and last of 6 -> first and last of 2
    tiny = shrink(spec, depth=0.01)
    assert [s.depth for s in tiny.stages] == [1, 1, 1]
    assert [s.block_mixers()[0].name for s in tiny.stages] == ["attention"] * 3
    two = shrink(spec, depth=0.2)  # 9 -> 2 blocks: the last 3 of 9 become the last 1 of 2
    assert [m.name for m in two.stages[0].block_mixers()] == ["sepconv", "attention"]


def test_explicit_grid_sizes_scale_with_the_image() -> None:
    spec = ArchSpec.from_dict(
        {
            "image_size": 224,
            "stages": [
                {"depth": 1, "dim": 32, "mixer": {"name": "global_filter", "grid_size": 56}}
            ],
        }
    )
    out = shrink(spec, resolution=32)
    assert out.stages[0].mixer.knobs["grid_size"] == 8
    unset = shrink(resolve_spec("gfformer_s18"), resolution=64)
    assert unset.resolved_knobs(0, unset.stages[0].mixer)["grid_size"] == 16


def test_proxy_spec_needs_a_resolution() -> None:
    cfg = ProxyConfig(data=DataConfig(resolution=None))
    with pytest.raises(ValueError, match=r"proxy\.data\.resolution"):
        proxy_spec(TINY, cfg)
    assert proxy_spec(TINY, cfg, image_size=24).image_size == 24


def test_depths_keep_interleaved_hybrids_interleaved() -> None:
    stage = {"dim": 64, "mixer": "sepconv", "overrides": [{"every": 3, "mixer": "attention"}]}
    spec = ArchSpec.from_dict({"stages": [{**stage, "depth": 9}, {**stage, "depth": 6}]})
    same = shrink(spec, depth=1.0)
    assert [m.name for m in same.stages[0].block_mixers()] == [
        "sepconv",
        "sepconv",
        "attention",
    ] * 3
    out = shrink(spec, depth=1 / 3)  # 9 -> 3 keeps every 3rd; 6 -> 2 keeps attention last
    names = [[m.name for m in s.block_mixers()] for s in out.stages]
    assert names == [["sepconv", "sepconv", "attention"], ["sepconv", "attention"]]
