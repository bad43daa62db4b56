"""Every shipped search-space file works as shipped: it validates, its own sampler proposes valid
architectures inside its constraints, and their full-size and proxy networks build and run. The
cluster space (metaformer_s18.yaml), which users copy, also runs a real one-trial search on CPU
with device, data and size overrides, so a key or knob that drifts fails here, not on a cluster."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from PIL import Image

from nas.models import ArchSpec, build_model
from nas.models.profile import profile
from nas.search.config import SearchConfig, load_config
from nas.search.samplers import create_sampler
from nas.search.trainable import constraint_violation
from nas.store import SearchStore
from nas.training.proxy import proxy_spec
from nas.training.recipe import prepare_model

ROOT = Path(__file__).resolve().parents[1]
SPACE_FILES = sorted((ROOT / "search_spaces").glob("*.yaml"))
S18 = ROOT / "search_spaces" / "metaformer_s18.yaml"
SAMPLES = 4
NUM_CLASSES = 7  # no dataset is loaded here; a count unlike any width catches head mix-ups


def test_every_shipped_space_is_covered() -> None:
    names = [p.name for p in SPACE_FILES]
    assert names, "no search_spaces/*.yaml found"
    assert {"metaformer.yaml", "metaformer_s18.yaml"} <= set(names)


def _sample(cfg: SearchConfig, count: int) -> list[ArchSpec]:
    """The search's own way to propose: ``study.ask()`` on a study with the file's sampler and
    seed, then ``space.sample(trial)`` (:meth:`SearchDriver._sample_new`)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=cfg.directions, sampler=create_sampler(cfg.search.sampler, cfg.search.seed)
    )
    return [cfg.space.sample(study.ask()) for _ in range(count)]


@pytest.mark.parametrize("path", SPACE_FILES, ids=lambda p: p.stem)
def test_shipped_space_samples_and_builds(path: Path) -> None:
    """Each of the file's first proposals must be a valid spec inside its constraints (checked as
    the trial checks them: params and MACs of the full-size network at 1,000 classes), since a
    shipped file that proposes otherwise fails trials before any training. The full-size net
    runs one eval forward at the throughput resolution (batch 1 at 224 px is ~0.1 s on 2 cores,
    cheap enough to run rather than only count); the proxy net, built from the spec by the same
    :func:`proxy_spec` as the trainer, runs a training-mode forward and backward at the proxy's
    training resolution."""
    cfg = load_config(path)
    side = cfg.throughput.resolution or cfg.space.image_size  # what measure_throughput uses
    proxy_side = cfg.proxy.data.resolution
    assert proxy_side is not None, "a shipped space states its proxy resolution"
    specs = _sample(cfg, SAMPLES)
    assert len({s.content_hash() for s in specs}) > 1, "the sampler proposed one architecture"
    shrinks = cfg.proxy.width_mult < 1 or cfg.proxy.depth_mult < 1
    for spec in specs:
        assert ArchSpec.from_dict(spec.to_dict()) == spec
        assert ArchSpec.from_yaml(spec.to_yaml()).content_hash() == spec.content_hash()
        assert len(spec.stages) == len(cfg.space.stages)
        for stage, space in zip(spec.stages, cfg.space.stages, strict=True):
            assert stage.depth in space.depth.values() and stage.dim in space.dim.values()

        cost = profile(spec)
        assert constraint_violation(cfg.constraints, cost.params, cost.macs, None) is None, spec

        full = prepare_model(build_model(spec, NUM_CLASSES), torch.device("cpu")).eval()
        with torch.no_grad():
            out = full(torch.randn(1, spec.in_chans, side, side))
        assert out.shape == (1, NUM_CLASSES) and torch.isfinite(out).all(), spec

        small = proxy_spec(spec, cfg.proxy)
        assert small.image_size == proxy_side
        assert ArchSpec.from_dict(small.to_dict()) == small
        proxy = prepare_model(build_model(small, NUM_CLASSES), torch.device("cpu")).train()
        out = proxy(torch.randn(1, small.in_chans, proxy_side, proxy_side))
        assert out.shape == (1, NUM_CLASSES) and torch.isfinite(out).all(), small
        out.logsumexp(dim=1).sum().backward()
        grads = [p.grad for p in proxy.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), small

        full_params = sum(p.numel() for p in full.parameters())
        proxy_params = sum(p.numel() for p in proxy.parameters())
        assert full_params >= proxy_params, (spec, full_params, proxy_params)
        if shrinks:
            assert full_params > proxy_params, "width_mult / depth_mult shrank nothing"


