"""Throughput measurement: median of timed repeats, spread, memory, thread handling."""

from __future__ import annotations

import statistics

import pytest
import torch

from nas.models import build_model
from nas.training import measure_throughput

SPEC = {
    "name": "bench",
    "image_size": 32,
    "stages": [
        {"depth": 1, "dim": 32, "mixer": "sepconv"},
        {"depth": 1, "dim": 64, "mixer": "attention"},
    ],
}


def test_inference_figure_is_the_median_of_repeats() -> None:
    result = measure_throughput(SPEC, "cpu", batch=8, warmup=1, steps=2, repeats=5)
    assert len(result.per_repeat) == 5 and all(r > 0 for r in result.per_repeat)
    assert result.images_per_s == statistics.median(result.per_repeat)
    assert result.min_images_per_s <= result.images_per_s <= result.max_images_per_s
    assert result.iqr_images_per_s >= 0 and result.spread >= 0
    assert result.resolution == 32  # the spec's image size
    assert result.mode == "inference" and result.device == "cpu" and result.device_name
    assert result.amp is False  # bf16 autocast is CUDA-only
    params = sum(p.numel() for p in build_model(SPEC, num_classes=1000).parameters())
    assert result.peak_memory_bytes > 4 * params  # float32 weights plus activations
    assert result.memory_kind == "cpu_live_tensor_bytes"


def test_training_is_slower_and_needs_more_memory_than_inference() -> None:
    kwargs = {"device": "cpu", "batch": 16, "warmup": 1, "steps": 2, "repeats": 3, "threads": 1}
    inference = measure_throughput(SPEC, mode="inference", **kwargs)
    train = measure_throughput(SPEC, mode="train", **kwargs)
    assert train.images_per_s < inference.images_per_s
    assert train.peak_memory_bytes > inference.peak_memory_bytes


def test_thread_count_and_global_rng_are_restored() -> None:
    before, rng = torch.get_num_threads(), torch.get_rng_state()
    result = measure_throughput(
        SPEC, "cpu", resolution=16, batch=2, warmup=0, steps=1, repeats=1, threads=1
    )
    assert result.threads == 1 and result.resolution == 16
    assert torch.get_num_threads() == before
    assert torch.equal(torch.get_rng_state(), rng)


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="mode"):
        measure_throughput(SPEC, "cpu", mode="training")
    with pytest.raises(ValueError, match="repeats"):
        measure_throughput(SPEC, "cpu", repeats=0)