def _write_image_folder(root: Path, classes: int, train: int, val: int) -> None:
    """A tiny ImageFolder (``root/{train,val}/<class>/*.png``, 40 px, one tint per class so the
    labels mean something) that the search resizes and centre-crops to its proxy resolution."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                image = rng.integers(0, 120, (40, 40, 3), dtype=np.uint8)
                image[..., c % 3] += 120
                Image.fromarray(image).save(folder / f"{i}.png")


def test_s18_space_runs_a_one_trial_search_on_cpu(tmp_path: Path) -> None:
    """``nas search search_spaces/metaformer_s18.yaml`` for real (local Ray, SQLite), changed
    only where a CPU test machine must differ from the cluster: device, precision, the data
    (an ImageFolder written here, read by the torch loader, not FFCV), sizes and one epoch. The
    space itself (full-size S18 widths and depths at 224 px, its proxy multipliers, sampler,
    pruner and constraints) is the file's."""
    data = tmp_path / "images"
    classes, val_per_class = 3, 3
    _write_image_folder(data, classes, train=6, val=val_per_class)
    run_dir = tmp_path / "runs"
    overrides = [
        "search.trials=1",
        "search.max_concurrent=1",
        "throughput.device=cpu",
        "throughput.precision=fp32",
        "throughput.compile=false",
        "throughput.resolution=32",
        "throughput.batch=2",
        "throughput.repeats=1",
        "throughput.max_rounds=1",
        "throughput.threads=1",
        "proxy.device=cpu",
        "proxy.amp=false",
        "proxy.epochs=1",
        "proxy.warmup_epochs=0",
        "proxy.threads=1",
        f"proxy.data.path={data}",
        "proxy.data.loader=torch",
        "proxy.data.num_workers=0",
        "proxy.data.resolution=32",
        "proxy.data.batch_size=4",
        "resources.cpu=1",
        "resources.gpu=0",
        "ray.address=null",
        f"run_dir={run_dir}",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "nas.cli", "search", str(S18), *overrides],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 complete, 0 pruned, 0 failed" in result.stdout, result.stdout[-3000:]

    cfg = load_config(S18, overrides)
    store = SearchStore(cfg.storage_url(), read_only=True)
    try:
        (search,) = store.searches()
        assert search.status == "finished" and search.name == "metaformer_s18"
        (trial,) = store.trials(search.id)
        assert trial.state == "COMPLETE", trial.reason
        assert math.isfinite(trial.accuracy) and 0.0 <= trial.accuracy <= 1.0
        assert math.isfinite(trial.throughput) and trial.throughput > 0
        assert trial.values == pytest.approx([trial.accuracy, trial.throughput])
        assert trial.epochs_done == 1 and trial.val_size == classes * val_per_class
        ((number, epoch),) = store.epochs(search.id)
        assert number == trial.number and epoch.epoch == 1
        assert epoch.val_top1 == pytest.approx(trial.accuracy)

        arch = store.architecture(trial.arch_hash)
        spec = ArchSpec.from_dict(arch.spec)
        assert len(spec.stages) == 4 and spec.image_size == 224  # the full-size S18 layout
        for stage, space in zip(spec.stages, cfg.space.stages, strict=True):
            assert stage.depth in space.depth.values() and stage.dim in space.dim.values()
        assert arch.params == sum(p.numel() for p in build_model(spec).parameters())
        assert arch.params / 1e6 <= cfg.constraints.max_params_m
        (thr,) = store.throughputs(trial.arch_hash)
        assert thr.images_per_s == pytest.approx(trial.throughput)
        assert thr.setting["device"] == "cpu" and thr.setting["resolution"] == 32
    finally:
        store.dispose()
